"""alb_listener against an in-memory ELBv2 client: call budget, resolution, validation, read-back, retries."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._alb.alb_listener import (
    AlbError,
    ElbApi,
    set_forward_weights,
)
from tests.support.fake_elbv2 import FakeElbv2


def forward(*groups):
    return {'Type': 'forward', 'ForwardConfig': {
        'TargetGroups': [{'TargetGroupArn': arn, 'Weight': weight} for arn, weight in groups],
        'TargetGroupStickinessConfig': {'Enabled': False}}}


class World(object):
    def __init__(self):
        self.elb = FakeElbv2()
        elb = self.elb
        self.lb = elb.add_load_balancer('web')
        self.other_lb = elb.add_load_balancer('other')
        self.nlb = elb.add_load_balancer('tcp', kind='network')
        self.stable = elb.add_target_group('web-stable', load_balancers=[self.lb])
        self.canary = elb.add_target_group('web-canary')
        self.spare = elb.add_target_group('web-spare', target_type='ip')
        self.elsewhere = elb.add_target_group('web-elsewhere', vpc='vpc-2')
        self.tcp = elb.add_target_group('web-tcp', protocol='TCP')
        self.function = elb.add_target_group('web-lambda', target_type='lambda')
        self.taken = elb.add_target_group('web-taken', load_balancers=[self.other_lb])
        self.listener = elb.add_listener(self.lb, 80, [{'Type': 'forward', 'TargetGroupArn': self.stable}])
        self.redirect = elb.add_listener(self.lb, 81, [{'Type': 'redirect', 'RedirectConfig': {
            'Protocol': 'HTTPS', 'Port': '443', 'StatusCode': 'HTTP_301'}}])
        self.fixed = elb.add_listener(self.lb, 82, [{'Type': 'fixed-response', 'FixedResponseConfig': {'StatusCode': '503'}}])
        self.tcp_listener = elb.add_listener(self.nlb, 90, [{'Type': 'forward', 'TargetGroupArn': self.tcp}], protocol='TCP')
        self.rule = elb.add_rule(self.listener, 10, [{'Field': 'path-pattern', 'Values': ['/api/*']}], [forward((self.stable, 1))])

    def run(self, **kwargs):
        kwargs.setdefault('sleep', self.sleeps.append)
        return set_forward_weights(ElbApi(self.elb, delay=0.001, max_delay=0.002), **kwargs)

    @property
    def sleeps(self):
        if not hasattr(self, '_sleeps'):
            self._sleeps = []
        return self._sleeps

    def default_actions(self, listener=None):
        return self.elb.listeners[listener or self.listener]['DefaultActions']

    def weights(self, listener=None):
        """``[(arn, weight)]`` of the listener's forward action (the legacy form read as weight 1)."""
        action = self.default_actions(listener)[0]
        if 'ForwardConfig' not in action:
            return [(action['TargetGroupArn'], 1)]
        return [(group['TargetGroupArn'], group['Weight']) for group in action['ForwardConfig']['TargetGroups']]


@pytest.fixture
def world():
    return World()


def test_percent_by_name_on_listener_costs_the_budget(world):
    result = world.run(listener_arn=world.listener, stable='web-stable', canary='web-canary', canary_percent=10)
    assert result['changed'] and result['verified']
    assert world.elb.operations() == ['DescribeListeners', 'DescribeTargetGroups', 'ModifyListener', 'DescribeListeners']
    assert result['api_calls'] == {'DescribeListeners': 2, 'DescribeTargetGroups': 1, 'ModifyListener': 1}
    assert world.elb.calls[1][1]['Names'] == ['web-canary', 'web-stable']  # one call, known groups included for the VPC
    assert world.weights() == [(world.stable, 9), (world.canary, 1)]
    assert result['canary_percent'] == 10.0
    assert [(entry['name'], entry['weight'], entry['percent']) for entry in result['target_groups']['after']] == [
        ('web-stable', 9, 90.0), ('web-canary', 1, 10.0)]
    assert result['target_groups']['before'] == [{'arn': world.stable, 'name': 'web-stable', 'weight': 1, 'percent': 100.0}]
    assert result['reads_after_write'] == 1


