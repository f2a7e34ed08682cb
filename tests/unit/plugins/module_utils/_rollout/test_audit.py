"""The audit trail: every decision in the record says who or what made it (``by``), and old records stay readable."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._common.audit import by_text
from ansible_collections.canary.release.plugins.module_utils._report.report_series import decisions
from ansible_collections.canary.release.plugins.module_utils._rollout import engine
from ansible_collections.canary.release.plugins.module_utils._rollout.plan import build_plan
from ansible_collections.canary.release.plugins.module_utils._rollout.record import (
    actor,
    finished,
    person,
    resumed,
    started,
    who,
    with_step,
)
from ansible_collections.canary.release.plugins.module_utils._rollout.status import status_lines

NOW = 1738324800.0  # 2025-01-31T12:00:00Z
PLAN = build_plan([{'weight': 10}, {'weight': 50, 'approval': True}, {'weight': 100}], pause=30)
ALICE = {'kind': 'person', 'name': 'alice', 'reason': 'AWX user'}


def test_the_person_is_the_awx_user_else_the_tower_user_else_the_controller_user():
    assert person('alice', 'bob', 'root') == ALICE
    assert person('', 'bob', 'root') == {'kind': 'person', 'name': 'bob', 'reason': 'Tower user'}
    assert person('', '', 'deploy') == {'kind': 'person', 'name': 'deploy', 'reason': 'controller user'}
    assert person() == {'kind': 'person', 'name': 'unknown', 'reason': 'controller user'}
    assert who({'awx_user_name': 'alice', 'tower_user_name': '', 'controller_user': 'root'}) == ALICE
    assert who({'kind': 'judge', 'name': 'judge', 'reason': 'ok'}) == {'kind': 'judge', 'name': 'judge', 'reason': 'ok'}
    assert who({}) is None and who(None) is None
    with pytest.raises(ValueError, match='by.kind must be one of'):
        who({'kind': 'robot', 'name': 'x'})


def test_by_text_reads_old_records_as_unknown():
    assert by_text(None) == '-' and by_text({}) == '-'
    assert by_text(actor('judge', 'judge', 'errors: canary 0.1% vs 0.1%')) == 'judge'
    assert by_text(ALICE) == 'person alice'
    assert by_text(actor('engine', 'deadline')) == 'engine deadline'


def run(record, event, **kw):
    return engine.transition(record, PLAN, event, NOW + 50, **kw)


def test_each_engine_write_says_who_decided():
    record = started('web', '2', '1', 'run1', NOW)[0]
    begun = run(record, {'kind': 'traffic_set', 'step': 0, 'weight': 10})
    assert begun['write']['by'] == {'kind': 'engine', 'name': 'plan', 'reason': 'step 0 of the plan'}
    assert begun['record']['events'][-1]['by'] == begun['write']['by']
    passed = run(begun['record'], {'kind': 'judged', 'step': 0, 'verdict': 'pass', 'reason': 'pass: errors ok'})
    assert passed['record']['steps'][0]['by'] == {'kind': 'judge', 'name': 'judge', 'reason': 'errors ok'}
    undecided = run(begun['record'], {'kind': 'judged', 'step': 0, 'verdict': 'inconclusive',
                                      'reason': 'inconclusive: no data at the deadline'})
    assert undecided['record']['steps'][0]['by'] == {'kind': 'engine', 'name': 'deadline',
                                                     'reason': 'no data at the deadline'}
    failed = run(begun['record'], {'kind': 'judged', 'step': 0, 'verdict': 'fail', 'reason': 'fail: 5x errors'})
    assert failed['action']['kind'] == 'rollback' and failed['action']['by']['kind'] == 'judge'
    # the approval gate is the engine's rule; the approval the person's
    at_one = run(passed['record'], {'kind': 'traffic_set', 'step': 1, 'weight': 50})['record']
    gated = run(at_one, {'kind': 'judged', 'step': 1, 'verdict': 'pass', 'reason': 'pass: ok'})
    assert gated['record']['steps'][1]['by']['name'] == 'approval gate'
    decided = run(gated['record'], {'kind': 'decided', 'step': 1, 'decision': 'reject', 'source': 'at the prompt'},
                  by=ALICE)
    assert decided['record']['steps'][1]['verdict'] == 'rejected' and decided['record']['steps'][1]['by'] == ALICE
    assert decided['action']['kind'] == 'rollback' and decided['action']['by'] == ALICE
    held = run(gated['record'], {'kind': 'held', 'step': 1})
    assert held['record']['events'][-1]['by'] == {'kind': 'engine', 'name': 'hold', 'reason': 'waiting for a human'}
    # the next run's rollout_approval is the person's decision
    again = resumed(held['record'], 'run2', NOW + 60)[0]
    approved = engine.transition(again, PLAN, {'kind': 'traffic_set', 'step': 1, 'weight': 50}, NOW + 61,
                                 approval='approve', by=ALICE)
    assert approved['record']['steps'][1]['verdict'] == 'approved' and approved['record']['steps'][1]['by'] == ALICE
    assert approved['action']['kind'] == 'traffic'


def test_status_and_report_show_who_decided_and_old_records_still_read():
    record = started('web', '2', '1', 'run1', NOW)[0]
    record = with_step(record, 0, 10, 'pass', 'errors ok', None, NOW + 10, actor('judge', 'judge', 'errors ok'))[0]
    record = with_step(record, 1, 50, 'rejected', 'rejected (at the prompt)', None, NOW + 20, ALICE)[0]
    record = finished(record, 'rolled_back', 'step 1 at 50 %, rejected', NOW + 30, ALICE)[0]
    lines = status_lines({'exists': True, 'record': record, 'lock': None}, 'web', 'localhost', events=2)
    assert 'step 0 at 10.0 %: pass - errors ok (since 2025-01-31T12:00:10Z) [by judge]' in lines
    assert 'step 1 at 50.0 %: rejected - rejected (at the prompt) (since 2025-01-31T12:00:20Z) [by person alice]' in lines
    assert lines[1].endswith('finished 2025-01-31T12:00:30Z: step 1 at 50 %, rejected [by person alice]')
    assert lines[-1].endswith('rolled back to 1: step 1 at 50 %, rejected [by person alice]')
    assert [(mark['label'], mark['by']) for mark in decisions(record)] == [
        ('step 0 10%: pass', 'judge'), ('step 1 50%: rejected', 'person alice'), ('rolled back', 'person alice')]
    # a record written before the audit trail: no by anywhere
    old = started('web', '2', '1', 'run1', NOW)[0]
    old = with_step(old, 0, 10, 'fail', 'errors', None, NOW + 10)[0]
    old = finished(old, 'rolled_back', 'step 0', NOW + 20)[0]
    assert 'by' not in old['steps'][0] and 'finished_by' not in old and 'by' not in old['events'][-1]
    lines = status_lines({'exists': True, 'record': old, 'lock': None}, 'web', 'localhost')
    assert not any('[by' in line for line in lines)
    assert [mark['by'] for mark in decisions(old)] == ['-', '-']
