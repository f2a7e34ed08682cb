# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Step presets: ``rollout_preset`` names a step list, as CodeDeploy's deployment configurations do.

* ``canary_<P>_<N>m`` - ``P`` % for ``N`` minutes, then 100 % (CodeDeploy's ``Canary10Percent5Minutes`` is
  ``canary_10_5m``);
* ``linear_<P>_every_<N>m`` - ``P`` % more every ``N`` minutes until 100 % (``Linear10PercentEvery1Minute`` is
  ``linear_10_every_1m``);
* ``all_at_once`` - 100 % at once;
* ``progressive`` - 5, 10, 25, 50 % for 30 minutes each, then 100 %.

CodeDeploy's own names are accepted too (``CodeDeployDefault.ECSCanary10Percent15Minutes``,
``LambdaLinear10PercentEvery3Minutes``, ``AllAtOnce``...). A preset gives weights and pauses only: the steps below
100 % are judged unless ``rollout_analysis`` is false, as with a step list written by hand, and the 100 % step has
no pause (the promotion follows at once, as CodeDeploy's last traffic shift ends its deployment).
"""

import re

# The plan when neither rollout_steps nor rollout_preset is given (each step pauses rollout_pause).
DEFAULT_STEPS = ({'weight': 5}, {'weight': 25}, {'weight': 50}, {'weight': 100})

NAMED = {
    'all_at_once': (),
    'progressive': ((5, 1800), (10, 1800), (25, 1800), (50, 1800)),
}
EXAMPLES = ('canary_10_5m', 'canary_10_15m', 'canary_10_30m', 'linear_10_every_1m', 'linear_10_every_3m',
            'all_at_once', 'progressive')

_CANARY = re.compile(r'^canary_([0-9]+)_([0-9]+)m$')
_LINEAR = re.compile(r'^linear_([0-9]+)_every_([0-9]+)m$')
_CODEDEPLOY = re.compile(r'^(?:CodeDeployDefault\.)?(?:ECS|Lambda)?'
                         r'(?:(?P<kind>Canary|Linear)(?P<percent>[0-9]+)Percent(?:Every)?(?P<minutes>[0-9]+)Minutes?'
                         r'|(?P<all>AllAtOnce))$')


class PresetError(ValueError):
    """``rollout_preset`` names no preset; the message says which names are."""


def _canonical(name):
    """Our spelling of a CodeDeploy name (``Canary10Percent5Minutes`` -> ``canary_10_5m``); other names as given."""
    found = _CODEDEPLOY.match(name)
    if not found:
        return name
    if found.group('all'):
        return 'all_at_once'
    if found.group('kind') == 'Canary':
        return 'canary_%s_%sm' % (found.group('percent'), found.group('minutes'))
    return 'linear_%s_every_%sm' % (found.group('percent'), found.group('minutes'))


def _shares(name):
    """``[(percent, pause seconds), ...]`` below 100 % for preset ``name`` (our spelling), or None."""
    if name in NAMED:
        return list(NAMED[name])
    canary = _CANARY.match(name)
    if canary:
        percent, minutes = int(canary.group(1)), int(canary.group(2))
        return [(percent, minutes * 60)] if 0 < percent < 100 and minutes > 0 else None
    linear = _LINEAR.match(name)
    if linear:
        percent, minutes = int(linear.group(1)), int(linear.group(2))
        if not (0 < percent < 100 and minutes > 0):
            return None
        return [(weight, minutes * 60) for weight in range(percent, 100, percent)]
    return None


def preset_steps(name):
    """The step list of preset ``name`` (``[{'weight', 'pause'}, ...]``, ending at 100 % with no pause) and its
    name in our spelling; :class:`PresetError` when ``name`` is none."""
    canonical = _canonical(name.strip()) if isinstance(name, str) else None
    shares = _shares(canonical) if canonical else None
    if shares is None:
        raise PresetError('rollout_preset: %r is not a preset; use canary_<percent>_<minutes>m, '
                          'linear_<percent>_every_<minutes>m (percent 1-99, minutes >= 1), all_at_once or '
                          'progressive - for example %s - or a CodeDeploy name such as Canary10Percent5Minutes'
                          % (name, ', '.join(EXAMPLES)))
    steps = [{'weight': weight, 'pause': pause} for weight, pause in shares]
    steps.append({'weight': 100, 'pause': 0})
    return steps, canonical
