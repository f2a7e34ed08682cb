"""The hooks of playbooks/canary_release.yml (docs/changes.md) through real ansible-playbook runs on the local stack.

A before-canary hook that fails ends the release ``aborted`` before the canary gets the new version or any traffic;
hooks that pass are recorded in order as events of the record, each ``by`` the hook, and the release is promoted.
The steps are not judged (no load needed): the hooks, not the judge, are under test here (test_release.py judges).
"""

import os

import pytest
import yaml

from examples.local.stack import LocalStack, find_nginx, find_prometheus
from tests.integration.test_release import lock, messages, record, release, release_vars, versions

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_nginx() is None or find_prometheus() is None, reason='nginx or prometheus is not installed'),
]


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    with LocalStack(str(tmp_path_factory.mktemp('stack')), stable=1, canary=1, baseline=0, stable_version='1') as local:
        yield local


def hook_file(tmp_path, name, fail=False):
    """A task file that says it ran (a debug task: no module to ship), or fails like a migration that cannot run."""
    path = tmp_path / ('%s.yml' % name)
    task = ({'name': 'The migration fails', 'ansible.builtin.fail': {'msg': 'column orders.customer_ref is missing'}}
            if fail else {'name': 'Say the hook ran', 'ansible.builtin.debug': {'msg': 'hook %s ran' % name}})
    path.write_text(yaml.safe_dump([task], sort_keys=False))
    return str(path)


def quick_vars(stack, state_dir, version, **hooks):
    """One unjudged step without a pause (the explicit timer opt-out): the hooks are what runs, in seconds."""
    return release_vars(stack, state_dir, version, rollout_analysis=False, rollout_require_pass=False,
                        rollout_steps=[{'weight': 100, 'pause': 0}], **hooks)


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
    assert messages(run, 'Say the hook ran') == []
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
    assert messages(run, 'Say the hook ran') == ['hook %s ran' % name for name in names]
    final = record(state_dir)
    assert final['status'] == 'promoted' and versions(stack)['stable-1'] == '3'
    # the hooks' events, in order, around the steps and the promotion
    texts = [event['message'] for event in final['events']]
    marks = [texts.index('sample 3: hook %s %s (%s)' % (name, word, hooks['rollout_%s_tasks' % name]))
             for name in names for word in ('started', 'ok')]
    assert marks == sorted(marks), texts
    # a step without analysis, pause or gate is recorded once, with its verdict (one engine turn)
    first_step = texts.index('sample 3: step 0 at 100 %, verdict watched: no analysis at this step; held 0 s')
    promoted = [index for index, text in enumerate(texts) if text.startswith('sample 3: promoted')][0]
    assert marks[1] < first_step and marks[2] > first_step and marks[3] < promoted < marks[4], texts
    # the audit trail: the step and the promotion say who decided (here the engine: its pause, the plan)
    assert [entry['by'] for entry in final['steps']] == [{'kind': 'engine', 'name': 'pause',
                                                          'reason': 'no analysis at this step'}]
    assert final['finished_by'] == {'kind': 'engine', 'name': 'plan', 'reason': 'every step done'}
    assert all(event['by']['kind'] == 'engine' for event in final['events'] if 'hook' in event['message'])