def test_unchanged_run_costs_one_describe_and_no_write(world):
    world.run(listener_arn=world.listener, stable='web-stable', canary='web-canary', canary_percent=10)
    del world.elb.calls[:]
    result = world.run(listener_arn=world.listener, stable='web-stable', canary='web-canary', canary_percent=10)
    assert not result['changed'] and result['verified']
    assert world.elb.operations() == ['DescribeListeners']


def test_next_step_with_groups_in_the_action_needs_no_target_group_lookup(world):
    world.run(listener_arn=world.listener, stable='web-stable', canary=world.canary, canary_percent=10)
    del world.elb.calls[:]
    result = world.run(listener_arn=world.listener, stable=world.stable, canary='web-canary', canary_percent=25)
    assert world.elb.operations() == ['DescribeListeners', 'ModifyListener', 'DescribeListeners']
    assert world.weights() == [(world.stable, 3), (world.canary, 1)]
    assert result['canary_percent'] == 25.0


def test_check_mode_writes_nothing(world):
    result = world.run(listener_arn=world.listener, stable='web-stable', canary='web-canary', canary_percent=50, check_mode=True)
    assert result['changed'] and not result['verified']
    assert world.elb.operations() == ['DescribeListeners', 'DescribeTargetGroups']
    assert world.default_actions() == [{'Type': 'forward', 'TargetGroupArn': world.stable}]
    assert result['target_groups']['after'][1]['weight'] == 1 and result['canary_percent'] == 50.0


def test_load_balancer_name_and_port(world):
    groups = [{'name': 'web-stable', 'weight': 3}, {'arn': world.canary, 'weight': 1}]
    result = world.run(load_balancer='web', port=80, target_groups=groups)
    assert world.elb.operations() == ['DescribeLoadBalancers', 'DescribeListeners', 'DescribeTargetGroups',
                                      'ModifyListener', 'DescribeListeners']
    assert result['listener_arn'] == world.listener and result['canary_percent'] is None
    assert world.weights() == [(world.stable, 3), (world.canary, 1)]


def test_load_balancer_arn_skips_describe_load_balancers(world):
    world.run(load_balancer=world.lb, port=80, target_groups=[{'name': 'web-stable', 'weight': 1}])
    assert world.elb.operations() == ['DescribeListeners']


def test_rule_forward_action(world):
    result = world.run(rule_arn=world.rule, listener_arn=world.listener, stable='web-stable', canary='web-canary',
                       canary_percent=5, stickiness={'enabled': True, 'duration': 300})
    assert world.elb.operations() == ['DescribeRules', 'DescribeTargetGroups', 'ModifyRule', 'DescribeRules']
    assert result['rule_arn'] == world.rule
    actions = [rule for rule in world.elb.rules.values() if rule['RuleArn'] == world.rule][0]['Actions']
    assert actions[0]['ForwardConfig']['TargetGroups'] == [{'TargetGroupArn': world.stable, 'Weight': 19},
                                                           {'TargetGroupArn': world.canary, 'Weight': 1}]
    assert actions[0]['ForwardConfig']['TargetGroupStickinessConfig'] == {'Enabled': True, 'DurationSeconds': 300}
    assert world.default_actions() == [{'Type': 'forward', 'TargetGroupArn': world.stable}]  # default untouched


def test_query_reads_only(world):
    world.run(listener_arn=world.listener, stable='web-stable', canary='web-canary', canary_percent=20)
    del world.elb.calls[:]
    result = world.run(listener_arn=world.listener, canary='web-canary', state='query')
    assert world.elb.operations() == ['DescribeListeners']
    assert not result['changed'] and result['canary_percent'] == 20.0
    assert world.run(listener_arn=world.listener, canary='web-spare', state='query')['canary_percent'] == 0.0
    assert world.run(listener_arn=world.listener, state='query')['canary_percent'] is None


def no_write(world):
    return not [name for name in world.elb.operations() if name.startswith(('Modify', 'Create', 'Delete', 'Set'))]


