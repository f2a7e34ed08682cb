# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The state machine of a release: one pure function from (record, plan, event) to the next action.

The roles do what an action says and report back what happened as an event; :func:`transition` records it (a
*write*: a new step verdict, or the pause of a held run) and says what to do next. Nothing here reads a file or a
clock: ``now`` is given, so every decision is a unit-testable function of its inputs.

**State.** The state is not stored: it is read from the record (:func:`state_of`) - the record status, and for a
running record the verdict of the current step (``record['step']``):

* ``new`` - running, no step recorded yet: the canary still needs the new version;
* ``watching`` - the current step's weight is set (verdict None) and it is being judged or waited out; a judged
  step stays here until the judge decides while the plan requires a pass (``rollout_require_pass``, the default);
* ``step_done`` - the current step is done (pass, watched, approved, skipped) and a step follows;
* ``complete`` - the last step of the plan is done: promote;
* ``awaiting_approval`` / ``inconclusive`` - the current step waits for a human (its approval gate, or the judge
  was undecided at the deadline);
* ``failed`` - the current step failed or was rejected: roll back;
* ``held`` - a run ended waiting for a human (status paused, lock released); the next ``begin`` resumes it;
* ``promoted``, ``rolled_back``, ``aborted`` - finished.

**Events** (``{'kind': ...}``, see ``vocabulary``): ``begun``, ``deployed``, ``traffic_set {step, weight}``,
``judged {step, verdict, reason}``, ``waited {step}``, ``decided {step, decision, source}``, ``held {step,
reason}``. An event that makes no sense in the state (another step than the current one, a weight the plan does
not give, a verdict for a step that has not begun, anything but ``begun`` on a finished record) raises
:class:`EngineError` and writes nothing. Reporting the same event twice changes nothing the second time and
returns the same action (a replay).

**Actions** (``{'kind': ..., 'label': ...}``): ``deploy``, ``traffic {step, weight}``, ``analyse {step,
start_time, restarts, stop_after, until_decided, deadline_extension, deadline, max_duration}``, ``wait {step,
seconds}``, ``approve {step, reason, mode}``, ``rollback {reason}``, ``promote {message}``, ``done {outcome, reason}``.

**Check mode** simulates a run that changes nothing: the would-be writes shape the returned record (the role passes
it back with the next event), nothing holds and nothing this run judges rolls back - a fail, an inconclusive
verdict or an approval gate goes on to the next step with a note in ``warnings`` - so a ``--check`` run lists every
weight change and then the promotion. A record that already says a step failed still rolls back, in check mode too
(the rollback role then changes nothing either).

