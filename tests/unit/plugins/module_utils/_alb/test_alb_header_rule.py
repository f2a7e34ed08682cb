"""The header-forced canary rule against an in-memory ELBv2 client: conditions (secret header value, source
networks), the forcing policy and the ALB's limits checked before any call, secret rotation, redacted diffs."""

import re

import pytest

from ansible_collections.canary.release.plugins.module_utils._alb.alb_header_rule import (
    TAG_KEY,
    check_alb_limits,
    choose_priority,
    ensure_header_rule,
    header_conditions,
    header_rule_spec,
    rule_matches,
)
from ansible_collections.canary.release.plugins.module_utils._alb.alb_listener import AlbError, ElbApi
from tests.support.fake_elbv2 import FakeElbv2

HEADER = header_conditions('X-Canary', ['always'])
TRUSTED = ['10.0.0.0/8']
RESTRICTED = header_conditions('X-Canary', ['always'], TRUSTED)
SECRET = 'k7Qm2xR9vT4pL8wZ'


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
    """The module's call; unless a test says otherwise, the old default value restricted to 10.0.0.0/8."""
    kwargs.setdefault('listener_arn', world['listener'])
    if 'header_secret' not in kwargs:
        kwargs.setdefault('trusted_sources', TRUSTED)
    return ensure_header_rule(ElbApi(world['elb'], delay=0.001, max_delay=0.002), **kwargs)


def header_rules(world):
    return [rule for rule in world['elb'].rules.values() if rule_matches(rule, 'X-Canary', ['always'])]


def test_matching_is_exact_on_the_condition():
    rule = {'IsDefault': False, 'Conditions': header_conditions('x-canary', ['always'])}
    assert rule_matches(rule, 'X-Canary', ['always'])
    assert rule_matches(rule, 'X-Canary')  # identity is the header; values are brought in line
    assert not rule_matches(rule, 'X-Canary', ['always', 'yes'])
    assert not rule_matches(rule, 'X-Version', ['always'])
    assert not rule_matches({'IsDefault': False, 'Conditions': HEADER + [{'Field': 'path-pattern', 'Values': ['/']}]},
                            'X-Canary', ['always'])
    assert not rule_matches({'IsDefault': True, 'Conditions': HEADER}, 'X-Canary', ['always'])
    assert rule_matches({'IsDefault': False, 'Conditions': RESTRICTED}, 'X-Canary')
    assert not rule_matches({'IsDefault': False, 'Conditions': RESTRICTED + RESTRICTED[1:]}, 'X-Canary')
    assert not rule_matches({'IsDefault': False, 'Conditions': RESTRICTED[1:]}, 'X-Canary')


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
    assert created['Conditions'] == RESTRICTED
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
    assert 'condition: {source-ip: [10.0.0.0/8]}' in result['after_text']
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
    # The adopted rule now also requires a trusted source.
    assert world['elb'].rules[rule]['Conditions'] == RESTRICTED
    assert world['elb'].calls[3][1]['Conditions'] == RESTRICTED


