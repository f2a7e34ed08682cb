# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The promotion's decisions: whether a batch may start, and what a finished batch means.

The ``canary.release.promote`` role deploys the new version on the stable hosts in batches (the play's ``serial``).
Before each batch it asks :func:`batch_conflict` on every host that keeps the rollout record: a batch starts only
while the record is still this version's, unfinished, and (for a promotion run by a rollout) still locked by the
same run - a rollback or another run that took the rollout over stops the promotion before the batch changes
anything. After each batch :func:`conclude_batch` says whether the promotion goes on and words the event: a batch
whose hosts all run the new version and passed the health check is recorded and the next batch may start; a batch
with a failed host stops the promotion, with the rollout paused and a message saying which host runs which version
(the traffic split is left alone: the canary keeps its share).
"""

DONE_STATES = ('promoted', 'checked')


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
    if record.get('status') not in ('running', 'paused'):
        return 'the rollout on %s finished as %s on %s' % (host, record.get('status'), record.get('finished_at'))
    if not check_mode and run_id and (lock or {}).get('run_id') != run_id:
        return 'this run (%s) no longer holds the rollout lock on %s' % (run_id, host)
    if not run_id and lock and lock.get('holder_state') != 'stale':
        return 'run %s holds the rollout lock on %s (%s)' % (lock.get('run_id'), host, lock.get('holder_reason'))
    return None


def _runs(hosts, verb='run'):
    return '%s %s%s' % (', '.join(hosts), verb, 's' if len(hosts) == 1 else '')


def conclude_batch(service, version, batch, results, hosts, previous_version=None, check_mode=False):
    """What batch ``batch`` of the promotion means.

    ``results`` are the per-host results so far (``host``, ``batch``, ``state``: promoted, checked, unhealthy or
    failed, ``message``), ``hosts`` every stable host of the play in order. Returns ``stopped`` (a host of this batch
    did not take the new version), ``message`` (the event) and ``done`` / ``pending`` host lists.
    """
    mine = [result for result in results if result.get('batch') == batch]
    failed = [result for result in mine if result.get('state') not in DONE_STATES]
    done = [result['host'] for result in results if result.get('state') in DONE_STATES]
    seen = set(result['host'] for result in results)
    pending = [host for host in hosts if host not in seen]
    if not failed:
        what = 'would get the new version (check mode)' if check_mode else (
            '%s it and passed the health check' % ('runs' if len(mine) == 1 else 'run'))
        message = '%s %s: promote batch %d: %s %s (%d of %d stable hosts done)' % (
            service, version, batch, ', '.join(result['host'] for result in mine), what, len(done), len(hosts))
        return {'stopped': False, 'message': message, 'done': done, 'pending': pending}
    parts = []
    if done:
        parts.append('%s %s' % (_runs(done), version))
    for result in failed:
        if result.get('state') == 'unhealthy':
            parts.append('%s runs %s but is unhealthy' % (result['host'], version))
        else:
            parts.append('%s failed to deploy (version unknown)' % result['host'])
    if pending:
        parts.append('%s %s' % (_runs(pending, 'still run'), previous_version or 'the previous version'))
    message = ('promotion of %s %s stopped at batch %d: %s. Now %s, and the traffic split is unchanged (the canary '
               'keeps its share); the rollout is paused - fix the host%s and run the promotion again, or roll back'
               % (service, version, batch, '; '.join(result.get('message') or 'unknown error' for result in failed),
                  ', '.join(parts), 's' if len(failed) > 1 else ''))
    return {'stopped': True, 'message': message, 'done': done, 'pending': pending}
