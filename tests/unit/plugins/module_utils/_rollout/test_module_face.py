"""The module face of the engine: canary.release.rollout_state with operation plan and advance."""

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.canary.release.plugins.modules import rollout_state as module


def call(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def test_plan_validates_once_and_fails_with_every_problem(capsys):
    result = call(capsys, operation='plan', service='web', steps=[{'weight': 10}, {'weight': 50, 'approval': True},
                                                                  {'weight': 100}], pause='30', max_duration='1m')
    assert result['changed'] is False and [step['weight'] for step in result['plan']['steps']] == [10.0, 50.0, 100.0]
    assert result['message'] == 'web: 3 steps: 10 % (30 s, judged), 50 % (30 s, judged, approval), 100 % (30 s)'
    assert 'record' not in result
    failed = call(capsys, operation='plan', service='web', steps=[{'weight': 50}, {'weight': 10}, {'weight': 100}])
    assert failed['failed'] is True
    assert failed['msg'] == ('rollout of web: rollout_steps[1]: weight 10 is not above the weight of the step before '
                             '(50); steps must increase (set rollout_steps_order: any to allow this)')
    assert call(capsys, operation='plan', service='web', steps_order='any',
                steps=[{'weight': 50}, {'weight': 10}, {'weight': 100}])['plan']['steps_order'] == 'any'


def test_plan_takes_a_preset_and_warns_when_steps_win(capsys):
    result = call(capsys, operation='plan', service='web', preset='CodeDeployDefault.ECSCanary10Percent15Minutes')
    assert result['message'] == 'web: preset canary_10_15m, 2 steps: 10 % (900 s, judged), 100 % (0 s)'
    assert result['plan']['warnings'] == []
    both = call(capsys, operation='plan', service='web', preset='progressive', steps=[{'weight': 50}, {'weight': 100}])
    assert [step['weight'] for step in both['plan']['steps']] == [50.0, 100.0]
    assert both['plan']['warnings'] == ['rollout_steps is set, so rollout_preset progressive is not used']
    failed = call(capsys, operation='plan', service='web', preset='Canary10Percent')
    assert failed['failed'] is True and failed['msg'].startswith(
        "rollout of web: rollout_preset: 'Canary10Percent' is not a preset")
    default = call(capsys, operation='plan', service='web')
    assert [step['weight'] for step in default['plan']['steps']] == [5.0, 25.0, 50.0, 100.0]


def test_advance_records_and_answers(capsys, tmp_path):
    state_dir = str(tmp_path)
    plan = call(capsys, operation='plan', service='web', steps=[{'weight': 10}, {'weight': 100}])['plan']
    begun = call(capsys, operation='begin', service='web', version='2', state_dir=state_dir)
    common = dict(operation='advance', service='web', version='2', run_id=begun['run_id'], state_dir=state_dir,
                  plan=plan)
    first = call(capsys, event={'kind': 'begun'}, approval='approve', approval_mode='auto', awx=True, **common)
    assert first['action'] == {'kind': 'deploy', 'label': 'web 2'} and first['changed'] is False
    assert first['outcome'] == 'running' and first['state'] == 'new'
    step = call(capsys, event={'kind': 'traffic_set', 'step': 0, 'weight': 10}, _ansible_diff=True, **common)
    assert step['changed'] is True and step['action']['kind'] == 'analyse' and step['message'] == 'web 2: step 0 at 10 %'
    assert step['diff']['before'] != step['diff']['after']
    wrong = call(capsys, event={'kind': 'traffic_set', 'step': 1, 'weight': 100}, **common)
    assert wrong['failed'] is True and 'traffic_set for step 1 does not apply' in wrong['msg']
    text = call(capsys, event='not a dict', **common)
    assert text['failed'] is True and text['msg'].startswith('event must be a dict with kind')


def test_advance_in_check_mode_writes_nothing(capsys, tmp_path):
    state_dir = str(tmp_path / 'none')
    plan = call(capsys, operation='plan', service='web', steps=[{'weight': 10}, {'weight': 100}])['plan']
    common = dict(operation='advance', service='web', version='2', run_id='check', state_dir=state_dir, plan=plan,
                  _ansible_check_mode=True)
    first = call(capsys, event={'kind': 'begun'}, **common)
    assert first['action']['kind'] == 'deploy'
    second = call(capsys, event={'kind': 'deployed'}, record=first['record'], **common)
    third = call(capsys, event={'kind': 'traffic_set', 'step': 0, 'weight': 10}, record=second['record'], **common)
    assert third['changed'] is True and third['message'] == 'web 2: step 0 at 10 % (check mode, not recorded)'
    assert not (tmp_path / 'none').exists()
