"""canary.release.rollout_state's action plugin: on the controller it performs the request in the worker process,
with the module's result, failures, warnings, diff and files; anywhere else the module runs.

One ansible-playbook run on localhost walks the same release twice, each in its own state directory: once on the
plain local connection (the action plugin performs every request in the worker process; its results carry no
``invocation``, which only a module run adds) and once with a task ``environment`` (which makes the plugin run the
module, as it does over SSH or with become). Both walks must answer alike: the engine's actions and messages,
``changed``, the diff, a refused event's message, an invalid argument's message, a stale lock's warning in check
mode - and leave the same record on disk, apart from times and run ids.
"""

import json
import os
import re
import socket

import pytest

from tests.support.playbook import run_playbook

pytestmark = pytest.mark.integration

PLAN_STEPS = [{'weight': 10, 'pause': 0, 'analysis': False}, {'weight': 100, 'pause': 0, 'analysis': False}]
VOLATILE = ('at', 'started_at', 'updated_at', 'finished_at', 'run_id', 'pid', 'pid_start', 'boot_id', 'host')


def walk(name, state_dir, environment):
    """The tasks of one walk: plan, begin, the engine's turns, a refused event, an invalid argument, check mode."""
    common = {'service': 'web', 'state_dir': state_dir}
    tasks = [
        {'name': name + ' plan', 'register': 'planned',
         'canary.release.rollout_state': dict(common, operation='plan', steps=PLAN_STEPS, require_pass=False)},
        {'name': name + ' begin', 'register': 'begun',
         'canary.release.rollout_state': dict(common, operation='begin', version='2', previous_version='1')},
    ]
    advance = dict(common, operation='advance', version='2', run_id='{{ begun.run_id }}', plan='{{ planned.plan }}')
    for label, event in (('begun', {'kind': 'begun'}), ('deployed', {'kind': 'deployed'}),
                         ('step 0', {'kind': 'traffic_set', 'step': 0, 'weight': 10}),
                         ('step 1', {'kind': 'traffic_set', 'step': 1, 'weight': 100})):
        tasks.append({'name': '%s advance %s' % (name, label), 'canary.release.rollout_state': dict(advance, event=event),
                      'diff': True})
    tasks += [
        {'name': name + ' refused event', 'ignore_errors': True,
         'canary.release.rollout_state': dict(advance, event={'kind': 'traffic_set', 'step': 0, 'weight': 10})},
        {'name': name + ' invalid argument', 'ignore_errors': True,
         'canary.release.rollout_state': dict(common, operation='read', colour='blue')},
        {'name': name + ' finish',
         'canary.release.rollout_state': dict(common, operation='finish', version='2', status='promoted',
                                              run_id='{{ begun.run_id }}')},
        {'name': name + ' read', 'canary.release.rollout_state': dict(common, operation='read')},
    ]
    if environment:
        for task in tasks:
            task['environment'] = environment
    return tasks


def stable(value):
    """``value`` without what differs from run to run (times, run ids, the lock owner's process)."""
    if isinstance(value, dict):
        return dict((key, stable(item)) for key, item in value.items() if key not in VOLATILE)
    if isinstance(value, list):
        return [stable(item) for item in value]
    if isinstance(value, str):
        return re.sub(r'\brun [0-9a-f]{32}\b', 'run <id>', value)
    return value


def test_the_controller_path_answers_as_the_module_does(tmp_path):
    in_process, by_module = str(tmp_path / 'in_process'), str(tmp_path / 'module')
    run = run_playbook(walk('plugin', in_process, None) + walk('module', by_module, {'CANARY_TEST': 'module'}),
                       diff=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    results = dict((task['name'], task['result']) for task in run.tasks)
    labels = [name[len('plugin '):] for name in results if name.startswith('plugin ')]
    assert len(labels) == 10, labels
    for label in labels:
        plugin, module = results['plugin ' + label], results['module ' + label]
        assert 'invocation' not in plugin, label    # performed in the worker process
        assert 'invocation' in module, label        # a module run
        for key in ('changed', 'failed', 'outcome', 'state', 'state_after', 'next_step'):
            assert plugin.get(key) == module.get(key), (label, key, plugin.get(key), module.get(key))
        texts = [stable((result.get('message') or '').replace(state_dir, ''))
                 for result, state_dir in ((plugin, in_process), (module, by_module))]
        assert texts[0] == texts[1], label
        assert stable(plugin.get('record')) == stable(module.get('record')), label
        assert bool(plugin.get('diff')) == bool(module.get('diff')), label
    assert results['plugin advance step 0']['message'] == 'web 2: step 0 at 10 %, verdict watched: no analysis at this step; held 0 s'
    assert results['plugin advance step 1']['outcome'] == 'promoting'
    assert results['plugin refused event']['failed'] and 'traffic_set for step 0 does not apply' in results['plugin refused event']['msg']
    assert results['plugin invalid argument']['msg'] == results['module invalid argument']['msg'].replace(
        '(basic.py)', '(canary.release.rollout_state)')
    assert 'colour' in results['plugin invalid argument']['msg']
    # the files: the same record, mode 0600 in a 0700 directory
    records = []
    for state_dir in (in_process, by_module):
        path = os.path.join(state_dir, 'web.json')
        assert oct(os.stat(path).st_mode & 0o777) == '0o600' and oct(os.stat(state_dir).st_mode & 0o777) == '0o700'
        with open(path, encoding='utf-8') as handle:
            records.append(stable(json.load(handle)))
    assert records[0] == records[1] and records[0]['status'] == 'promoted'
    assert [event['message'] for event in records[0]['events']][-1] == 'web 2: promoted'


def test_check_mode_and_warnings_on_the_controller_path(tmp_path):
    """A stale lock is taken over with the module's warning; check mode writes nothing."""
    state_dir = str(tmp_path / 'state')
    common = {'service': 'web', 'state_dir': state_dir}
    tasks = [
        {'name': 'begin',
         'canary.release.rollout_state': dict(common, operation='begin', version='2',
                                              owner={'pid': 999999999, 'host': socket.gethostname()})},
        {'name': 'take over', 'canary.release.rollout_state': dict(common, operation='begin', version='2'),
         'register': 'taken'},
        {'name': 'would finish', 'check_mode': True,
         'canary.release.rollout_state': dict(common, operation='finish', version='2', status='promoted',
                                              run_id='{{ taken.run_id }}')},
        {'name': 'read', 'canary.release.rollout_state': dict(common, operation='read')},
    ]
    run = run_playbook(tasks)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    taken = run.result('take over')
    assert 'invocation' not in taken
    assert any('is no longer running' in warning for warning in taken['warnings']), taken
    would = run.result('would finish')
    assert would['changed'] and would['record']['status'] == 'promoted'
    assert run.result('read')['record']['status'] == 'running'  # check mode wrote nothing
