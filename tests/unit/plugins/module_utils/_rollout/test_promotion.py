"""The promotion's decisions (plugins/module_utils/_rollout/promotion.py)."""

from ansible_collections.canary.release.plugins.module_utils._rollout import promotion

RECORD = {'version': '2', 'status': 'paused', 'finished_at': None}


def read(record='the paused record', lock=None):
    record = RECORD if record == 'the paused record' else record
    return {'exists': record is not None, 'record': record, 'lock': lock}


def test_a_batch_starts_only_while_the_rollout_is_this_runs_and_unfinished():
    assert promotion.batch_conflict('2', '', 'lb', read()) is None
    assert promotion.batch_conflict('2', '', 'lb', read(None)) is None
    assert promotion.batch_conflict('3', '', 'lb', read()) == 'the rollout record on lb is for version 2'
    finished = dict(RECORD, status='rolled_back', finished_at='2026-01-01T00:00:00Z')
    assert promotion.batch_conflict('2', '', 'lb', read(finished)) == \
        'the rollout on lb finished as rolled_back on 2026-01-01T00:00:00Z'
    mine = {'run_id': 'r1', 'holder_state': 'live', 'holder_reason': 'pid 1 on lb is running'}
    assert promotion.batch_conflict('2', 'r1', 'lb', read(lock=mine)) is None
    assert promotion.batch_conflict('2', 'r2', 'lb', read(lock=mine)) == 'this run (r2) no longer holds the rollout lock on lb'
    assert promotion.batch_conflict('2', 'r2', 'lb', read(lock=mine), check_mode=True) is None
    assert promotion.batch_conflict('2', '', 'lb', read(lock=mine)) == \
        'run r1 holds the rollout lock on lb (pid 1 on lb is running)'
    assert promotion.batch_conflict('2', '', 'lb', read(lock=dict(mine, holder_state='stale'))) is None


def test_a_good_batch_is_recorded_and_the_promotion_goes_on():
    results = [{'host': 'a', 'batch': 1, 'state': 'promoted'}, {'host': 'b', 'batch': 1, 'state': 'promoted'},
               {'host': 'c', 'batch': 2, 'state': 'promoted'}]
    outcome = promotion.conclude_batch('web', '2', 2, results, ['a', 'b', 'c', 'd'])
    message = 'web 2: promote batch 2: c runs it and passed the health check (3 of 4 stable hosts done)'
    assert outcome == {'stopped': False, 'done': ['a', 'b', 'c'], 'pending': ['d'], 'message': message, 'event': message,
                       'tolerated': [], 'hosts': [{'host': 'c', 'state': 'promoted', 'version': None, 'batch': 2, 'message': ''}]}
    checked = promotion.conclude_batch('web', '2', 1, [{'host': 'a', 'batch': 1, 'state': 'checked'}], ['a'], check_mode=True)
    assert checked['message'] == 'web 2: promote batch 1: a would get the new version (check mode) (1 of 1 stable hosts done)'


def test_a_failed_batch_stops_the_promotion_and_says_which_host_runs_what():
    results = [{'host': 's1', 'batch': 1, 'state': 'promoted'},
               {'host': 's2', 'batch': 2, 'state': 'unhealthy', 'message': 'deploy: health check failed'}]
    outcome = promotion.conclude_batch('web', '2', 2, results, ['s1', 's2', 's3'], previous_version='1')
    assert outcome['stopped'] and outcome['pending'] == ['s3']
    assert outcome['message'] == (
        'promotion of web 2 stopped at batch 2: deploy: health check failed. Now s1 runs 2, s2 runs 2 but is '
        'unhealthy, s3 still runs 1, and the traffic split is unchanged (the canary keeps its share); the rollout is '
        'paused - fix the host and run the promotion again, or roll back')
    two = promotion.conclude_batch('web', '2', 1, [{'host': 'x', 'batch': 1, 'state': 'failed', 'message': 'm1'},
                                                   {'host': 'y', 'batch': 1, 'state': 'failed', 'message': 'm2'}],
                                   ['x', 'y', 'z', 'w'])
    assert two['message'] == (
        'promotion of web 2 stopped at batch 1: m1; m2. Now x failed to deploy (version unknown), y failed to deploy '
        '(version unknown), z, w still run the previous version, and the traffic split is unchanged (the canary keeps '
        'its share); the rollout is paused - fix the hosts and run the promotion again, or roll back')
    assert two['result']['outcome'] == 'paused' and two['result']['message'] == two['message']
    assert two['result']['hosts'][0]['host'] == 'x' and two['result']['retired'] == 'none'


