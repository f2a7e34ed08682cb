"""Model-based test of the release engine: random releases, with a controller killed at any point.

A simulated controller runs the rollout role's loop - do what the action says, report what happened - against a
random plan, with random judge verdicts (pass, fail, continue, inconclusive), humans at the prompt (approve,
reject, no answer), re-runs with rollout_approval approve or reject, holds, and a kill at any point: the run's
memory is dropped and the next run begins again from the record as written. It runs twice: on the pure engine
(records in memory) and through ``state.advance`` on real files (locks, begin, finish).

Invariants checked at every transition:

* every (state, event) -> (state after, action) taken is in ``engine.TRANSITIONS`` (or ``engine.REPLAYS``);
* once a step failed or was rejected, the only action is the rollback: canary traffic never goes up again;
* promote only when every step of the plan is pass, watched or approved - and, when the plan requires a pass
  (``rollout_require_pass``, the default), no judged step ended undecided (``watched``): each passed or a human
  approved it, so the promotion rests on evidence, never on time alone;
* traffic for step k only when every step before k is done and k is not: a resume never repeats a done step nor
  skips one that is not;
* a held release re-applies the held step's weight and nothing else until a human decides;
* a run that begins after a failed step rolls back first (no traffic action in that run).

Hypothesis runs a fixed number of scenarios (``derandomize``: the same ones in every run, CI is stable).
"""

import shutil
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.canary.release.plugins.module_utils._rollout import engine, record as rec, state
from ansible_collections.canary.release.plugins.module_utils._rollout.plan import PlanError, build_plan
from ansible_collections.canary.release.plugins.module_utils._rollout.vocabulary import (
    COMPLETE_VERDICTS,
    FAILED_VERDICTS,
)

NOW = 1738324800.0
MAX_RUNS = 8
MAX_EVENTS_PER_RUN = 40
SCENARIOS = {'pure': 0, 'files': 0, 'check': 0}
TAKEN = set()  # the edges (state, event, state after, action) the random releases took
# Edges a release of one version with one plan cannot take (test_engine.py covers them): begin starts a new record
# after a rollback or an abort, an inconclusive step is judged, so it is waited out only under a changed plan, and
# a step without analysis, pause or gate is never left watching by this engine (an earlier one waited it out).
OUT_OF_MODEL = set([('rolled_back', 'begun', 'rolled_back', 'done'), ('aborted', 'begun', 'aborted', 'done'),
                    ('inconclusive', 'traffic_set', 'watching', 'wait'),
                    ('watching', 'traffic_set', 'step_done', 'traffic'),
                    ('watching', 'traffic_set', 'complete', 'promote')])


@st.composite
def plans(draw):
    weights = sorted(draw(st.sets(st.sampled_from([5, 10, 25, 50, 75, 100]), min_size=1, max_size=4)))
    steps = []
    for weight in weights:
        step = {'weight': weight, 'pause': draw(st.sampled_from([0, 30]))}
        if draw(st.booleans()):
            step['analysis'] = draw(st.booleans())
        if draw(st.integers(0, 3)) == 0:
            step['approval'] = True
        steps.append(step)
    require_pass = draw(st.booleans())
    try:
        return build_plan(steps, pause=30, require_pass=require_pass)
    except PlanError:
        return build_plan(steps, pause=30, require_pass=False)  # no judged step, no gate: only on timer


class PureBackend(object):
    """The engine alone: the record lives in memory, begin and finish are the pure record transforms."""

    def __init__(self):
        self.record = None
        self.now = NOW

    def tick(self):
        self.now += 10
        return self.now

    def current(self):
        return self.record

    def begin(self):
        run_id = 'run%d' % self.tick()
        if self.record is None or self.record['status'] in ('rolled_back', 'aborted'):
            self.record = rec.started('web', '2', '1', run_id, self.now)[0]
        elif self.record['status'] in ('running', 'paused'):
            self.record = rec.resumed(self.record, run_id, self.now)[0]

    def advance(self, plan, event, approval, hold_mode):
        result = engine.transition(self.record, plan, event, self.tick(), approval=approval, hold_mode=hold_mode)
        self.record = result['record']
        return result

    def finish(self, status, reason):
        self.record = rec.finished(self.record, status, reason, self.tick())[0]


