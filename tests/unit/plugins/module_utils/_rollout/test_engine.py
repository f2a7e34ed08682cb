"""The release engine, one transition at a time: every edge of TRANSITIONS, the exact texts, the refusals."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._rollout import engine
from ansible_collections.canary.release.plugins.module_utils._rollout.plan import build_plan
from ansible_collections.canary.release.plugins.module_utils._rollout.record import finished, started, with_step

NOW = 1738324800.0  # 2025-01-31T12:00:00Z
# step 0 judged, step 1 judged with an approval gate, step 2 (100 %) not judged; a pass is required (the default)
PLAN = build_plan([{'weight': 10}, {'weight': 50, 'approval': True}, {'weight': 100}], pause=30)
# the same steps with the explicit opt-out: an undecided judged step ends on time
TIMER = build_plan([{'weight': 10}, {'weight': 50, 'approval': True}, {'weight': 100}], pause=30, require_pass=False)
# the last step judged and gated; no step without analysis
GATED_END = build_plan([{'weight': 10}, {'weight': 100, 'analysis': True, 'approval': True}], pause=30)
# no analysis at all, a gate at step 0
UNJUDGED = build_plan([{'weight': 10, 'approval': True}, {'weight': 100}], analysis=False, pause=30)
# no analysis, no gate: only with the opt-out (promote on timer)
QUIET = build_plan([{'weight': 10}, {'weight': 100}], analysis=False, pause=30, require_pass=False)
# no analysis, no pause, no gate: each step is done as soon as its weight is set
INSTANT = build_plan([{'weight': 10}, {'weight': 100}], analysis=False, pause=0, require_pass=False)


def fresh():
    return started('sample', '3', '2', 'run1', NOW)[0]


def steps(*entries, **kw):
    """A record with the entries ``(index, weight, verdict, reason)`` recorded one after the other, 10 s apart."""
    record = kw.get('record') or fresh()
    for number, (index, weight, verdict, reason) in enumerate(entries):
        record = with_step(record, index, weight, verdict, reason, None, NOW + 10 * (number + 1))[0]
    return record


def watching(index=0, weight=10.0):
    done = [(i, w, 'pass', 'ok') for i, w in enumerate([10.0, 50.0, 100.0][:index])]
    return steps(*(done + [(index, weight, None, None)]))


def step_done():
    return steps((0, 10.0, None, None), (0, 10.0, 'pass', 'ok'))


def complete():
    return steps((0, 10.0, 'pass', 'ok'), (1, 50.0, 'approved', 'approved (at the prompt)'), (2, 100.0, 'watched', 'x'))


def awaiting(index=1, weight=50.0):
    return steps((0, 10.0, 'pass', 'ok'), (index, weight, 'awaiting_approval', "the step's approval gate: ok"))


def inconclusive():
    return steps((0, 10.0, None, None), (0, 10.0, 'inconclusive', 'no data from errors'))


def failed():
    return steps((0, 10.0, None, None), (0, 10.0, 'fail', 'errors: canary 20% vs 4%'))


def held():
    return finished(awaiting(), 'paused', 'approval gate after step 1', NOW + 100)[0]


def ended(status):
    return finished(failed(), status, 'why', NOW + 100)[0]


def traffic(step, weight):
    return {'kind': 'traffic_set', 'step': step, 'weight': weight}


def judged(step, verdict, reason='because'):
    return {'kind': 'judged', 'step': step, 'verdict': verdict, 'reason': reason}


BEGUN = {'kind': 'begun'}

# (record, plan, event, approval, state, state after, action kind)
CASES = [
    (fresh, PLAN, BEGUN, '', 'new', 'new', 'deploy'),
    (fresh, PLAN, {'kind': 'deployed'}, '', 'new', 'new', 'traffic'),
    (fresh, PLAN, traffic(0, 10), '', 'new', 'watching', 'analyse'),
    (fresh, QUIET, traffic(0, 10), '', 'new', 'watching', 'wait'),
    (fresh, INSTANT, traffic(0, 10), '', 'new', 'step_done', 'traffic'),
    (fresh, build_plan([{'weight': 100, 'pause': 0}], analysis=False, require_pass=False), traffic(0, 100), '', 'new',
     'complete', 'promote'),
    (watching, PLAN, BEGUN, '', 'watching', 'watching', 'traffic'),
    (watching, PLAN, traffic(0, 10), '', 'watching', 'watching', 'analyse'),
    (lambda: watching(2, 100.0), PLAN, traffic(2, 100), '', 'watching', 'watching', 'wait'),
    # a step without pause left watching by an earlier version of the engine (which waited 0 s)
    (watching, INSTANT, traffic(0, 10), '', 'watching', 'step_done', 'traffic'),
    (lambda: watching(1, 100.0), INSTANT, traffic(1, 100), '', 'watching', 'complete', 'promote'),
    (watching, PLAN, judged(0, 'pass'), '', 'watching', 'step_done', 'traffic'),
    (watching, PLAN, judged(0, 'continue'), '', 'watching', 'watching', 'analyse'),
    (watching, TIMER, judged(0, 'continue'), '', 'watching', 'step_done', 'traffic'),
    (lambda: watching(1, 100.0), GATED_END, judged(1, 'pass'), '', 'watching', 'awaiting_approval', 'approve'),
    (lambda: watching(1, 100.0), dict(GATED_END, steps=[dict(step, approval=False) for step in GATED_END['steps']]),
     judged(1, 'pass'), '', 'watching', 'complete', 'promote'),
    (lambda: watching(1, 50.0), PLAN, judged(1, 'pass'), '', 'watching', 'awaiting_approval', 'approve'),
    (watching, PLAN, judged(0, 'inconclusive'), '', 'watching', 'inconclusive', 'approve'),
    (watching, PLAN, judged(0, 'fail'), '', 'watching', 'failed', 'rollback'),
    (watching, QUIET, {'kind': 'waited', 'step': 0}, '', 'watching', 'step_done', 'traffic'),
    (lambda: watching(2, 100.0), PLAN, {'kind': 'waited', 'step': 2}, '', 'watching', 'complete', 'promote'),
    (watching, UNJUDGED, {'kind': 'waited', 'step': 0}, '', 'watching', 'awaiting_approval', 'approve'),
    (step_done, PLAN, BEGUN, '', 'step_done', 'step_done', 'traffic'),
    (step_done, PLAN, traffic(1, 50), '', 'step_done', 'watching', 'analyse'),
    (step_done, QUIET, traffic(1, 100), '', 'step_done', 'watching', 'wait'),
    (step_done, build_plan([{'weight': 10}, {'weight': 50, 'pause': 0}, {'weight': 100}], analysis=False, pause=0,
                           require_pass=False), traffic(1, 50), '', 'step_done', 'step_done', 'traffic'),
    (step_done, INSTANT, traffic(1, 100), '', 'step_done', 'complete', 'promote'),
    (complete, PLAN, BEGUN, '', 'complete', 'complete', 'promote'),
    (awaiting, PLAN, BEGUN, '', 'awaiting_approval', 'awaiting_approval', 'traffic'),
    (awaiting, PLAN, traffic(1, 50), '', 'awaiting_approval', 'awaiting_approval', 'approve'),
    (awaiting, PLAN, traffic(1, 50), 'approve', 'awaiting_approval', 'step_done', 'traffic'),
    (lambda: awaiting(1, 100.0), GATED_END, traffic(1, 100), 'approve', 'awaiting_approval', 'complete', 'promote'),
    (awaiting, PLAN, traffic(1, 50), 'reject', 'awaiting_approval', 'failed', 'rollback'),
    (awaiting, PLAN, {'kind': 'decided', 'step': 1, 'decision': 'approve'}, '', 'awaiting_approval', 'step_done',
     'traffic'),
    (lambda: awaiting(1, 100.0), GATED_END, {'kind': 'decided', 'step': 1, 'decision': 'approve'}, '',
     'awaiting_approval', 'complete', 'promote'),
    (awaiting, PLAN, {'kind': 'decided', 'step': 1, 'decision': 'reject'}, '', 'awaiting_approval', 'failed',
     'rollback'),
    (awaiting, PLAN, {'kind': 'held', 'step': 1}, '', 'awaiting_approval', 'held', 'done'),
    (inconclusive, PLAN, BEGUN, '', 'inconclusive', 'inconclusive', 'traffic'),
    (inconclusive, PLAN, traffic(0, 10), '', 'inconclusive', 'watching', 'analyse'),
    (inconclusive, QUIET, traffic(0, 10), '', 'inconclusive', 'watching', 'wait'),
    (inconclusive, PLAN, traffic(0, 10), 'approve', 'inconclusive', 'step_done', 'traffic'),
    (inconclusive, build_plan([{'weight': 10}]), traffic(0, 10), 'approve', 'inconclusive', 'complete', 'promote'),
    (inconclusive, PLAN, traffic(0, 10), 'reject', 'inconclusive', 'failed', 'rollback'),
    (inconclusive, PLAN, {'kind': 'decided', 'step': 0, 'decision': 'approve'}, '', 'inconclusive', 'step_done',
     'traffic'),
    (inconclusive, build_plan([{'weight': 10}]), {'kind': 'decided', 'step': 0, 'decision': 'approve'}, '',
     'inconclusive', 'complete', 'promote'),
    (inconclusive, PLAN, {'kind': 'decided', 'step': 0, 'decision': 'reject'}, '', 'inconclusive', 'failed',
     'rollback'),
    (inconclusive, PLAN, {'kind': 'held', 'step': 0, 'reason': 'no data'}, '', 'inconclusive', 'held', 'done'),
    (failed, PLAN, BEGUN, '', 'failed', 'failed', 'rollback'),
    (lambda: ended('promoted'), PLAN, BEGUN, '', 'promoted', 'promoted', 'done'),
    (lambda: ended('rolled_back'), PLAN, BEGUN, '', 'rolled_back', 'rolled_back', 'done'),
    (lambda: ended('aborted'), PLAN, BEGUN, '', 'aborted', 'aborted', 'done'),
]


@pytest.mark.parametrize('make, plan, event, approval, state, after, action', CASES)
def test_every_transition(make, plan, event, approval, state, after, action):
    result = engine.transition(make(), plan, event, NOW + 1000, approval=approval)
    assert (result['state'], result['state_after'], result['action']['kind']) == (state, after, action)
    assert (after, action) in engine.TRANSITIONS[(state, event['kind'])]
    assert result['action']['label'].startswith('sample 3')


def test_the_cases_cover_every_edge_of_the_graph():
    edges = set((state, event, after, action) for (state, event), targets in engine.TRANSITIONS.items()
                for after, action in targets)
    covered = set((case[4], case[2]['kind'], case[5], case[6]) for case in CASES)
    assert covered == edges


def test_a_fail_rolls_back_with_the_step_and_the_judges_reason():
    result = engine.transition(watching(), PLAN, judged(0, 'fail', 'fail: errors: canary 5.1% vs 1.0%'), NOW + 60)
    assert result['write'] == {'operation': 'step', 'step': 0, 'weight': 10.0, 'verdict': 'fail',
                               'reason': 'errors: canary 5.1% vs 1.0%',
                               'by': {'kind': 'judge', 'name': 'judge', 'reason': 'errors: canary 5.1% vs 1.0%'}}
    assert result['message'] == 'sample 3: step 0 at 10 %, verdict fail: errors: canary 5.1% vs 1.0%'
    assert result['action'] == {'kind': 'rollback', 'reason': 'step 0 at 10 %, verdict fail: errors: canary 5.1% vs 1.0%',
                                'label': 'sample 3', 'by': result['write']['by']}
    assert result['outcome'] == 'rolled_back'
    assert result['record']['events'][-1]['message'] == result['message']


def test_a_run_that_died_after_a_failed_step_rolls_back_first():
    result = engine.transition(failed(), PLAN, BEGUN, NOW + 60)
    assert result['write'] is None and result['message'] is None
    assert result['action']['reason'] == 'resumed after step 0 at 10 % had ended with verdict fail: ' \
                                         'errors: canary 20% vs 4%'
    rejected = steps((0, 10.0, 'pass', 'ok'), (1, 50.0, 'rejected', 'rejected (at the prompt)'))
    assert engine.transition(rejected, PLAN, BEGUN, NOW)['action']['reason'] == \
        'resumed after step 1 at 50 % had ended with verdict rejected: rejected (at the prompt)'


def test_rejections_name_their_source():
    by_flag = engine.transition(awaiting(), PLAN, traffic(1, 50), NOW + 60, approval='reject')
    assert by_flag['action']['reason'] == 'step 1 at 50 %, rejected (rollout_approval=reject)'
    assert by_flag['write']['reason'] == 'rejected (rollout_approval=reject)'
    at_prompt = engine.transition(awaiting(), PLAN, {'kind': 'decided', 'step': 1, 'decision': 'reject',
                                                     'source': 'at the prompt'}, NOW + 60)
    assert at_prompt['action']['reason'] == 'step 1 at 50 %, rejected (at the prompt)'
    approved = engine.transition(awaiting(), PLAN, traffic(1, 50), NOW + 60, approval='approve')
    assert approved['write']['verdict'] == 'approved'
    assert approved['write']['reason'] == 'approved (rollout_approval=approve)'
    assert approved['message'] == 'sample 3: step 1 at 50 %, verdict approved: approved (rollout_approval=approve)'
    assert approved['record']['steps'][1]['started_at'] == awaiting()['steps'][1]['started_at']  # same weight


def test_the_promotion_lists_the_verdicts():
    result = engine.transition(complete(), PLAN, BEGUN, NOW)
    assert result['action'] == {'kind': 'promote', 'label': 'sample 3',
                                'message': 'sample 3: every step done (pass, approved, watched); promoting',
                                'by': {'kind': 'engine', 'name': 'plan', 'reason': 'every step done'}}
    assert result['message'] == result['action']['message'] and result['outcome'] == 'promoting'


def test_undecided_is_judged_again_until_a_decision_by_default():
    record = watching()  # step 0 began at NOW + 10
    result = engine.transition(record, PLAN, judged(0, 'continue', 'continue: 3 of 4 windows'), NOW + 45)
    assert result['write'] is None and result['message'] is None and result['record'] == record
    assert result['action'] == {'kind': 'analyse', 'step': 0, 'start_time': '2025-01-31T12:00:10Z',
                                'stop_after': 30.0, 'until_decided': True, 'deadline_extension': 0.0,
                                'max_duration': 1800.0, 'deadline': 1800.0, 'label': 'sample 3: step 0 at 10 %',
                                'restarts': []}
    assert (result['state'], result['state_after'], result['outcome']) == ('watching', 'watching', 'running')
    # the same answer again (a replay, or another undecided analysis): still judged, nothing written
    again = engine.transition(result['record'], PLAN, judged(0, 'continue', 'continue: 3 of 4 windows'), NOW + 90)
    assert again['write'] is None and again['action']['kind'] == 'analyse'
    # the judge passes later: the step is done on the pass; the deadline's inconclusive holds for a person
    passed = engine.transition(record, PLAN, judged(0, 'pass', 'pass: errors pass'), NOW + 95)
    assert passed['write']['verdict'] == 'pass' and passed['action']['kind'] == 'traffic'
    late = engine.transition(record, PLAN, judged(0, 'inconclusive', 'inconclusive: deadline reached'), NOW + 1810)
    assert late['write']['verdict'] == 'inconclusive' and late['action']['kind'] == 'approve'
    # an undecided verdict for another step than the current one is refused, as any other verdict
    with pytest.raises(engine.EngineError, match='judged for step 1 does not apply'):
        engine.transition(record, PLAN, judged(1, 'continue'), NOW + 45)
    # check mode polls once: it goes on, saying that a real run would keep judging
    check = engine.transition(record, PLAN, judged(0, 'continue', 'continue: 3 of 4 windows'), NOW + 45,
                              check_mode=True)
    assert check['write']['verdict'] == 'watched' and check['action']['kind'] == 'traffic'
    assert check['warnings'] == ['sample 3: step 0 at 10 % is undecided and would be judged until a decision '
                                 '(rollout_require_pass); check mode goes on']


def test_undecided_with_data_is_watched_with_the_opt_out_and_a_gate_waits():
    result = engine.transition(watching(), TIMER, judged(0, 'continue', 'continue: 3 of 4 windows'), NOW + 30)
    assert result['write']['verdict'] == 'watched'
    assert result['write']['reason'] == ('undecided after 30 s with data from every metric, done on time '
                                         '(rollout_require_pass: false) (continue: 3 of 4 windows)')
    gate = engine.transition(watching(1, 50.0), PLAN, judged(1, 'pass', 'pass: errors pass'), NOW + 30,
                             hold_mode='prompt')
    assert gate['write']['verdict'] == 'awaiting_approval'
    assert gate['write']['reason'] == "the step's approval gate: errors pass"
    assert gate['action'] == {'kind': 'approve', 'step': 1, 'reason': 'approval gate after step 1', 'mode': 'prompt',
                              'label': 'sample 3: step 1 at 50 %'}
    waited = engine.transition(watching(), UNJUDGED, {'kind': 'waited', 'step': 0}, NOW + 30)
    assert waited['write']['reason'] == "the step's approval gate: no analysis at this step; held 30 s"
    quiet = engine.transition(watching(), QUIET, {'kind': 'waited', 'step': 0}, NOW + 30)
    assert quiet['write']['reason'] == 'no analysis at this step; held 30 s'


def test_a_step_without_analysis_pause_or_gate_is_done_in_one_turn():
    result = engine.transition(fresh(), INSTANT, traffic(0, 10), NOW + 30)
    assert result['write'] == {'operation': 'step', 'step': 0, 'weight': 10.0, 'verdict': 'watched',
                               'reason': 'no analysis at this step; held 0 s',
                               'by': {'kind': 'engine', 'name': 'pause', 'reason': 'no analysis at this step'}}
    assert result['message'] == 'sample 3: step 0 at 10 %, verdict watched: no analysis at this step; held 0 s'
    assert [event['message'] for event in result['record']['events'][1:]] == [result['message']]  # one event
    assert result['record']['steps'][0]['started_at'] == result['record']['steps'][0]['at']
    assert result['action'] == {'kind': 'traffic', 'step': 1, 'weight': 100.0, 'label': 'sample 3: step 1 at 100 %'}
    # reported again (a replay): nothing written, the same action
    again = engine.transition(result['record'], INSTANT, traffic(0, 10), NOW + 40)
    assert again['write'] is None and again['action'] == result['action']
    last = engine.transition(result['record'], INSTANT, traffic(1, 100), NOW + 40)
    assert last['action']['kind'] == 'promote' and last['write']['verdict'] == 'watched'
    assert engine.transition(last['record'], INSTANT, traffic(1, 100), NOW + 50)['write'] is None
    # a wrong weight is still refused, and a step with a pause, an analysis or a gate still takes its turns
    with pytest.raises(engine.EngineError, match='reports 50 %'):
        engine.transition(result['record'], INSTANT, traffic(1, 50), NOW + 40)
    assert engine.transition(fresh(), QUIET, traffic(0, 10), NOW)['action']['kind'] == 'wait'
    gated = build_plan([{'weight': 10, 'approval': True}, {'weight': 100}], analysis=False, pause=0)
    assert engine.transition(fresh(), gated, traffic(0, 10), NOW)['action'] == {
        'kind': 'wait', 'step': 0, 'seconds': 0, 'label': 'sample 3: step 0 at 10 %'}


def test_inconclusive_holds_with_the_judges_reason_and_a_held_run_pauses():
    result = engine.transition(watching(), PLAN, judged(0, 'inconclusive', 'inconclusive: no data from errors'),
                               NOW + 30)
    assert result['action']['kind'] == 'approve' and result['action']['reason'] == 'no data from errors'
    assert result['action']['mode'] == 'end'
    paused = engine.transition(result['record'], PLAN, {'kind': 'held', 'step': 0}, NOW + 40)
    assert paused['write'] == {'operation': 'finish', 'status': 'paused', 'reason': 'no data from errors',
                               'by': {'kind': 'engine', 'name': 'hold', 'reason': 'waiting for a human'}}
    assert paused['record']['status'] == 'paused'
    assert paused['message'] == 'sample 3: paused at step 0 (10 %), lock released: no data from errors'
    assert paused['action'] == {'kind': 'done', 'outcome': 'held', 'reason': 'step 0 at 10 %: no data from errors',
                                'label': 'sample 3'}
    again = engine.transition(paused['record'], PLAN, {'kind': 'held', 'step': 0}, NOW + 50)
    assert again['write'] is None and again['action'] == paused['action']


def test_analysis_reads_from_the_first_step_and_each_step_has_its_own_deadline():
    record = steps((0, 10.0, None, None), (0, 10.0, 'pass', 'ok'), (1, 50.0, None, None),
                   (1, 50.0, 'approved', 'approved (at the prompt)'), (2, 100.0, None, None))
    # step 0 started at NOW+10, step 1 at NOW+30, approved at NOW+40; step 2 started at NOW+50: its deadline is
    # max_duration from its own start (40 s after the first step's), later than the approval's
    plan = build_plan([{'weight': 10}, {'weight': 50}, {'weight': 100, 'analysis': True}], pause=30,
                      max_duration='10m', require_pass=True)
    result = engine.transition(record, plan, traffic(2, 100), NOW + 55)
    assert result['write'] is None  # the same weight again: nothing changes
    assert result['action'] == {'kind': 'analyse', 'step': 2, 'start_time': '2025-01-31T12:00:10Z',
                                'stop_after': 70.0, 'until_decided': True, 'deadline_extension': 40.0,
                                'max_duration': 600.0, 'deadline': 640.0, 'label': 'sample 3: step 2 at 100 %',
                                'restarts': ['2025-01-31T12:00:30Z', '2025-01-31T12:00:50Z']}
    check = engine.transition(record, plan, traffic(2, 100), NOW + 55, check_mode=True)
    assert check['action']['start_time'] == '2025-01-31T12:00:55Z' and check['action']['stop_after'] == 30.0
    assert check['action']['deadline_extension'] == 0.0  # an approval before "now" does not shorten it
    assert check['action']['restarts'] == []  # check mode judges from now: nothing to restart
    # step 1 held, approved at NOW+300, so step 2 begins at NOW+305: its deadline runs from there
    held = steps((0, 10.0, 'pass', 'ok'), (1, 50.0, None, None), (1, 50.0, 'approved', 'approved (-e)'))
    held['steps'][-1]['at'] = '2025-01-31T12:05:00Z'
    watched = engine.transition(held, plan, traffic(2, 100), NOW + 305)['action']
    assert watched['deadline_extension'] == 295.0 and watched['deadline'] == 895.0


def test_the_judge_restarts_at_every_step_after_the_first():
    plan = build_plan([{'weight': 10}, {'weight': 25, 'analysis': False}, {'weight': 50}], pause=30)
    # step 0 began at NOW+10: no restart; its later polls (same weight) keep it so
    first = engine.transition(watching(0), plan, traffic(0, 10), NOW + 20)['action']
    assert first['kind'] == 'analyse' and first['start_time'] == '2025-01-31T12:00:10Z' and first['restarts'] == []
    # step 1 (not judged, began at NOW+20) and step 2 (began at NOW+30, resumed later at the same weight) restart
    record = steps((0, 10.0, 'pass', 'ok'), (1, 25.0, 'watched', 'held'), (2, 50.0, None, None))
    resumed = engine.transition(record, plan, traffic(2, 50), NOW + 500)['action']
    assert resumed['start_time'] == '2025-01-31T12:00:10Z'
    assert resumed['restarts'] == ['2025-01-31T12:00:20Z', '2025-01-31T12:00:30Z']
    assert resumed['stop_after'] == 50.0  # unchanged: 20 s from the first step's start to this one's, plus 30


def test_restarts_increase_whatever_the_record_says():
    plan = build_plan([{'weight': 10}, {'weight': 25}, {'weight': 50}, {'weight': 75}], pause=30)
    record = steps((0, 10.0, 'pass', 'ok'), (1, 25.0, 'pass', 'ok'), (2, 50.0, 'pass', 'ok'), (3, 75.0, None, None))
    entries = record['steps']
    entries[1]['started_at'] = entries[0]['started_at']  # began in the same second as step 0: no restart
    entries[2]['started_at'] = '2025-01-31T11:00:00Z'  # a clock that stepped back: no restart either
    del entries[3]['started_at']  # an older record: the entry's at
    action = engine.transition(record, plan, traffic(3, 75), NOW + 60)['action']
    assert action['restarts'] == ['2025-01-31T12:00:40Z']


def test_a_step_without_analysis_waits_for_the_rest_of_its_pause():
    record = watching(2, 100.0)  # step 2 began at NOW + 30
    assert engine.transition(record, PLAN, traffic(2, 100), NOW + 42.5)['action']['seconds'] == 18
    assert engine.transition(record, PLAN, traffic(2, 100), NOW + 500)['action']['seconds'] == 0
    assert engine.transition(record, PLAN, traffic(2, 100), NOW + 35, check_mode=True)['action']['seconds'] == 0


def test_a_step_restarts_at_another_weight_and_goes_on_at_the_same():
    record = watching()
    same = engine.transition(record, PLAN, traffic(0, 10.0), NOW + 99)
    assert same['write'] is None and not same['record'] != record
    moved = engine.transition(record, PLAN, traffic(0, 10.5), NOW + 99)
    assert moved['record']['steps'][0]['started_at'] == '2025-01-31T12:01:39Z'
    assert moved['message'] == 'sample 3: step 0 at 10.5 %'


def test_a_templated_step_and_weight_are_read_as_numbers():
    result = engine.transition(fresh(), PLAN, {'kind': 'traffic_set', 'step': '0', 'weight': '10.0'}, NOW)
    assert result['write']['step'] == 0 and result['write']['weight'] == 10.0
    with pytest.raises(engine.EngineError, match='traffic_set needs weight'):
        engine.transition(fresh(), PLAN, {'kind': 'traffic_set', 'step': 0, 'weight': 'ten'}, NOW)


def test_an_approval_with_nothing_held_is_ignored_with_a_warning():
    result = engine.transition(step_done(), PLAN, BEGUN, NOW, approval='approve')
    assert result['warnings'] == ['sample 3: rollout_approval=approve ignored - the rollout is not held for a human '
                                  '(at step 0 (10 %))']
    assert engine.transition(awaiting(), PLAN, BEGUN, NOW, approval='approve')['warnings'] == []


def test_already_promoted_is_done():
    result = engine.transition(ended('promoted'), PLAN, BEGUN, NOW)
    assert result['action'] == {'kind': 'done', 'outcome': 'already_promoted',
                                'reason': 'already promoted on 2025-01-31T12:01:40Z', 'label': 'sample 3'}
    assert result['outcome'] == 'already_promoted'
    assert engine.transition(ended('rolled_back'), PLAN, BEGUN, NOW)['outcome'] == 'rolled_back'


def test_the_same_event_twice_changes_nothing_the_second_time():
    for record, plan, event, approval in [(watching(), PLAN, judged(0, 'pass', 'pass: fine'), ''),
                                          (watching(), PLAN, judged(0, 'fail', 'fail: bad'), ''),
                                          (watching(1, 50.0), PLAN, judged(1, 'pass', 'fine'), ''),
                                          (watching(), QUIET, {'kind': 'waited', 'step': 0}, ''),
                                          (awaiting(), PLAN, traffic(1, 50), 'approve'),
                                          (awaiting(), PLAN, traffic(1, 50), 'reject'),
                                          (awaiting(), PLAN, traffic(1, 50), ''),
                                          (awaiting(), PLAN, {'kind': 'decided', 'step': 1, 'decision': 'approve',
                                                              'source': 'at the prompt'}, ''),
                                          (fresh(), PLAN, traffic(0, 10), '')]:
        first = engine.transition(record, plan, event, NOW + 100, approval=approval)
        second = engine.transition(first['record'], plan, event, NOW + 200, approval=approval)
        assert second['write'] is None and second['record'] == first['record'], event
        assert dict(second['action'], reason=None) == dict(first['action'], reason=None) or \
            second['action']['kind'] == first['action']['kind'] == 'analyse', event
        replay = (second['state'], event['kind'])
        assert replay in engine.TRANSITIONS or replay in engine.REPLAYS


@pytest.mark.parametrize('make, event, match', [
    (watching, traffic(1, 50), r'traffic_set for step 1 does not apply: the rollout is running at step 0 \(10 %\) '
                               r'\(watching\); it expects step 0'),
    (step_done, traffic(0, 10), 'traffic_set for step 0 does not apply'),
    (step_done, traffic(2, 100), 'traffic_set for step 2 does not apply'),
    (fresh, traffic(0, 50), r'traffic_set for step 0 reports 50 %, but the plan gives the step 10 %'),
    (fresh, traffic(5, 50), r'step 5 is not in the plan \(3 steps\)'),
    (fresh, {'kind': 'traffic_set', 'step': 0}, 'traffic_set needs weight'),
    (fresh, judged(0, 'pass'), r'judged for step 0 does not apply: the rollout is running before the first step'),
    (step_done, judged(0, 'fail'), 'judged for step 0 does not apply'),
    (watching, judged(0, 'maybe'), 'judged needs verdict pass, continue, fail, inconclusive'),
    (watching, judged(1, 'pass'), 'judged for step 1 does not apply'),
    (lambda: watching(2, 100.0), judged(2, 'pass'), 'judged for step 2, which has no analysis'),
    (watching, {'kind': 'waited', 'step': 0}, 'waited for step 0, which is judged'),
    (watching, {'kind': 'decided', 'step': 0, 'decision': 'approve'}, 'decided for step 0 does not apply'),
    (awaiting, {'kind': 'decided', 'step': 1, 'decision': 'maybe'}, 'decided needs decision approve or reject'),
    (watching, {'kind': 'held', 'step': 0}, 'held for step 0 does not apply'),
    (step_done, {'kind': 'deployed'}, 'deployed does not apply'),
    (held, BEGUN, r'sample 3 is paused at step 1 \(50 %\): begin resumes it'),
    (lambda: ended('rolled_back'), traffic(0, 10), 'already finished as rolled_back on .*; traffic_set does not apply'),
    (fresh, {'kind': 'party'}, 'event must be a mapping whose kind is one of'),
    (fresh, {'kind': 'traffic_set', 'step': True, 'weight': 10}, 'needs step, an index from 0'),
])
def test_events_that_make_no_sense_are_refused(make, event, match):
    record = make()
    with pytest.raises(engine.EngineError, match=match):
        engine.transition(record, PLAN, event, NOW + 1000)


def test_bad_inputs_are_refused():
    with pytest.raises(engine.EngineError, match='no rollout record'):
        engine.transition(None, PLAN, BEGUN, NOW, check_mode=True)
    with pytest.raises(engine.EngineError, match='approval must be'):
        engine.transition(fresh(), PLAN, BEGUN, NOW, approval='yes')
    with pytest.raises(engine.EngineError, match='hold_mode must be'):
        engine.transition(fresh(), PLAN, BEGUN, NOW, hold_mode='auto')
    with pytest.raises(engine.EngineError, match='held does not apply in check mode'):
        engine.transition(awaiting(), PLAN, {'kind': 'held', 'step': 1}, NOW, check_mode=True)


def test_hold_mode():
    assert engine.hold_mode_for('end', False) == 'end'
    assert engine.hold_mode_for('auto', True) == 'end'
    assert engine.hold_mode_for('auto', False) == 'prompt'
    assert engine.hold_mode_for('prompt', True) == 'prompt'


def walk(record, plan, verdicts, check_mode=True, approval=''):
    """Answer every action like a role would (verdicts by step), return the actions and the warnings."""
    actions, warnings = [], []
    event = BEGUN
    for dummy in range(50):
        result = engine.transition(record, plan, event, NOW + 100, approval=approval, check_mode=check_mode)
        record, action = result['record'], result['action']
        assert (result['state_after'], action['kind']) in \
            (engine.CHECK_MODE_TRANSITIONS if check_mode else engine.TRANSITIONS).get(
                (result['state'], event['kind']), engine.TRANSITIONS.get((result['state'], event['kind'])))
        actions.append(action)
        warnings.extend(result['warnings'])
        kind = action['kind']
        if kind == 'deploy':
            event = {'kind': 'deployed'}
        elif kind == 'traffic':
            event = traffic(action['step'], action['weight'])
        elif kind == 'analyse':
            event = judged(action['step'], verdicts[action['step']], '%s: the judge' % verdicts[action['step']])
        elif kind == 'wait':
            event = {'kind': 'waited', 'step': action['step']}
        else:
            return actions, warnings, record
    raise AssertionError('no end: %r' % actions)


def test_check_mode_lists_every_weight_change_then_promotes():
    actions, warnings, record = walk(fresh(), PLAN, {0: 'fail', 1: 'pass'})
    assert [(a['kind'], a.get('weight')) for a in actions] == [
        ('deploy', None), ('traffic', 10.0), ('analyse', None), ('traffic', 50.0), ('analyse', None),
        ('traffic', 100.0), ('wait', None), ('promote', None)]
    assert actions[-1]['message'] == 'sample 3: every step done (check mode); promoting'
    assert warnings == ['check mode: sample 3 would roll back: step 0 at 10 %, verdict fail: the judge',
                        'sample 3: step 1 at 50 % would hold for a human (approval gate after step 1); '
                        'check mode goes on']
    # the same in a real run rolls back at step 0
    actions, warnings, record = walk(fresh(), PLAN, {0: 'fail', 1: 'pass'}, check_mode=False)
    assert [a['kind'] for a in actions] == ['deploy', 'traffic', 'analyse', 'rollback'] and warnings == []


def test_check_mode_goes_past_an_inconclusive_step_and_a_held_one():
    actions, warnings, record = walk(fresh(), PLAN, {0: 'inconclusive', 1: 'continue'})
    assert [a['kind'] for a in actions][-1] == 'promote' and len(warnings) == 3
    assert 'step 1 at 50 % is undecided and would be judged until a decision' in warnings[1]
    actions, warnings, record = walk(fresh(), TIMER, {0: 'inconclusive', 1: 'continue'})
    assert [a['kind'] for a in actions][-1] == 'promote' and len(warnings) == 2
    actions, warnings, record = walk(awaiting(), PLAN, {})
    assert [(a['kind'], a.get('step')) for a in actions] == [('traffic', 1), ('traffic', 2), ('wait', 2),
                                                             ('promote', None)]
    actions, warnings, record = walk(awaiting(), PLAN, {}, approval='reject')
    assert [(a['kind'], a.get('step')) for a in actions] == [('traffic', 1), ('traffic', 2), ('wait', 2),
                                                             ('promote', None)]
    assert warnings[0] == 'check mode: sample 3 would roll back: step 1 at 50 %, rejected (rollout_approval=reject)'
    # a record that already failed still rolls back
    assert walk(failed(), PLAN, {})[0][0]['kind'] == 'rollback'


def test_the_diagram_draws_every_transition():
    text = engine.mermaid()
    assert text.startswith('stateDiagram-v2\n')
    for (state, event), targets in engine.TRANSITIONS.items():
        for after, action in targets:
            line = [row for row in text.splitlines() if row.strip().startswith('%s --> %s : ' % (state, after))]
            assert len(line) == 1 and '%s / %s' % (event, action) in line[0]