def copy(updated_at, item='localhost', **record):
    return {'exists': True, 'record': dict(RECORD, updated_at=updated_at, **record), 'item': item}


def test_a_promotion_by_hand_takes_the_newest_records_version_and_refuses_a_rolled_back_one():
    copies = [copy('2026-01-01T00:00:01Z', version='2', previous_version='1'),
              copy('2026-01-01T00:00:02Z', 'lb', version='3', previous_version='2'),
              {'exists': False, 'record': None, 'item': 'db'}]
    assert promotion.promotion_target('web', '', copies) == {'service': 'web', 'version': '3', 'previous_version': '2',
                                                             'state_hosts': ['localhost', 'lb', 'db'], 'error': '',
                                                             'left_behind': []}
    assert promotion.promotion_target('web', 2, copies)['version'] == '2'
    assert promotion.promotion_target('web', 2, copies)['previous_version'] is None
    nothing = [{'exists': False, 'record': None, 'item': host} for host in ('localhost', 'lb')]
    assert promotion.promotion_target('web', '', nothing)['error'] == (
        'promote: no rollout record of web on localhost, lb; set the version to promote (promote_version, or '
        'rollout_version with playbooks/promote.yml)')
    rolled = [copy('T1', status='rolled_back', finished_at='T1', reason='errors')]
    assert promotion.promotion_target('web', '2', rolled)['error'] == (
        'promote: the rollout of web 2 finished as rolled_back on T1 (errors); promoting it anyway needs '
        'promote_force=true')
    assert promotion.promotion_target('web', '2', rolled, force=True)['error'] == ''


def test_the_end_of_a_promotion_is_worded_from_the_hosts_and_the_traffic():
    hosts = [{'host': 'a', 'state': 'promoted'}, {'host': 'b', 'state': 'promoted'}]
    end = promotion.promotion_outcome('web', '2', hosts, 0.0, 'nginx', previous_version='1', retired='tasks')
    assert end['reason'] == '2 stable hosts run 2, canary at 0.0 % via nginx'
    assert end['result']['message'] == \
        'web 2: promoted (previous version 1), 2 stable hosts run 2, canary at 0.0 % via nginx, canary and baseline hosts retired'
    assert (end['result']['outcome'], end['result']['retired'], end['result']['hosts']) == ('promoted', 'tasks', hosts)
    one = promotion.promotion_outcome('web', '2', hosts[:1], 0, 'alb', check_mode=True)
    assert one['result']['message'] == 'web 2: promoted, 1 stable host runs 2, canary at 0 % via alb (check mode)'
    assert promotion.promotion_outcome('web', '2', [], 0.0, 'alb')['reason'] == 'the stable pool runs 2, canary at 0.0 % via alb'
    assert promotion.promotion_outcome('web', '2', hosts, 0.0, 'alb', reason='by hand')['result']['message'] == \
        'web 2: promoted, by hand'
    assert [promotion.retirement(True, 'x'), promotion.retirement(False, 'x'), promotion.retirement(False, '')] == \
        ['provision', 'tasks', 'none']


def test_a_host_is_promoted_unless_its_deploy_failed_and_unhealthy_when_its_health_check_did():
    assert promotion.host_result('s1', '2', 3) == {'host': 's1', 'batch': 2, 'version': '3', 'state': 'promoted',
                                                   'message': ''}
    assert promotion.host_result('s1', 1, '3', check_mode=True)['state'] == 'checked'
    unhealthy = promotion.host_result('s1', 1, '3', failed=True, error='deploy: health', deploy_result={'healthy': False})
    assert (unhealthy['state'], unhealthy['message']) == ('unhealthy', 'deploy: health')
    assert promotion.host_result('s1', 1, '3', failed=True, error='copy failed')['state'] == 'failed'
    assert promotion.host_result('s1', 1, '3', failed=True, deploy_result={'healthy': None})['state'] == 'failed'


