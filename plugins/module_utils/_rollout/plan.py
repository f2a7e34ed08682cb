# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The step plan: ``rollout_steps`` and its defaults validated once, before anything changes.

:func:`build_plan` turns what the user wrote into a JSON-safe plan the engine walks, or raises :class:`PlanError`
naming every problem at once (a user fixes a step list in one go, not one error per run).
"""

import re

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.canary.release.plugins.module_utils._rollout.presets import (DEFAULT_STEPS, PresetError,
                                                                                      preset_steps)
from ansible_collections.canary.release.plugins.module_utils.time_spec import TimeSpecError, parse_duration

STEP_KEYS = ('weight', 'pause', 'analysis', 'approval')
STEPS_ORDERS = ('increasing', 'any')
# rollout_require_pass by default: a judged step ends on a decision (the judge's pass or fail, or the deadline's
# inconclusive, which holds for a person), never on time alone; false is the explicit opt-out "promote on timer".
REQUIRE_PASS = True
_NUMBER = re.compile(r'^ *[0-9]+([.][0-9]*)? *$')
_WHOLE = re.compile(r'^ *[0-9]+ *$')


class PlanError(ValueError):
    """The plan is invalid; ``problems`` lists every problem (one line each), the message joins them."""

    def __init__(self, problems):
        super(PlanError, self).__init__('; '.join(problems))
        self.problems = list(problems)


def _number(value):
    """A weight as a float: a number, or a string of digits with an optional fraction; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _NUMBER.match(value):
        return float(value)
    return None


