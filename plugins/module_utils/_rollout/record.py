# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rollout record: its schema and pure transforms (no files, no clock: ``now`` is always given).

A record is one JSON document per service (see :func:`new_record`). Every transform here returns a new record and
the one-line message that describes the change; the input is never modified. The same message is appended to
the record's events when the record changes, printed by the roles and posted to the webhook.

Times are written in one format, :data:`TIME_FORMAT` (UTC, whole seconds), by :func:`format_time` and read back by
:func:`parse_time`; nothing else in the collection formats a record time.
"""

import calendar
import copy
import time

from ansible_collections.canary.release.plugins.module_utils._rollout.vocabulary import (
    COMPLETE_VERDICTS,
    FINISHED,
    PAUSED,
    PROMOTED,
    ROLLED_BACK,
    RUNNING,
)

SCHEMA_VERSION = 1
MAX_EVENTS = 1000
TIME_FORMAT = '%Y-%m-%dT%H:%M:%SZ'


# --- time ----------------------------------------------------------------------------------------------------

def format_time(epoch):
    """``epoch`` (seconds) as the record writes times: ``2025-01-31T12:00:00Z``."""
    return time.strftime(TIME_FORMAT, time.gmtime(epoch))


def parse_time(text):
    """Seconds since the epoch for a time written by :func:`format_time`; None when unreadable."""
    try:
        return float(calendar.timegm(time.strptime(text, TIME_FORMAT)))
    except (TypeError, ValueError):
        return None


# --- the schema ----------------------------------------------------------------------------------------------

def new_record(service, version, previous_version, run_id, now):
    """A fresh record. Every key is always present:

    ``schema`` (1), ``service``, ``version``, ``previous_version`` (the stable version, or None), ``status``
    (running, paused, promoted, rolled_back, aborted), ``run_id`` (the run that began or last resumed it),
    ``started_at``, ``updated_at``, ``finished_at`` (None until promoted/rolled_back/aborted), ``step`` (index of
    the current step, None before the first), ``weight`` (its canary percent), ``reason`` (why it finished),
    ``steps`` (``[{index, weight, verdict, reason, at, started_at}]`` by index: ``at`` is the entry's last change,
    ``started_at`` when the step began at its weight; see ``vocabulary.COMPLETE_VERDICTS`` for the verdicts),
    ``events`` (``[{at, message}]``, oldest first, at most 1000) and ``events_dropped`` (older events removed to
    keep that bound).

    The audit trail: a step entry, an event and a finished record may also say who or what made the decision,
    ``by`` (``finished_by`` on the record) - see :func:`actor`. Records written before it have no ``by``; readers
    treat a missing one as unknown (``_common.audit.by_text``).
    """
    stamp = format_time(now)
    return {
        'schema': SCHEMA_VERSION,
        'service': service,
        'version': version,
        'previous_version': previous_version,
        'status': RUNNING,
        'run_id': run_id,
        'started_at': stamp,
        'updated_at': stamp,
        'finished_at': None,
        'step': None,
        'weight': None,
        'reason': None,
        'steps': [],
        'events': [],
        'events_dropped': 0,
    }


def append_event(record, message, now, by=None):
    """Append ``{at, message}`` (and ``by`` when given) to ``record`` in place, dropping the oldest events beyond
    :data:`MAX_EVENTS`."""
    event = {'at': format_time(now), 'message': message}
    if by:
        event['by'] = by
    record['events'].append(event)
    overflow = len(record['events']) - MAX_EVENTS
    if overflow > 0:
        del record['events'][:overflow]
        record['events_dropped'] = record.get('events_dropped', 0) + overflow


def with_event(record, message, now, by=None):
    """A copy of ``record`` with one more event (any status, ``by`` as :func:`append_event`), ``updated_at`` set
    to ``now``."""
    after = copy.deepcopy(record)
    append_event(after, message, now, by)
    after['updated_at'] = format_time(now)
    return after


def with_hosts(record, hosts, now):
    """A copy of ``record`` whose per-host map of the promotion (``hosts``: stable host name -> ``version`` (None
    when unknown), ``state``, ``batch``, ``message``, ``at``) has ``hosts`` merged in: a list of mappings with
    ``host``, ``state``, ``version``, ``batch`` and ``message`` (checked by the caller)."""
    after = copy.deepcopy(record)
    table = after.setdefault('hosts', {})
    for entry in hosts:
        table[entry['host']] = {'version': entry.get('version'), 'state': entry['state'],
                                'batch': entry.get('batch'), 'message': entry.get('message') or '',
                                'at': format_time(now)}
    after['updated_at'] = format_time(now)
    return after


# --- the audit trail ------------------------------------------------------------------------------------------

# Who or what made a decision (``by.kind``): the judge's verdict, a person (at the prompt, with rollout_approval, a
# manual rollback or promotion), or one of the engine's own rules (the plan's steps, a pause, an approval gate, the
# analysis deadline, a hook's failure).
JUDGE = 'judge'
PERSON = 'person'
ENGINE = 'engine'
ACTOR_KINDS = (JUDGE, PERSON, ENGINE)


def actor(kind, name, reason=None):
    """``{kind, name}`` (and ``reason`` when given): who or what made a decision, as the record writes ``by``."""
    if kind not in ACTOR_KINDS:
        raise ValueError('by.kind must be one of %s, got %r' % (', '.join(ACTOR_KINDS), kind))
    found = {'kind': kind, 'name': str(name or 'unknown')}
    if reason:
        found['reason'] = reason
    return found


def person(awx_user_name='', tower_user_name='', controller_user=''):
    """The person behind a run: the AWX (or Tower) user who launched the job when set, else the controller user (the
    OS user running ansible-playbook)."""
    if awx_user_name:
        return actor(PERSON, awx_user_name, 'AWX user')
    if tower_user_name:
        return actor(PERSON, tower_user_name, 'Tower user')
    return actor(PERSON, controller_user or 'unknown', 'controller user')


def who(by):
    """``by`` as the record writes it (:func:`actor`) from what a caller gives: ``{kind, name, reason}``, or the person
    behind the run as ``{awx_user_name, tower_user_name, controller_user}`` (:func:`person`); None when empty."""
    if not by:
        return None
    if not isinstance(by, dict):
        raise ValueError('a mapping with kind and name, or with awx_user_name, tower_user_name and controller_user, '
                         'got %r' % (by,))
    if by.get('kind'):
        return actor(by['kind'], by.get('name'), by.get('reason'))
    return person(by.get('awx_user_name') or '', by.get('tower_user_name') or '', by.get('controller_user') or '')


# --- positions and messages ----------------------------------------------------------------------------------

def format_percent(weight):
    """``10 %`` for 10.0, ``12.5 %`` for 12.5 (``%g``), ``-`` for None: how every message writes a weight."""
    if weight is None:
        return '-'
    return ('%g' % float(weight)) + ' %'


def prefix(record):
    """``sample 3``: service and version, the start of every message about a record."""
    return '%s %s' % (record['service'], record['version'])


def step_label(index, weight):
    """``step 0 at 10 %``: a step as messages, rollback reasons and the analysis label name it."""
    return 'step %s at %s' % (index, format_percent(weight))


def describe_position(record):
    """``at step 1 (50 %)``, or ``before the first step``."""
    if record.get('step') is None:
        return 'before the first step'
    return 'at step %s (%s)' % (record['step'], format_percent(record.get('weight')))


def step_entry(record, index):
    """The entry of step ``index`` in ``record['steps']``, or None."""
    found = [entry for entry in (record or {}).get('steps', []) if entry.get('index') == index]
    return found[-1] if found else None


def current_entry(record):
    """The entry of the current step (``record['step']``), or None before the first step."""
    if record is None or record.get('step') is None:
        return None
    return step_entry(record, record['step'])


def next_step(record):
    """The index of the step a (resumed) run starts with: the current one unless its verdict completed it."""
    if record is None or record.get('step') is None:
        return 0
    current = current_entry(record)
    if current is not None and current.get('verdict') in COMPLETE_VERDICTS:
        return record['step'] + 1
    return record['step']


def derived_previous(record):
    """The stable version after a finished record: the new version once promoted, else the one it replaced."""
    if record is None:
        return None
    if record.get('status') == PROMOTED:
        return record.get('version')
    return record.get('previous_version')


def step_started_at(existing, weight, stamp):
    """``started_at`` of a step entry recorded at ``stamp``: kept from the entry it replaces when that one had the
    same weight (the step goes on), else ``stamp`` (the step begins, or begins again at another weight)."""
    if existing is not None and existing.get('weight') == weight:
        return existing.get('started_at') or existing.get('at') or stamp
    return stamp


# --- transforms ----------------------------------------------------------------------------------------------

def started(service, version, previous_version, run_id, now, replaced=''):
    """``(record, message)`` of a new rollout, its first event appended (``replaced``: a note on a forced
    replacement)."""
    record = new_record(service, version, previous_version, run_id, now)
    message = '%s: rollout started (previous version %s) by run %s%s' % (
        prefix(record), previous_version or 'unknown', run_id, replaced)
    append_event(record, message, now)
    return record, message


def resumed(record, run_id, now):
    """``(record, message)`` of an unfinished rollout taken up again by run ``run_id``: running again."""
    after = copy.deepcopy(record)
    after['status'] = RUNNING
    after['run_id'] = run_id
    after['updated_at'] = format_time(now)
    message = '%s: resumed %s by run %s' % (prefix(after), describe_position(after), run_id)
    append_event(after, message, now)
    return after, message


def with_step(record, step, weight, verdict, reason, status, now, by=None):
    """``(record, message)`` with step ``step`` (index from 0) recorded at ``weight`` percent with ``verdict`` and
    ``reason``, made the current step; ``status`` (None to keep) may switch between running and paused; ``by``
    (:func:`actor`) says who decided, on the entry and its event.

    The entry is replaced, keeping ``started_at`` while the weight is unchanged (:func:`step_started_at`); ``at``
    is ``now``. Recording exactly what is recorded changes nothing: the same record comes back (no event, no
    ``updated_at``). Otherwise the message is appended to the events and ``updated_at`` is ``now``.
    """
    after = copy.deepcopy(record)
    weight = None if weight is None else float(weight)
    entry = {'index': step, 'weight': weight, 'verdict': verdict, 'reason': reason}
    existing = step_entry(after, step)
    same_entry = existing is not None and dict((key, existing.get(key)) for key in entry) == entry
    if not same_entry:
        entry['at'] = format_time(now)
        entry['started_at'] = step_started_at(existing, weight, entry['at'])
        if by:
            entry['by'] = by
        after['steps'] = sorted([item for item in after['steps'] if item.get('index') != step] + [entry],
                                key=lambda item: item['index'])
    after['step'] = step
    after['weight'] = weight
    if status is not None:
        after['status'] = status
    message = step_message(after, step, weight, verdict, reason)
    if after['status'] != record['status']:
        message += ' (%s)' % after['status']
    if after != record:
        after['updated_at'] = format_time(now)
        append_event(after, message, now, by)
    return after, message


def step_message(record, step, weight, verdict=None, reason=None):
    """``sample 3: step 0 at 10 %, verdict fail: <reason>``: a recorded step, as the events say it."""
    message = '%s: %s' % (prefix(record), step_label(step, weight))
    if verdict:
        message += ', verdict %s' % verdict
    if reason:
        message += ': %s' % reason
    return message


def finished(record, status, reason, now, by=None):
    """``(record, message)`` with the rollout ended as ``status``: ``promoted``, ``rolled_back`` or ``aborted``
    finish it (``finished_at``, ``reason``, ``finished_by`` when ``by`` is given); ``paused`` leaves it unfinished
    (a human decides later)."""
    after = copy.deepcopy(record)
    after['status'] = status
    after['updated_at'] = format_time(now)
    if status in FINISHED:
        after['finished_at'] = format_time(now)
        after['reason'] = reason
        if by:
            after['finished_by'] = by
    words = {PROMOTED: 'promoted',
             ROLLED_BACK: 'rolled back to %s' % (after.get('previous_version') or 'the stable version'),
             PAUSED: 'paused %s, lock released' % describe_position(after)}
    message = '%s: %s' % (prefix(after), words.get(status, status))
    if reason:
        message += ': %s' % ' '.join(reason.split())
    append_event(after, message, now, by)
    return after, message