# --- promotion at scale: batches, tolerance, the per-host record, resuming --------------------------------------

def test_the_batches_and_the_tolerance_are_checked_as_ansible_takes_them():
    assert promotion.promotion_settings(1, 0) == {'serial': 1, 'max_fail_percentage': 0, 'error': ''}
    assert promotion.promotion_settings('25%', '10') == {'serial': '25%', 'max_fail_percentage': 10, 'error': ''}
    assert promotion.promotion_settings([1, '5', '50%'], 12.5)['serial'] == [1, 5, '50%']
    assert promotion.promotion_settings([1, '50%'], 12.5)['max_fail_percentage'] == 12.5
    for serial in (0, -1, '0%', '150%', 'x%', 'abc', True, [], [1, 0], None):
        assert promotion.promotion_settings(serial, 0)['error'].startswith('promote_serial must be a number of hosts'), serial
    for tolerance in (-1, 101, 'many', True, None):
        error = promotion.promotion_settings(1, tolerance)['error']
        assert error.startswith('promote_max_fail_percentage must be a percentage from 0 to 100'), tolerance


def promoted_record(hosts, version='2', status='running'):
    return {'exists': True, 'item': 'localhost',
            'record': dict(RECORD, version=version, status=status, updated_at='2026-01-01T00:00:00Z', hosts=hosts)}


def test_a_batch_skips_the_hosts_an_earlier_run_promoted_and_records_the_others_before_it_starts():
    records = [promoted_record({'s1': {'state': 'promoted', 'version': '2'}, 's2': {'state': 'unreachable', 'version': None},
                                's3': {'state': 'promoted', 'version': '1'}})]
    start = promotion.batch_start('web', '2', 2, ['s1', 's2', 's3'], records)
    assert start['done'] == ['s1'] and start['todo'] == ['s2', 's3'] and start['error'] == ''
    assert start['hosts'] == [{'host': 's2', 'state': 'deploying', 'version': None, 'batch': 2, 'message': ''},
                              {'host': 's3', 'state': 'deploying', 'version': None, 'batch': 2, 'message': ''}]
    assert start['message'] == 'web 2: promote batch 2: deploying s2, s3; s1 already runs it'
    # the map of another version's record says nothing about this one
    assert promotion.batch_start('web', '3', 1, ['s1'], records)['todo'] == ['s1']
    assert promotion.batch_start('web', '2', 1, ['s1'], [])['todo'] == ['s1']
    assert promotion.batch_start('web', '2', 1, ['s1'], [], max_fail_percentage='x')['error'].startswith(
        'promote_max_fail_percentage must be')


def test_a_host_lost_during_its_batch_is_unreachable_and_counts_against_the_tolerance():
    results = [{'host': 'a', 'batch': 1, 'state': 'promoted', 'version': '2'}]
    stopped = promotion.conclude_batch('web', '2', 1, results, ['a', 'b', 'c'], previous_version='1', batch_hosts=['a', 'b'])
    assert stopped['stopped'] and stopped['pending'] == ['c']
    assert stopped['event'] == 'web 2: promote batch 1: b is unreachable (version unknown)'
    assert 'Now a runs 2, b is unreachable (version unknown), c still runs 1' in stopped['message']
    assert stopped['hosts'] == [{'host': 'a', 'state': 'promoted', 'version': '2', 'batch': 1, 'message': ''},
                                {'host': 'b', 'state': 'unreachable', 'version': None, 'batch': 1,
                                 'message': 'unreachable: lost during the batch'}]
    # one host of two is 50 %: within a tolerance of 50, not of 49
    goes_on = promotion.conclude_batch('web', '2', 1, results, ['a', 'b', 'c'], batch_hosts=['a', 'b'], max_fail_percentage=50)
    assert not goes_on['stopped'] and goes_on['tolerated'] == ['b'] and goes_on['done'] == ['a'] and goes_on['pending'] == ['c']
    assert goes_on['message'] == ('web 2: promote batch 1: a runs it and passed the health check; b is unreachable (version '
                                  'unknown) (1 of 2 hosts of the batch, within promote_max_fail_percentage 50 %: the '
                                  'promotion goes on) (1 of 3 stable hosts done)')
    assert promotion.conclude_batch('web', '2', 1, results, ['a', 'b'], batch_hosts=['a', 'b'], max_fail_percentage=49)['stopped']


