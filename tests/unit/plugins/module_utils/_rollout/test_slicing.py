"""A promotion in phases for AWX job slicing (plugins/module_utils/_rollout/slicing.py)."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._rollout import slicing

LOCK = {'run_id': 'r1', 'holder_state': 'stale', 'holder_reason': 'pid 7 on awx-1 is no longer running'}
STABLE = ['s1', 's2', 's3', 's4']


def read(status='paused', version='2', hosts=None, lock='the run r1', item='lb', exists=True):
    lock = dict(LOCK) if lock == 'the run r1' else lock
    record = {'version': version, 'status': status, 'finished_at': None, 'updated_at': '2026-12-06T22:00:00Z',
              'hosts': hosts or {}}
    return {'item': item, 'exists': exists, 'record': record if exists else None, 'lock': lock if exists else None}


def entry(state, version='2'):
    return {'state': state, 'version': version if state in ('promoted', 'unhealthy') else None, 'batch': 1}


# --- which jobs may be slices ----------------------------------------------------------------------------------------

SLICE = {'awx_job_template_name': 'canary release', 'awx_workflow_job_name': 'canary release',
         'awx_job_launch_type': 'workflow'}


def test_a_slice_of_a_sliced_job_template_is_refused_by_the_playbooks_that_must_run_once():
    message = slicing.slice_refusal('canary_release.yml', SLICE)
    assert message.startswith('canary_release.yml must run once, but AWX runs this job as one slice of the sliced job '
                              'template "canary release"')
    assert 'set the job template\'s job slice count to 1' in message and message.endswith('Nothing was changed')
    tower = dict(('tower' + key[3:], value) for key, value in SLICE.items())
    assert slicing.slice_refusal('promote.yml', tower).startswith('promote.yml must run once')


@pytest.mark.parametrize('variables', [
    {},                                                                     # not in AWX
    {'awx_job_template_name': 'canary release', 'awx_job_launch_type': 'manual'},   # launched by hand
    dict(SLICE, awx_workflow_job_name='canary release workflow'),           # a node of a workflow of its own name
    dict(SLICE, awx_job_launch_type='relaunch'),                            # not launched by a workflow job
])
def test_jobs_that_are_not_slices_run(variables):
    assert slicing.slice_refusal('canary_release.yml', variables) == ''


# --- the phases of promote.yml -----------------------------------------------------------------------------------------

def test_the_phase_is_checked_and_the_finish_continues_the_begin_phases_run():
    assert slicing.promote_phase('all', 'web') == {'phase': 'all', 'run_id': '', 'error': ''}
    assert slicing.promote_phase('begin', 'web', 'r9') == {'phase': 'begin', 'run_id': '', 'error': ''}
    assert slicing.promote_phase('finish', 'web', 'r9')['run_id'] == 'r9'
    exported = {'service': 'web', 'outcome': 'promoting', 'run_id': 'r1'}
    assert slicing.promote_phase('finish', 'web', '', exported) == {'phase': 'finish', 'run_id': 'r1', 'error': ''}
    # another service's export, or a finished one, is not this promotion's run
    for artifacts in (dict(exported, service='api'), dict(exported, outcome='promoted'), 'r1', None):
        assert slicing.promote_phase('finish', 'web', '', artifacts) == {'phase': 'finish', 'run_id': '', 'error': ''}
    assert slicing.promote_phase('hosts', 'web')['error'] == \
        "promote_phase must be one of all, begin, finish, got 'hosts'; nothing was changed"


# --- a slice of promote_hosts.yml --------------------------------------------------------------------------------------

def test_a_slice_goes_on_under_the_run_that_holds_the_lock_without_taking_it():
    started = slicing.slice_start('web', '', 'r1', [read(), read(item='localhost', exists=False)])
    assert started['error'] == '' and not started['skip'] and started['version'] == '2'
    assert started['message'] == ('web 2: deploying this job\'s share of the stable hosts under run r1 (no lock taken, no '
                                  'traffic changed)')
    from_artifacts = slicing.slice_start('web', '2', '', [read()], {'service': 'web', 'outcome': 'promoting', 'run_id': 'r1'})
    assert from_artifacts['error'] == '' and from_artifacts['run_id'] == 'r1'


def test_a_slice_refuses_without_a_run_a_record_or_the_lock():
    assert slicing.slice_start('web', '2', '', [read()])['error'].startswith('promote_hosts: set promote_run_id')
    assert slicing.slice_start('web', '2', 'r1', [read(exists=False)])['error'] == (
        'promote_hosts: no rollout record of web on lb; start the promotion with promote.yml -e promote_phase=begin; '
        'nothing was changed')
    taken = slicing.slice_start('web', '2', 'r1', [read(lock=dict(LOCK, run_id='r2'))])['error']
    assert taken == ('promote_hosts: the promotion of web 2 (run r1) may not go on: this run (r1) no longer holds the '
                     'rollout lock on lb; nothing was changed')
    rolled_back = slicing.slice_start('web', '2', 'r1', [read(status='rolled_back', lock=None)])['error']
    assert 'the rollout on lb finished as rolled_back' in rolled_back
    assert 'is for version 2' in slicing.slice_start('web', '3', 'r1', [read()])['error']


def test_a_slice_of_a_promoted_rollout_has_nothing_to_do_unless_it_left_hosts_behind():
    done = slicing.slice_start('web', '2', '', [read(status='promoted', lock=None, hosts={'s1': entry('promoted')})])
    assert done['skip'] and done['error'] == ''
    behind = read(status='promoted', hosts={'s1': entry('promoted'), 's2': entry('unreachable')})
    again = slicing.slice_start('web', '2', 'r1', [behind])
    assert not again['skip'] and again['error'] == ''


# --- the finish phase ----------------------------------------------------------------------------------------------

def test_the_finish_needs_every_stable_host_recorded_and_names_the_missing_ones():
    hosts = {'s1': entry('promoted'), 's2': entry('promoted'), 's3': entry('deploying')}
    refused = slicing.finish_check('web', '2', 'r1', [read(hosts=hosts)], STABLE)
    assert refused['error'] == (
        'promote: the promotion of web 2 cannot finish: 1 of 4 stable hosts have no result in the rollout record: s4 '
        '(their slice of promote_hosts.yml did not run or did not get to them); the batch of s3 is still under way or '
        'was interrupted (version unknown). Run promote_hosts.yml again (it deploys only the hosts not done) and then '
        'the finish; nothing was changed')
    hosts.update(s3=entry('promoted'), s4=entry('promoted'))
    ok = slicing.finish_check('web', '2', 'r1', [read(hosts=hosts)], STABLE)
    assert ok == {'version': '2', 'already_promoted': False, 'left_behind': [], 'error': '',
                  'message': 'web 2: 4 of 4 stable hosts run it; finishing run r1'}


def test_failed_hosts_are_left_behind_within_the_tolerance_of_the_fleet_and_refuse_beyond_it():
    hosts = {'s1': entry('promoted'), 's2': entry('promoted'), 's3': entry('promoted'), 's4': entry('unreachable')}
    assert 'did not take 2, more than promote_max_fail_percentage 0 % of the fleet: s4' in \
        slicing.finish_check('web', '2', 'r1', [read(hosts=hosts)], STABLE)['error']
    within = slicing.finish_check('web', '2', 'r1', [read(hosts=hosts)], STABLE, max_fail_percentage=25)
    assert within['error'] == '' and within['left_behind'] == ['s4']
    assert within['message'] == ('web 2: 3 of 4 stable hosts run it (left behind within promote_max_fail_percentage 25 %: '
                                 's4); finishing run r1')
    assert slicing.finish_check('web', '2', 'r1', [read(hosts=hosts)], STABLE, max_fail_percentage=24)['error']
    assert slicing.finish_check('web', '2', 'r1', [read(hosts=hosts)], STABLE, 'lots')['error'].startswith(
        'promote: promote_max_fail_percentage must be a percentage')


def test_the_finish_refuses_a_run_that_lost_the_lock_and_does_nothing_after_it_finished():
    hosts = dict((host, entry('promoted')) for host in STABLE)
    lost = slicing.finish_check('web', '2', 'r1', [read(hosts=hosts, lock=dict(LOCK, run_id='r2'))], STABLE)
    assert lost['error'] == ('promote: the promotion of web 2 (run r1) cannot finish: this run (r1) no longer holds the '
                             'rollout lock on lb; nothing was changed')
    finished = slicing.finish_check('web', '2', 'r1', [read(status='promoted', hosts=hosts, lock=None)], STABLE)
    assert finished['already_promoted'] and finished['error'] == ''
    assert slicing.finish_check('web', '2', '', [read(status='promoted', hosts=hosts, lock=None)], STABLE)['already_promoted']
    assert slicing.finish_check('web', '2', '', [read(hosts=hosts)], STABLE)['error'].startswith(
        'promote: promote_phase=finish finishes the promotion a begin phase started: set promote_run_id')
    assert slicing.finish_check('web', '2', 'r1', [read(exists=False)], STABLE)['error'] == \
        'promote: no rollout record of web on lb; nothing was changed'


def test_a_slice_that_cannot_read_a_state_host_refuses_and_says_why():
    lost = {'item': 'lb', 'unreachable': True, 'msg': 'ssh: Could not resolve hostname lb'}
    error = slicing.slice_start('web', '2', 'r1', [read(item='localhost'), lost])['error']
    assert error.startswith('promote_hosts: the rollout record could not be read on lb (ssh: Could not resolve hostname '
                            'lb). In a sliced job template a state host that is a host of the inventory lands in one '
                            'slice only')
    assert error.endswith('nothing was changed')
