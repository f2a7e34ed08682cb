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

from ansible_collections.canary.release.plugins.module_utils._rollout.vocabulary import ABORTED, ROLLED_BACK

DONE_STATES = ('promoted', 'checked')


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
            'previous_version': (newest.get('previous_version') or None) if mine else None}


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


def host_result(host, batch, version, failed=False, error='', deploy_result=None, check_mode=False):
    """The result of one stable host in batch ``batch``: ``promoted`` (``checked`` in check mode) unless ``failed``;
    then ``unhealthy`` when the deploy role says the new version is installed but failed its health check
    (``deploy_result.healthy`` false), else ``failed`` (the deploy itself failed), with ``error`` as the message."""
    if not failed:
        state, error = ('checked' if check_mode else 'promoted'), ''
    else:
        state = 'unhealthy' if (deploy_result or {}).get('healthy') is False else 'failed'
    return {'host': host, 'batch': int(batch), 'version': str(version), 'state': state, 'message': error}


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
    result = {'service': service, 'outcome': 'paused', 'version': version, 'previous_version': previous_version,
              'hosts': results, 'canary_percent': None, 'backend': None, 'retired': 'none', 'check_mode': check_mode,
              'message': message}
    return {'stopped': True, 'message': message, 'done': done, 'pending': pending, 'result': result}


def retirement(provisioned, retire_tasks_file):
    """How the canary and baseline hosts are retired: ``provision`` (they were created by the provision role),
    ``tasks`` (the user's task file) or ``none``."""
    return 'provision' if provisioned else ('tasks' if retire_tasks_file else 'none')


def promotion_outcome(service, version, results, canary_percent, backend, previous_version=None, reason='',
                      retired='none', check_mode=False):
    """How a promotion that passed every batch ends, once the canary is out of rotation.

    ``results`` are the per-host results, ``canary_percent`` and ``backend`` what the traffic backend reports now,
    ``reason`` the caller's reason (empty: one is worded from the hosts), ``retired`` as :func:`retirement` says.
    Returns ``reason`` (recorded with the promoted status) and ``result`` (the role's ``promote_result``, whose
    ``message`` is the one-line event).
    """
    if not reason:
        promoted = [result for result in results if result.get('state') in DONE_STATES]
        who = ('%d stable host%s' % (len(promoted), ' runs' if len(promoted) == 1 else 's run')) if promoted \
            else 'the stable pool runs'
        reason = '%s %s, canary at %s %% via %s' % (who, version, canary_percent, backend)
    message = '%s %s: promoted%s, %s%s%s' % (
        service, version, (' (previous version %s)' % previous_version) if previous_version else '', reason,
        ', canary and baseline hosts retired' if retired != 'none' else '', ' (check mode)' if check_mode else '')
    result = {'service': service, 'outcome': 'promoted', 'version': version, 'previous_version': previous_version,
              'hosts': results, 'canary_percent': canary_percent, 'backend': backend, 'retired': retired,
              'check_mode': check_mode, 'message': message}
    return {'reason': reason, 'result': result}
