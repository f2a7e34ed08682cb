"""The hooks of playbooks/canary_release.yml (docs/changes.md) through real ansible-playbook runs on the local stack.

A before-canary hook that fails ends the release ``aborted`` before the canary gets the new version or any traffic;
hooks that pass are recorded in order as events of the record, each ``by`` the hook, and the release is promoted.
The steps are not judged (no load needed): the hooks, not the judge, are under test here (test_release.py judges).
"""

import os

import pytest
import yaml

from examples.local.stack import LocalStack, find_nginx, find_prometheus
from tests.integration.test_release import SERVICE, lock, record, release, release_vars, versions

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_nginx() is None or find_prometheus() is None, reason='nginx or prometheus is not installed'),
]


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    with LocalStack(str(tmp_path_factory.mktemp('stack')), stable=1, canary=1, baseline=0, stable_version='1') as local:
        yield local


def hook_file(tmp_path, name, fail=False):
    """A task file that leaves a marker file (the hook ran), or fails like a migration that cannot run."""
    path = tmp_path / ('%s.yml' % name)
    task = ({'name': 'The migration fails', 'ansible.builtin.fail': {'msg': 'column orders.customer_ref is missing'}}
            if fail else {'name': 'Leave a marker', 'ansible.builtin.copy': {'content': '%s\n' % name,
                                                                             'dest': str(tmp_path / name) + '.done',
                                                                             'mode': '0644'}})
    path.write_text(yaml.safe_dump([task], sort_keys=False))
    return str(path)


def quick_vars(stack, state_dir, version, **hooks):
    """Two unjudged steps of 1 s (the explicit timer opt-out): the release takes seconds, the hooks are what runs."""
    return release_vars(stack, state_dir, version, rollout_analysis=False, rollout_require_pass=False,
                        rollout_steps=[{'weight': 50, 'pause': 1}, {'weight': 100, 'pause': 1}], **hooks)


def test_a_failed_before_canary_hook_aborts_the_release_before_any_traffic(stack, tmp_path):
    state_dir = str(tmp_path / 'state')
    upstream, before = stack.upstream_text(), versions(stack)
    run = release(stack, tmp_path, 'abort', quick_vars(
        stack, state_dir, '2', rollout_before_canary_tasks=hook_file(tmp_path, 'expand', fail=True),
        rollout_after_rollback_tasks=hook_file(tmp_path, 'undo')))
    assert run.returncode == 2, run.stdout[-4000:] + run.stderr[-3000:]
    failed = [task for task in run.tasks if task['result'].get('failed') and not task['result'].get('skipped')]
    assert failed[-1]['name'].endswith('Stop, a hook failed'), failed
    assert failed[-1]['result']['msg'].startswith('sample 2: release aborted - the before_canary hook failed')
    # nothing moved: no traffic, the canary still runs the old version, no rollback hook (nothing to roll back)
    assert stack.upstream_text() == upstream and versions(stack) == before
    assert not os.path.exists(str(tmp_path / 'undo.done'))
    final = record(state_dir)
    assert final['status'] == 'aborted' and final['steps'] == [] and final['step'] is None and lock(state_dir) is None
    hook = os.path.join(str(tmp_path), 'expand.yml')
    assert final['reason'] == ('the before_canary hook failed (%s): column orders.customer_ref is missing - no traffic '
                               'moved' % hook)
    assert final['finished_by'] == {'kind': 'engine', 'name': 'hook before_canary', 'reason': hook}
    assert [event['message'] for event in final['events'][1:]] == [
        'sample 2: hook before_canary started (%s)' % hook,
        'sample 2: hook before_canary FAILED (%s): column orders.customer_ref is missing' % hook,
        'sample 2: aborted: ' + final['reason']]


def test_hooks_that_pass_are_recorded_in_order_and_the_release_is_promoted(stack, tmp_path):
    state_dir = str(tmp_path / 'state')
    names = ('before_canary', 'before_promote', 'after_promote')
    hooks = dict(('rollout_%s_tasks' % name, hook_file(tmp_path, name)) for name in names)
    run = release(stack, tmp_path, 'pass', quick_vars(stack, state_dir, '3', **hooks))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
    assert all(os.path.exists(str(tmp_path / name) + '.done') for name in names)
    final = record(state_dir)
    assert final['status'] == 'promoted' and versions(stack)['stable-1'] == '3'
    # the hooks' events, in order, around the steps and the promotion
    texts = [event['message'] for event in final['events']]
    marks = [texts.index('sample 3: hook %s %s (%s)' % (name, word, hooks['rollout_%s_tasks' % name]))
             for name in names for word in ('started', 'ok')]
    assert marks == sorted(marks), texts
    first_step = texts.index('sample 3: step 0 at 50 %')
    promoted = [index for index, text in enumerate(texts) if text.startswith('sample 3: promoted')][0]
    assert marks[1] < first_step and marks[2] > first_step and marks[3] < promoted < marks[4], texts
    # the audit trail: every step and the promotion say who decided (here the engine: the plan, the timer)
    assert [entry['by']['kind'] for entry in final['steps']] == ['engine', 'engine']
    assert final['finished_by'] == {'kind': 'engine', 'name': 'plan', 'reason': 'every step done'}
    assert all(event['by']['kind'] == 'engine' for event in final['events'] if 'hook' in event['message'])