:data:`TRANSITIONS` is the graph: ``(state, event) -> {(state after, action), ...}``; :func:`mermaid` draws it
(docs/rollout.md, "State diagram") and the property test checks every step a random release takes against it.
"""

import math
import re

from ansible_collections.canary.release.plugins.module_utils._rollout.record import (
    ENGINE,
    JUDGE,
    PERSON,
    actor,
    current_entry,
    describe_position,
    finished,
    format_time,
    parse_time,
    prefix,
    step_entry,
    step_label,
    with_step,
)
from ansible_collections.canary.release.plugins.module_utils._rollout.vocabulary import (
    ABORTED,
    ANALYSE,
    APPROVE,
    APPROVED,
    AWAITING_APPROVAL,
    BEGUN,
    COMPLETE_VERDICTS,
    CONTINUE,
    DECIDED,
    DECISIONS,
    DEPLOY,
    DEPLOYED,
    DONE,
    FAIL,
    FAILED_VERDICTS,
    HELD,
    HELD_VERDICTS,
    INCONCLUSIVE,
    JUDGE_VERDICTS,
    JUDGED,
    OUTCOME_ALREADY_PROMOTED,
    OUTCOME_HELD,
    OUTCOME_PROMOTING,
    OUTCOME_ROLLED_BACK,
    OUTCOME_RUNNING,
    PASS,
    PAUSED,
    PROMOTE,
    PROMOTED,
    REJECTED,
    ROLLBACK,
    ROLLED_BACK,
    RUNNING,
    TRAFFIC,
    TRAFFIC_SET,
    WAIT,
    WAITED,
    WATCHED,
)

# --- states ----------------------------------------------------------------------------------------------------
NEW = 'new'
WATCHING = 'watching'
STEP_DONE = 'step_done'
COMPLETE = 'complete'
S_AWAITING = AWAITING_APPROVAL
S_INCONCLUSIVE = INCONCLUSIVE
FAILED = 'failed'
S_HELD = 'held'
STATES = (NEW, WATCHING, STEP_DONE, COMPLETE, S_AWAITING, S_INCONCLUSIVE, FAILED, S_HELD, PROMOTED, ROLLED_BACK,
          ABORTED)
HELD_STATES = (S_AWAITING, S_INCONCLUSIVE)

# A backend reports the share it really applied, which can differ from the requested one by its rounding to
# server or target-group weights (NGINX integer weights, ALB weights 0-999). More than this many percentage points
# off the plan means the wrong step was applied.
WEIGHT_TOLERANCE = 1.0

_JUDGE_PREFIX = re.compile(r'^(pass|fail|inconclusive|continue): ')

# --- the graph -------------------------------------------------------------------------------------------------
_WATCH = frozenset([(WATCHING, ANALYSE), (WATCHING, WAIT)])
_NEXT = frozenset([(STEP_DONE, TRAFFIC), (COMPLETE, PROMOTE)])
_ROLLBACK = frozenset([(FAILED, ROLLBACK)])

# After traffic_set, _NEXT: a step without analysis, pause or approval gate is done when its weight is set (_instant).
TRANSITIONS = {
    (NEW, BEGUN): frozenset([(NEW, DEPLOY)]),
    (NEW, DEPLOYED): frozenset([(NEW, TRAFFIC)]),
    (NEW, TRAFFIC_SET): _WATCH | _NEXT,
    (WATCHING, BEGUN): frozenset([(WATCHING, TRAFFIC)]),
    (WATCHING, TRAFFIC_SET): _WATCH | _NEXT,
    (WATCHING, JUDGED): _NEXT | _ROLLBACK | frozenset([(WATCHING, ANALYSE), (S_AWAITING, APPROVE),
                                                       (S_INCONCLUSIVE, APPROVE)]),
    (WATCHING, WAITED): _NEXT | frozenset([(S_AWAITING, APPROVE)]),
    (STEP_DONE, BEGUN): frozenset([(STEP_DONE, TRAFFIC)]),
    (STEP_DONE, TRAFFIC_SET): _WATCH | _NEXT,
    (COMPLETE, BEGUN): frozenset([(COMPLETE, PROMOTE)]),
    (S_AWAITING, BEGUN): frozenset([(S_AWAITING, TRAFFIC)]),
    (S_AWAITING, TRAFFIC_SET): _NEXT | _ROLLBACK | frozenset([(S_AWAITING, APPROVE)]),
    (S_AWAITING, DECIDED): _NEXT | _ROLLBACK,
    (S_AWAITING, HELD): frozenset([(S_HELD, DONE)]),
    (S_INCONCLUSIVE, BEGUN): frozenset([(S_INCONCLUSIVE, TRAFFIC)]),
    (S_INCONCLUSIVE, TRAFFIC_SET): _WATCH | _NEXT | _ROLLBACK,
    (S_INCONCLUSIVE, DECIDED): _NEXT | _ROLLBACK,
    (S_INCONCLUSIVE, HELD): frozenset([(S_HELD, DONE)]),
    (FAILED, BEGUN): _ROLLBACK,
    (PROMOTED, BEGUN): frozenset([(PROMOTED, DONE)]),
    (ROLLED_BACK, BEGUN): frozenset([(ROLLED_BACK, DONE)]),
    (ABORTED, BEGUN): frozenset([(ABORTED, DONE)]),
}
"""``(state, event) -> {(state after, action kind)}``: every transition the engine makes outside check mode."""

# What the roles' own record operations do between engine transitions (drawn in the diagram, not engine events).
OPERATIONS = (
    ('[*]', NEW, 'begin'),
    (S_HELD, S_AWAITING, 'begin (resume)'),
    (S_HELD, S_INCONCLUSIVE, 'begin (resume)'),
    (COMPLETE, PROMOTED, 'promote role: finish promoted'),
    (FAILED, ROLLED_BACK, 'rollback role: finish rolled_back'),
    (PROMOTED, '[*]', ''),
    (ROLLED_BACK, '[*]', ''),
)


def _check_mode_transitions():
    """The extra transitions of check mode: where a real run would hold or roll back after this run's verdict, a
    check run goes on (traffic for the next step, or promote); a held or failed step may be left for the next one."""
    extra = {}
    for (state, event), targets in TRANSITIONS.items():
        if event == BEGUN:
            continue
        for after, action in targets:
            if action in (APPROVE, ROLLBACK):
                extra.setdefault((state, event), set()).update([(after, TRAFFIC), (after, PROMOTE)])
    for state in HELD_STATES + (FAILED,):
        extra.setdefault((state, TRAFFIC_SET), set()).update(_WATCH | _NEXT)
    return dict((key, frozenset(value) | TRANSITIONS.get(key, frozenset())) for key, value in extra.items())


CHECK_MODE_TRANSITIONS = _check_mode_transitions()
"""Check mode's transitions beyond :data:`TRANSITIONS` (each value includes the real ones of its key)."""

