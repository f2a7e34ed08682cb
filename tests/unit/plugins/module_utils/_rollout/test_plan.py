"""The step plan: build_plan validates rollout_steps once and names every problem."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._rollout.plan import (
    PlanError,
    build_plan,
    check_plan,
    describe_plan,
)


def problems(steps, **options):
    with pytest.raises(PlanError) as caught:
        build_plan(steps, **options)
    assert str(caught.value) == '; '.join(caught.value.problems)
    return caught.value.problems


def test_a_plan_has_every_field_with_defaults():
    plan = build_plan([{'weight': 10}, {'weight': '50', 'pause': '30', 'approval': 'yes'}, {'weight': 100}])
    assert plan == {
        'steps': [{'index': 0, 'weight': 10.0, 'pause': 60, 'analysis': True, 'approval': False},
                  {'index': 1, 'weight': 50.0, 'pause': 30, 'analysis': True, 'approval': True},
                  {'index': 2, 'weight': 100.0, 'pause': 60, 'analysis': False, 'approval': False}],
        'require_pass': False, 'max_duration': 1800.0, 'steps_order': 'increasing', 'judged_steps': [0, 1], 'judged_seconds': 90,
        'warnings': []}
    assert describe_plan(plan) == '3 steps: 10 % (60 s, judged), 50 % (30 s, judged, approval), 100 % (60 s)'
    assert check_plan(plan) is plan


def test_analysis_defaults_to_below_100_and_can_be_asked_for_at_100():
    plan = build_plan([{'weight': 50}, {'weight': 100, 'analysis': True}], analysis='true', pause='5')
    assert [step['analysis'] for step in plan['steps']] == [True, True]
    assert plan['judged_seconds'] == 10
    plan = build_plan([{'weight': 50}, {'weight': 100}], analysis=False, require_pass='yes')
    assert [step['analysis'] for step in plan['steps']] == [False, False]
    assert plan['judged_seconds'] == 0 and plan['require_pass'] is True


def test_decreasing_weights_are_refused_unless_the_order_is_any():
    assert problems([{'weight': 50}, {'weight': 10}, {'weight': 100}]) == [
        'rollout_steps[1]: weight 10 is not above the weight of the step before (50); steps must increase '
        '(set rollout_steps_order: any to allow this)']
    assert problems([{'weight': 50}, {'weight': 50}]) == [
        'rollout_steps[1]: weight 50 is not above the weight of the step before (50); steps must increase '
        '(set rollout_steps_order: any to allow this)']
    plan = build_plan([{'weight': 50}, {'weight': 10}, {'weight': 100}], steps_order='any')
    assert [step['weight'] for step in plan['steps']] == [50.0, 10.0, 100.0]


def test_every_problem_is_named_at_once():
    found = problems([{'weight': 0}, 'ten', {'weight': 'lots', 'pause': -1}, {'pause': 5, 'colour': 'red'},
                      {'weight': 150, 'analysis': 'maybe', 'approval': 2}, {'weight': 20, 'pause': 1.5}],
                     pause='x', analysis='perhaps', require_pass='?', max_duration='soon', steps_order='random')
    assert found == [
        "rollout_pause: 'x' is not a whole number of seconds >= 0",
        "rollout_analysis: 'perhaps' is not a boolean",
        "rollout_require_pass: '?' is not a boolean",
        "rollout_steps_order: 'random' is not one of increasing, any",
        found[4],
        'rollout_steps[0]: weight 0 is not above 0 and at most 100',
        "rollout_steps[1]: 'ten' is not a mapping (weight, and optionally pause, analysis and approval)",
        "rollout_steps[2]: weight 'lots' is not a number",
        'rollout_steps[2]: pause -1 is not a whole number of seconds >= 0',
        'rollout_steps[3]: unknown key colour (a step has weight, pause, analysis and approval)',
        'rollout_steps[3]: weight is missing (the canary percent, above 0 and at most 100)',
        'rollout_steps[4]: weight 150 is not above 0 and at most 100',
        "rollout_steps[4]: analysis 'maybe' is not a boolean",
        'rollout_steps[4]: approval 2 is not a boolean',
        'rollout_steps[5]: pause 1.5 is not a whole number of seconds >= 0',
    ]
    assert found[4].startswith("analysis_max_duration: invalid duration 'soon'")


@pytest.mark.parametrize('steps', [[], None, 'weight: 10', {'weight': 10}])
def test_the_steps_must_be_a_non_empty_list(steps):
    assert problems(steps)[0].startswith('rollout_steps: must be a non-empty list of steps')


@pytest.mark.parametrize('max_duration, seconds', [('30m', 1800.0), ('90', 90.0), (45, 45.0), ('1h', 3600.0),
                                                   ('2d', 172800.0), ('1h30m', 5400.0), (' 10s ', 10.0)])
def test_max_duration_uses_the_one_duration_parser(max_duration, seconds):
    assert build_plan([{'weight': 10}], max_duration=max_duration)['max_duration'] == seconds


def test_a_zero_deadline_is_refused():
    assert problems([{'weight': 10}], max_duration='0') == [
        "analysis_max_duration: '0' must be above 0 (seconds, or a number with s, m, h or d)"]


def test_judged_steps_longer_than_the_deadline_warn():
    plan = build_plan([{'weight': 10, 'pause': 600}, {'weight': 50, 'pause': 600}, {'weight': 100, 'pause': 6000}],
                      max_duration='15m')
    assert plan['judged_seconds'] == 1200
    assert plan['warnings'] == [
        'the judged steps last 1200 s but the analysis deadline (analysis_max_duration) is 900 s after the first '
        'step; the judge will be inconclusive before the last judged step ends']


def test_check_plan_refuses_what_build_plan_did_not_make():
    with pytest.raises(PlanError, match=r'plan.steps\[0\] is not a planned step'):
        check_plan({'steps': [{'weight': 10}], 'require_pass': False, 'max_duration': 60.0})
    with pytest.raises(PlanError, match='plan must be the plan'):
        check_plan(['steps'])
    with pytest.raises(PlanError, match='max_duration'):
        check_plan(dict(build_plan([{'weight': 10}]), max_duration=0))