def test_the_hosts_an_earlier_run_promoted_count_as_done():
    results = [{'host': 'c', 'batch': 1, 'state': 'promoted', 'version': '2'}]
    outcome = promotion.conclude_batch('web', '2', 1, results, ['a', 'b', 'c', 'd'], batch_hosts=['c'], recorded_done=['a', 'b'])
    assert outcome['done'] == ['a', 'b', 'c'] and outcome['pending'] == ['d']
    assert outcome['message'].endswith('(3 of 4 stable hosts done)')


def test_a_promotion_that_left_hosts_behind_says_so_and_may_be_run_again_for_them():
    recorded = {'s1': {'state': 'promoted', 'version': '2', 'batch': 1}, 's2': {'state': 'unreachable', 'version': None, 'batch': 1}}
    ended = promotion.promotion_outcome('web', '2', [{'host': 's3', 'batch': 1, 'state': 'promoted', 'version': '2'}], 0.0,
                                        'nginx', previous_version='1', recorded=recorded)
    assert ended['reason'] == ('2 stable hosts run 2, canary at 0.0 % via nginx; left behind: s2 is unreachable (version '
                               'unknown) - run the promotion again to finish it')
    assert [host['host'] for host in ended['result']['hosts']] == ['s1', 's2', 's3']
    record = dict(RECORD, status='promoted', hosts=dict(recorded, s3={'state': 'promoted', 'version': '2'}))
    assert promotion.left_behind(record) == ['s2']
    target = promotion.promotion_target('web', '2', [{'exists': True, 'item': 'localhost', 'record': dict(record, updated_at='x')}])
    assert target['left_behind'] == ['s2'] and target['error'] == ''
    # a promoted rollout takes batches only while it left hosts behind
    assert promotion.batch_conflict('2', '', 'lb', read(record)) is None
    # with no lock of its own (the rollout finished), but not while another run holds one
    assert promotion.batch_conflict('2', 'r1', 'lb', read(record)) is None
    live = {'run_id': 'r9', 'holder_state': 'live', 'holder_reason': 'pid 9 on lb is running'}
    assert promotion.batch_conflict('2', 'r1', 'lb', read(record, lock=live)) == 'run r9 holds the rollout lock on lb (pid 9 on lb is running)'
    assert promotion.batch_conflict('2', '', 'lb', read(dict(record, hosts={}))).startswith('the rollout on lb finished as promoted')


def test_the_status_line_says_which_host_runs_which_version():
    record = {'version': '2', 'previous_version': '1', 'hosts': {
        's1': {'state': 'promoted'}, 's2': {'state': 'promoted'}, 's3': {'state': 'unreachable'}, 's4': {'state': 'unhealthy'},
        's5': {'state': 'deploying'}, 's6': {'state': 'failed'}}}
    assert promotion.describe_hosts(record) == (
        'stable hosts: s1, s2 run 2; s4 runs 2 but unhealthy; s5 had a batch under way (version unknown); s6 failed to '
        'deploy (version unknown); s3 unreachable (version unknown); any other runs 1')
    assert promotion.describe_hosts({'version': '2'}) is None
    many = {'hosts': dict(('h%02d' % number, {'state': 'promoted'}) for number in range(20)), 'version': '2'}
    assert promotion.describe_hosts(many) == ('stable hosts: h00, h01, h02, h03, h04, h05, h06 and 13 more run 2; any other runs '
                                              'the previous version')


def test_a_slice_counts_only_its_own_hosts_among_those_an_earlier_run_or_another_slice_promoted():
    results = [{'host': 'c', 'batch': 1, 'state': 'promoted', 'version': '2'}]
    outcome = promotion.conclude_batch('web', '2', 1, results, ['c', 'f'], batch_hosts=['c'],
                                       recorded_done=['a', 'b', 'd', 'e'])
    assert outcome['done'] == ['c'] and outcome['pending'] == ['f']
    assert outcome['message'].endswith('(1 of 2 stable hosts done)')