# A replay (an event reported again after it was recorded) writes nothing and repeats the action of its state.
REPLAYS = {
    (STEP_DONE, JUDGED): frozenset([(STEP_DONE, TRAFFIC)]),
    (STEP_DONE, WAITED): frozenset([(STEP_DONE, TRAFFIC)]),
    (STEP_DONE, DECIDED): frozenset([(STEP_DONE, TRAFFIC)]),
    (STEP_DONE, TRAFFIC_SET): frozenset([(STEP_DONE, TRAFFIC)]),
    (COMPLETE, JUDGED): frozenset([(COMPLETE, PROMOTE)]),
    (COMPLETE, WAITED): frozenset([(COMPLETE, PROMOTE)]),
    (COMPLETE, DECIDED): frozenset([(COMPLETE, PROMOTE)]),
    (COMPLETE, TRAFFIC_SET): frozenset([(COMPLETE, PROMOTE)]),
    (S_AWAITING, JUDGED): frozenset([(S_AWAITING, APPROVE)]),
    (S_AWAITING, WAITED): frozenset([(S_AWAITING, APPROVE)]),
    (S_INCONCLUSIVE, JUDGED): frozenset([(S_INCONCLUSIVE, APPROVE)]),
    (FAILED, JUDGED): _ROLLBACK,
    (FAILED, DECIDED): _ROLLBACK,
    (FAILED, TRAFFIC_SET): _ROLLBACK,
    (S_HELD, HELD): frozenset([(S_HELD, DONE)]),
}
"""``(state, event) -> {(state, action)}`` of replays: the same event reported twice."""


class EngineError(Exception):
    """The event makes no sense for the record and plan; nothing was written."""


def hold_mode_for(approval_mode, awx):
    """How a held step waits for a human: ``end`` (end the run paused; a re-run with ``rollout_approval`` or an AWX
    approval node decides) when ``rollout_approval_mode`` is ``end``, or ``auto`` in an AWX job (no terminal to
    prompt on); else ``prompt`` (ask on the terminal)."""
    if approval_mode == 'end' or (approval_mode == 'auto' and awx):
        return 'end'
    return 'prompt'


def state_of(record, plan):
    """The state of ``record`` (see the module docstring). A verdict the engine does not know, and the
    ``continue`` of older records, count as ``watching``: the step is not done and runs again."""
    status = record.get('status')
    if status in (PROMOTED, ROLLED_BACK, ABORTED):
        return status
    if status == PAUSED:
        return S_HELD
    if status != RUNNING:
        raise EngineError('the record of %s has an unknown status %r' % (prefix(record), status))
    if record.get('step') is None:
        return NEW
    entry = current_entry(record) or {}
    verdict = entry.get('verdict')
    if verdict in COMPLETE_VERDICTS:
        return COMPLETE if record['step'] + 1 >= len(plan['steps']) else STEP_DONE
    if verdict in HELD_VERDICTS:
        return verdict
    if verdict in FAILED_VERDICTS:
        return FAILED
    return WATCHING


# --- the transition --------------------------------------------------------------------------------------------

