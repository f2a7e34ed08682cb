# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Integer server weights that give a canary group a requested share of traffic.

With ``n_c`` canary servers of weight ``wc`` and ``n_s`` stable servers of weight ``ws`` (every server of a
group has the same weight), weighted round robin sends the canary group the share
``n_c*wc / (n_c*wc + n_s*ws)``. :func:`group_weights` picks ``1 <= wc, ws <= max_weight`` so that this share
equals the requested percent exactly when such a pair exists, otherwise is as close as any pair can be.
Among equally close pairs it takes the one with the smallest ``wc + ws``, then the smallest ``wc``; exact
answers are therefore always the reduced pair (1 canary vs 9 stable at 5 % gives 9 and 19, not 18 and 38).

All comparisons are exact rational arithmetic on integers. The requested percent is read as the decimal
number it prints as (``33.3`` means 333/1000 of traffic, not the nearest binary float).
"""


import math
from fractions import Fraction

DEFAULT_MAX_WEIGHT = 100
# nginx has no documented upper bound, but with "hash ... consistent" it allocates 160 points per unit of
# weight per server, and shares finer than 1/1000 buy nothing for a canary.
MAX_WEIGHT_LIMIT = 1000


class WeightError(ValueError):
    """The requested split cannot be computed (bad percent, empty group, bad max_weight)."""


class GroupWeights(object):
    """The answer of :func:`group_weights`.

    ``canary_weight``/``stable_weight`` are the per-server weights; ``canary_down``/``stable_down`` say that
    the whole group is taken out with ``down`` (0 % and 100 %), in which case that group's weight is None
    (keep what the file has). ``effective_percent`` is the share the canary group actually gets.
    """

    __slots__ = ('canary_weight', 'stable_weight', 'canary_down', 'stable_down', 'effective_percent', 'exact')

    def __init__(self, canary_weight, stable_weight, canary_down, stable_down, effective_percent, exact):
        self.canary_weight = canary_weight
        self.stable_weight = stable_weight
        self.canary_down = canary_down
        self.stable_down = stable_down
        self.effective_percent = effective_percent
        self.exact = exact

    def as_dict(self):
        return dict((name, getattr(self, name)) for name in self.__slots__)

    def __repr__(self):
        return 'GroupWeights(%s)' % ', '.join('%s=%r' % item for item in sorted(self.as_dict().items()))


def percent_fraction(percent):
    """``percent`` (int, float or decimal string, 0..100) as an exact Fraction of 1."""
    if isinstance(percent, bool):
        raise WeightError('canary_percent must be a number, got %r' % (percent,))
    if isinstance(percent, float):
        if math.isnan(percent) or math.isinf(percent):
            raise WeightError('canary_percent must be a finite number, got %r' % (percent,))
        value = Fraction(repr(percent))
    else:
        try:
            value = Fraction(percent)
        except (TypeError, ValueError):
            raise WeightError('canary_percent must be a number, got %r' % (percent,))
    if value < 0 or value > 100:
        raise WeightError('canary_percent must be between 0 and 100, got %s' % (percent,))
    return value / 100


def check_max_weight(max_weight, limit=MAX_WEIGHT_LIMIT):
    """``max_weight`` if it is an integer from 1 to ``limit`` (the load balancer's largest weight)."""
    if isinstance(max_weight, bool) or not isinstance(max_weight, int) or not 1 <= max_weight <= limit:
        raise WeightError('max_weight must be an integer from 1 to %d, got %r' % (limit, max_weight))
    return max_weight


def check_request_shape(state, servers, canary, canary_percent, max_weight, limit=MAX_WEIGHT_LIMIT, error=ValueError):
    """The rules every weights task shares, checked before anything is opened; raises ``error`` or WeightError.

    ``state`` is present or query; ``servers`` (explicit weights) and ``canary`` exclude each other; query takes no
    ``servers``; present needs one of them, ``canary`` with a valid ``canary_percent`` (and ``max_weight`` from 1 to
    ``limit``), ``servers`` without one. The entries themselves are the caller's to check.
    """
    if state not in ('present', 'query'):
        raise error('state must be present or query, got %r' % (state,))
    if servers is not None and canary is not None:
        raise error('servers and canary are mutually exclusive: give one of them')
    if state == 'query':
        if servers is not None:
            raise error('state=query reports weights; it takes no servers')
    elif canary is not None:
        if canary_percent is None:
            raise error('canary needs canary_percent')
        percent_fraction(canary_percent)
        check_max_weight(max_weight, limit)
    elif servers is not None:
        if canary_percent is not None:
            raise error('canary_percent goes with canary, not with servers')
    else:
        raise error('state=present needs either servers or canary with canary_percent')


def canary_share(n_canary, canary_weight, n_stable, stable_weight):
    """The exact share (a Fraction of 1) the canary group gets with these group sizes and weights."""
    canary_total = n_canary * canary_weight
    total = canary_total + n_stable * stable_weight
    if total == 0:
        raise WeightError('no server would take traffic')
    return Fraction(canary_total, total)


def _closer(candidate, best):
    """True when ``candidate`` beats ``best``; both are ``(error_num, error_den, wc, ws)``."""
    left = candidate[0] * best[1]
    right = best[0] * candidate[1]
    if left != right:
        return left < right
    return (candidate[2] + candidate[3], candidate[2]) < (best[2] + best[3], best[2])


def group_weights(n_canary, n_stable, percent, max_weight=DEFAULT_MAX_WEIGHT, limit=MAX_WEIGHT_LIMIT):
    """Per-server weights for ``n_canary`` canary and ``n_stable`` stable servers at ``percent`` (0..100).

    0 % takes the canary servers ``down`` and gives stable servers weight 1; 100 % takes the stable servers
    ``down`` and gives canary servers weight 1. ``max_weight`` may be at most ``limit``. Returns
    :class:`GroupWeights`.
    """
    target = percent_fraction(percent)
    check_max_weight(max_weight, limit)
    if n_canary < 1:
        raise WeightError('the canary group is empty')
    if n_stable < 0:
        raise WeightError('negative stable group size')
    if target == 0:
        if n_stable == 0:
            raise WeightError('canary_percent 0 would take every server down: no stable server is left')
        return GroupWeights(None, 1, True, False, 0.0, True)
    if target == 1:
        return GroupWeights(1, None, False, n_stable > 0, 100.0, True)
    if n_stable == 0:
        raise WeightError('every server of the upstream is in the canary group, so no share below 100 %% is '
                          'possible (asked for %s %%)' % (percent,))
    a, b = target.numerator, target.denominator
    best = None
    for wc in range(1, max_weight + 1):
        canary_total = n_canary * wc
        # The share falls as ws grows, so the best ws for this wc is next to the real solution
        # ws* = canary_total * (b - a) / (a * n_stable).
        floor_ws = (canary_total * (b - a)) // (a * n_stable)
        for ws in (floor_ws, floor_ws + 1):
            ws = min(max(ws, 1), max_weight)
            total = canary_total + n_stable * ws
            candidate = (abs(canary_total * b - a * total), b * total, wc, ws)
            if best is None or _closer(candidate, best):
                best = candidate
    wc, ws = best[2], best[3]
    share = canary_share(n_canary, wc, n_stable, ws)
    return GroupWeights(wc, ws, False, False, float(share * 100), share == target)


def effective_canary_percent(servers, canary, key='address'):
    """The share of traffic (percent) that the servers whose ``key`` (address, or name) is in ``canary`` get.

    ``servers`` are objects or dicts with ``key``, ``weight``, ``down`` and ``backup``. Down and backup
    servers get no traffic while a primary server is up. Returns None when no primary server is up.
    """
    canary = set(canary)
    canary_total = 0
    total = 0
    for server in servers:
        if isinstance(server, dict):
            address, weight, down, backup = server[key], server['weight'], server['down'], server['backup']
        else:
            address, weight, down, backup = getattr(server, key), server.weight, server.down, server.backup
        if down or backup:
            continue
        total += weight
        if address in canary:
            canary_total += weight
    if total == 0:
        return None
    return float(Fraction(canary_total, total) * 100)
