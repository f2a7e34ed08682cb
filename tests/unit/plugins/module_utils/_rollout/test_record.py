"""The record's pure transforms: nothing is modified in place, every time in one format."""

import copy

from ansible_collections.canary.release.plugins.module_utils._rollout import engine, record, vocabulary

NOW = 1738324800.0  # 2025-01-31T12:00:00Z


def test_times_round_trip_in_one_format():
    assert record.format_time(NOW) == '2025-01-31T12:00:00Z'
    assert record.parse_time('2025-01-31T12:00:00Z') == NOW
    assert record.parse_time('yesterday') is None and record.parse_time(None) is None


def test_with_step_is_pure_and_keeps_started_at_at_the_same_weight():
    start, message = record.started('web', '2', '1', 'run1', NOW)
    assert message == 'web 2: rollout started (previous version 1) by run run1'
    frozen = copy.deepcopy(start)
    begun, message = record.with_step(start, 0, 10, None, None, None, NOW + 10)
    assert start == frozen and message == 'web 2: step 0 at 10 %'
    assert begun['steps'] == [{'index': 0, 'weight': 10.0, 'verdict': None, 'reason': None,
                               'at': '2025-01-31T12:00:10Z', 'started_at': '2025-01-31T12:00:10Z'}]
    judged, message = record.with_step(begun, 0, 10.0, 'fail', 'errors: 5x', None, NOW + 20)
    assert message == 'web 2: step 0 at 10 %, verdict fail: errors: 5x'
    assert judged['steps'][0]['started_at'] == '2025-01-31T12:00:10Z' and judged['updated_at'] == '2025-01-31T12:00:20Z'
    assert judged['events'][-1] == {'at': '2025-01-31T12:00:20Z', 'message': message}
    same, dummy = record.with_step(judged, 0, 10.0, 'fail', 'errors: 5x', None, NOW + 30)
    assert same == judged  # nothing new: no event, no updated_at
    paused, message = record.with_step(judged, 0, 12.5, None, None, 'paused', NOW + 40)
    assert message == 'web 2: step 0 at 12.5 % (paused)' and paused['steps'][0]['started_at'] == '2025-01-31T12:00:40Z'


def test_finished_and_resumed():
    start = record.started('web', '2', '1', 'run1', NOW)[0]
    at_step = record.with_step(start, 1, 50, 'awaiting_approval', 'gate', None, NOW)[0]
    paused, message = record.finished(at_step, 'paused', 'approval gate after step 1', NOW + 5)
    assert message == 'web 2: paused at step 1 (50 %), lock released: approval gate after step 1'
    assert paused['finished_at'] is None and paused['reason'] is None and at_step['status'] == 'running'
    again, message = record.resumed(paused, 'run2', NOW + 9)
    assert message == 'web 2: resumed at step 1 (50 %) by run run2' and again['status'] == 'running'
    rolled, message = record.finished(again, 'rolled_back', 'step 1 at 50 %, rejected (at the prompt)', NOW + 20)
    assert message == 'web 2: rolled back to 1: step 1 at 50 %, rejected (at the prompt)'
    assert rolled['finished_at'] == '2025-01-31T12:00:20Z'
    assert record.derived_previous(rolled) == '1'
    assert record.derived_previous(record.finished(again, 'promoted', None, NOW)[0]) == '2'


def test_positions():
    start = record.new_record('web', '2', None, 'run', NOW)
    assert record.describe_position(start) == 'before the first step' and record.next_step(start) == 0
    done = record.with_step(start, 1, 25, 'pass', None, None, NOW)[0]
    assert record.describe_position(done) == 'at step 1 (25 %)' and record.next_step(done) == 2
    assert record.next_step(record.with_step(done, 2, 50, 'inconclusive', None, None, NOW)[0]) == 2
    assert record.step_label(0, 10.0) == 'step 0 at 10 %' and record.format_percent(None) == '-'


def test_the_vocabulary_is_the_engines():
    assert set(vocabulary.EVENTS) == set(engine._HANDLERS)
    assert set(vocabulary.HELD_VERDICTS) == set(engine.HELD_STATES)
    assert not set(vocabulary.COMPLETE_VERDICTS) & set(vocabulary.HELD_VERDICTS + vocabulary.FAILED_VERDICTS)
    actions = set(action for targets in engine.TRANSITIONS.values() for dummy, action in targets)
    assert actions == set(vocabulary.ACTIONS)
    assert set(engine.STATES) == set(state for key in engine.TRANSITIONS for state in key[:1]) | {'held'}