def transition(record, plan, event, now, approval='', hold_mode='end', check_mode=False, by=None):
    """What to do after ``event``, given the ``record`` and the ``plan`` (:func:`.plan.build_plan`).

    ``approval`` is ``rollout_approval`` ('', ``approve`` or ``reject``): the decision for a step the last run left
    held; ``hold_mode`` (:func:`hold_mode_for`) goes into ``approve`` actions. ``now`` is the time in seconds.
    ``by`` is the person behind the run (:func:`.record.person`), recorded as who decided an approval or a
    rejection; the other writes say ``by`` the judge (a pass or fail, with its reason) or the engine (its rules:
    a step's start, a pause, an approval gate, the deadline's inconclusive, a hold). A ``rollback`` or ``promote``
    action carries the ``by`` of the decision that led to it.

    Returns ``{'write', 'record', 'action', 'message', 'outcome', 'warnings', 'state', 'state_after'}``: ``write``
    is what to record (``{'operation': 'step', 'step', 'weight', 'verdict', 'reason'}`` or ``{'operation':
    'finish', 'status': 'paused', 'reason'}``; None when the record does not change), ``record`` the record after
    it, ``message`` the one-line event text of the write (or of a promotion; None otherwise), ``outcome`` where
    the release stands (running, held, rolled_back, promoting, promoted, already_promoted, aborted).
    """
    if not isinstance(record, dict) or 'status' not in record or 'steps' not in record:
        raise EngineError('no rollout record: begin the rollout first (in check mode, pass the record that begin '
                          'would write)')
    if not isinstance(event, dict) or event.get('kind') not in _HANDLERS:
        raise EngineError('event must be a mapping whose kind is one of %s, got %r'
                          % (', '.join(sorted(_HANDLERS)), event))
    if approval not in ('',) + DECISIONS:
        raise EngineError('approval must be empty, approve or reject, got %r' % (approval,))
    if hold_mode not in ('prompt', 'end'):
        raise EngineError('hold_mode must be prompt or end, got %r' % (hold_mode,))
    walk = _Walk(record, plan, now, approval, hold_mode, check_mode, by)
    state = state_of(record, plan)
    kind = event['kind']
    if kind != BEGUN and state in (PROMOTED, ROLLED_BACK, ABORTED):
        raise EngineError('%s: the rollout already finished as %s on %s; %s does not apply'
                          % (prefix(record), record['status'], record.get('finished_at'), kind))
    action = _HANDLERS[kind](walk, state, event)
    after = walk.record
    write = walk.write if after != record else None
    message = walk.message if write is not None else None
    if message is not None and check_mode:
        message += ' (check mode, not recorded)'
    if action['kind'] == PROMOTE:
        message = action['message']
    return {'write': write, 'record': after, 'action': action, 'message': message,
            'outcome': _outcome(action), 'warnings': walk.warnings, 'state': state,
            'state_after': state_of(after, plan)}


