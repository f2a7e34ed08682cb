"""The step plan: build_plan validates rollout_steps once and names every problem."""

import os

import pytest
import yaml

from ansible_collections.canary.release.plugins.module_utils._rollout.plan import (
    REQUIRE_PASS,
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
        'preset': None, 'require_pass': True, 'max_duration': 1800.0, 'steps_order': 'increasing',
        'judged_steps': [0, 1], 'judged_seconds': 90,
        'warnings': []}
    assert describe_plan(plan) == '3 steps: 10 % (60 s, judged), 50 % (30 s, judged, approval), 100 % (60 s)'
    assert check_plan(plan) is plan


def test_analysis_defaults_to_below_100_and_can_be_asked_for_at_100():
    plan = build_plan([{'weight': 50}, {'weight': 100, 'analysis': True}], analysis='true', pause='5')
    assert [step['analysis'] for step in plan['steps']] == [True, True]
    assert plan['judged_seconds'] == 10
    plan = build_plan([{'weight': 50}, {'weight': 100}], analysis=False, require_pass='no')
    assert [step['analysis'] for step in plan['steps']] == [False, False]
    assert plan['judged_seconds'] == 0 and plan['require_pass'] is False


def test_promotion_on_evidence_is_the_default_and_false_is_the_opt_out():
    assert build_plan([{'weight': 10}, {'weight': 100}])['require_pass'] is True
    assert build_plan([{'weight': 10}, {'weight': 100}], require_pass='false')['require_pass'] is False


def test_the_rollout_role_has_the_engines_default():
    """roles/rollout's default and its documented default are the plan's (and rollout_state's, which uses it)."""
    role = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', '..', 'roles', 'rollout')
    with open(os.path.join(role, 'defaults', 'main.yml'), encoding='utf-8') as handle:
        defaults = yaml.safe_load(handle)
    with open(os.path.join(role, 'meta', 'argument_specs.yml'), encoding='utf-8') as handle:
        spec = yaml.safe_load(handle)['argument_specs']['main']['options']['rollout_require_pass']
    assert defaults['rollout_require_pass'] is spec['default'] is REQUIRE_PASS is True


NO_EVIDENCE = ('rollout_steps: no step is judged and none has an approval gate, so nothing but the pauses would '
               'decide the promotion; judge a step (analysis: true on a step, or rollout_analysis: true for the '
               'steps below 100 %), give a step approval: true, or set rollout_require_pass: false to promote on '
               'timer')


@pytest.mark.parametrize('steps, options', [
    ([{'weight': 10}, {'weight': 100}], {'analysis': False}),
    ([{'weight': 10, 'analysis': False}, {'weight': 50, 'analysis': 'no'}, {'weight': 100}], {}),
    ([{'weight': 100}], {}),  # 100 % is not judged unless a step says so
], ids=['rollout_analysis false', 'every step without analysis', 'one step at 100 %'])
def test_a_plan_without_a_judged_step_or_a_gate_is_refused_when_a_pass_is_required(steps, options):
    assert problems(steps, **options) == [NO_EVIDENCE]
    assert build_plan(steps, require_pass=False, **options)['judged_steps'] == []  # the opt-out: on timer


def test_a_gate_or_one_judged_step_is_evidence_enough():
    gated = build_plan([{'weight': 10, 'approval': True}, {'weight': 100}], analysis=False)
    assert gated['judged_steps'] == [] and gated['steps'][0]['approval'] is True
    assert build_plan([{'weight': 10}, {'weight': 50, 'analysis': True}, {'weight': 100}],
                      analysis=False)['judged_steps'] == [1]


