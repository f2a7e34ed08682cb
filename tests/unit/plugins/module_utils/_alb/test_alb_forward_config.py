"""Forward-action maths and comparison: percent weights, legacy form, refusals, untouched fields, properties."""

import copy
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.canary.release.plugins.module_utils._alb.alb_forward_config import (
    MAX_WEIGHT,
    ForwardConfigError,
    build_actions,
    check_weights,
    desired_stickiness,
    diff_text,
    forward_action_index,
    forward_stickiness,
    forward_target_groups,
    holds,
    percent_weights,
    plan_forward,
    report,
    same_weights,
    share_percent,
    writable_action,
)

PREFIX = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/'
STABLE = PREFIX + 'web-stable/0123456789abcdef'
CANARY = PREFIX + 'web-canary/fedcba9876543210'
OTHER = PREFIX + 'web-old/00112233aabbccdd'


def forward(*groups, **extra):
    action = {'Type': 'forward', 'ForwardConfig': {
        'TargetGroups': [{'TargetGroupArn': arn, 'Weight': weight} for arn, weight in groups],
        'TargetGroupStickinessConfig': {'Enabled': False}}}
    action.update(extra)
    return action


OIDC = {'Type': 'authenticate-oidc', 'Order': 1, 'AuthenticateOidcConfig': {
    'Issuer': 'https://idp.example.com', 'AuthorizationEndpoint': 'https://idp.example.com/auth',
    'TokenEndpoint': 'https://idp.example.com/token', 'UserInfoEndpoint': 'https://idp.example.com/me',
    'ClientId': 'client', 'SessionCookieName': 'AWSELBAuthSessionCookie', 'Scope': 'openid',
    'SessionTimeout': 604800, 'OnUnauthenticatedRequest': 'authenticate'}}


@pytest.mark.parametrize('percent, canary, stable', [
    (0, 0, 1), (0.1, 1, 999), (1, 1, 99), (5, 1, 19), (10, 1, 9), (12.5, 1, 7), (20, 1, 4), (25, 1, 3),
    (33.3, 333, 667), (50, 1, 1), (75, 3, 1), (99.9, 999, 1), (100, 1, 0), ('2.5', 1, 39),
])
def test_percent_weights_known_answers(percent, canary, stable):
    split = percent_weights(percent)
    assert (split['canary_weight'], split['stable_weight']) == (canary, stable)
    assert split['exact']
    assert split['effective_percent'] == pytest.approx(float(percent))


@pytest.mark.parametrize('percent, canary, stable, effective', [
    (33.333, 1, 2, 100 / 3),
    (0.03, 0, 1, 0.0),      # 0 % is closer than 1:999 (0.1 %)
    (0.05, 0, 1, 0.0),      # a tie: the smaller pair wins
    (0.06, 1, 999, 0.1),
    (99.97, 1, 0, 100.0),
    (12.34, 135, 959, 13500 / 1094),  # brute force over all 10^6 pairs agrees
])
def test_percent_weights_inexact_reports_effective_share(percent, canary, stable, effective):
    split = percent_weights(percent)
    assert (split['canary_weight'], split['stable_weight']) == (canary, stable)
    assert not split['exact']
    assert split['effective_percent'] == pytest.approx(effective)
    assert abs(split['effective_percent'] - percent) <= 0.05


@pytest.mark.parametrize('percent', [-0.1, 100.5, float('nan'), 'ten', True])
def test_percent_weights_refuses_bad_percent(percent):
    with pytest.raises(ForwardConfigError):
        percent_weights(percent)


@given(st.integers(min_value=0, max_value=1000))
def test_every_tenth_of_a_point_is_exact(tenths):
    split = percent_weights('%d.%d' % divmod(tenths, 10))
    assert split['exact']
    assert 0 <= split['canary_weight'] <= MAX_WEIGHT and 0 <= split['stable_weight'] <= MAX_WEIGHT
    assert Fraction(split['canary_weight'], split['canary_weight'] + split['stable_weight']) == Fraction(tenths, 1000)


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0, max_value=100, allow_nan=False))
def test_effective_percent_is_the_closest_any_pair_gives(percent):
    split = percent_weights(percent)
    canary, stable = split['canary_weight'], split['stable_weight']
    assert 0 <= canary <= MAX_WEIGHT and 0 <= stable <= MAX_WEIGHT and canary + stable > 0
    target = Fraction(repr(percent)) / 100
    error = abs(Fraction(canary, canary + stable) - target)
    # never worse than the 0.1-point grid, and no pair (c, s) with c, s <= 999 is closer: for each c the best s is
    # next to c * (1 - t) / t, so checking floor/ceil of that for every c covers every pair.
    assert error <= Fraction(1, 2000)
    for other_canary in range(0, MAX_WEIGHT + 1):
        if target == 0:
            candidates = [1]
        else:
            ideal = other_canary * (1 - target) / target
            candidates = {max(0, min(MAX_WEIGHT, int(ideal))), max(0, min(MAX_WEIGHT, int(ideal) + 1))}
        for other_stable in candidates:
            if other_canary + other_stable:
                assert error <= abs(Fraction(other_canary, other_canary + other_stable) - target)


