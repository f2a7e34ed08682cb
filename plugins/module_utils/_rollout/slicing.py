# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A promotion split in phases, for AWX job slicing: which jobs may run as slices, and when a sliced promotion
may go on and finish.

AWX job slicing (a job template's ``job_slice_count`` above 1) runs one playbook as several concurrent jobs, each
with an even share of the inventory's hosts. Only the stable hosts' deploy batches may be split so: the release walk
(``canary_release.yml``), the begin and finish of a promotion (``promote.yml``: the lock, the traffic, the record's
end) and a rollback must run once. A promotion in AWX with slicing is therefore three jobs:

1. ``promote.yml -e promote_phase=begin`` (once): checks, takes the rollout lock for a run, exports its run id;
2. ``promote_hosts.yml`` (sliced): each slice deploys its share of the stable hosts batch by batch under that run
   id - :func:`slice_start` says whether it may (no lock taken, no traffic changed); every batch records its hosts
   in the record's per-host map;
3. ``promote.yml -e promote_phase=finish`` (once): :func:`finish_check` refuses unless every stable host of the
   full inventory is recorded, and at most ``promote_max_fail_percentage`` of the fleet failed; then traffic back to
   the stable pool, the record promoted (the lock released), the canary retired.

AWX passes no slice number or count to the playbook (they are fields of the job, used to write its inventory), so a
slice is recognized by how AWX launches it: :func:`slice_refusal`.
"""

from ansible_collections.canary.release.plugins.module_utils._rollout.promotion import (
    UNREACHABLE, batch_conflict, host_names, left_behind, newest_record, promotion_settings, recorded_hosts)
from ansible_collections.canary.release.plugins.module_utils._rollout.vocabulary import PROMOTED

PHASES = ('all', 'begin', 'finish')
FAILED_STATES = ('unhealthy', 'failed', UNREACHABLE)
# the AWX variables that tell a slice job (both prefixes: AWX sets awx_* and tower_*)
AWX_PREFIXES = ('awx', 'tower')


def slice_refusal(playbook, variables):
    """Why ``playbook`` must not run in this job: an empty string unless AWX runs it as one slice of a sliced job
    template.

    ``variables`` are the job's AWX variables (``awx_job_launch_type``, ``awx_job_template_name``,
    ``awx_workflow_job_name``, or their ``tower_`` twins). AWX runs a sliced job template as a workflow job that
    bears the template's name (``JobTemplate.create_unified_job`` copies the name), whose nodes launch the slices
    (launch type ``workflow``); it gives the slice no variable with its number or count. So a job launched by a
    workflow job named like its own job template is taken for a slice. A workflow of yours that bears the name of
    one of its job templates looks the same: rename it.
    """
    variables = variables or {}
    for prefix in AWX_PREFIXES:
        template = variables.get('%s_job_template_name' % prefix)
        workflow = variables.get('%s_workflow_job_name' % prefix)
        launch = variables.get('%s_job_launch_type' % prefix)
        if template and workflow and str(template) == str(workflow) and launch in (None, '', 'workflow'):
            return ('%s must run once, but AWX runs this job as one slice of the sliced job template "%s" (the '
                    'workflow job that launched it bears the template\'s name); set the job template\'s job slice '
                    'count to 1 - only promote_hosts.yml may be sliced (docs/awx.md). If this is a workflow of '
                    'yours that bears the name of its job template, rename the workflow. Nothing was changed'
                    % (playbook, template))
    return ''


def promote_phase(phase, service, run_id='', artifacts=None):
    """Which part of ``promote.yml`` runs (``phase``: ``all``, ``begin`` or ``finish``) and under which run.

    The finish phase continues the run the begin phase started: ``run_id`` (``promote_run_id``), else the run id the
    begin phase (or a slice of ``promote_hosts.yml``) exported in the workflow's ``canary_release`` artifacts, when
    they are this service's (:func:`finish_check` refuses a finish without one). Returns ``phase``, ``run_id`` and
    ``error`` (empty when the phase is valid).
    """
    phase = str(phase or '').strip()
    if phase not in PHASES:
        return {'phase': phase, 'run_id': '', 'error': 'promote_phase must be one of %s, got %r; nothing was changed'
                % (', '.join(PHASES), phase)}
    run_id = str(run_id or '').strip() or exported_run_id(service, artifacts)
    return {'phase': phase, 'run_id': run_id if phase == 'finish' else '', 'error': ''}


def exported_run_id(service, artifacts):
    """The run id in a workflow's ``canary_release`` artifacts, when they are ``service``'s; else ''."""
    if isinstance(artifacts, dict) and artifacts.get('service') == service and artifacts.get('outcome') == 'promoting':
        return str(artifacts.get('run_id') or '')
    return ''


def _conflicts(version, run_id, read_results):
    reasons = [batch_conflict(version, run_id, result.get('item'), result) for result in read_results or []]
    return '; '.join(reason for reason in reasons if reason)


def _hosts_of(read_results):
    return ', '.join(str(result.get('item')) for result in read_results or [])


def slice_start(service, version, run_id, read_results, artifacts=None):
    """Whether a slice of ``promote_hosts.yml`` may deploy its share of the stable hosts.

    ``read_results`` are the ``read`` results of the record on the state hosts; ``run_id`` the promotion's run
    (``promote_run_id``, else from ``artifacts``, the workflow's ``canary_release``). A slice takes no lock: it works
    under the run the begin phase started, so the record must be of ``version`` (default: the newest record's),
    unfinished, and its lock held by that run - the same check as before every batch (:func:`.promotion.batch_conflict`).
    A rollout already promoted with no host left behind leaves nothing to do (``skip``). A state host that could not
    be read (``unreachable``: in a slice, a state host of the inventory may be another slice's) refuses the slice.
    Returns ``version``,
    ``run_id``, ``skip``, ``message`` and ``error`` (empty when the slice may start).
    """
    run_id = str(run_id or '').strip() or exported_run_id(service, artifacts)
    newest = newest_record(read_results) or {}
    version = str(version) if version not in (None, '') else str(newest.get('version') or '')
    found = {'version': version, 'run_id': run_id, 'skip': False, 'message': '', 'error': ''}
    unread = [result for result in read_results or []
              if result.get('unreachable') or result.get('failed') or 'exists' not in result]
    if unread:
        found['error'] = ('promote_hosts: the rollout record could not be read on %s. In a sliced job template a state '
                          'host that is a host of the inventory lands in one slice only, and the other slices connect '
                          'to its bare name: make the state hosts reachable by name from every job (rollout_state_hosts '
                          'as addresses, credentials of the job), or give the sliced template an inventory without '
                          'them (docs/awx.md); nothing was changed'
                          % '; '.join('%s (%s)' % (result.get('item'), result.get('msg') or 'failed') for result in unread))
    elif not newest:
        found['error'] = ('promote_hosts: no rollout record of %s on %s; start the promotion with promote.yml -e '
                          'promote_phase=begin; nothing was changed' % (service, _hosts_of(read_results)))
    elif newest.get('version') == version and newest.get('status') == PROMOTED and not left_behind(newest):
        found.update(skip=True, message='%s %s: promoted on %s, every stable host recorded runs it; nothing to do'
                     % (service, version, newest.get('finished_at')))
    elif not run_id:
        found['error'] = ('promote_hosts: set promote_run_id to the run id of the promotion (promote.yml -e '
                          'promote_phase=begin reports it; an AWX workflow passes it on as canary_release.run_id); '
                          'nothing was changed')
    else:
        conflict = _conflicts(version, run_id, read_results)
        if conflict:
            found['error'] = ('promote_hosts: the promotion of %s %s (run %s) may not go on: %s; nothing was changed'
                              % (service, version, run_id, conflict))
        else:
            found['message'] = ('%s %s: deploying this job\'s share of the stable hosts under run %s (no lock taken, '
                                'no traffic changed)' % (service, version, run_id))
    return found


def finish_check(service, version, run_id, read_results, stable_hosts, max_fail_percentage=0):
    """Whether the finish phase of a promotion may return the traffic and record it promoted.

    ``stable_hosts`` are the stable hosts of the full inventory (the finish job is not sliced). Every one must have
    a result in the record's per-host map: a host without one (its slice did not run, or did not get to it) or with
    a batch still ``deploying`` (its slice died during the batch, or still runs) refuses the finish. Hosts that
    failed, were unhealthy or unreachable are left behind when they are at most ``max_fail_percentage`` percent of
    the stable hosts (``promote_max_fail_percentage``, here of the whole fleet), else they refuse it. The record must
    be of ``version``, unfinished and locked by ``run_id``. Returns ``version``, ``already_promoted`` (the run
    finished already: nothing to do), ``left_behind``, ``message`` and ``error`` (empty when it may finish).
    """
    stable_hosts = [str(host) for host in stable_hosts or []]
    newest = newest_record(read_results) or {}
    version = str(version) if version not in (None, '') else str(newest.get('version') or '')
    found = {'version': version, 'already_promoted': False, 'left_behind': [], 'message': '', 'error': ''}
    settings = promotion_settings(1, max_fail_percentage)
    if settings['error']:
        found['error'] = 'promote: %s; nothing was changed' % settings['error']
        return found
    if not newest:
        found['error'] = 'promote: no rollout record of %s on %s; nothing was changed' % (service, _hosts_of(read_results))
        return found
    if newest.get('version') == version and newest.get('status') == PROMOTED and not left_behind(newest):
        found.update(already_promoted=True, message='%s %s: promoted already (on %s); nothing to do'
                     % (service, version, newest.get('finished_at')))
        return found
    if not run_id:
        found['error'] = ('promote: promote_phase=finish finishes the promotion a begin phase started: set '
                          'promote_run_id to the run id it reported (an AWX workflow passes it on as '
                          'canary_release.run_id); nothing was changed')
        return found
    conflict = _conflicts(version, run_id, read_results)
    if conflict:
        found['error'] = ('promote: the promotion of %s %s (run %s) cannot finish: %s; nothing was changed'
                          % (service, version, run_id, conflict))
        return found
    table = recorded_hosts(read_results, version)
    unrecorded = [host for host in stable_hosts if host not in table]
    underway = [host for host in stable_hosts if (table.get(host) or {}).get('state') == 'deploying']
    failed = [host for host in stable_hosts if (table.get(host) or {}).get('state') in FAILED_STATES]
    problems = []
    if unrecorded:
        problems.append('%d of %d stable hosts have no result in the rollout record: %s (their slice of '
                        'promote_hosts.yml did not run or did not get to them)'
                        % (len(unrecorded), len(stable_hosts), host_names(unrecorded)))
    if underway:
        problems.append('the batch of %s is still under way or was interrupted (version unknown)' % host_names(underway))
    tolerance = settings['max_fail_percentage']
    if failed and len(failed) * 100.0 > tolerance * len(stable_hosts):
        problems.append('%d of %d stable hosts did not take %s, more than promote_max_fail_percentage %s %% of the '
                        'fleet: %s' % (len(failed), len(stable_hosts), version, tolerance, host_names(failed)))
    if problems:
        found['error'] = ('promote: the promotion of %s %s cannot finish: %s. Run promote_hosts.yml again (it deploys '
                          'only the hosts not done) and then the finish; nothing was changed'
                          % (service, version, '; '.join(problems)))
        return found
    found['left_behind'] = failed
    found['message'] = '%s %s: %d of %d stable hosts run it%s; finishing run %s' % (
        service, version, len(stable_hosts) - len(failed), len(stable_hosts),
        (' (left behind within promote_max_fail_percentage %s %%: %s)' % (tolerance, host_names(failed))) if failed else '',
        run_id)
    return found