@pytest.mark.parametrize('kwargs, words', [
    ({'listener_arn': 'LISTENER-GONE', 'target_groups': [{'name': 'web-stable', 'weight': 1}]}, 'not found'),
    ({'listener_arn': 'not-an-arn', 'target_groups': [{'name': 'web-stable', 'weight': 1}]}, 'not a listener ARN'),
    ({'rule_arn': 'RULE-GONE', 'target_groups': [{'name': 'web-stable', 'weight': 1}]}, 'listener rule .* not found'),
    ({'rule_arn': 'not-a-rule', 'target_groups': [{'name': 'web-stable', 'weight': 1}]}, 'not an application load balancer listener rule'),
    ({'load_balancer': 'nope', 'port': 80, 'target_groups': [{'name': 'web-stable', 'weight': 1}]}, 'load balancer nope not found'),
    ({'load_balancer': 'web', 'port': 8443, 'target_groups': [{'name': 'web-stable', 'weight': 1}]}, 'no listener on port 8443'),
    ({'load_balancer': 'tcp', 'port': 90, 'target_groups': [{'name': 'web-stable', 'weight': 1}]}, 'not an application load balancer'),
    ({'target_groups': [{'name': 'web-nope', 'weight': 1}]}, 'target group not found: web-nope'),
    ({'target_groups': [{'arn': 'STALE-CANARY-ARN', 'weight': 1}]}, 'target group not found'),
    ({'target_groups': [{'name': 'g%d' % index, 'weight': 1} for index in range(6)]}, 'at most 5'),
    ({'target_groups': [{'name': 'web-stable', 'weight': 1000}]}, 'from 0 to 999'),
    ({'target_groups': [{'name': 'web-stable', 'weight': -1}]}, 'from 0 to 999'),
    ({'target_groups': [{'name': 'web-stable', 'weight': 0}, {'name': 'web-canary', 'weight': 0}]}, 'all weights are 0'),
    ({'target_groups': [{'name': 'web-stable', 'arn': 'x', 'weight': 1}]}, 'exactly one of name or arn'),
    ({'stable': 'web-stable', 'canary': 'web-canary', 'canary_percent': 101}, 'between 0 and 100'),
    ({'stable': 'web-stable', 'canary': 'web-stable', 'canary_percent': 10}, 'same target group'),
    ({'stable': 'web-stable', 'canary': 'web-elsewhere', 'canary_percent': 10}, 'is in vpc-2, but load balancer'),
    ({'stable': 'web-stable', 'canary': 'web-tcp', 'canary_percent': 10}, 'uses protocol TCP'),
    ({'stable': 'web-stable', 'canary': 'web-lambda', 'canary_percent': 10}, 'target type lambda'),
    ({'stable': 'web-stable', 'canary': 'web-taken', 'canary_percent': 10}, 'attached to another load balancer'),
    ({'stable': 'web-stable', 'canary': 'web-canary', 'canary_percent': 10, 'stickiness': {'duration': 0}}, '1 to 604800'),
    ({'canary_percent': 10}, 'needs stable and canary'),
    ({}, 'either target_groups or canary_percent'),
])
def test_bad_input_changes_nothing(world, kwargs, words):
    kwargs = dict(kwargs)
    if not any(key in kwargs for key in ('listener_arn', 'rule_arn', 'load_balancer')):
        kwargs['listener_arn'] = world.listener
    for key in ('listener_arn', 'rule_arn'):
        if kwargs.get(key) == 'LISTENER-GONE':
            kwargs[key] = world.listener[:-4] + 'ffff'
        if kwargs.get(key) == 'RULE-GONE':
            kwargs[key] = world.rule[:-4] + 'ffff'
    for entry in kwargs.get('target_groups') or []:
        if entry.get('arn') == 'STALE-CANARY-ARN':
            entry['arn'] = world.canary[:-4] + 'ffff'
    before = dict((arn, dict(listener)) for arn, listener in world.elb.listeners.items())
    with pytest.raises(AlbError, match=words) as raised:
        world.run(**kwargs)
    assert not raised.value.written
    assert no_write(world)
    assert world.elb.listeners == before