class _Walk(object):
    """The inputs of one transition and what it produced so far (the write, the record after, warnings)."""

    def __init__(self, record, plan, now, approval, hold_mode, check_mode, by):
        self.before = record
        self.person = by or actor(PERSON, 'unknown')
        self.record = record
        self.plan = plan
        self.now = now
        self.approval = approval
        self.hold_mode = hold_mode
        self.check_mode = check_mode
        self.write = None
        self.message = None
        self.warnings = []

    # the plan and labels

    def planned(self, index):
        steps = self.plan['steps']
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(steps):
            raise EngineError('%s: step %r is not in the plan (%d steps)' % (prefix(self.record), index, len(steps)))
        return steps[index]

    def label(self, index=None):
        if index is None:
            return prefix(self.record)
        return '%s: %s' % (prefix(self.record), step_label(index, self.planned(index)['weight']))

    # writes

    def record_step(self, index, weight, verdict, reason, by):
        self.write = {'operation': 'step', 'step': index, 'weight': weight, 'verdict': verdict, 'reason': reason,
                      'by': by}
        self.record, self.message = with_step(self.record, index, weight, verdict, reason, None, self.now, by)

    def pause(self, reason):
        by = actor(ENGINE, 'hold', 'waiting for a human')
        self.write = {'operation': 'finish', 'status': PAUSED, 'reason': reason, 'by': by}
        self.record, self.message = finished(self.record, PAUSED, reason, self.now, by)

    # actions

    def traffic(self, index):
        return {'kind': TRAFFIC, 'step': index, 'weight': self.planned(index)['weight'], 'label': self.label(index)}

    def next_after(self, index):
        """The step after ``index`` is done: traffic for the next one, or promote after the last."""
        if index + 1 < len(self.plan['steps']):
            return self.traffic(index + 1)
        if self.check_mode:
            verdicts = 'check mode'
        else:
            verdicts = ', '.join(str(entry.get('verdict')) for entry in self.record['steps'])
        return {'kind': PROMOTE, 'message': '%s: every step done (%s); promoting' % (prefix(self.record), verdicts),
                'label': self.label(), 'by': actor(ENGINE, 'plan', 'every step done')}

    def watch(self, index):
        """The step began at its weight: judge it (analysis) or hold it for its pause (no analysis).

        The judge reads from the first step's start (evidence accumulates over the steps and survives a crash;
        ``now`` in check mode, where nothing was recorded); a pass is held until the end of this step's pause
        (``stop_after``, seconds after that start). The judge restarts its tests at the start of every later step
        up to this one (``restarts``, see :func:`_restarts`), so each step earns its own pass, and each judged step
        has its own deadline: ``max_duration`` from the step's start, or from the newest approval when that is
        later (``deadline_extension``: that time after the first step's start)."""
        step = self.planned(index)
        entry = step_entry(self.record, index) or {}
        if self.check_mode:
            start = step_start = self.now
        else:
            first = self.record['steps'][0]
            start = _time_of(first.get('started_at') or first.get('at'), self.now)
            step_start = _time_of(entry.get('started_at') or entry.get('at'), self.now)
        if not step['analysis']:
            seconds = 0 if self.check_mode else max(0, int(math.ceil(step['pause'] - (self.now - step_start))))
            return {'kind': WAIT, 'step': index, 'seconds': seconds, 'label': self.label(index)}
        approvals = [_time_of(item.get('at'), None) for item in self.record['steps']
                     if item.get('verdict') == APPROVED]
        approvals = [stamp for stamp in approvals if stamp is not None]
        extension = max([0.0, step_start - start] + [stamp - start for stamp in approvals])
        return {'kind': ANALYSE, 'step': index, 'start_time': format_time(start),
                'stop_after': (step_start - start) + step['pause'], 'until_decided': self.plan['require_pass'],
                'deadline_extension': extension, 'max_duration': self.plan['max_duration'],
                'deadline': self.plan['max_duration'] + extension, 'label': self.label(index),
                'restarts': [] if self.check_mode else _restarts(self.record, index, start, self.now)}

    def after_verdict(self, index):
        """What follows the verdict now recorded for step ``index``: the next step (or promote) when it is done, a
        human when it is held, a rollback when it failed. Check mode goes on instead of holding or rolling back."""
        entry = step_entry(self.record, index) or {}
        verdict = entry.get('verdict')
        if verdict in COMPLETE_VERDICTS:
            return self.next_after(index)
        if verdict in FAILED_VERDICTS:
            label = step_label(index, self.planned(index)['weight'])
            if verdict == FAIL:
                reason = '%s, verdict fail: %s' % (label, entry.get('reason'))
            else:
                reason = '%s, %s' % (label, entry.get('reason'))
            if self.check_mode:
                self.warnings.append('check mode: %s would roll back: %s' % (prefix(self.record), reason))
                return self.next_after(index)
            return {'kind': ROLLBACK, 'reason': reason, 'label': self.label(), 'by': entry.get('by')}
        reason = self.hold_reason(index)
        if self.check_mode:
            self.warnings.append('%s would hold for a human (%s); check mode goes on'
                                 % (self.label(index), reason))
            return self.next_after(index)
        return {'kind': APPROVE, 'step': index, 'reason': reason, 'mode': self.hold_mode, 'label': self.label(index)}

    def hold_reason(self, index):
        """Why step ``index`` waits for a human: its approval gate, or the judge's inconclusive reason."""
        entry = step_entry(self.record, index) or {}
        if entry.get('verdict') == AWAITING_APPROVAL:
            return 'approval gate after step %d' % index
        return entry.get('reason') or 'the judge was inconclusive'


def _time_of(text, default):
    stamp = parse_time(text)
    return default if stamp is None else stamp


def _restarts(record, index, start, now):
    """The judge's restarts at step ``index``: the start (``started_at``, else ``at``, else ``now``) of every step
    from 1 to ``index``, as the record writes times. Everything since ``start`` (the first step's) still counts to
    fail; a pass is judged on the data since the latest restart, this step's own. A step that began in the same
    second as the one before it (or earlier: a clock that stepped back) adds no restart, so they increase."""
    stamps = []
    for later in range(1, index + 1):
        entry = step_entry(record, later) or {}
        stamp = _time_of(entry.get('started_at') or entry.get('at'), now)
        if stamp > (stamps[-1] if stamps else start):
            stamps.append(stamp)
    return [format_time(stamp) for stamp in stamps]


def _outcome(action):
    if action['kind'] == ROLLBACK:
        return OUTCOME_ROLLED_BACK
    if action['kind'] == PROMOTE:
        return OUTCOME_PROMOTING
    if action['kind'] == DONE:
        return action['outcome']
    return OUTCOME_RUNNING