class FileBackend(PureBackend):
    """``state.begin``, ``state.advance`` and ``state.finish`` on a state directory, with its lock."""

    def __init__(self, state_dir):
        super(FileBackend, self).__init__()
        self.state_dir = state_dir
        self.run_id = None

    def current(self):
        return state.read(self.state_dir, 'web', now=self.now)['record']

    def begin(self):
        # the killed run's lock is left behind: its holder is gone (break_lock stands for the stale-lock check)
        begun = state.begin(self.state_dir, 'web', '2', previous_version='1', owner={'pid': None},
                            break_lock=True, now=self.tick())
        self.run_id = begun['run_id']

    def advance(self, plan, event, approval, hold_mode):
        result = state.advance(self.state_dir, 'web', '2', self.run_id, plan, event, approval=approval,
                               hold_mode=hold_mode, now=self.tick(), owner={'pid': None})
        read = state.read(self.state_dir, 'web', now=self.now)
        assert read['record'] == result['record']  # what the engine decided is what was written
        assert result['changed'] == (result['write'] is not None)
        if read['record']['status'] == 'running':
            assert read['lock']['run_id'] == self.run_id
        if read['record']['status'] == 'paused':
            assert read['lock'] is None  # a held run releases the lock
        return result

    def finish(self, status, reason):
        state.finish(self.state_dir, 'web', status, reason, run_id=self.run_id, now=self.tick())


def done_steps(record):
    return set(entry['index'] for entry in record['steps'] if entry.get('verdict') in COMPLETE_VERDICTS)


def has_failed(record):
    return any(entry.get('verdict') in FAILED_VERDICTS for entry in record['steps'])


def check(plan, before, event, result, run):
    """The invariants of one transition."""
    key = (result['state'], event['kind'])
    taken = (result['state_after'], result['action']['kind'])
    assert taken in engine.TRANSITIONS.get(key, frozenset()) | engine.REPLAYS.get(key, frozenset()), (key, taken)
    TAKEN.add(key + taken)
    after, action = result['record'], result['action']
    if has_failed(after) and after['status'] == 'running':
        assert action['kind'] == 'rollback', action  # no traffic after a fail or a rejection
    if plan['require_pass']:
        undecided = [entry for entry in after['steps']
                     if entry.get('verdict') == 'watched' and plan['steps'][entry['index']]['analysis']]
        assert not undecided, after['steps']  # a judged step never ends on time alone
    if action['kind'] == 'promote':
        assert done_steps(after) == set(range(len(plan['steps']))), after['steps']
    if action['kind'] == 'traffic':
        step = action['step']
        assert action['weight'] == plan['steps'][step]['weight']
        if result['state_after'] in engine.HELD_STATES:
            # held: only the held step's own weight is re-applied
            assert step == after['step'] and event['kind'] == 'begun', (step, after['step'], event)
        else:
            assert done_steps(after) >= set(range(step)), (step, after['steps'])  # nothing skipped
            assert step not in done_steps(after), (step, after['steps'])       # nothing repeated
            assert step == rec.next_step(after)
    if run['began_in'] == engine.FAILED:
        assert action['kind'] == 'rollback', action  # died after a failed step: roll back first
    if run['began_in'] in engine.HELD_STATES and run['first']:
        assert action == {'kind': 'traffic', 'step': before['step'],
                          'weight': plan['steps'][before['step']]['weight'], 'label': action['label']}