@pytest.mark.parametrize('listener, words', [('redirect', 'redirect'), ('fixed', 'fixed-response')])
def test_non_forward_listener_refused(world, listener, words):
    with pytest.raises(AlbError, match='no forward action .*%s' % words):
        world.run(listener_arn=getattr(world, listener), stable='web-stable', canary='web-canary', canary_percent=10)
    assert world.elb.operations() == ['DescribeListeners']


def test_default_rule_and_foreign_listener_refused(world):
    with pytest.raises(AlbError, match='default rule'):
        world.run(rule_arn=world.elb.default_rule_arn(world.listener), target_groups=[{'name': 'web-stable', 'weight': 1}])
    with pytest.raises(AlbError, match='does not belong to listener'):
        world.run(rule_arn=world.rule, listener_arn=world.redirect, target_groups=[{'name': 'web-stable', 'weight': 1}])
    with pytest.raises(AlbError, match='not with load_balancer'):
        world.run(rule_arn=world.rule, load_balancer='web', port=80, target_groups=[{'name': 'web-stable', 'weight': 1}])
    assert no_write(world)


def test_read_back_retries_while_the_alb_reports_old_weights(world):
    world.elb.stale_reads = 2
    result = world.run(listener_arn=world.listener, stable='web-stable', canary='web-canary', canary_percent=10)
    assert result['verified'] and result['reads_after_write'] == 3
    assert world.sleeps == [0.5, 1.0]
    assert world.elb.operations().count('ModifyListener') == 1


def test_read_back_gives_up_after_bounded_attempts(world):
    world.elb.stale_reads = 100
    with pytest.raises(AlbError, match='after 3 reads the ALB does not report') as raised:
        world.run(listener_arn=world.listener, stable='web-stable', canary='web-canary', canary_percent=10,
                  verify_attempts=3, verify_delay=0.1)
    assert raised.value.written
    assert world.sleeps == [0.1, 0.2]
    assert world.elb.operations() == ['DescribeListeners', 'DescribeTargetGroups', 'ModifyListener'] + ['DescribeListeners'] * 3


def test_throttling_is_retried(world):
    world.elb.throttle = {0, 2, 3, 5}
    result = world.run(listener_arn=world.listener, stable='web-stable', canary='web-canary', canary_percent=10)
    assert result['verified']
    assert result['api_calls'] == {'DescribeListeners': 2, 'DescribeTargetGroups': 1, 'ModifyListener': 1}
    assert world.elb.operations() == ['DescribeListeners', 'DescribeListeners', 'DescribeTargetGroups',
                                      'DescribeTargetGroups', 'DescribeTargetGroups', 'ModifyListener',
                                      'ModifyListener', 'DescribeListeners']
    assert world.weights() == [(world.stable, 9), (world.canary, 1)]


def test_lambda_current_group_falls_back_to_the_load_balancer_vpc(world):
    world.elb.listeners[world.listener]['DefaultActions'] = [{'Type': 'forward', 'TargetGroupArn': world.function}]
    world.run(listener_arn=world.listener, target_groups=[{'name': 'web-spare', 'weight': 1}])
    assert world.elb.operations() == ['DescribeListeners', 'DescribeTargetGroups', 'DescribeLoadBalancers',
                                      'ModifyListener', 'DescribeListeners']


def test_explicit_list_replaces_the_groups_of_the_action(world):
    world.run(listener_arn=world.listener, target_groups=[{'name': 'web-stable', 'weight': 1}, {'name': 'web-canary', 'weight': 1}])
    result = world.run(listener_arn=world.listener, target_groups=[{'name': 'web-canary', 'weight': 5}, {'name': 'web-spare', 'weight': 5}])
    assert world.weights() == [(world.canary, 5), (world.spare, 5)]
    assert [entry['name'] for entry in result['target_groups']['before']] == ['web-stable', 'web-canary']


def test_read_back_failure_after_a_write_is_reported_as_changed(world):
    world.elb.throttle = set(range(3, 40))  # the read-back is throttled until the retries run out
    with pytest.raises(AlbError, match='was modified, but reading it back failed: Rate exceeded') as raised:
        world.run(listener_arn=world.listener, stable='web-stable', canary='web-canary', canary_percent=10)
    assert raised.value.written
    assert world.weights() == [(world.stable, 9), (world.canary, 1)]
