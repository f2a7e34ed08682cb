"""Hooks of a release (before_canary, before_promote, after_promote, after_rollback): what a hook's start, success
or failure means is decided by hooks.hook_outcome, and state.hook records it under the lock."""

import os

import pytest

from ansible_collections.canary.release.plugins.module_utils._rollout import hooks
from ansible_collections.canary.release.plugins.module_utils._rollout import lock as state_lock
from ansible_collections.canary.release.plugins.module_utils._rollout import state as rs
from ansible_collections.canary.release.plugins.module_utils._rollout.record import finished, started, with_step

NOW = 1738324800.0  # 2025-01-31T12:00:00Z
ENGINE_BY = {'kind': 'engine', 'name': 'hook before_canary', 'reason': 'hooks/expand.yml'}


def fresh():
    return started('web', '2', '1', 'run1', NOW)[0]


def test_start_and_ok_are_events_by_the_hook_and_change_nothing_else():
    record = fresh()
    begun = hooks.hook_outcome(record, 'before_canary', 'start', NOW + 1, tasks='hooks/expand.yml')
    assert begun['decision'] == 'continue' and begun['action'] is None and begun['finish'] is None
    assert begun['message'] == 'web 2: hook before_canary started (hooks/expand.yml)'
    assert begun['record']['events'][-1] == {'at': '2025-01-31T12:00:01Z', 'message': begun['message'],
                                             'by': ENGINE_BY}
    passed = hooks.hook_outcome(begun['record'], 'before_canary', 'ok', NOW + 2, tasks='hooks/expand.yml')
    assert passed['message'] == 'web 2: hook before_canary ok (hooks/expand.yml)'
    assert passed['record']['status'] == 'running' and passed['record']['step'] is None
    assert [event['message'] for event in passed['record']['events'][-2:]] == [begun['message'], passed['message']]
    assert record == fresh()  # the input is not modified


def test_a_failed_before_canary_hook_aborts_the_release_before_any_traffic():
    result = hooks.hook_outcome(fresh(), 'before_canary', 'failed', NOW + 3, reason='column  missing\n',
                                tasks='hooks/expand.yml')
    record = result['record']
    assert result['decision'] == 'abort' and result['finish'] == 'aborted'
    assert record['status'] == 'aborted' and record['step'] is None and record['finished_at'] == '2025-01-31T12:00:03Z'
    assert record['reason'] == 'the before_canary hook failed (hooks/expand.yml): column missing - no traffic moved'
    assert record['finished_by'] == ENGINE_BY
    assert result['action'] == {'kind': 'done', 'outcome': 'aborted', 'reason': record['reason'], 'label': 'web 2'}
    assert [event['message'] for event in record['events'][-2:]] == [
        'web 2: hook before_canary FAILED (hooks/expand.yml): column missing',
        'web 2: aborted: ' + record['reason']]


def test_a_before_canary_hook_after_traffic_moved_is_refused():
    record = with_step(fresh(), 0, 10, None, None, None, NOW + 1)[0]
    with pytest.raises(hooks.HookError, match='runs before any traffic, but the rollout is at step 0'):
        hooks.hook_outcome(record, 'before_canary', 'failed', NOW + 2)


def test_a_failed_before_promote_hook_is_a_rollback_and_finishes_nothing():
    record = with_step(fresh(), 0, 100, 'pass', 'ok', None, NOW + 1)[0]
    result = hooks.hook_outcome(record, 'before_promote', 'failed', NOW + 2, reason='contract check: 2 consumers break')
    assert result['decision'] == 'rollback' and result['finish'] is None
    assert result['record']['status'] == 'running'
    assert result['action'] == {
        'kind': 'rollback', 'label': 'web 2',
        'reason': 'the before_promote hook failed: contract check: 2 consumers break - no traffic moved up',
        'by': {'kind': 'engine', 'name': 'hook before_promote'}}


@pytest.mark.parametrize('point, status', [('after_promote', 'promoted'), ('after_rollback', 'rolled_back')])
def test_a_failed_after_hook_is_reported_not_undone(point, status):
    record = finished(fresh(), status, 'why', NOW + 1)[0]
    result = hooks.hook_outcome(record, point, 'failed', NOW + 2, reason='contract migration: lock timeout')
    assert result['decision'] == 'report' and result['action'] is None and result['finish'] is None
    assert result['record']['status'] == status
    assert result['record']['events'][-1]['message'] == 'web 2: hook %s FAILED: contract migration: lock timeout' % point


def test_a_hook_at_the_wrong_point_is_refused_outside_check_mode():
    with pytest.raises(hooks.HookError, match='the after_promote hook does not apply: the rollout is running, not '
                                              'promoted'):
        hooks.hook_outcome(fresh(), 'after_promote', 'start', NOW)
    # check mode wrote nothing, so its record is still running at the after_ points
    assert hooks.hook_outcome(fresh(), 'after_promote', 'start', NOW, check_mode=True)['decision'] == 'continue'
    with pytest.raises(hooks.HookError, match='hook must be one of'):
        hooks.hook_outcome(fresh(), 'before_deploy', 'start', NOW)
    with pytest.raises(hooks.HookError, match='hook status must be one of'):
        hooks.hook_outcome(fresh(), 'before_canary', 'done', NOW)


def test_every_point_has_a_decision_for_failure():
    assert set(hooks.ON_FAILURE) == set(hooks.HOOK_POINTS) == set(hooks.EXPECTED_STATUS)


def test_state_hook_records_on_disk_and_an_abort_releases_the_lock(tmp_path):
    state_dir = str(tmp_path / 'state')
    owner = state_lock.local_identity()
    owner.update(pid=os.getpid(), pid_start=state_lock.process_start(os.getpid()))
    begun = rs.begin(state_dir, 'web', '2', owner=owner, now=NOW)
    run_id = begun['run_id']
    ok = rs.hook(state_dir, 'web', '2', 'before_canary', 'start', run_id=run_id, now=NOW + 1)
    assert ok['changed'] and ok['decision'] == 'continue' and ok['lock'] is not None
    check = rs.hook(state_dir, 'web', '2', 'before_canary', 'failed', reason='no', run_id=run_id, now=NOW + 2,
                    check_mode=True)
    assert check['finish'] == 'aborted' and rs.read(state_dir, 'web')['record']['status'] == 'running'
    aborted = rs.hook(state_dir, 'web', '2', 'before_canary', 'failed', reason='no', run_id=run_id, now=NOW + 2)
    assert aborted['finish'] == 'aborted' and aborted['lock'] is None
    on_disk = rs.read(state_dir, 'web')
    assert on_disk['record']['status'] == 'aborted' and on_disk['lock'] is None
    with pytest.raises(rs.StateError, match='does not apply: the rollout is aborted'):
        rs.hook(state_dir, 'web', '2', 'before_promote', 'start', run_id=run_id, now=NOW + 3)
