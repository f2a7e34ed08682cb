# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The promotion's decisions: which version a promotion by hand promotes, whether a batch may start, what a
finished batch means, and how the promotion ends.

The ``canary.release.promote`` role deploys the new version on the stable hosts in batches (the play's ``serial``).
Before each batch it asks :func:`batch_conflict` on every host that keeps the rollout record: a batch starts only
while the record is still this version's, unfinished, and (for a promotion run by a rollout) still locked by the
same run - a rollback or another run that took the rollout over stops the promotion before the batch changes
anything. After each batch :func:`conclude_batch` says whether the promotion goes on and words the event: a batch
whose hosts all run the new version and passed the health check is recorded and the next batch may start; a batch
with a failed host stops the promotion, with the rollout paused and a message saying which host runs which version
(the traffic split is left alone: the canary keeps its share). Before the batches of a promotion by hand,
:func:`promotion_target` picks the version from the newest copy of the record and refuses one that was rolled
back; after them, :func:`promotion_outcome` words the reason recorded with the promoted status and the result.
"""

from ansible_collections.canary.release.plugins.module_utils._rollout.vocabulary import ABORTED, PROMOTED, ROLLED_BACK

DONE_STATES = ('promoted', 'checked')
UNREACHABLE = 'unreachable'
# what the record's per-host map (``hosts``) may say of a stable host: its batch was under way (``deploying``,
# written before the batch starts), it runs the new version (``promoted``; ``unhealthy`` - it failed its health
# check), or its version is unknown (``failed``, ``unreachable``)
HOST_STATES = ('deploying', 'promoted', 'unhealthy', 'failed', UNREACHABLE)


def newest_record(read_results):
    """The newest record among ``read`` results (by ``updated_at``; in AWX the controller's copy is new in every
    job, the traffic host's survives), or None."""
    records = [result['record'] for result in read_results or [] if result.get('exists') and result.get('record')]
    return sorted(records, key=lambda record: record.get('updated_at') or '')[-1] if records else None


def promotion_target(service, version, read_results, force=False):
    """What a promotion by hand promotes, from the ``read`` results of the record, one per state host (``item``).

    The version is ``version`` when given, else the version of the newest record. Returns ``service``,
    ``version``, ``previous_version`` (the newest record's, when it is of that version - a forced promotion again
    keeps it), ``state_hosts`` (the hosts read) and ``error``: why the promotion may not begin (no version known,
    or the rollout of that version was rolled back or aborted and ``force`` is false), else an empty string.
    """
    hosts = [str(result.get('item')) for result in read_results or []]
    newest = newest_record(read_results) or {}
    version = str(version) if version not in (None, '') else str(newest.get('version') or '')
    mine = newest.get('version') == version
    error = ''
    if not version:
        error = ('promote: no rollout record of %s on %s; set the version to promote (promote_version, or '
                 'rollout_version with playbooks/promote.yml)' % (service, ', '.join(hosts)))
    elif mine and newest.get('status') in (ROLLED_BACK, ABORTED) and not force:
        error = ('promote: the rollout of %s %s finished as %s on %s (%s); promoting it anyway needs promote_force=true'
                 % (service, version, newest.get('status'), newest.get('finished_at'), newest.get('reason')))
    return {'service': service, 'version': version, 'state_hosts': hosts, 'error': error,
            'previous_version': (newest.get('previous_version') or None) if mine else None,
            'left_behind': left_behind(newest) if mine and newest.get('status') == PROMOTED else []}


def left_behind(record):
    """The stable hosts a promoted rollout left behind (failed or unreachable within the tolerance, or lost
    during a batch): in the record's per-host map, not promoted. A promotion run again deploys them."""
    return sorted(name for name, entry in (record.get('hosts') or {}).items() if entry.get('state') != 'promoted')


def batch_conflict(version, run_id, host, read_result, check_mode=False):
    """Why batch promotion of ``version`` must stop, from ``host``'s record and lock (``read`` result); None if not.

    ``run_id`` is the rollout run that hands over to the promotion (empty for a promotion by hand, which needs the
    lock to be free or stale).
    """
    if not read_result.get('exists'):
        return None
    record, lock = read_result.get('record') or {}, read_result.get('lock')
    if record.get('version') != version:
        return 'the rollout record on %s is for version %s' % (host, record.get('version'))
    # a promoted rollout that left hosts behind takes batches for them, with no lock of its own (it finished)
    catch_up = record.get('status') == PROMOTED and bool(left_behind(record))
    if record.get('status') not in ('running', 'paused') and not catch_up:
        return 'the rollout on %s finished as %s on %s' % (host, record.get('status'), record.get('finished_at'))
    if not check_mode and run_id and not catch_up and (lock or {}).get('run_id') != run_id:
        return 'this run (%s) no longer holds the rollout lock on %s' % (run_id, host)
    if (catch_up or not run_id) and lock and lock.get('holder_state') != 'stale':
        return 'run %s holds the rollout lock on %s (%s)' % (lock.get('run_id'), host, lock.get('holder_reason'))
    return None


def host_result(host, batch, version, failed=False, error='', deploy_result=None, check_mode=False, unreachable=False):
    """The result of one stable host in batch ``batch``: ``promoted`` (``checked`` in check mode) unless ``failed``
    or ``unreachable``; ``unreachable`` when the controller could not reach the host (its version is unknown); for
    ``failed``, ``unhealthy`` when the deploy role says the new version is installed but failed its health check
    (``deploy_result.healthy`` false), else ``failed`` (the deploy itself failed), with ``error`` as the message."""
    if unreachable:
        state = UNREACHABLE
        error = 'unreachable: %s' % (error or 'no connection')
    elif not failed:
        state, error = ('checked' if check_mode else 'promoted'), ''
    else:
        state = 'unhealthy' if (deploy_result or {}).get('healthy') is False else 'failed'
    return {'host': host, 'batch': int(batch), 'version': str(version), 'state': state, 'message': error}


def host_version(result):
    """The version a host runs after its result: the new version once deployed (promoted, checked or unhealthy),
    None (unknown) when the deploy failed, the host was unreachable or its batch never ended."""
    return result.get('version') if result.get('state') in DONE_STATES + ('unhealthy',) else None


# --- how many hosts per batch, how many may fail ------------------------------------------------------------------

def _serial_item(value):
    """One batch size as Ansible's ``serial`` takes it: a whole number >= 1 or a percentage "N%" (0 < N <= 100)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 1 else None
    text = str(value).strip()
    if text.endswith('%'):
        number = text[:-1].strip()
        try:
            percent = float(number)
        except ValueError:
            return None
        return '%s%%' % number if 0 < percent <= 100 else None
    return int(text) if text.isdigit() and int(text) >= 1 else None


def promotion_settings(serial, max_fail_percentage):
    """The promotion's batches and tolerance, checked before anything changes.

    ``serial`` (``promote_serial``) is what Ansible's play keyword takes: hosts per batch as a number, a percentage
    of the stable hosts (``"25%"``) or a list of those (batch sizes in turn, the last one repeated). ``max_fail_percentage``
    (``promote_max_fail_percentage``) is how many hosts of a batch, in percent of the batch, may fail or be
    unreachable while the promotion goes on (0: any failed host stops it after its batch). Returns ``serial``
    (normalized for the play), ``max_fail_percentage`` (a number) and ``error`` (empty when both are valid).
    """
    errors = []
    items = serial if isinstance(serial, (list, tuple)) else [serial]
    normalized = [_serial_item(item) for item in items]
    if not items or None in normalized:
        errors.append('promote_serial must be a number of hosts (1 or more), a percentage such as "25%%" (above 0, at '
                      'most 100) or a non-empty list of those, got %r' % (serial,))
    tolerance = None
    if not isinstance(max_fail_percentage, bool):
        try:
            tolerance = float(max_fail_percentage)
        except (TypeError, ValueError):
            tolerance = None
    if tolerance is None or not 0 <= tolerance <= 100:
        errors.append('promote_max_fail_percentage must be a percentage from 0 to 100 (the share of a batch that may '
                      'fail while the promotion goes on), got %r' % (max_fail_percentage,))
    if tolerance is not None and tolerance == int(tolerance):
        tolerance = int(tolerance)
    return {'serial': normalized if isinstance(serial, (list, tuple)) else normalized[0],
            'max_fail_percentage': tolerance, 'error': '; '.join(errors)}


def recorded_hosts(read_results, version):
    """The per-host map of the newest record of ``version`` (``hosts``: name -> version, state, batch, message,
    at), {} when there is none: which stable hosts a stopped or interrupted promotion already did."""
    newest = newest_record(read_results) or {}
    return dict(newest.get('hosts') or {}) if newest.get('version') == version else {}


def hosts_done(read_results, version):
    """The stable hosts the record says run ``version`` and passed the health check: a re-run skips them."""
    return sorted(name for name, entry in recorded_hosts(read_results, version).items()
                  if entry.get('state') == 'promoted' and entry.get('version') == version)


def batch_start(service, version, batch, batch_hosts, read_results, max_fail_percentage=0):
    """What batch ``batch`` sets out to do, before it touches a host: ``done`` (every stable host the record says
    runs ``version`` already - an earlier run promoted it, this one skips it), ``todo`` (the hosts of
    ``batch_hosts`` not done), ``hosts`` (``deploying`` entries for them, written to the record before the batch
    starts, so a run that dies during the batch leaves their version recorded as unknown), ``message`` (the event)
    and ``error`` (an invalid ``max_fail_percentage``, checked here for plays that use the role directly)."""
    done = hosts_done(read_results, version)
    todo = [host for host in batch_hosts or [] if host not in done]
    skipped = [host for host in batch_hosts or [] if host in done]
    message = '%s %s: promote batch %d: deploying %s%s' % (
        service, version, batch, host_names(todo) or 'nothing',
        ('; %s already run%s it' % (host_names(skipped), 's' if len(skipped) == 1 else '')) if skipped else '')
    return {'done': done, 'todo': todo, 'message': message,
            'hosts': [{'host': host, 'state': 'deploying', 'version': None, 'batch': int(batch), 'message': ''}
                      for host in todo],
            'error': promotion_settings(1, max_fail_percentage)['error']}


# --- what a batch means -------------------------------------------------------------------------------------------

NAMES_SHOWN = 8


def host_names(hosts):
    """Host names for a message: all of them up to :data:`NAMES_SHOWN`, else the first ones and how many more."""
    hosts = list(hosts)
    if len(hosts) <= NAMES_SHOWN:
        return ', '.join(hosts)
    return '%s and %d more' % (', '.join(hosts[:NAMES_SHOWN - 1]), len(hosts) - NAMES_SHOWN + 1)


def _runs(hosts, verb='run'):
    return '%s %s%s' % (host_names(hosts), verb, 's' if len(hosts) == 1 else '')


def _missing(batch, batch_hosts, results):
    """Hosts of the batch that have no result: the controller lost them during the batch (unreachable)."""
    seen = set(result['host'] for result in results if result.get('batch') == batch)
    return [host_result(host, batch, '', unreachable=True, error='lost during the batch')
            for host in batch_hosts or [] if host not in seen]


def conclude_batch(service, version, batch, results, hosts, previous_version=None, check_mode=False,
                   batch_hosts=None, max_fail_percentage=0, recorded_done=None):
    """What batch ``batch`` of the promotion means.

    ``results`` are the per-host results of this run so far (``host``, ``batch``, ``state``: promoted, checked,
    unhealthy, failed or unreachable, ``message``), ``hosts`` every stable host of the play in order,
    ``batch_hosts`` the hosts this batch set out to promote (one of them without a result was lost on the way:
    unreachable), ``recorded_done`` the hosts an earlier run promoted (the record says so; they were skipped; only
    those among ``hosts`` count).
    The batch stops the promotion when more than ``max_fail_percentage`` percent of its hosts did not take the new
    version. Returns ``stopped``, ``message`` (the event), ``done`` / ``pending`` host lists and ``hosts``: the
    batch's per-host results, for the record.
    """
    results = list(results) + _missing(batch, batch_hosts, results)
    mine = [result for result in results if result.get('batch') == batch]
    failed = [result for result in mine if result.get('state') not in DONE_STATES]
    # hosts of this play an earlier run promoted (a slice of a sliced promotion counts its own hosts only)
    reported = set(result['host'] for result in results)
    earlier = [host for host in recorded_done or [] if host in hosts and host not in reported]
    done = earlier + [result['host'] for result in results if result.get('state') in DONE_STATES]
    seen = reported | set(earlier)
    pending = [host for host in hosts if host not in seen]
    tolerated = bool(failed) and len(failed) * 100.0 <= float(max_fail_percentage) * len(mine)
    if not failed or tolerated:
        ok = [result['host'] for result in mine if result.get('state') in DONE_STATES]
        what = 'would get the new version (check mode)' if check_mode else (
            '%s it and passed the health check' % ('runs' if len(ok) == 1 else 'run'))
        parts = ['%s %s' % (host_names(ok), what)] if ok else []
        if tolerated:
            parts.append('%s (%d of %d hosts of the batch, within promote_max_fail_percentage %s %%: the promotion '
                         'goes on)' % ('; '.join('%s %s' % (result['host'], _failure(result)) for result in failed),
                                       len(failed), len(mine), max_fail_percentage))
        message = '%s %s: promote batch %d: %s (%d of %d stable hosts done)' % (
            service, version, batch, '; '.join(parts) or 'nothing to do', len(done), len(hosts))
        return {'stopped': False, 'message': message, 'done': done, 'pending': pending, 'hosts': _entries(mine),
                'tolerated': [result['host'] for result in failed], 'event': message}
    parts = []
    if done:
        parts.append('%s %s' % (_runs(done), version))
    parts.extend('%s %s' % (result['host'], _failure(result, version)) for result in failed)
    if pending:
        parts.append('%s %s' % (_runs(pending, 'still run'), previous_version or 'the previous version'))
    message = ('promotion of %s %s stopped at batch %d: %s. Now %s, and the traffic split is unchanged (the canary '
               'keeps its share); the rollout is paused - fix the host%s and run the promotion again, or roll back'
               % (service, version, batch, '; '.join(result.get('message') or 'unknown error' for result in failed),
                  ', '.join(parts), 's' if len(failed) > 1 else ''))
    result = {'service': service, 'outcome': 'paused', 'version': version, 'previous_version': previous_version,
              'hosts': results, 'canary_percent': None, 'backend': None, 'retired': 'none', 'check_mode': check_mode,
              'message': message}
    event = '%s %s: promote batch %d: %s' % (service, version, batch, '; '.join(
        '%s %s' % (result['host'], _failure(result, version)) for result in failed))
    return {'stopped': True, 'message': message, 'done': done, 'pending': pending, 'result': result,
            'hosts': _entries(mine), 'tolerated': [], 'event': event}


def _entries(results):
    """The record's per-host entries of a batch's results (``checked`` - check mode - is not a state to record)."""
    return [{'host': result['host'], 'state': result['state'], 'version': host_version(result),
             'batch': result.get('batch'), 'message': result.get('message') or ''}
            for result in results if result.get('state') in HOST_STATES]


def _failure(result, version=None):
    """How a host that did not take the new version stands, for a message."""
    state = result.get('state')
    if state == 'unhealthy':
        return 'runs %s but is unhealthy' % (version or result.get('version'))
    if state == UNREACHABLE:
        return 'is unreachable (version unknown)'
    return 'failed to deploy (version unknown)'


def retirement(provisioned, retire_tasks_file):
    """How the canary and baseline hosts are retired: ``provision`` (they were created by the provision role),
    ``tasks`` (the user's task file) or ``none``."""
    return 'provision' if provisioned else ('tasks' if retire_tasks_file else 'none')


def merged_hosts(recorded, results):
    """Every stable host's latest state: the record's per-host map (``recorded``, name -> entry) with this run's
    ``results`` over it. A list of results (``host``, ``batch``, ``version``, ``state``, ``message``) in name order."""
    merged = dict((name, dict(entry, host=name)) for name, entry in (recorded or {}).items())
    for result in results or []:
        merged[result['host']] = dict(result)
    return [merged[name] for name in sorted(merged)]


def promotion_outcome(service, version, results, canary_percent, backend, previous_version=None, reason='',
                      retired='none', check_mode=False, recorded=None):
    """How a promotion that passed every batch ends, once the canary is out of rotation.

    ``results`` are this run's per-host results and ``recorded`` the record's per-host map (hosts an earlier run
    promoted), ``canary_percent`` and ``backend`` what the traffic backend reports now, ``reason`` the caller's
    reason (empty: one is worded from the hosts, naming any host left behind within
    ``promote_max_fail_percentage``), ``retired`` as :func:`retirement` says. Returns ``reason`` (recorded with the
    promoted status) and ``result`` (the role's ``promote_result``, whose ``message`` is the one-line event).
    """
    hosts = merged_hosts(recorded, results)
    if not reason:
        promoted = [result for result in hosts if result.get('state') in DONE_STATES]
        who = ('%d stable host%s' % (len(promoted), ' runs' if len(promoted) == 1 else 's run')) if promoted \
            else 'the stable pool runs'
        reason = '%s %s, canary at %s %% via %s' % (who, version, canary_percent, backend)
        behind = [result for result in hosts if result.get('state') not in DONE_STATES]
        if behind:
            reason += '; left behind: %s - run the promotion again to finish %s' % (
                '; '.join('%s %s' % (result['host'], _failure(result, version)) for result in behind),
                'it' if len(behind) == 1 else 'them')
    message = '%s %s: promoted%s, %s%s%s' % (
        service, version, (' (previous version %s)' % previous_version) if previous_version else '', reason,
        ', canary and baseline hosts retired' if retired != 'none' else '', ' (check mode)' if check_mode else '')
    result = {'service': service, 'outcome': 'promoted', 'version': version, 'previous_version': previous_version,
              'hosts': hosts, 'canary_percent': canary_percent, 'backend': backend, 'retired': retired,
              'check_mode': check_mode, 'message': message}
    return {'reason': reason, 'result': result}


def describe_hosts(record):
    """One line on the record's per-host map, for status: which stable hosts run which version; None without one.
    ``stable hosts: stable-1, stable-2 run 2; stable-3 is unreachable (version unknown); the others run 1``."""
    table = record.get('hosts') or {}
    if not table:
        return None
    version = record.get('version')
    groups = []
    for state, words in (('promoted', 'run%s ' + str(version)), ('unhealthy', 'run%s ' + str(version) + ' but unhealthy'),
                         ('deploying', 'had a batch under way (version unknown)'),
                         ('failed', 'failed to deploy (version unknown)'), (UNREACHABLE, 'unreachable (version unknown)')):
        names = sorted(name for name, entry in table.items() if entry.get('state') == state)
        if names:
            groups.append('%s %s' % (host_names(names), words % ('s' if len(names) == 1 else '') if '%s' in words else words))
    return 'stable hosts: %s; any other runs %s' % ('; '.join(groups), record.get('previous_version') or 'the previous version')