def _event_step(walk, event):
    """The event's step index (an int, or a string of digits as a template may give it)."""
    step = event.get('step')
    if isinstance(step, str) and step.strip().isdigit():
        step = int(step)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise EngineError('%s: event %s needs step, an index from 0, got %r' % (prefix(walk.record), event['kind'],
                                                                                step))
    walk.planned(step)
    return step


def _require_current(walk, state, event, step, states):
    """The event concerns the current step, in one of ``states``."""
    if state not in states or walk.record.get('step') != step:
        raise EngineError('%s: %s for step %s does not apply: the rollout is %s %s (%s)'
                          % (prefix(walk.record), event['kind'], step, walk.record['status'],
                             describe_position(walk.record), state))


def _replay(walk, state, event, step, verdict, reason):
    """True when step ``step`` is the current one and already has ``verdict`` and ``reason`` (a replay)."""
    entry = current_entry(walk.record) or {}
    if (state, event['kind']) in REPLAYS and walk.record.get('step') == step and entry.get('verdict') == verdict \
            and entry.get('reason') == reason:
        return True
    return False


# --- the events ----------------------------------------------------------------------------------------------

def _begun(walk, state, event):
    """begin took the lock. A new rollout deploys the canary first; a resumed one re-applies the weight of the step
    it stopped in (a step being watched, or one held for a human: ``rollout_approval`` decides it once the weight
    is back), goes on after a done step, promotes when every step is done, and rolls back - without moving traffic
    up - when the last run died after a failed or rejected step. A version already promoted is done."""
    record = walk.record
    if state == S_HELD:
        raise EngineError('%s is paused %s: begin resumes it before the engine goes on'
                          % (prefix(record), describe_position(record)))
    if walk.approval and state not in HELD_STATES:
        walk.warnings.append('%s: rollout_approval=%s ignored - the rollout is not held for a human (%s)'
                             % (prefix(record), walk.approval, describe_position(record)))
    if state == PROMOTED:
        return {'kind': DONE, 'outcome': OUTCOME_ALREADY_PROMOTED,
                'reason': 'already promoted on %s' % record.get('finished_at'), 'label': walk.label()}
    if state in (ROLLED_BACK, ABORTED):
        return {'kind': DONE, 'outcome': state, 'reason': record.get('reason'), 'label': walk.label()}
    if state == NEW:
        return {'kind': DEPLOY, 'label': walk.label()}
    index = record['step']
    if state == FAILED:
        entry = current_entry(record)
        reason = 'resumed after %s had ended with verdict %s: %s' % (
            step_label(index, entry.get('weight')), entry.get('verdict'), entry.get('reason'))
        return {'kind': ROLLBACK, 'reason': reason, 'label': walk.label(), 'by': entry.get('by')}
    if state in (STEP_DONE, COMPLETE):
        return walk.next_after(index)
    return walk.traffic(index)


def _deployed(walk, state, event):
    """The canary runs the new version: set the first step's weight."""
    if state != NEW:
        raise EngineError('%s: deployed does not apply: the canary is deployed before the first step, and the '
                          'rollout is %s %s' % (prefix(walk.record), walk.record['status'],
                                                describe_position(walk.record)))
    return walk.traffic(0)


