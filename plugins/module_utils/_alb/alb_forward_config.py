# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The forward action of an ALB listener or rule: read it, compute new weights, rebuild the action list.

Plain data in, plain data out: ``actions`` is the ``DefaultActions`` list of DescribeListeners or the
``Actions`` list of DescribeRules, exactly as boto3 returns it. Nothing here talks to AWS.

Weights scheme for ``stable`` + ``canary`` + ``canary_percent``
---------------------------------------------------------------
ALB weights are integers 0..999 per target group and only their ratio matters: the canary gets
``w_canary / (w_canary + w_stable)`` of the requests. :func:`percent_weights` picks the pair (both 0..999) whose
share is closest to the requested percent; among equally close pairs the one with the smallest sum, so an exact
answer is always the reduced fraction. Every percent with one decimal (0.1-point steps) is exact, because
``p/100 = k/1000`` reduces to ``a/b`` with ``b`` dividing 1000, hence ``a <= 999`` and ``b - a <= 999``:

    1 % -> 1:99     5 % -> 1:19    10 % -> 1:9    25 % -> 1:3    50 % -> 1:1    33.3 % -> 333:667
    0 % -> canary 0, stable 1      100 % -> canary 1, stable 0

Other values get the closest ratio any pair can give (33.333 gives 1:2; below 0.05 % that is 0:1, above
99.95 % it is 1:0); the error is never more than 0.05 points. The share actually obtained is
reported as the effective percent. A fixed total (for example canary ``round(p*10)`` out of 1000) is impossible
because one weight would have to be 1000 at 0 % and 100 %, and ``999 - w`` does not give 0.1-point steps.

