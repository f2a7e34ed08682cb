"""Step presets: rollout_preset names a step list, in our spelling or CodeDeploy's."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._rollout.plan import PlanError, build_plan, describe_plan
from ansible_collections.canary.release.plugins.module_utils._rollout.presets import (DEFAULT_STEPS, EXAMPLES,
                                                                                      PresetError, preset_steps)


def weights_and_pauses(name):
    steps, dummy = preset_steps(name)
    return [(step['weight'], step['pause']) for step in steps]


@pytest.mark.parametrize('name, expected', [
    ('canary_10_5m', [(10, 300), (100, 0)]),
    ('canary_10_15m', [(10, 900), (100, 0)]),
    ('canary_10_30m', [(10, 1800), (100, 0)]),
    ('linear_10_every_1m', [(weight, 60) for weight in range(10, 100, 10)] + [(100, 0)]),
    ('linear_10_every_3m', [(weight, 180) for weight in range(10, 100, 10)] + [(100, 0)]),
    ('all_at_once', [(100, 0)]),
    ('progressive', [(5, 1800), (10, 1800), (25, 1800), (50, 1800), (100, 0)]),
    ('canary_25_2m', [(25, 120), (100, 0)]),
    ('linear_30_every_2m', [(30, 120), (60, 120), (90, 120), (100, 0)]),
])
def test_each_preset_means_what_codedeploy_and_the_plan_say(name, expected):
    assert weights_and_pauses(name) == expected


@pytest.mark.parametrize('codedeploy, ours', [
    ('Canary10Percent5Minutes', 'canary_10_5m'),
    ('CodeDeployDefault.ECSCanary10Percent15Minutes', 'canary_10_15m'),
    ('CodeDeployDefault.LambdaCanary10Percent30Minutes', 'canary_10_30m'),
    ('LambdaLinear10PercentEvery1Minute', 'linear_10_every_1m'),
    ('CodeDeployDefault.ECSLinear10PercentEvery3Minutes', 'linear_10_every_3m'),
    ('CodeDeployDefault.AllAtOnce', 'all_at_once'),
    ('ECSAllAtOnce', 'all_at_once'),
])
def test_codedeploy_names_are_the_same_presets(codedeploy, ours):
    assert preset_steps(codedeploy) == preset_steps(ours)
    assert preset_steps(codedeploy)[1] == ours


@pytest.mark.parametrize('name', ['canary_10', 'canary_0_5m', 'canary_100_5m', 'canary_10_0m', 'linear_0_every_1m',
                                  'Canary10Percent', 'fast', 'PROGRESSIVE', '', None, 10])
def test_an_unknown_preset_is_refused_with_the_names_that_exist(name):
    with pytest.raises(PresetError) as caught:
        preset_steps(name)
    assert str(caught.value).startswith('rollout_preset: %r is not a preset' % (name,))
    assert 'canary_10_5m' in str(caught.value) and 'progressive' in str(caught.value)


@pytest.mark.parametrize('name', EXAMPLES)
def test_every_documented_preset_plans(name):
    plan = build_plan([], preset=name, require_pass=name != 'all_at_once')
    assert plan['preset'] == name
    assert plan['steps'][-1]['weight'] == 100.0 and plan['steps'][-1]['pause'] == 0
    assert plan['steps'][-1]['analysis'] is False
    assert all(step['analysis'] for step in plan['steps'][:-1])
    assert plan['warnings'] == []
    assert describe_plan(plan).startswith('preset %s, ' % name)


def test_without_steps_or_preset_the_plan_is_the_default_one():
    for steps in (None, [], ''):
        plan = build_plan(steps, pause=30)
        assert [(step['weight'], step['pause']) for step in plan['steps']] == \
            [(float(step['weight']), 30) for step in DEFAULT_STEPS]
        assert plan['preset'] is None


def test_explicit_steps_win_over_a_preset_with_a_warning():
    plan = build_plan([{'weight': 20}, {'weight': 100}], preset='Canary10Percent5Minutes')
    assert [step['weight'] for step in plan['steps']] == [20.0, 100.0]
    assert plan['preset'] is None
    assert plan['warnings'] == ['rollout_steps is set, so rollout_preset canary_10_5m is not used']


def test_an_unknown_preset_is_refused_even_beside_steps_with_every_other_problem():
    with pytest.raises(PlanError) as caught:
        build_plan([{'weight': 20}, {'weight': 200}], preset='canary_10')
    assert caught.value.problems[0].startswith("rollout_preset: 'canary_10' is not a preset")
    assert caught.value.problems[1] == 'rollout_steps[1]: weight 200 is not above 0 and at most 100'


def test_all_at_once_needs_the_timer_opt_out_or_a_gate():
    with pytest.raises(PlanError) as caught:
        build_plan(None, preset='all_at_once')
    assert caught.value.problems[0].startswith('rollout_steps: no step is judged and none has an approval gate')
    assert build_plan(None, preset='all_at_once', require_pass=False)['steps'] == [
        {'index': 0, 'weight': 100.0, 'pause': 0, 'analysis': False, 'approval': False}]


def test_a_preset_with_analysis_off_is_not_judged():
    with pytest.raises(PlanError):
        build_plan(None, preset='canary_10_5m', analysis=False)
    plan = build_plan(None, preset='canary_10_5m', analysis=False, require_pass=False)
    assert plan['judged_steps'] == []


def test_a_preset_longer_than_the_analysis_deadline_warns():
    plan = build_plan(None, preset='progressive', max_duration='10m')
    assert plan['warnings'] == ['step 0 pauses 1800 s but the analysis deadline (analysis_max_duration) is 600 s '
                                'after a step begins; the judge will be inconclusive before the step ends']