def test_forward_action_index_finds_the_forward_after_authentication():
    assert forward_action_index([OIDC, forward((STABLE, 1), Order=2)]) == 1


@pytest.mark.parametrize('actions, words', [
    ([{'Type': 'redirect', 'RedirectConfig': {'Protocol': 'HTTPS', 'Port': '443', 'StatusCode': 'HTTP_301'}}], 'redirect'),
    ([{'Type': 'fixed-response', 'FixedResponseConfig': {'StatusCode': '503'}}], 'fixed-response'),
    ([OIDC], 'authenticate-oidc'),
    ([], 'no actions'),
])
def test_non_forward_actions_are_refused_clearly(actions, words):
    with pytest.raises(ForwardConfigError, match=words):
        forward_action_index(actions, 'listener L')
    with pytest.raises(ForwardConfigError, match='listener L'):
        plan_forward(actions, [{'arn': STABLE, 'weight': 1}], where='listener L')


def test_legacy_target_group_arn_form_is_read_as_weight_one():
    action = {'Type': 'forward', 'TargetGroupArn': STABLE}
    assert forward_target_groups(action) == [{'arn': STABLE, 'weight': 1}]
    assert forward_stickiness(action) == {'enabled': False, 'duration': None}


def test_forward_config_wins_over_target_group_arn_when_both_are_present():
    # the API returns both for a single target group
    action = forward((STABLE, 5), TargetGroupArn=STABLE)
    assert forward_target_groups(action) == [{'arn': STABLE, 'weight': 5}]


def test_legacy_form_unchanged_when_the_request_is_the_same():
    actions = [{'Type': 'forward', 'TargetGroupArn': STABLE}]
    plan = plan_forward(actions, [{'arn': STABLE, 'weight': 1}])
    assert not plan.changed
    assert plan.actions is actions


def test_legacy_form_rewritten_as_forward_config():
    actions = [{'Type': 'forward', 'TargetGroupArn': STABLE}]
    plan = plan_forward(actions, [{'arn': STABLE, 'weight': 9}, {'arn': CANARY, 'weight': 1}], proportional=True)
    assert plan.changed
    assert plan.actions == [{'Type': 'forward', 'ForwardConfig': {'TargetGroups': [
        {'TargetGroupArn': STABLE, 'Weight': 9}, {'TargetGroupArn': CANARY, 'Weight': 1}]}}]
    assert actions == [{'Type': 'forward', 'TargetGroupArn': STABLE}]  # input not mutated


def test_only_weights_change_and_everything_else_is_kept():
    actions = [copy.deepcopy(OIDC), forward((STABLE, 1), (OTHER, 0), Order=2)]
    actions[1]['ForwardConfig']['TargetGroupStickinessConfig'] = {'Enabled': True, 'DurationSeconds': 120}
    original = copy.deepcopy(actions)
    plan = plan_forward(actions, [{'arn': CANARY, 'weight': 1}, {'arn': STABLE, 'weight': 9}])
    assert actions == original
    # authenticate action first and unchanged apart from the flag the API needs to keep its secret
    expected_oidc = copy.deepcopy(OIDC)
    expected_oidc['AuthenticateOidcConfig']['UseExistingClientSecret'] = True
    assert plan.actions[0] == expected_oidc
    assert plan.actions[1]['Order'] == 2 and plan.actions[1]['Type'] == 'forward'
    # groups already there keep their position, new ones follow; OTHER is removed; stickiness kept as it was
    assert plan.actions[1]['ForwardConfig'] == {
        'TargetGroups': [{'TargetGroupArn': STABLE, 'Weight': 9}, {'TargetGroupArn': CANARY, 'Weight': 1}],
        'TargetGroupStickinessConfig': {'Enabled': True, 'DurationSeconds': 120}}
    assert plan.before == [{'arn': STABLE, 'weight': 1}, {'arn': OTHER, 'weight': 0}]
    assert plan.after == [{'arn': STABLE, 'weight': 9}, {'arn': CANARY, 'weight': 1}]
    assert plan.stickiness_after == {'enabled': True, 'duration': 120}


