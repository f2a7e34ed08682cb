# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What a job passes down an AWX workflow: the ``set_stats`` data of every playbook, decided here once.

AWX keeps the ``set_stats`` data of a job (``per_host: false``) as the job's artifacts and gives it to the next nodes
of the workflow as extra variables. Every playbook of the collection exports one key, :data:`STATS_KEY`, whose
``outcome`` a workflow branches on. A job in check mode changed nothing, so what it would have done must not be
taken for what happened: it exports :data:`CHECK_STATS_KEY` instead, and a ``canary_release`` exported by an
earlier job of the workflow stays as it was.
"""

from ansible_collections.canary.release.plugins.module_utils._rollout.record import parse_time
from ansible_collections.canary.release.plugins.module_utils._rollout.status import outcome, summary

STATS_KEY = 'canary_release'
CHECK_STATS_KEY = 'canary_release_check'

# what status.yml exports of each step of the record (the events stay in the record: status.yml prints them)
STEP_KEYS = ('index', 'weight', 'verdict', 'reason', 'started_at')


def workflow_stats(data, check_mode=False):
    """The ``data`` of the ``set_stats`` task: ``{'canary_release': data}``, or in check mode
    ``{'canary_release_check': data}`` - never both, so a check-mode job leaves a workflow's ``canary_release`` alone.
    ``data['check_mode']`` is set to ``check_mode``."""
    if not isinstance(data, dict):
        raise ValueError('the data to export for an AWX workflow must be a dict, not %s' % type(data).__name__)
    check_mode = bool(check_mode)
    return {CHECK_STATS_KEY if check_mode else STATS_KEY: dict(data, check_mode=check_mode)}


def _newest(found):
    """The (host, record) whose ``updated_at`` is the latest; the first of equal (or unreadable) times."""
    best = found[0]
    for entry in found[1:]:
        time, best_time = parse_time(entry[1].get('updated_at')), parse_time(best[1].get('updated_at'))
        if time is not None and (best_time is None or time > best_time):
            best = entry
    return best


def status_stats(read_results, service):
    """What ``playbooks/status.yml`` exports: the newest of the records read on the state hosts.

    ``read_results`` are the loop results of ``rollout_state`` ``operation: read`` (``item`` the host, ``exists``,
    ``record``, ``lock``). The keys are those a canary release exports (``service``, ``version``,
    ``previous_version``, ``outcome``, ``status``, ``step``, ``weight``, ``run_id``, ``message``), so a later node
    reads a status job's export as it reads a release's, plus ``reason``, ``started_at``, ``updated_at``,
    ``finished_at``, ``steps`` (each step's ``index``, ``weight``, ``verdict``, ``reason`` and ``started_at``),
    ``locked`` (a run holds the lock where the newest record is) and ``hosts`` (per state host: ``host``, ``status``,
    ``version`` and ``updated_at``, None where there is no record). With no record anywhere ``outcome`` and
    ``status`` are None.
    """
    if not isinstance(read_results, list) or not all(isinstance(result, dict) for result in read_results):
        raise ValueError('status_stats takes the results of a rollout_state read loop (a list of dicts)')
    hosts, found = [], []
    for result in read_results:
        record = result.get('record') if result.get('exists') else None
        host = result.get('item')
        record = record if isinstance(record, dict) else None
        hosts.append({'host': host, 'status': (record or {}).get('status'), 'version': (record or {}).get('version'),
                      'updated_at': (record or {}).get('updated_at')})
        if record is not None:
            found.append((host, record, result.get('lock')))
    if not found:
        where = ', '.join(str(entry['host']) for entry in hosts) or 'no host'
        return {'service': service, 'version': None, 'previous_version': None, 'outcome': None, 'status': None,
                'step': None, 'weight': None, 'run_id': None, 'reason': None, 'started_at': None, 'updated_at': None,
                'finished_at': None, 'steps': [], 'locked': False, 'hosts': hosts,
                'message': '%s: no rollout recorded on %s' % (service, where)}
    host, record, lock = _newest(found)
    message = summary(record, service, str(record.get('version')))
    differing = sorted(set((entry['status'], entry['version']) for entry in hosts if entry['status'] is not None))
    if len(differing) > 1:
        message += ' (the copies differ: %s; this is the newest, on %s)' % (
            ', '.join('%s %s on %s' % (entry['version'], entry['status'], entry['host'])
                      for entry in hosts if entry['status'] is not None), host)
    return {
        'service': service,
        'version': record.get('version'),
        'previous_version': record.get('previous_version'),
        'outcome': outcome(record),
        'status': record.get('status'),
        'step': record.get('step'),
        'weight': record.get('weight'),
        'run_id': record.get('run_id'),
        'reason': record.get('reason'),
        'started_at': record.get('started_at'),
        'updated_at': record.get('updated_at'),
        'finished_at': record.get('finished_at'),
        'steps': [dict((key, entry.get(key)) for key in STEP_KEYS) for entry in record.get('steps') or []
                  if isinstance(entry, dict)],
        'locked': bool(lock),
        'hosts': hosts,
        'message': message,
    }
