# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Flagger-style threshold guards: a scalar metric must stay within ``[min, max]``, plain Python.

A guard is a critical safety net, not a statistical test: the first sample (in time order, at or after
``start`` and at or before ``end``) that is below ``min_value`` or above ``max_value`` fails it at once,
whatever the other metrics say. Bounds are inclusive (a value equal to a bound is fine), as in Flagger.
NaN samples (Prometheus' 0/0) are skipped as missing; infinities are compared like any number. A guard without
any finite-or-infinite sample in range has no data, and the judge applies the metric's no-data policy.
"""

import math
from dataclasses import dataclass

from ansible_collections.canary.release.plugins.module_utils._sources.metric_series import normalize_series_list


class ThresholdGuardError(ValueError):
    """Invalid bounds."""


def _bound(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ThresholdGuardError('%s must be a number or None, got %r' % (name, value))
    return float(value)


def check_bounds(min_value=None, max_value=None):
    """``(min, max)`` as floats (or None): at least one, numbers, and min not above max. The one rule for both
    the judge's metric definitions and the guard itself."""
    min_value = _bound('min', min_value)
    max_value = _bound('max', max_value)
    if min_value is None and max_value is None:
        raise ThresholdGuardError('a threshold metric needs min, max or both')
    if min_value is not None and max_value is not None and min_value > max_value:
        raise ThresholdGuardError('min %r is above max %r' % (min_value, max_value))
    return min_value, max_value


@dataclass
class GuardResult:
    """``status`` is ``'fail'`` (breached), ``'ok'`` (data, no breach) or ``'no_data'``."""

    status: str
    samples: int = 0
    first_at: object = None
    breached_at: object = None
    breach_value: object = None
    breach_labels: object = None
    last_at: object = None
    last_value: object = None
    min_value: object = None
    max_value: object = None


def check_threshold(series_list, min_value=None, max_value=None, start=None, end=None):
    """Check every sample of ``series_list`` (any shape :mod:`metric_series` reads) against the bounds."""
    min_value, max_value = check_bounds(min_value, max_value)
    points = []
    for labels, samples in normalize_series_list(series_list):
        for stamp, value in samples:
            if math.isnan(value):
                continue
            if (start is not None and stamp < start) or (end is not None and stamp > end):
                continue
            points.append((stamp, value, labels))
    points.sort(key=lambda point: point[0])
    result = GuardResult('no_data', min_value=min_value, max_value=max_value)
    if not points:
        return result
    result.status = 'ok'
    result.samples = len(points)
    result.first_at = points[0][0]
    for stamp, value, labels in points:
        result.last_at, result.last_value = stamp, value
        if (min_value is not None and value < min_value) or (max_value is not None and value > max_value):
            result.status = 'fail'
            result.breached_at, result.breach_value, result.breach_labels = stamp, value, labels
            break
    return result