def test_oidc_with_a_secret_is_left_alone():
    action = copy.deepcopy(OIDC)
    action['AuthenticateOidcConfig']['ClientSecret'] = 's3cret'
    assert writable_action(action) == action


def test_same_weights_exact_and_proportional():
    current = [{'arn': STABLE, 'weight': 900}, {'arn': CANARY, 'weight': 100}]
    desired = [{'arn': CANARY, 'weight': 1}, {'arn': STABLE, 'weight': 9}]
    assert not same_weights(current, desired)
    assert same_weights(current, desired, proportional=True)
    assert same_weights(current, [{'arn': CANARY, 'weight': 100}, {'arn': STABLE, 'weight': 900}])
    assert not same_weights(current, [{'arn': STABLE, 'weight': 9}], proportional=True)
    assert not same_weights(current, [{'arn': STABLE, 'weight': 8}, {'arn': CANARY, 'weight': 1}], proportional=True)
    assert same_weights([{'arn': STABLE, 'weight': 5}, {'arn': CANARY, 'weight': 0}],
                        [{'arn': STABLE, 'weight': 1}, {'arn': CANARY, 'weight': 0}], proportional=True)


def test_percent_request_with_the_same_share_changes_nothing():
    actions = [forward((STABLE, 900), (CANARY, 100))]
    plan = plan_forward(actions, [{'arn': STABLE, 'weight': 9}, {'arn': CANARY, 'weight': 1}], proportional=True)
    assert not plan.changed
    assert plan.after == [{'arn': STABLE, 'weight': 900}, {'arn': CANARY, 'weight': 100}]


def test_explicit_request_compares_exactly():
    actions = [forward((STABLE, 900), (CANARY, 100))]
    plan = plan_forward(actions, [{'arn': STABLE, 'weight': 9}, {'arn': CANARY, 'weight': 1}])
    assert plan.changed


def test_stickiness_only_change_keeps_proportional_weights():
    actions = [forward((STABLE, 900), (CANARY, 100))]
    plan = plan_forward(actions, [{'arn': STABLE, 'weight': 9}, {'arn': CANARY, 'weight': 1}],
                        stickiness={'enabled': True, 'duration': 600}, proportional=True)
    assert plan.changed
    assert plan.after == [{'arn': STABLE, 'weight': 900}, {'arn': CANARY, 'weight': 100}]
    assert plan.actions[0]['ForwardConfig']['TargetGroupStickinessConfig'] == {'Enabled': True, 'DurationSeconds': 600}


def test_stickiness_comparison():
    actions = [forward((STABLE, 1))]
    actions[0]['ForwardConfig']['TargetGroupStickinessConfig'] = {'Enabled': True, 'DurationSeconds': 600}
    same = [{'arn': STABLE, 'weight': 1}]
    assert not plan_forward(actions, same, stickiness={'enabled': True, 'duration': 600}).changed
    assert not plan_forward(actions, same, stickiness={'enabled': True, 'duration': None}).changed  # keeps 600
    assert plan_forward(actions, same, stickiness={'enabled': True, 'duration': 60}).changed
    off = plan_forward(actions, same, stickiness={'enabled': False})
    assert off.changed
    assert off.actions[0]['ForwardConfig']['TargetGroupStickinessConfig'] == {'Enabled': False}
    assert not plan_forward([forward((STABLE, 1))], same, stickiness={'enabled': False, 'duration': 99}).changed


@pytest.mark.parametrize('requested, current, expected', [
    (None, None, None),
    ({'enabled': True}, None, {'enabled': True, 'duration': 3600}),
    ({'enabled': None, 'duration': 60}, None, {'enabled': True, 'duration': 60}),
    ({'enabled': True}, {'enabled': True, 'duration': 120}, {'enabled': True, 'duration': 120}),
    ({'enabled': False, 'duration': 60}, None, {'enabled': False, 'duration': None}),
])
def test_desired_stickiness(requested, current, expected):
    assert desired_stickiness(requested, current) == expected


@pytest.mark.parametrize('duration', [0, 604801, -5, True])
def test_stickiness_duration_out_of_range(duration):
    with pytest.raises(ForwardConfigError, match='1 to 604800'):
        desired_stickiness({'enabled': True, 'duration': duration}, None)