def _traffic_set(walk, state, event):
    """The backend sends ``weight`` percent to the canary for step ``step``: the step (re)starts (verdict None;
    ``started_at`` kept at the same weight) and is watched. A held step is different: with ``rollout_approval``
    the decision is recorded (approved or rejected); without, a step at its approval gate asks again, and an
    inconclusive step is watched again. Only the step the engine asked for is accepted."""
    step = _event_step(walk, event)
    weight = event.get('weight')
    if isinstance(weight, str):
        try:
            weight = float(weight)
        except ValueError:
            pass
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or math.isnan(weight):
        raise EngineError('%s: traffic_set needs weight, the percent the backend reports, got %r'
                          % (prefix(walk.record), weight))
    weight = float(weight)
    planned = walk.planned(step)['weight']
    if abs(weight - planned) > WEIGHT_TOLERANCE:
        raise EngineError('%s: traffic_set for step %d reports %s %%, but the plan gives the step %s %%'
                          % (prefix(walk.record), step, '%g' % weight, '%g' % planned))
    record = walk.record
    current = record.get('step')
    decision_verdict = {'approve': APPROVED, 'reject': REJECTED}.get(walk.approval)
    decision_reason = '%s (rollout_approval=%s)' % (decision_verdict, walk.approval) if walk.approval else None
    if walk.approval and step == current and _replay(walk, state, event, step, decision_verdict, decision_reason):
        return walk.after_verdict(step)
    if state in (STEP_DONE, COMPLETE) and step == current and _instant(walk, step) \
            and record.get('weight') is not None and abs(weight - record['weight']) <= WEIGHT_TOLERANCE:
        return walk.after_verdict(step)  # a replay of the traffic_set that did the step
    expected = _expected_step(walk, state)
    if step not in expected:
        raise EngineError('%s: traffic_set for step %d does not apply: the rollout is %s %s (%s)%s'
                          % (prefix(record), step, record['status'], describe_position(record), state,
                             '; it expects step %s' % ' or '.join(str(item) for item in expected)
                             if expected else ''))
    if state in HELD_STATES and step == current:
        if walk.approval:
            walk.record_step(step, weight, decision_verdict, decision_reason, walk.person)
            return walk.after_verdict(step)
        if state == S_AWAITING:
            return walk.after_verdict(step)
    if _instant(walk, step):
        walk.record_step(step, weight, *_held_for_pause(walk, step))
        return walk.after_verdict(step)
    walk.record_step(step, weight, None, None, actor(ENGINE, 'plan', 'step %d of the plan' % step))
    return walk.watch(step)


def _instant(walk, step):
    """True for a step without analysis, pause or approval gate: it is done as soon as its weight is set, so the
    traffic_set that reports the weight records its verdict (``watched``) too - one engine turn and one event for
    the step instead of a step start, a wait of 0 s and a verdict. (A gated step still takes its wait: a gate's
    decision is recorded only when the held step's weight is re-applied, see :func:`_traffic_set`.)"""
    planned = walk.planned(step)
    return not planned['analysis'] and planned['pause'] <= 0 and not planned['approval']


def _expected_step(walk, state):
    """The steps a traffic_set may name: the first (new), the current one (being watched, or held: its weight is
    re-applied), the next one after a done step. In check mode also the next one after a held or failed step,
    which check mode goes past."""
    current = walk.record.get('step')
    if state == NEW:
        return [0]
    if state == WATCHING:
        return [current]
    if state == STEP_DONE:
        return [current + 1]
    if state in HELD_STATES:
        return [current, current + 1] if walk.check_mode else [current]
    if state == FAILED and walk.check_mode:
        return [current + 1]
    return []


def _judged(walk, state, event):
    """The judge's verdict for the current step: ``pass``, ``fail`` and ``inconclusive`` are recorded as they are,
    their reason without the leading ``<verdict>: ``; a done step with an approval gate records
    ``awaiting_approval`` instead.

    ``continue`` (still undecided) does not end a step while the plan requires a pass (``rollout_require_pass``,
    the default): nothing is written and the step is judged again, until a decision or the deadline's
    ``inconclusive`` (check mode, which polls once, goes on with a warning). Only with the explicit opt-out
    (``rollout_require_pass: false``) does ``continue`` at the end of the step's time (data from every metric) end
    the step as ``watched``: promotion on timer."""
    step = _event_step(walk, event)
    verdict = event.get('verdict')
    if verdict not in JUDGE_VERDICTS:
        raise EngineError('%s: judged needs verdict %s, got %r' % (prefix(walk.record), ', '.join(JUDGE_VERDICTS),
                                                                   verdict))
    planned = walk.planned(step)
    if not planned['analysis']:
        raise EngineError('%s: judged for step %d, which has no analysis (report waited)'
                          % (prefix(walk.record), step))
    reason = event.get('reason') or ''
    if verdict == CONTINUE and walk.plan['require_pass']:
        if not walk.check_mode:
            _require_current(walk, state, event, step, (WATCHING,))
            return walk.watch(step)
        walk.warnings.append('%s is undecided and would be judged until a decision (rollout_require_pass); check '
                             'mode goes on' % walk.label(step))
    if verdict == CONTINUE:
        reason = 'undecided after %d s with data from every metric%s (%s)' % (
            planned['pause'], '' if walk.plan['require_pass'] else ', done on time (rollout_require_pass: false)',
            reason)
        verdict = WATCHED
        by = actor(ENGINE, 'timer', 'rollout_require_pass: false')
    elif verdict == INCONCLUSIVE:
        reason = _JUDGE_PREFIX.sub('', reason)
        by = actor(ENGINE, 'deadline', reason)
    else:
        reason = _JUDGE_PREFIX.sub('', reason)
        by = actor(JUDGE, 'judge', reason)
    return _record_verdict(walk, state, event, step, verdict, reason, by)


