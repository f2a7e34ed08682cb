"""ELBv2 ARN parsing without API calls."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._alb.alb_arns import (
    is_listener_arn,
    is_load_balancer_arn,
    is_rule_arn,
    is_target_group_arn,
    listener_arn_of_rule,
    load_balancer_arn_of,
    load_balancer_name,
    target_group_name,
)

BASE = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:'
LB = BASE + 'loadbalancer/app/web/50dc6c495c0c9188'
LISTENER = BASE + 'listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2'
RULE = BASE + 'listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee'
TG = BASE + 'targetgroup/web-canary/73e2d6bc24d8a067'


def test_kinds():
    assert is_load_balancer_arn(LB) and not is_load_balancer_arn(LISTENER)
    assert is_listener_arn(LISTENER) and not is_listener_arn(RULE)
    assert is_rule_arn(RULE) and not is_rule_arn(LISTENER)
    assert is_target_group_arn(TG) and not is_target_group_arn('web-canary')


@pytest.mark.parametrize('value', [None, 42, '', 'web-canary', 'arn:aws:ec2:eu-west-1:1:instance/i-1',
                                   BASE + 'targetgroup/web-canary', BASE + 'targetgroup/a/b/c'])
def test_not_target_group_arns(value):
    assert not is_target_group_arn(value)
    assert target_group_name(value) is None


def test_names_and_owners():
    assert target_group_name(TG) == 'web-canary'
    assert load_balancer_name(LB) == load_balancer_name(LISTENER) == load_balancer_name(RULE) == 'web'
    assert load_balancer_name(TG) is None
    assert load_balancer_arn_of(LISTENER) == LB
    assert load_balancer_arn_of(RULE) == LB
    assert load_balancer_arn_of(LB) is None
    assert listener_arn_of_rule(RULE) == LISTENER
    assert listener_arn_of_rule(LISTENER) is None


def test_other_partitions_keep_their_prefix():
    rule = 'arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:listener-rule/app/web/1/2/3'
    assert listener_arn_of_rule(rule) == 'arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:listener/app/web/1/2'