@pytest.mark.parametrize('kwargs, words', [
    ({'canary': 'web-nope'}, 'target group not found'),
    ({'canary': 'web-elsewhere'}, 'is in vpc-9'),
    ({'canary': 'web-canary', 'priority': 1}, 'priority 1 is already used'),
    ({'canary': None}, 'needs canary'),
    ({'canary': 'web-canary', 'header_values': []}, 'at least one header value'),
    ({'canary': 'web-canary', 'header_values': ['always'], 'trusted_sources': None}, "old default value 'always'"),
    ({'canary': 'web-canary', 'header_values': ['yes'], 'trusted_sources': []}, 'not secret'),
    ({'canary': 'web-canary', 'header_secret': 'always-always-always'}, 'only 6 different characters'),
    ({'canary': 'web-canary', 'header_secret': SECRET + '*'}, 'wildcards'),
    ({'canary': 'web-canary', 'header_values': ['a', 'b', 'c'], 'header_secret': SECRET,
      'trusted_sources': TRUSTED}, 'at most 3 values per condition'),
    ({'canary': 'web-canary', 'trusted_sources': ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '192.0.2.0/24']},
     'trusted_sources lists 4'),
    ({'canary': 'web-canary', 'header_values': ['a', 'b'], 'header_secret': SECRET,
      'trusted_sources': ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']}, 'at most 5 values per rule'),
    ({'canary': 'web-canary', 'header_values': ['a*b?c*', 'd???']}, 'at most 5 wildcards'),
    ({'canary': 'web-canary', 'header_values': ['x' * 129]}, 'visible ASCII'),
    ({'canary': 'web-canary', 'header_values': ['a b']}, 'visible ASCII'),
    ({'canary': 'web-canary', 'header_name': 'X Canary'}, 'HTTP token'),
    ({'canary': 'web-canary', 'header_name': 'X-' + 'c' * 39}, 'at most 40'),
    ({'canary': 'web-canary', 'header_name': 'host'}, 'cannot be Host'),
])
def test_bad_input_writes_nothing(world, kwargs, words):
    with pytest.raises(AlbError, match=re.escape(words)) as caught:
        run(world, **kwargs)
    assert not [name for name in world['elb'].operations() if name.startswith(('Create', 'Modify', 'Delete', 'Set'))]
    if kwargs.get('header_secret'):
        assert kwargs['header_secret'] not in str(caught.value)


@pytest.mark.parametrize('kwargs', [
    {'header_values': ['always'], 'trusted_sources': None},
    {'header_secret': 'short'},
    {'header_values': ['a', 'b', 'c'], 'header_secret': SECRET, 'trusted_sources': TRUSTED},
    {'trusted_sources': ['0.0.0.0/0']},
])
def test_refusals_happen_before_any_call(world, kwargs):
    with pytest.raises(AlbError):
        run(world, canary='web-canary', **kwargs)
    assert world['elb'].operations() == []


def test_secret_only_rule_and_rotation_in_place(world):
    result = run(world, canary='web-canary', header_secret=SECRET)
    created = world['elb'].calls[-1][1]
    assert created['Conditions'] == header_conditions('X-Canary', [SECRET])
    assert result['header_values'] == [] and result['trusted_sources'] == [] and not result['public_forcing']
    assert SECRET not in repr(result)
    assert 'values: [(secret)]' in result['after_text'] and 'source-ip' not in result['after_text']

    del world['elb'].calls[:]
    assert not run(world, canary='web-canary', header_secret=SECRET)['changed']
    assert world['elb'].operations() == ['DescribeListeners', 'DescribeRules']

    # Rotating the secret and adding trusted sources changes the same rule; nothing else is left behind.
    rotated = SECRET[::-1]
    del world['elb'].calls[:]
    changed = run(world, canary='web-canary', header_secret=rotated, trusted_sources=['192.0.2.0/24', '2001:db8::/48'])
    assert changed['changed'] and changed['rule_arn'] == result['rule_arn']
    assert world['elb'].operations() == ['DescribeListeners', 'DescribeRules', 'ModifyRule']
    assert world['elb'].calls[-1][1] == {'RuleArn': changed['rule_arn'], 'Conditions': header_conditions(
        'X-Canary', [rotated], ['192.0.2.0/24', '2001:db8::/48'])}
    assert 'values: [(secret)]' in changed['before_text']
    assert 'values: [(secret, changed)]' in changed['after_text']
    assert 'condition: {source-ip: [192.0.2.0/24, 2001:db8::/48]}' in changed['after_text']
    assert SECRET not in repr(changed) and rotated not in repr(changed)
    assert len(header_rules_any(world)) == 1

    gone = run(world, state='absent')
    assert gone['changed'] and header_rules_any(world) == []
    assert SECRET not in repr(gone) and rotated not in repr(gone)


def header_rules_any(world):
    return [rule for rule in world['elb'].rules.values() if rule_matches(rule, 'X-Canary')]


def test_public_forcing_is_allowed_only_when_asked(world):
    result = run(world, canary='web-canary', trusted_sources=None, allow_public_forcing=True)
    assert result['public_forcing'] and result['header_values'] == ['always']
    assert world['elb'].calls[-1][1]['Conditions'] == HEADER


def test_spec_and_limits():
    spec = header_rule_spec(header_secret=SECRET, header_values=['always'], trusted_sources=['10.0.0.1'])
    assert spec.values == ['always', SECRET] and spec.networks == ['10.0.0.1/32']
    assert spec.conditions() == header_conditions('X-Canary', ['always', SECRET], ['10.0.0.1/32'])
    check_alb_limits(header_rule_spec(header_secret=SECRET, header_values=['a', 'b'],
                                      trusted_sources=['10.0.0.0/8', '192.0.2.0/24']))  # 3 + 2 = 5: allowed
    absent = header_rule_spec(state='absent', header_secret='short')  # nothing to check to remove the rule
    assert absent.values == []


def test_two_matching_rules_are_refused_and_absent_removes_both(world):
    world['elb'].add_rule(world['listener'], 10, HEADER, forward(world['canary']))
    world['elb'].add_rule(world['listener'], 11, header_conditions('X-Canary', ['beta']), forward(world['canary']))
    with pytest.raises(AlbError, match='2 rules'):
        run(world, canary='web-canary')
    assert len(run(world, state='absent')['deleted']) == 2
    assert header_rules(world) == []


def test_matching_rule_with_a_fixed_response_is_refused(world):
    world['elb'].add_rule(world['listener'], 10, HEADER, [{'Type': 'fixed-response', 'FixedResponseConfig': {'StatusCode': '418'}}])
    with pytest.raises(AlbError, match='cannot forward to the canary'):
        run(world, canary='web-canary')
