# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The operations on the record and lock files of one service: begin, record_step, add_event, finish, read, and
advance (one transition of the engine, recorded).

Each operation runs under the service's mutex (:meth:`.files.StateFiles.mutex`), reads the files, builds the
record after with the pure transforms of :mod:`.record` (or :func:`.engine.transition`), and writes record and
lock atomically. Each returns a dict (``changed``, ``record``, ``before``, ``lock``, ``run_id``, ``message``,
``warnings``, ``record_path``, ``lock_path``, ...) and writes nothing with ``check_mode=True``.
"""

import copy
import time
import uuid

from ansible_collections.canary.release.plugins.module_utils._rollout import engine, hooks
from ansible_collections.canary.release.plugins.module_utils._rollout.files import StateError, StateFiles, validate_version
from ansible_collections.canary.release.plugins.module_utils._rollout.promotion import HOST_STATES
from ansible_collections.canary.release.plugins.module_utils._rollout.lock import (
    LockHeldError,
    check_lock,
    current_owner,
    holder_state,
    local_identity,
    lock_owner,
    new_lock,
    normalize_owner,
    refreshed_lock,
)
from ansible_collections.canary.release.plugins.module_utils._rollout.record import (
    SCHEMA_VERSION,
    derived_previous,
    describe_position,
    finished,
    next_step,
    parse_time,
    prefix,
    resumed,
    started,
    with_event,
    with_hosts,
    with_step,
)
from ansible_collections.canary.release.plugins.module_utils._rollout.vocabulary import (
    FINISH_STATUSES,
    FINISHED,
    PROMOTED,
    RUNNING,
    STATUSES,
    STEP_STATUSES,
    UNFINISHED,
)


# The operations, their errors, and what callers of the operations need besides (tests and roles' helpers).
__all__ = ['begin', 'record_step', 'add_event', 'finish', 'read', 'advance', 'hook', 'StateError', 'LockHeldError',
           'VersionConflictError', 'local_identity', 'parse_time']


class VersionConflictError(StateError):
    """A different version is unfinished. ``record`` is the unfinished record."""

    def __init__(self, message, record):
        super(VersionConflictError, self).__init__(message)
        self.record = record


def _result(files, before, after, lock_before, lock_after, run_id, message, warnings, **extra):
    changed = before != after or lock_before != lock_after
    result = {
        'changed': changed,
        'record': after,
        'before': before,
        'lock': lock_after,
        'run_id': run_id,
        'message': message,
        'warnings': warnings,
        'owner': lock_owner(lock_after),
        'record_path': files.record_path,
        'lock_path': files.lock_path,
    }
    result.update(extra)
    return result


def newer_record(record, seed, service):
    """The record ``begin`` starts from: ``seed`` (a copy of the record from another host) when it is a valid
    record of ``service`` and this host has none or an older one (``updated_at``), else ``record``."""
    if seed is None:
        return record
    if not isinstance(seed, dict) or seed.get('service') != service:
        raise StateError('seed_record is not a record of service %s' % service)
    missing = [key for key in ('schema', 'version', 'status', 'started_at', 'updated_at', 'steps', 'events')
               if key not in seed]
    if missing or not isinstance(seed['schema'], int) or seed['schema'] > SCHEMA_VERSION:
        raise StateError('seed_record is not a rollout record of schema %d or older (missing %s)'
                         % (SCHEMA_VERSION, ', '.join(missing) or 'nothing, schema %r' % seed.get('schema')))
    if seed.get('status') not in STATUSES:
        raise StateError('seed_record has an unknown status %r' % (seed.get('status'),))
    if record is None:
        return copy.deepcopy(seed)
    seed_time, own_time = parse_time(seed.get('updated_at')), parse_time(record.get('updated_at'))
    if seed_time is not None and (own_time is None or seed_time > own_time):
        return copy.deepcopy(seed)
    return record


def begin(state_dir, service, version, previous_version=None, run_id=None, owner=None, force=False,
          break_lock=False, stale_after=0, check_mode=False, now=None, local=None, replaces_run_id=None,
          seed_record=None):
    """Start a rollout of ``version`` (or resume the unfinished one of the same version) and take the lock.

    ``seed_record`` is a copy of the record from another host (the traffic host's, when this controller's state
    directory is new, as in AWX): when this host has no record or an older one, begin decides from the seed
    (and writes it here), so the rollout resumes where the newest copy says.

    * no record, or the last one finished: a new record; ``previous_version`` defaults to the stable version the
      last record left (its version when promoted, else its previous version). A record of this very version that
      was promoted is left alone (``already_promoted``) unless ``force``.
    * an unfinished record of the same version: resumed (``resumed``), status running, ``next_step`` tells where
      to continue.
    * an unfinished record of another version: refused (:class:`VersionConflictError`) unless ``force``, which
      replaces it.
    * the lock held by another live run: refused (:class:`LockHeldError`); a stale one is taken over, and so is
      one held from another host by ``replaces_run_id`` (a run the caller knows to be gone, for example the one
      that ``begin`` on the controller just took over; from here it cannot be checked).
    """
    now = time.time() if now is None else now
    validate_version(version)
    if previous_version is not None:
        validate_version(previous_version, 'previous_version')
    files = StateFiles(state_dir, service)
    owner = normalize_owner(owner if owner is not None else current_owner())
    warnings = []
    with files.mutex(check_mode):
        own = files.read_record()
        before = newer_record(own, seed_record, service)
        lock_before = files.read_lock()
        mine = bool(run_id and lock_before and lock_before.get('run_id') == run_id)
        taken_over = check_lock(service, lock_before, run_id, now, stale_after, break_lock, local, warnings,
                                replaces_run_id)
        run_id = run_id or uuid.uuid4().hex
        extra = {'resumed': False, 'already_promoted': False, 'taken_over': taken_over,
                 'seeded': before is not own}
        if before is not own:
            warnings.append('%s: this host had %s; continuing from the newer copy of the record (%s, updated %s)'
                            % (service, 'no record' if own is None else 'an older record (updated %s)'
                               % own.get('updated_at'), before.get('status'), before.get('updated_at')))

        promoted_already = before is not None and before.get('status') == PROMOTED and before.get('version') == version
        if promoted_already and not force:
            message = '%s: already promoted on %s; nothing to do' % (prefix(before), before.get('finished_at'))
            extra['already_promoted'] = True
            _keep_seed(files, own, before, check_mode)
            return _result(files, own, before, lock_before, lock_before, run_id, message, warnings,
                           next_step=None, **extra)

        if before is not None and before.get('status') in UNFINISHED and before.get('version') == version:
            if mine and before.get('status') == RUNNING and before.get('run_id') == run_id:
                message = '%s: already begun by this run, %s' % (prefix(before), describe_position(before))
                _keep_seed(files, own, before, check_mode)
                return _result(files, own, before, lock_before, lock_before, run_id, message, warnings,
                               next_step=next_step(before), **extra)
            if previous_version is not None and previous_version != before.get('previous_version'):
                warnings.append('%s: resuming with the recorded previous version %s, not %s'
                                % (prefix(before), before.get('previous_version'), previous_version))
            after, message = resumed(before, run_id, now)
            extra['resumed'] = True
        else:
            replaced = ''
            if before is not None and before.get('status') in UNFINISHED:
                if not force:
                    raise VersionConflictError(
                        'rollout of %s %s is unfinished (%s %s, started %s); finish or roll it back first, '
                        'or pass force: true to replace it with %s'
                        % (service, before.get('version'), before.get('status'), describe_position(before),
                           before.get('started_at'), version), before)
                replaced = ' (replacing the unfinished rollout of %s %s, forced)' % (
                    before.get('version'), describe_position(before))
                warnings.append('%s: replaced the unfinished rollout of %s %s (force)'
                                % (service, before.get('version'), describe_position(before)))
                derived = before.get('previous_version')
            else:
                derived = derived_previous(before)
            previous = previous_version if previous_version is not None else derived
            after, message = started(service, version, previous, run_id, now, replaced)

        since = lock_before.get('started_at') if mine else None
        lock_after = new_lock(service, run_id, version, owner, now, since)
        if not check_mode:
            files.write_lock(lock_after)
            files.write_record(after)
        return _result(files, own, after, lock_before, lock_after, run_id, message, warnings,
                       next_step=next_step(after), **extra)


def _keep_seed(files, own, record, check_mode):
    """Write ``record`` when it came from a seed (another host's newer copy), so this host has it too."""
    if record is not own and not check_mode:
        files.write_record(record)


def _load_for_update(files, version):
    record = files.read_record()
    if record is None:
        raise StateError('no rollout record for %s in %s' % (files.service, files.state_dir))
    if version is not None and record.get('version') != version:
        raise StateError('the rollout record of %s is for version %s, not %s'
                         % (files.service, record.get('version'), version))
    return record


def _require_unfinished(record):
    if record.get('status') not in UNFINISHED:
        raise StateError('the rollout of %s already finished as %s on %s'
                         % (prefix(record), record.get('status'), record.get('finished_at')))


def _check_own_lock(files, lock, run_id, now, stale_after, break_lock, local, warnings):
    """For step and finish: the caller's run must hold the lock, or the lock must be free (one-shot call)."""
    if run_id and lock is None:
        raise StateError('run %s does not hold the lock of %s (it was released or broken)' % (run_id, files.service))
    return check_lock(files.service, lock, run_id, now, stale_after, break_lock, local, warnings)


def _write(files, record, lock_before, lock_after):
    if lock_after is None:
        if lock_before is not None:
            files.remove_lock()
    elif lock_after != lock_before:
        files.write_lock(lock_after)
    files.write_record(record)


def record_step(state_dir, service, step, weight=None, verdict=None, reason=None, status=None, version=None,
                run_id=None, owner=None, break_lock=False, stale_after=0, check_mode=False, now=None, local=None):
    """Record step ``step`` (index from 0) at ``weight`` percent with an optional ``verdict`` and ``reason``
    (:func:`.record.with_step`).

    Makes it the current step; ``status`` may switch the rollout between running and paused. Recording exactly
    what is already recorded changes nothing. The lock must be held by ``run_id`` (or be free: one-shot call).
    """
    now = time.time() if now is None else now
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise StateError('step must be an integer index from 0, got %r' % (step,))
    if weight is not None:
        weight = float(weight)
        if not 0.0 <= weight <= 100.0:
            raise StateError('weight must be a percent from 0 to 100, got %r' % (weight,))
    if status is not None and status not in STEP_STATUSES:
        raise StateError('status of a step must be one of %s, got %r' % (', '.join(STEP_STATUSES), status))
    files = StateFiles(state_dir, service)
    warnings = []
    with files.mutex(check_mode):
        before = _load_for_update(files, version)
        _require_unfinished(before)
        lock_before = files.read_lock()
        taken_over = _check_own_lock(files, lock_before, run_id, now, stale_after, break_lock, local, warnings)
        after, message = with_step(before, step, weight, verdict, reason, status, now)
        lock_after = lock_before
        if after == before and taken_over is not None:
            after = with_event(after, message, now)  # the take-over is worth an event of its own
        if after != before:
            lock_after = refreshed_lock(service, lock_before, taken_over, run_id, after, owner, now)
            if not check_mode:
                _write(files, after, lock_before, lock_after)
        return _result(files, before, after, lock_before, lock_after, lock_after and lock_after.get('run_id'),
                       message, warnings, taken_over=taken_over, next_step=next_step(after))


def _checked_hosts(hosts):
    """The per-host entries of an event (``hosts``), checked: a list of mappings with a host name, a state of
    :data:`.promotion.HOST_STATES`, and the version the host runs (None or empty when unknown)."""
    if not isinstance(hosts, list):
        raise StateError('hosts must be a list of mappings with host, state and version, got %r' % (hosts,))
    checked = []
    for entry in hosts:
        if not isinstance(entry, dict) or not isinstance(entry.get('host'), str) or not entry['host'].strip():
            raise StateError('every entry of hosts needs a host name, got %r' % (entry,))
        if entry.get('state') not in HOST_STATES:
            raise StateError('the state of host %s must be one of %s, got %r'
                             % (entry['host'], ', '.join(HOST_STATES), entry.get('state')))
        batch = entry.get('batch')
        if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
            raise StateError('the batch of host %s must be a number from 1, got %r' % (entry['host'], batch))
        version = entry.get('version')
        checked.append(dict(entry, version=str(version) if version not in (None, '') else None))
    return checked


def add_event(state_dir, service, message, version=None, run_id=None, check_mode=False, now=None, by=None, hosts=None):
    """Append a timestamped one-line event to the record (any status; ``by``: who, :func:`.record.actor`). Always
    a change; never checks the lock. ``hosts`` (optional, entries as :func:`.record.with_hosts` takes them) updates
    the record's per-host map of the promotion in the same write."""
    now = time.time() if now is None else now
    if not isinstance(message, str) or not message.strip():
        raise StateError('an event needs a non-empty message')
    message = ' '.join(message.split())  # one line
    hosts = _checked_hosts(hosts) if hosts is not None else []
    files = StateFiles(state_dir, service)
    with files.mutex(check_mode):
        before = _load_for_update(files, version)
        lock = files.read_lock()
        after = with_event(before, message, now, by)
        if hosts:
            after = with_hosts(after, hosts, now)
        if not check_mode:
            files.write_record(after)
        return _result(files, before, after, lock, lock, run_id or (lock or {}).get('run_id'),
                       '%s: %s' % (prefix(after), message), [])


def finish(state_dir, service, status, reason=None, version=None, run_id=None, owner=None, break_lock=False,
           stale_after=0, check_mode=False, now=None, local=None, by=None):
    """End the run: status ``promoted``, ``rolled_back`` or ``aborted`` finishes the rollout; ``paused`` leaves it
    unfinished (the next ``begin`` of the same version resumes it). Releases the lock either way. ``by`` says who
    decided it (:func:`.record.actor`): the record's ``finished_by`` and the event's ``by``.

    Finishing again with the status it already has changes nothing; a rollout that finished with another status
    is refused.
    """
    now = time.time() if now is None else now
    if status not in FINISH_STATUSES:
        raise StateError('finish status must be one of %s, got %r' % (', '.join(FINISH_STATUSES), status))
    files = StateFiles(state_dir, service)
    warnings = []
    with files.mutex(check_mode):
        before = _load_for_update(files, version)
        lock_before = files.read_lock()
        mine = bool(run_id and lock_before and lock_before.get('run_id') == run_id)
        if before.get('status') == status and (lock_before is None or (mine and status in FINISHED)):
            lock_after = lock_before
            if mine:
                lock_after = None
                if not check_mode:
                    files.remove_lock()
            message = '%s: already %s' % (prefix(before), status)
            if before.get('finished_at'):
                message += ' on %s' % before['finished_at']
            return _result(files, before, before, lock_before, lock_after, run_id, message, warnings,
                           taken_over=None)
        _require_unfinished(before)
        taken_over = _check_own_lock(files, lock_before, run_id, now, stale_after, break_lock, local, warnings)
        after, message = finished(before, status, reason, now, by)
        if not check_mode:
            _write(files, after, lock_before, None)
        return _result(files, before, after, lock_before, None, run_id or (lock_before or {}).get('run_id'),
                       message, warnings, taken_over=taken_over)


def read(state_dir, service, stale_after=0, now=None, local=None):
    """The record (None when there is none) and the lock with its holder's state; never writes or locks."""
    now = time.time() if now is None else now
    files = StateFiles(state_dir, service)
    record = files.read_record()
    lock = files.read_lock()
    if lock is not None:
        lock = dict(lock)
        lock['holder_state'], lock['holder_reason'] = holder_state(lock, now, stale_after, local)
    if record is None:
        message = '%s: no rollout recorded' % service
    else:
        message = '%s: %s %s' % (prefix(record), record.get('status'), describe_position(record))
    return {'changed': False, 'record': record, 'before': record, 'lock': lock,
            'run_id': (lock or {}).get('run_id'), 'owner': lock_owner(lock), 'message': message, 'warnings': [],
            'exists': record is not None, 'next_step': next_step(record) if record else 0,
            'record_path': files.record_path, 'lock_path': files.lock_path}


def advance(state_dir, service, version, run_id, plan, event, approval='', hold_mode='end', check_mode=False,
            record=None, now=None, owner=None, break_lock=False, stale_after=0, local=None, by=None):
    """Report ``event`` to the engine (:func:`.engine.transition`) and record what it decides.

    Under the mutex: read the record (which must be of ``version`` and held by ``run_id``, as for
    :func:`record_step`), take the transition, write it - a step verdict refreshes the lock; the pause of a held
    run (event ``held``) releases it, as ``finish`` with status paused does - and return the engine's answer with
    the record before and after.

    Check mode writes nothing, so the record on disk does not follow a simulated run: pass back the ``record`` the
    previous simulated transition returned. Without it, the record is the one ``begin`` would leave (a new rollout
    of ``version``, or the resumed one), so the first check-mode call needs no record at all. ``by`` is the person
    behind the run (:func:`.record.person`), recorded with an approval or a rejection.

    Returns ``{changed, record, before, action, message, outcome, warnings, write, state, state_after, lock,
    owner, run_id, record_path, lock_path}``. Reporting the same event twice changes nothing the second time.
    """
    now = time.time() if now is None else now
    files = StateFiles(state_dir, service)
    warnings = []
    if check_mode and record is None:
        would_begin = begin(state_dir, service, version, run_id=run_id, owner=owner, break_lock=break_lock,
                            stale_after=stale_after, check_mode=True, now=now, local=local)
        record = would_begin['record']
    with files.mutex(check_mode):
        lock_before = files.read_lock()
        if check_mode:
            before = record
        else:
            before = _load_for_update(files, version)
        taken_over = None
        if not check_mode and before.get('status') == RUNNING:
            taken_over = _check_own_lock(files, lock_before, run_id, now, stale_after, break_lock, local, warnings)
        result = engine.transition(before, plan, event, now, approval=approval, hold_mode=hold_mode,
                                   check_mode=check_mode, by=by)
        after = result['record']
        lock_after = lock_before
        if result['write'] is not None and result['write']['operation'] == 'finish':
            lock_after = None
        elif after != before or taken_over is not None:
            lock_after = refreshed_lock(service, lock_before, taken_over, run_id, after, owner, now)
        if not check_mode and (after != before or lock_after != lock_before):
            if after != before:
                _write(files, after, lock_before, lock_after)
            elif lock_after is not None:
                files.write_lock(lock_after)
        return _result(files, before, after, lock_before, lock_after, run_id, result['message'],
                       warnings + result['warnings'], action=result['action'], outcome=result['outcome'],
                       write=result['write'], state=result['state'], state_after=result['state_after'],
                       taken_over=taken_over)


def hook(state_dir, service, version, point, status, reason='', tasks='', run_id=None, check_mode=False, record=None,
         now=None, owner=None, break_lock=False, stale_after=0, local=None):
    """Record that the ``point`` hook started, passed or failed, and what follows (:func:`.hooks.hook_outcome`).

    Under the mutex: the record (of ``version``; for the hooks of a running release held by ``run_id``) gets the
    hook's event; a failed ``before_canary`` hook finishes it ``aborted`` and releases the lock. Check mode writes
    nothing and, as :func:`advance`, takes the ``record`` the previous simulated operation returned.

    Returns the operation's result with ``decision`` (continue, abort, rollback, report), ``action`` (the engine
    action that replaces the role's, or None) and ``finish`` (the status the record was finished with, or None).
    """
    now = time.time() if now is None else now
    files = StateFiles(state_dir, service)
    warnings = []
    with files.mutex(check_mode):
        lock_before = files.read_lock()
        before = record if (check_mode and record is not None) else _load_for_update(files, version)
        if not check_mode and before.get('status') == RUNNING:
            _check_own_lock(files, lock_before, run_id, now, stale_after, break_lock, local, warnings)
        try:
            outcome = hooks.hook_outcome(before, point, status, now, reason=reason, tasks=tasks,
                                         check_mode=check_mode)
        except hooks.HookError as error:
            raise StateError(str(error))
        after = outcome['record']
        lock_after = None if outcome['finish'] else lock_before
        if not check_mode:
            _write(files, after, lock_before, lock_after)
        return _result(files, before, after, lock_before, lock_after, run_id or (lock_before or {}).get('run_id'),
                       outcome['message'], warnings, decision=outcome['decision'], action=outcome['action'],
                       finish=outcome['finish'])