def test_the_evidence_rule_waits_for_readable_steps_and_names_the_other_problems():
    # a step that cannot be read may be the judged one: its own problem is named, not a guess about the evidence
    assert problems([{'weight': 10, 'analysis': 'maybe'}, {'weight': 100}]) == [
        "rollout_steps[0]: analysis 'maybe' is not a boolean"]
    assert problems([{'weight': 'ten'}, {'weight': 100}], analysis=False) == [
        "rollout_steps[0]: weight 'ten' is not a number"]
    assert problems([{'weight': 10}, {'weight': 100}], analysis='perhaps') == [
        "rollout_analysis: 'perhaps' is not a boolean"]
    # readable steps: every problem at once, the evidence rule with them
    assert problems([{'weight': 10, 'pause': -1}, {'weight': 100}], analysis=False) == [
        'rollout_steps[0]: pause -1 is not a whole number of seconds >= 0', NO_EVIDENCE]


FULL_WEIGHT = ('step {} at 100 % is the first judged step: at 100 % a baseline behind the same load balancer gets no '
               'traffic, so the judge cannot pass there and the step holds for a person at the deadline '
               '(analysis_max_duration); judge a step below 100 % first, unless the baseline gets its traffic '
               'elsewhere')


def test_a_judged_100_percent_step_with_no_judged_step_below_it_first_warns():
    alone = build_plan([{'weight': 100, 'analysis': True}])
    assert alone['judged_steps'] == [0] and alone['warnings'] == [FULL_WEIGHT.format(0)]
    after_a_gate = build_plan([{'weight': 10, 'analysis': False, 'approval': True},
                               {'weight': 100, 'analysis': True}])
    assert after_a_gate['warnings'] == [FULL_WEIGHT.format(1)]
    # a judged step below 100 % first: the judge passed there before the canary takes everything
    assert build_plan([{'weight': 10}, {'weight': 100, 'analysis': True}])['warnings'] == []
    assert build_plan([{'weight': 10}, {'weight': 100}])['warnings'] == []


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


@pytest.mark.parametrize('steps', ['weight: 10', {'weight': 10}, 10])
def test_the_steps_must_be_a_list(steps):
    assert problems(steps)[0].startswith('rollout_steps: must be a non-empty list of steps')


@pytest.mark.parametrize('max_duration, seconds', [('30m', 1800.0), ('90', 90.0), (45, 45.0), ('1h', 3600.0),
                                                   ('2d', 172800.0), ('1h30m', 5400.0), (' 10s ', 10.0)])
def test_max_duration_uses_the_one_duration_parser(max_duration, seconds):
    assert build_plan([{'weight': 10}], max_duration=max_duration)['max_duration'] == seconds


def test_a_zero_deadline_is_refused():
    assert problems([{'weight': 10}], max_duration='0') == [
        "analysis_max_duration: '0' must be above 0 (seconds, or a number with s, m, h or d)"]


def test_judged_step_longer_than_the_deadline_warns():
    # Each judged step has its own deadline from its start: two 10-minute steps fit a 15-minute deadline (they did
    # not when it counted from the first step), a 20-minute one does not; the unjudged 100 % soak does not count.
    plan = build_plan([{'weight': 10, 'pause': 600}, {'weight': 50, 'pause': 600}, {'weight': 100, 'pause': 6000}],
                      max_duration='15m')
    assert plan['judged_seconds'] == 1200 and plan['warnings'] == []
    plan = build_plan([{'weight': 10, 'pause': 600}, {'weight': 50, 'pause': 1200}, {'weight': 100, 'pause': 6000}],
                      max_duration='15m')
    assert plan['warnings'] == [
        'step 1 pauses 1200 s but the analysis deadline (analysis_max_duration) is 900 s after a step begins; the '
        'judge will be inconclusive before the step ends']


def test_check_plan_refuses_what_build_plan_did_not_make():
    with pytest.raises(PlanError, match=r'plan.steps\[0\] is not a planned step'):
        check_plan({'steps': [{'weight': 10}], 'require_pass': False, 'max_duration': 60.0})
    with pytest.raises(PlanError, match='plan must be the plan'):
        check_plan(['steps'])
    with pytest.raises(PlanError, match='max_duration'):
        check_plan(dict(build_plan([{'weight': 10}]), max_duration=0))