def _whole(value):
    """Whole seconds >= 0 as an int: an int, an integral float, or a string of digits; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value >= 0 and value == int(value) else None
    if isinstance(value, str) and _WHOLE.match(value):
        return int(value)
    return None


def _boolean(value):
    """A boolean as Ansible reads one (true, yes, on, 1, false, ...); None when it is not one."""
    try:
        return boolean(value, strict=True)
    except TypeError:
        return None


def _percent(weight):
    return '%g' % weight


def _chosen_steps(steps, preset, problems, warnings):
    """The step list to plan and the preset it comes from (None): ``steps`` when given (a preset beside it is
    named in a warning), else preset ``preset``'s, else :data:`DEFAULT_STEPS`. An unknown preset is a problem
    even when ``steps`` wins, so that a typo never goes unnoticed."""
    given = not (steps is None or steps == '' or (isinstance(steps, (list, tuple)) and not steps))
    chosen = name = None
    if preset not in (None, ''):
        try:
            chosen, name = preset_steps(preset)
        except PresetError as error:
            problems.append(str(error))
    if given:
        if name is not None:
            warnings.append('rollout_steps is set, so rollout_preset %s is not used' % name)
        return steps, None
    if chosen is not None:
        return chosen, name
    return [dict(step) for step in DEFAULT_STEPS], None


def build_plan(steps, pause=60, analysis=True, require_pass=REQUIRE_PASS, max_duration='30m',
               steps_order='increasing', preset=''):
    """The plan of a rollout, or :class:`PlanError` with every problem found.

    ``preset`` (``rollout_preset``) names a step list (:mod:`.presets`) used when ``steps`` is empty or None;
    with neither, the steps are :data:`DEFAULT_STEPS` (5, 25, 50, 100 %). ``steps`` is ``rollout_steps``: a list
    of mappings with the keys ``weight`` (percent in (0, 100], a number or a numeric string), ``pause`` (whole
    seconds >= 0, default ``pause``), ``analysis`` and ``approval`` (booleans, Ansible's spellings accepted). A
    step judges the canary unless it says otherwise, except at 100 %: with the baseline in the canary's upstream
    nothing is left to compare with, so a 100 % step judges only with ``analysis: true`` (``analysis`` false
    turns judging off for every step that does not ask for it). Weights must increase strictly (a canary's share
    only grows) unless ``steps_order`` is ``any``.

    ``require_pass`` (``rollout_require_pass``, :data:`REQUIRE_PASS` by default) makes the release wait for
    evidence: a judged step ends on the judge's decision - ``pass``, ``fail``, or ``inconclusive`` at the deadline,
    which holds for a person - never on time alone, so the release is promoted only after a pass or a person's
    approval. A plan that gives neither - no judged step and no approval gate - would be promoted by its pauses
    alone: refused while ``require_pass`` is true (``false`` is the explicit opt-out, "promote on timer").

    ``max_duration`` is the analysis deadline of each judged step, from the step's start (``analysis_max_duration``:
    seconds, or a number with s, m, h or d, read by ``time_spec.parse_duration``). When a judged step pauses longer
    than that, the judge would be inconclusive before the step ends: a warning, not an error. (``judged_seconds``
    is the pauses up to and including the last judged step.) So is a judged step at 100 % that no
    judged step below 100 % comes before (:func:`_full_weight_warning`).

    Returns ``{'steps': [{'index', 'weight' (float), 'pause' (int s), 'analysis', 'approval'}], 'preset' (the
    preset's name or None), 'require_pass', 'max_duration' (float s), 'steps_order', 'judged_steps' (indexes),
    'judged_seconds', 'warnings'}``.
    """
    problems = []
    warnings = []
    steps, preset_name = _chosen_steps(steps, preset, problems, warnings)
    default_pause = _whole(pause)
    if default_pause is None:
        problems.append('rollout_pause: %r is not a whole number of seconds >= 0' % (pause,))
    default_analysis = _boolean(analysis)
    if default_analysis is None:
        problems.append('rollout_analysis: %r is not a boolean' % (analysis,))
    until_decided = _boolean(require_pass)
    if until_decided is None:
        problems.append('rollout_require_pass: %r is not a boolean' % (require_pass,))
    if steps_order not in STEPS_ORDERS:
        problems.append('rollout_steps_order: %r is not one of %s' % (steps_order, ', '.join(STEPS_ORDERS)))
    deadline = None
    try:
        deadline = parse_duration(max_duration)
        if deadline <= 0:
            problems.append('analysis_max_duration: %r must be above 0 (seconds, or a number with s, m, h or d)'
                            % (max_duration,))
    except TimeSpecError as error:
        problems.append('analysis_max_duration: %s' % error)

    planned = []
    if not isinstance(steps, (list, tuple)) or not steps:
        problems.append('rollout_steps: must be a non-empty list of steps (mappings with weight, and optionally '
                        'pause, analysis and approval), got %r' % (steps,))
        steps = []
    previous = None
    for index, step in enumerate(steps):
        where = 'rollout_steps[%d]' % index
        if not isinstance(step, dict):
            problems.append('%s: %r is not a mapping (weight, and optionally pause, analysis and approval)'
                            % (where, step))
            continue
        unknown = sorted(str(key) for key in step if key not in STEP_KEYS)
        if unknown:
            problems.append('%s: unknown key%s %s (a step has weight, pause, analysis and approval)'
                            % (where, 's' if len(unknown) > 1 else '', ', '.join(unknown)))
        weight = None
        if 'weight' not in step:
            problems.append('%s: weight is missing (the canary percent, above 0 and at most 100)' % where)
        else:
            weight = _number(step['weight'])
            if weight is None:
                problems.append('%s: weight %r is not a number' % (where, step['weight']))
            elif not 0 < weight <= 100:
                problems.append('%s: weight %s is not above 0 and at most 100' % (where, _percent(weight)))
                weight = None
        step_pause = default_pause
        if 'pause' in step:
            step_pause = _whole(step['pause'])
            if step_pause is None:
                problems.append('%s: pause %r is not a whole number of seconds >= 0' % (where, step['pause']))
        judged = None
        if 'analysis' in step:
            judged = _boolean(step['analysis'])
            if judged is None:
                problems.append('%s: analysis %r is not a boolean' % (where, step['analysis']))
        elif weight is not None and default_analysis is not None:
            judged = default_analysis and weight < 100
        gated = False
        if 'approval' in step:
            gated = _boolean(step['approval'])
            if gated is None:
                problems.append('%s: approval %r is not a boolean' % (where, step['approval']))
        if weight is not None and previous is not None and steps_order != 'any' and weight <= previous:
            problems.append('%s: weight %s is not above the weight of the step before (%s); steps must increase '
                            '(set rollout_steps_order: any to allow this)'
                            % (where, _percent(weight), _percent(previous)))
        if weight is not None:
            previous = weight
        planned.append({'index': index, 'weight': weight, 'pause': step_pause, 'analysis': judged,
                        'approval': gated})
    problems.extend(_evidence_problems(planned, len(steps), until_decided))
    if problems:
        raise PlanError(problems)

    judged_indexes = [step['index'] for step in planned if step['analysis']]
    judged_seconds = sum(step['pause'] for step in planned[:judged_indexes[-1] + 1]) if judged_indexes else 0
    longest = max([step for step in planned if step['analysis']], key=lambda step: step['pause'], default=None)
    if longest is not None and longest['pause'] > deadline:
        warnings.append('step %d pauses %d s but the analysis deadline (analysis_max_duration) is %d s after a step '
                        'begins; the judge will be inconclusive before the step ends'
                        % (longest['index'], longest['pause'], int(deadline)))
    warnings.extend(_full_weight_warning(planned))
    return {'steps': planned, 'preset': preset_name, 'require_pass': until_decided, 'max_duration': deadline, 'steps_order': steps_order,
            'judged_steps': judged_indexes, 'judged_seconds': judged_seconds, 'warnings': warnings}


def _evidence_problems(planned, count, until_decided):
    """With ``require_pass``, the problem of a plan in which nothing but time decides the promotion: no judged step
    and no approval gate. Not judged while a step could not be read (its own problem is named instead)."""
    if not until_decided or not planned or len(planned) != count or \
            any(step['analysis'] is None or step['approval'] is None for step in planned):
        return []
    if any(step['analysis'] or step['approval'] for step in planned):
        return []
    return ['rollout_steps: no step is judged and none has an approval gate, so nothing but the pauses would decide '
            'the promotion; judge a step (analysis: true on a step, or rollout_analysis: true for the steps below '
            '100 %), give a step approval: true, or set rollout_require_pass: false to promote on timer']


def _full_weight_warning(planned):
    """A judged step at 100 % before any judged step below 100 %: with the baseline behind the same load balancer
    the baseline gets no traffic at 100 %, so the judge gains no evidence there and holds at its deadline."""
    for step in planned:
        if step['analysis'] and step['weight'] < 100:
            return []
        if step['analysis']:
            return ['step %d at 100 %% is the first judged step: at 100 %% a baseline behind the same load balancer '
                    'gets no traffic, so the judge cannot pass there and the step holds for a person at the deadline '
                    '(analysis_max_duration); judge a step below 100 %% first, unless the baseline gets its '
                    'traffic elsewhere' % step['index']]
    return []


def plan_step(plan, index):
    """Step ``index`` of ``plan``, or None past its end."""
    steps = plan['steps']
    return steps[index] if 0 <= index < len(steps) else None


def check_plan(plan):
    """``plan`` as :func:`build_plan` returns it (passed back by a role): raises :class:`PlanError` when it is not."""
    problems = []
    if not isinstance(plan, dict):
        raise PlanError(['plan must be the plan that operation=plan returned, got %r' % (plan,)])
    steps = plan.get('steps')
    if not isinstance(steps, list) or not steps:
        problems.append('plan.steps must be a non-empty list')
        steps = []
    for position, step in enumerate(steps):
        if not isinstance(step, dict) or step.get('index') != position \
                or not isinstance(step.get('weight'), (int, float)) or isinstance(step.get('weight'), bool) \
                or not 0 < step['weight'] <= 100 or not isinstance(step.get('pause'), int) \
                or not isinstance(step.get('analysis'), bool) or not isinstance(step.get('approval'), bool):
            problems.append('plan.steps[%d] is not a planned step {index: %d, weight, pause, analysis, approval}: %r'
                            % (position, position, step))
    if not isinstance(plan.get('require_pass'), bool):
        problems.append('plan.require_pass must be a boolean')
    if isinstance(plan.get('max_duration'), bool) or not isinstance(plan.get('max_duration'), (int, float)) \
            or not plan['max_duration'] > 0:
        problems.append('plan.max_duration must be a number of seconds above 0')
    if problems:
        raise PlanError(problems)
    return plan


def describe_plan(plan):
    """``3 steps: 10 % (60 s, judged), 50 % (60 s, judged, approval), 100 % (60 s)``: the plan in one line
    (``preset canary_10_5m, 2 steps: ...`` for a preset's)."""
    parts = []
    for step in plan['steps']:
        notes = ['%d s' % step['pause']] + (['judged'] if step['analysis'] else []) + \
            (['approval'] if step['approval'] else [])
        parts.append('%s %% (%s)' % (_percent(step['weight']), ', '.join(notes)))
    described = '%d step%s: %s' % (len(parts), '' if len(parts) == 1 else 's', ', '.join(parts))
    return 'preset %s, %s' % (plan['preset'], described) if plan.get('preset') else described
