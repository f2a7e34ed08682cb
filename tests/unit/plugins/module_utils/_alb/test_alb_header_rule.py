"""The header-forced canary rule against an in-memory ELBv2 client."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._alb.alb_header_rule import (
    TAG_KEY,
    choose_priority,
    ensure_header_rule,
    header_conditions,
    rule_matches,
)
from ansible_collections.canary.release.plugins.module_utils._alb.alb_listener import AlbError, ElbApi
from tests.support.fake_elbv2 import FakeElbv2

HEADER = header_conditions('X-Canary', ['always'])


def forward(*arns):
    return [{'Type': 'forward', 'ForwardConfig': {'TargetGroups': [{'TargetGroupArn': arn, 'Weight': 1} for arn in arns]}}]


@pytest.fixture
def world():
    elb = FakeElbv2()
    lb = elb.add_load_balancer('web')
    stable = elb.add_target_group('web-stable', load_balancers=[lb])
    canary = elb.add_target_group('web-canary', load_balancers=[lb])
    spare = elb.add_target_group('web-spare')
    elsewhere = elb.add_target_group('web-elsewhere', vpc='vpc-9')
    listener = elb.add_listener(lb, 80, forward(stable, canary))
    elb.add_rule(listener, 1, [{'Field': 'path-pattern', 'Values': ['/api/*']}], forward(stable))
    elb.add_rule(listener, 2, [{'Field': 'path-pattern', 'Values': ['/admin/*']}], forward(stable))
    return dict(elb=elb, lb=lb, stable=stable, canary=canary, spare=spare, elsewhere=elsewhere, listener=listener)


def run(world, **kwargs):
    kwargs.setdefault('listener_arn', world['listener'])
    return ensure_header_rule(ElbApi(world['elb'], delay=0.001, max_delay=0.002), **kwargs)


def header_rules(world):
    return [rule for rule in world['elb'].rules.values() if rule_matches(rule, 'X-Canary', ['always'])]


def test_matching_is_exact_on_the_condition():
    rule = {'IsDefault': False, 'Conditions': header_conditions('x-canary', ['always'])}
    assert rule_matches(rule, 'X-Canary', ['always'])
    assert not rule_matches(rule, 'X-Canary', ['always', 'yes'])
    assert not rule_matches(rule, 'X-Version', ['always'])
    assert not rule_matches({'IsDefault': False, 'Conditions': HEADER + [{'Field': 'path-pattern', 'Values': ['/']}]},
                            'X-Canary', ['always'])
    assert not rule_matches({'IsDefault': True, 'Conditions': HEADER}, 'X-Canary', ['always'])


def test_choose_priority():
    rules = [{'RuleArn': 'a', 'Priority': '1'}, {'RuleArn': 'b', 'Priority': '3'}, {'RuleArn': 'd', 'Priority': 'default', 'IsDefault': True}]
    assert choose_priority(rules) == 2
    assert choose_priority(rules, 7) == 7
    assert choose_priority(rules, 3, own_arn='b') == 3
    with pytest.raises(AlbError, match='priority 3 is already used by rule b'):
        choose_priority(rules, 3)
    with pytest.raises(AlbError, match='from 1 to 50000'):
        choose_priority(rules, 0)


def test_create_then_idempotent_then_absent(world):
    result = run(world, canary='web-canary')
    assert result['changed'] and result['priority'] == 3
    assert world['elb'].operations() == ['DescribeListeners', 'DescribeRules', 'CreateRule']
    created = world['elb'].calls[-1][1]
    assert created['Conditions'] == HEADER
    assert created['Actions'] == forward(world['canary'])
    assert created['Tags'] == [{'Key': TAG_KEY, 'Value': 'X-Canary'}]
    assert result['rule_arn'] == header_rules(world)[0]['RuleArn']
    assert result['target_group'] == {'arn': world['canary'], 'name': 'web-canary'}

    del world['elb'].calls[:]
    again = run(world, canary=world['canary'])
    assert not again['changed'] and again['rule_arn'] == result['rule_arn']
    assert world['elb'].operations() == ['DescribeListeners', 'DescribeRules']

    del world['elb'].calls[:]
    gone = run(world, state='absent')
    assert gone['changed'] and gone['deleted'] == [result['rule_arn']]
    assert header_rules(world) == []
    assert world['elb'].operations() == ['DescribeListeners', 'DescribeRules', 'DeleteRule']
    assert not run(world, state='absent')['changed']


def test_check_mode(world):
    result = run(world, canary='web-canary', check_mode=True)
    assert result['changed'] and result['rule_arn'] is None and result['priority'] == 3
    assert 'http-header: X-Canary' in result['after_text'] and result['before_text'] == ''
    assert header_rules(world) == []
    run(world, canary='web-canary')
    assert run(world, state='absent', check_mode=True)['changed']
    assert len(header_rules(world)) == 1


def test_existing_rule_is_repointed_and_moved(world):
    rule = world['elb'].add_rule(world['listener'], 20, header_conditions('x-canary', ['always']), forward(world['stable']))
    del world['elb'].calls[:]
    result = run(world, canary='web-spare', priority=5)
    assert result['changed'] and result['rule_arn'] == rule and result['priority'] == 5
    assert world['elb'].operations() == ['DescribeListeners', 'DescribeRules', 'DescribeTargetGroups', 'ModifyRule',
                                         'SetRulePriorities']
    assert world['elb'].rules[rule]['Actions'][0]['ForwardConfig']['TargetGroups'] == [
        {'TargetGroupArn': world['spare'], 'Weight': 1}]
    assert world['elb'].rules[rule]['Priority'] == '5'
    assert world['elb'].rules[rule]['Conditions'] == header_conditions('x-canary', ['always'])


@pytest.mark.parametrize('kwargs, words', [
    ({'canary': 'web-nope'}, 'target group not found'),
    ({'canary': 'web-elsewhere'}, 'is in vpc-9'),
    ({'canary': 'web-canary', 'priority': 1}, 'priority 1 is already used'),
    ({'canary': None}, 'needs canary'),
    ({'canary': 'web-canary', 'header_values': []}, 'at least one header value'),
])
def test_bad_input_writes_nothing(world, kwargs, words):
    with pytest.raises(AlbError, match=words):
        run(world, **kwargs)
    assert not [name for name in world['elb'].operations() if name.startswith(('Create', 'Modify', 'Delete', 'Set'))]


def test_two_matching_rules_are_refused_and_absent_removes_both(world):
    world['elb'].add_rule(world['listener'], 10, HEADER, forward(world['canary']))
    world['elb'].add_rule(world['listener'], 11, HEADER, forward(world['canary']))
    with pytest.raises(AlbError, match='2 rules'):
        run(world, canary='web-canary')
    assert len(run(world, state='absent')['deleted']) == 2
    assert header_rules(world) == []


def test_matching_rule_with_a_fixed_response_is_refused(world):
    world['elb'].add_rule(world['listener'], 10, HEADER, [{'Type': 'fixed-response', 'FixedResponseConfig': {'StatusCode': '418'}}])
    with pytest.raises(AlbError, match='cannot forward to the canary'):
        run(world, canary='web-canary')