When the request is a percent and the forward action already gives exactly that share with exactly the stable
and canary groups (for example weights 100 and 900 for 10 %), nothing changes: the traffic split is already
the one asked for. Explicit ``target_groups`` weights are compared exactly.
"""


import copy
from fractions import Fraction

from ansible_collections.canary.release.plugins.module_utils._alb.alb_arns import target_group_name
from ansible_collections.canary.release.plugins.module_utils._common.canary_weights import WeightError, group_weights, percent_fraction

MAX_TARGET_GROUPS = 5
MIN_WEIGHT = 0
MAX_WEIGHT = 999
MIN_STICKINESS_SECONDS = 1
MAX_STICKINESS_SECONDS = 604800
DEFAULT_STICKINESS_SECONDS = 3600


class ForwardConfigError(ValueError):
    """The request or the current action does not allow a weight change; nothing was changed."""


def forward_action_index(actions, where='the listener'):
    """Index of the single ``forward`` action in ``actions``; a clear error when there is none."""
    if not isinstance(actions, list) or not actions:
        raise ForwardConfigError('%s has no actions' % where)
    forwards = [index for index, action in enumerate(actions) if action.get('Type') == 'forward']
    if len(forwards) == 1:
        return forwards[0]
    types = ', '.join(str(action.get('Type')) for action in actions)
    if not forwards:
        raise ForwardConfigError(
            '%s has no forward action (its actions: %s). Only a forward action has target group weights; '
            'nothing was changed. Point the module at a listener or rule that forwards to target groups.' % (where, types))
    raise ForwardConfigError('%s has %d forward actions (%s); expected exactly one' % (where, len(forwards), types))


def forward_target_groups(action):
    """The target groups of a forward action as ``[{'arn', 'weight'}]``, in the action's order.

    Reads ``ForwardConfig.TargetGroups`` when present, else the legacy single ``TargetGroupArn`` (weight 1).
    """
    config = action.get('ForwardConfig') or {}
    groups = config.get('TargetGroups') or []
    if groups:
        return [{'arn': group['TargetGroupArn'], 'weight': int(group.get('Weight', 1))} for group in groups]
    if action.get('TargetGroupArn'):
        return [{'arn': action['TargetGroupArn'], 'weight': 1}]
    raise ForwardConfigError('the forward action names no target group')


def forward_stickiness(action):
    """Target group stickiness of a forward action as ``{'enabled', 'duration'}`` (duration None when off)."""
    config = (action.get('ForwardConfig') or {}).get('TargetGroupStickinessConfig') or {}
    enabled = bool(config.get('Enabled', False))
    return {'enabled': enabled, 'duration': config.get('DurationSeconds') if enabled else None}


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_weights(groups):
    """Refuse what the ALB would refuse: 1..5 distinct target groups, weights 0..999, not all zero."""
    if not groups:
        raise ForwardConfigError('at least one target group is needed')
    if len(groups) > MAX_TARGET_GROUPS:
        raise ForwardConfigError('a forward action takes at most %d target groups, got %d'
                                 % (MAX_TARGET_GROUPS, len(groups)))
    seen = set()
    for group in groups:
        weight = group.get('weight')
        label = group.get('name') or group.get('arn')
        if not _is_int(weight) or not MIN_WEIGHT <= weight <= MAX_WEIGHT:
            raise ForwardConfigError('weight of target group %s must be an integer from %d to %d, got %r'
                                     % (label, MIN_WEIGHT, MAX_WEIGHT, weight))
        if group['arn'] in seen:
            raise ForwardConfigError('target group %s is listed twice' % label)
        seen.add(group['arn'])
    if not any(group['weight'] for group in groups):
        raise ForwardConfigError('all weights are 0: no target group would get traffic')
    return groups


def percent_weights(percent):
    """``{'canary_weight', 'stable_weight', 'effective_percent', 'exact'}`` for a canary share in percent (0..100).

    See the module docstring for the scheme.
    """
    try:
        target = percent_fraction(percent)
        split = group_weights(1, 1, percent, max_weight=MAX_WEIGHT)
    except WeightError as error:
        raise ForwardConfigError(str(error))
    canary = 0 if split.canary_down else split.canary_weight
    stable = 0 if split.stable_down else split.stable_weight
    # group_weights keeps both groups up (weights >= 1) between 0 and 100 %; below 0.05 % (above 99.95 %) the
    # closest ALB split is 0:1 (1:0), and on a tie the smaller pair wins, as everywhere else.
    for extreme_canary, extreme_stable in ((0, 1), (1, 0)):
        error = abs(Fraction(extreme_canary) - target)
        if error <= abs(Fraction(canary, canary + stable) - target) and (extreme_canary, extreme_stable) != (canary, stable):
            canary, stable = extreme_canary, extreme_stable
    share = Fraction(canary, canary + stable)
    return {
        'canary_weight': canary,
        'stable_weight': stable,
        'effective_percent': float(share * 100),
        'exact': share == target,
    }


def desired_stickiness(requested, current):
    """The stickiness to write, ``{'enabled', 'duration'}``, or None to keep the current one.

    ``requested`` is the module's ``stickiness`` option (``enabled`` defaults to true). Without a duration an
    enabled stickiness keeps the current duration, or gets DEFAULT_STICKINESS_SECONDS.
    """
    if requested is None:
        return None
    enabled = requested.get('enabled')
    enabled = True if enabled is None else bool(enabled)
    duration = requested.get('duration')
    if not enabled:
        return {'enabled': False, 'duration': None}
    if duration is None:
        duration = (current or {}).get('duration') or DEFAULT_STICKINESS_SECONDS
    if not _is_int(duration) or not MIN_STICKINESS_SECONDS <= duration <= MAX_STICKINESS_SECONDS:
        raise ForwardConfigError('stickiness duration must be an integer from %d to %d seconds, got %r'
                                 % (MIN_STICKINESS_SECONDS, MAX_STICKINESS_SECONDS, duration))
    return {'enabled': True, 'duration': duration}


def stickiness_api(stickiness):
    """``TargetGroupStickinessConfig`` for ``{'enabled', 'duration'}``."""
    if stickiness['enabled']:
        return {'Enabled': True, 'DurationSeconds': stickiness['duration']}
    return {'Enabled': False}


def same_stickiness(current, desired):
    if desired is None:
        return True
    if bool(current['enabled']) != bool(desired['enabled']):
        return False
    return not desired['enabled'] or current['duration'] == desired['duration']


def same_weights(current, desired, proportional=False):
    """True when both lists name the same target groups with the same weights (or the same shares)."""
    current_map = dict((group['arn'], group['weight']) for group in current)
    desired_map = dict((group['arn'], group['weight']) for group in desired)
    if set(current_map) != set(desired_map) or len(current_map) != len(current) or len(desired_map) != len(desired):
        return False
    if not proportional:
        return current_map == desired_map
    current_total = sum(current_map.values())
    desired_total = sum(desired_map.values())
    if not current_total or not desired_total:
        return current_map == desired_map
    return all(current_map[arn] * desired_total == desired_map[arn] * current_total for arn in current_map)


def _ordered_like(current, desired):
    """``desired`` with the groups already in ``current`` first, in their current order."""
    position = dict((group['arn'], index) for index, group in enumerate(current))
    kept = sorted((group for group in desired if group['arn'] in position), key=lambda group: position[group['arn']])
    return kept + [group for group in desired if group['arn'] not in position]


def writable_action(action):
    """A copy of an action, fit to send back to ModifyListener/ModifyRule.

    DescribeListeners/DescribeRules never return an OIDC client secret; sending the action back without one
    needs ``UseExistingClientSecret: true`` or the API refuses it.
    """
    action = copy.deepcopy(action)
    oidc = action.get('AuthenticateOidcConfig')
    if action.get('Type') == 'authenticate-oidc' and isinstance(oidc, dict) and not oidc.get('ClientSecret'):
        oidc['UseExistingClientSecret'] = True
    return action


def build_actions(actions, index, groups, stickiness=None):
    """A new action list: the forward action at ``index`` gets ``groups`` (and ``stickiness`` when not None).

    Every other action, the order of the actions, their ``Order`` fields and every other field of the forward
    action stay as they are. The legacy ``TargetGroupArn`` is replaced by ``ForwardConfig``.
    """
    result = []
    for position, action in enumerate(actions):
        action = writable_action(action)
        if position == index:
            action.pop('TargetGroupArn', None)
            config = dict(action.get('ForwardConfig') or {})
            config['TargetGroups'] = [{'TargetGroupArn': group['arn'], 'Weight': group['weight']} for group in groups]
            if stickiness is not None:
                config['TargetGroupStickinessConfig'] = stickiness_api(stickiness)
            action['ForwardConfig'] = config
        result.append(action)
    return result


class ForwardPlan(object):
    """What :func:`plan_forward` decided.

    ``before``/``after``: ``[{'arn', 'weight'}]``; ``stickiness_before``/``stickiness_after``:
    ``{'enabled', 'duration'}``; ``actions``: the action list to write (the current one when not changed).
    """

    __slots__ = ('index', 'before', 'after', 'stickiness_before', 'stickiness_after', 'changed', 'actions')

    def __init__(self, index, before, after, stickiness_before, stickiness_after, changed, actions):
        self.index = index
        self.before = before
        self.after = after
        self.stickiness_before = stickiness_before
        self.stickiness_after = stickiness_after
        self.changed = changed
        self.actions = actions

    def __repr__(self):
        return 'ForwardPlan(%s)' % ', '.join('%s=%r' % (name, getattr(self, name)) for name in self.__slots__)


def read_forward(actions, where='the listener'):
    """``(index, groups, stickiness)`` of the forward action in ``actions``."""
    index = forward_action_index(actions, where)
    action = actions[index]
    return index, forward_target_groups(action), forward_stickiness(action)


def plan_forward(actions, desired, stickiness=None, proportional=False, where='the listener'):
    """Compare the current forward action with ``desired`` (``[{'arn', 'weight'}]``) and ``stickiness``.

    ``proportional``: the request is a share (percent mode), so current weights with the same ratio count as
    unchanged. Returns a :class:`ForwardPlan`.
    """
    index, before, stickiness_before = read_forward(actions, where)
    desired = [{'arn': group['arn'], 'weight': group['weight']} for group in check_weights(desired)]
    stickiness_after = desired_stickiness(stickiness, stickiness_before)
    weights_same = same_weights(before, desired, proportional)
    stickiness_same = same_stickiness(stickiness_before, stickiness_after)
    if stickiness_after is None:
        stickiness_after = dict(stickiness_before)
    if weights_same and stickiness_same:
        return ForwardPlan(index, before, [dict(group) for group in before], stickiness_before, stickiness_before,
                           False, actions)
    after = [dict(group) for group in before] if weights_same else _ordered_like(before, desired)
    new_actions = build_actions(actions, index, after, None if stickiness_same else stickiness_after)
    return ForwardPlan(index, before, after, stickiness_before, stickiness_after, True, new_actions)


def holds(actions, groups, stickiness, where='the listener'):
    """True when ``actions`` (read back from the ALB) forward with exactly these weights and stickiness."""
    try:
        current = read_forward(actions, where)
    except ForwardConfigError:
        return False
    return same_weights(current[1], groups) and same_stickiness(current[2], stickiness)


def share_percent(groups, arn):
    """The percent of requests that the target group ``arn`` gets, or None when it is not in ``groups``."""
    total = sum(group['weight'] for group in groups)
    weights = [group['weight'] for group in groups if group['arn'] == arn]
    if not weights or not total:
        return None
    return float(Fraction(weights[0] * 100, total))


def report(groups, names=None):
    """``[{'arn', 'name', 'weight', 'percent'}]`` for returning to the user; names from ``names`` or the ARN."""
    names = names or {}
    total = sum(group['weight'] for group in groups)
    return [{
        'arn': group['arn'],
        'name': names.get(group['arn']) or target_group_name(group['arn']) or group['arn'],
        'weight': group['weight'],
        'percent': round(float(Fraction(group['weight'] * 100, total)), 4) if total else 0.0,
    } for group in groups]


def diff_text(groups, stickiness, names=None):
    """A YAML-like text of the weights and stickiness, for ``--diff``."""
    lines = ['target_groups:']
    for entry in report(groups, names):
        lines.append('  %s: %d  # %s %%' % (entry['name'], entry['weight'], _short(entry['percent'])))
    if stickiness['enabled']:
        lines.append('stickiness: {enabled: true, duration: %s}' % stickiness['duration'])
    else:
        lines.append('stickiness: {enabled: false}')
    return '\n'.join(lines) + '\n'


def _short(number):
    return ('%.3f' % number).rstrip('0').rstrip('.')