def play(data, backend, plan):
    """One release: runs until it is promoted (and found promoted again), rolled back, or MAX_RUNS ran."""
    for dummy in range(MAX_RUNS):
        approval = data.draw(st.sampled_from(['', '', 'approve', 'reject']), label='rollout_approval')
        hold_mode = data.draw(st.sampled_from(['prompt', 'end']), label='hold mode')
        backend.begin()
        run = {'began_in': engine.state_of(backend.current(), plan), 'first': True}
        event = {'kind': 'begun'}
        for dummy in range(MAX_EVENTS_PER_RUN):
            before = backend.current()
            result = backend.advance(plan, event, approval, hold_mode)
            check(plan, before, event, result, run)
            run['first'] = False
            if data.draw(st.integers(0, 9), label='repeat the event') == 0:
                again = backend.advance(plan, event, approval, hold_mode)
                assert again['write'] is None and again['record'] == result['record']
                assert again['action']['kind'] == result['action']['kind']
            action = result['action']
            if data.draw(st.integers(0, 11), label='kill the controller') == 0:
                break  # killed: everything this run knew is gone
            kind = action['kind']
            if kind == 'deploy':
                event = {'kind': 'deployed'}
            elif kind == 'traffic':
                event = {'kind': 'traffic_set', 'step': action['step'], 'weight': action['weight']}
            elif kind == 'analyse':
                verdict = data.draw(st.sampled_from(['pass', 'pass', 'continue', 'fail', 'inconclusive']),
                                    label='verdict')
                event = {'kind': 'judged', 'step': action['step'], 'verdict': verdict, 'reason': verdict + ': x'}
            elif kind == 'wait':
                event = {'kind': 'waited', 'step': action['step']}
            elif kind == 'approve':
                answer = data.draw(st.sampled_from(['approve', 'reject', ''])) if action['mode'] == 'prompt' else ''
                if answer:
                    event = {'kind': 'decided', 'step': action['step'], 'decision': answer, 'source': 'at the prompt'}
                else:
                    event = {'kind': 'held', 'step': action['step'], 'reason': action['reason']}
            elif kind == 'rollback':
                backend.finish('rolled_back', action['reason'])
                return
            elif kind == 'promote':
                backend.finish('promoted', 'every step done')
                backend.begin()
                before = backend.current()
                final = backend.advance(plan, {'kind': 'begun'}, '', 'end')
                check(plan, before, {'kind': 'begun'}, final, {'began_in': engine.PROMOTED, 'first': True})
                assert final['action']['kind'] == 'done' and final['outcome'] == 'already_promoted'
                return
            else:
                assert kind == 'done' and result['outcome'] == 'held'
                assert backend.current()['status'] == 'paused'
                break


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), plans())
def test_random_releases_on_the_pure_engine(data, plan):
    SCENARIOS['pure'] += 1
    play(data, PureBackend(), plan)


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), plans())
def test_random_releases_through_state_advance_on_files(data, plan):
    SCENARIOS['files'] += 1
    state_dir = tempfile.mkdtemp(prefix='canary-engine-model-')
    try:
        play(data, FileBackend(state_dir), plan)
    finally:
        shutil.rmtree(state_dir)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.data(), plans())
def test_check_mode_lists_every_weight_then_promotes(data, plan):
    """Whatever the judge says, a --check run shows every step's weight in order, then the promotion."""
    SCENARIOS['check'] += 1
    record = rec.started('web', '2', '1', 'check', NOW)[0]
    event, weights = {'kind': 'begun'}, []
    for dummy in range(4 * len(plan['steps']) + 3):
        result = engine.transition(record, plan, event, NOW + 60, check_mode=True)
        key = (result['state'], event['kind'])
        assert (result['state_after'], result['action']['kind']) in engine.CHECK_MODE_TRANSITIONS.get(
            key, engine.TRANSITIONS.get(key, frozenset()))
        record, action = result['record'], result['action']
        if action['kind'] == 'deploy':
            event = {'kind': 'deployed'}
        elif action['kind'] == 'traffic':
            weights.append(action['weight'])
            event = {'kind': 'traffic_set', 'step': action['step'], 'weight': action['weight']}
        elif action['kind'] == 'analyse':
            event = {'kind': 'judged', 'step': action['step'], 'reason': 'x',
                     'verdict': data.draw(st.sampled_from(['pass', 'continue', 'fail', 'inconclusive']))}
        elif action['kind'] == 'wait':
            assert action['seconds'] == 0
            event = {'kind': 'waited', 'step': action['step']}
        else:
            break
    assert action['kind'] == 'promote'
    assert weights == [step['weight'] for step in plan['steps']]


def test_scenario_counts_and_every_edge_was_taken():
    """Runs after the property tests (file order): each ran the scenarios it was set for, and together the random
    releases took every edge of the graph (the model is not missing a corner)."""
    assert SCENARIOS['pure'] >= 100 and SCENARIOS['files'] >= 50 and SCENARIOS['check'] >= 50, SCENARIOS
    edges = set((state_, event) + target for (state_, event), targets in engine.TRANSITIONS.items()
                for target in targets)
    assert sorted(edges - TAKEN - OUT_OF_MODEL) == [], sorted(edges - TAKEN)