@pytest.mark.parametrize('groups, words', [
    ([], 'at least one'),
    ([{'arn': 'tg%d' % index, 'weight': 1} for index in range(6)], 'at most 5'),
    ([{'arn': STABLE, 'weight': 1000}], 'from 0 to 999'),
    ([{'arn': STABLE, 'weight': -1}], 'from 0 to 999'),
    ([{'arn': STABLE, 'weight': None}], 'from 0 to 999'),
    ([{'arn': STABLE, 'weight': 0}, {'arn': CANARY, 'weight': 0}], 'all weights are 0'),
    ([{'arn': STABLE, 'weight': 1}, {'arn': STABLE, 'weight': 2}], 'listed twice'),
])
def test_check_weights_refusals(groups, words):
    with pytest.raises(ForwardConfigError, match=words):
        check_weights(groups)


def test_five_groups_and_boundary_weights_are_fine():
    groups = [{'arn': 'tg%d' % index, 'weight': weight} for index, weight in enumerate([0, 999, 1, 0, 5])]
    assert check_weights(groups) is groups


def test_holds_compares_exact_weights_and_stickiness():
    actions = [forward((STABLE, 9), (CANARY, 1))]
    stickiness = {'enabled': False, 'duration': None}
    assert holds(actions, [{'arn': CANARY, 'weight': 1}, {'arn': STABLE, 'weight': 9}], stickiness)
    assert not holds(actions, [{'arn': CANARY, 'weight': 10}, {'arn': STABLE, 'weight': 90}], stickiness)
    assert not holds(actions, [{'arn': CANARY, 'weight': 1}, {'arn': STABLE, 'weight': 9}], {'enabled': True, 'duration': 5})
    assert not holds([{'Type': 'fixed-response'}], [{'arn': STABLE, 'weight': 1}], stickiness)


def test_report_share_and_diff_text():
    groups = [{'arn': STABLE, 'weight': 2}, {'arn': CANARY, 'weight': 1}]
    assert report(groups) == [
        {'arn': STABLE, 'name': 'web-stable', 'weight': 2, 'percent': 66.6667},
        {'arn': CANARY, 'name': 'web-canary', 'weight': 1, 'percent': 33.3333}]
    assert report(groups, {CANARY: 'renamed'})[1]['name'] == 'renamed'
    assert share_percent(groups, CANARY) == pytest.approx(100 / 3)
    assert share_percent(groups, OTHER) is None
    assert diff_text(groups, {'enabled': True, 'duration': 60}) == (
        'target_groups:\n  web-stable: 2  # 66.667 %\n  web-canary: 1  # 33.333 %\nstickiness: {enabled: true, duration: 60}\n')


def test_build_actions_without_stickiness_keeps_existing_config_keys():
    actions = [forward((STABLE, 1))]
    built = build_actions(actions, 0, [{'arn': STABLE, 'weight': 3}])
    assert built[0]['ForwardConfig']['TargetGroupStickinessConfig'] == {'Enabled': False}


weights = st.integers(min_value=0, max_value=MAX_WEIGHT)
arns = st.sampled_from([STABLE, CANARY, OTHER, PREFIX + 'a/1', PREFIX + 'b/2'])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(arns, weights), min_size=1, max_size=5, unique_by=lambda item: item[0]),
       st.lists(st.tuples(arns, weights), min_size=1, max_size=5, unique_by=lambda item: item[0]),
       st.booleans())
def test_plan_properties(current, desired, proportional):
    if not any(weight for dummy, weight in current):
        current = [(current[0][0], 1)] + current[1:]
    actions = [copy.deepcopy(OIDC), forward(*current, Order=2)]
    original = copy.deepcopy(actions)
    request = [{'arn': arn, 'weight': weight} for arn, weight in desired]
    if not any(weight for dummy, weight in desired):
        with pytest.raises(ForwardConfigError):
            plan_forward(actions, request, proportional=proportional)
        return
    plan = plan_forward(actions, request, proportional=proportional)
    assert actions == original
    if not plan.changed:
        assert plan.actions is actions
        return
    # the written action holds exactly the request, every weight in range, the rest untouched
    assert holds(plan.actions, request, plan.stickiness_after)
    assert all(0 <= group['weight'] <= MAX_WEIGHT for group in plan.after)
    assert plan.actions[0]['AuthenticateOidcConfig']['Issuer'] == OIDC['AuthenticateOidcConfig']['Issuer']
    assert plan.actions[1]['Order'] == 2
    # planning again against what was written changes nothing (idempotent)
    assert not plan_forward(plan.actions, request, proportional=proportional).changed