def _waited(walk, state, event):
    """A step without analysis held for its pause: ``watched`` (or ``awaiting_approval`` at an approval gate)."""
    step = _event_step(walk, event)
    if walk.planned(step)['analysis']:
        raise EngineError('%s: waited for step %d, which is judged (report judged)' % (prefix(walk.record), step))
    return _record_verdict(walk, state, event, step, *_held_for_pause(walk, step))


def _held_for_pause(walk, step):
    """``(verdict, reason, by)`` of a step without analysis that was held for its pause."""
    return (WATCHED, 'no analysis at this step; held %d s' % walk.planned(step)['pause'],
            actor(ENGINE, 'pause', 'no analysis at this step'))


def _record_verdict(walk, state, event, step, verdict, reason, by):
    if verdict in (PASS, WATCHED) and walk.planned(step)['approval']:
        verdict, reason = AWAITING_APPROVAL, "the step's approval gate: %s" % reason
        by = actor(ENGINE, 'approval gate', reason)
    if _replay(walk, state, event, step, verdict, reason):
        return walk.after_verdict(step)
    _require_current(walk, state, event, step, (WATCHING,))
    walk.record_step(step, walk.record.get('weight'), verdict, reason, by)
    return walk.after_verdict(step)


def _decided(walk, state, event):
    """A human's decision at the prompt on the held step: ``approved`` or ``rejected`` with ``(<source>)``."""
    step = _event_step(walk, event)
    decision = event.get('decision')
    if decision not in DECISIONS:
        raise EngineError('%s: decided needs decision approve or reject, got %r' % (prefix(walk.record), decision))
    verdict = APPROVED if decision == 'approve' else REJECTED
    reason = '%s (%s)' % (verdict, event.get('source') or 'at the prompt')
    if _replay(walk, state, event, step, verdict, reason):
        return walk.after_verdict(step)
    _require_current(walk, state, event, step, HELD_STATES)
    walk.record_step(step, walk.record.get('weight'), verdict, reason, walk.person)
    return walk.after_verdict(step)


def _held(walk, state, event):
    """The run ends waiting for a human: the record is paused (the lock is released); the next run's
    ``rollout_approval`` decides."""
    step = _event_step(walk, event)
    if state == S_HELD and walk.record.get('step') == step:
        reason = event.get('reason') or walk.hold_reason(step)
        return {'kind': DONE, 'outcome': OUTCOME_HELD,
                'reason': '%s: %s' % (step_label(step, walk.planned(step)['weight']), reason), 'label': walk.label()}
    if walk.check_mode:
        raise EngineError('%s: held does not apply in check mode, which never holds' % prefix(walk.record))
    _require_current(walk, state, event, step, HELD_STATES)
    reason = event.get('reason') or walk.hold_reason(step)
    walk.pause(reason)
    return {'kind': DONE, 'outcome': OUTCOME_HELD,
            'reason': '%s: %s' % (step_label(step, walk.planned(step)['weight']), reason), 'label': walk.label()}


_HANDLERS = {
    BEGUN: _begun,
    DEPLOYED: _deployed,
    TRAFFIC_SET: _traffic_set,
    JUDGED: _judged,
    WAITED: _waited,
    DECIDED: _decided,
    HELD: _held,
}


# --- the diagram -----------------------------------------------------------------------------------------------

def mermaid():
    """:data:`TRANSITIONS` (and the roles' record operations, :data:`OPERATIONS`) as a Mermaid ``stateDiagram-v2``:
    one arrow per (state, state after), labelled ``event / action`` for every way it is taken, sorted."""
    edges = {}
    for (state, event), targets in TRANSITIONS.items():
        for after, action in targets:
            edges.setdefault((state, after), set()).add('%s / %s' % (event, action))
    lines = ['stateDiagram-v2']
    for state, after, text in OPERATIONS:
        lines.append('    %s --> %s%s' % (state, after, (' : ' + text) if text else ''))
    order = dict((state, position) for position, state in enumerate(STATES))
    for (state, after) in sorted(edges, key=lambda pair: (order[pair[0]], order[pair[1]])):
        lines.append('    %s --> %s : %s' % (state, after, ', '.join(sorted(edges[(state, after)]))))
    return '\n'.join(lines) + '\n'
