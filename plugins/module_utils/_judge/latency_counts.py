# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Latency as counts: slow requests vs all requests from a classic histogram, plain Python.

With a threshold ``T`` that is one of the histogram's bucket bounds, a request is *slow* when it took longer
than ``T``. Per window and arm, ``requests`` is the increase of ``<name>_count`` and ``slow`` the increase of
``<name>_count`` minus the increase of ``<name>_bucket{le="T"}``, both taken as raw counter differences by
:mod:`counter_windows` (resets, gaps and new series handled the same way). The result feeds the same sequential
test as errors (errors := slow), so "the canary's slow fraction is at least ``max_ratio`` times the baseline's"
is tested exactly like an error-rate regression.

``T`` must be a bucket bound: a fraction above a threshold between bounds would need interpolation, which is a
guess. Choose ``T`` near the baseline's p90-p99, where the slow fraction is neither tiny (slow decisions) nor
large (a ratio of 2 becomes impossible above a fraction of 0.5).
"""

import math

from ansible_collections.canary.release.plugins.module_utils._judge.counter_windows import (
    WindowedCounts,
    arm_born_after,
    arm_scrape_interval,
    arm_window_sums,
    combine_windows,
    window_count,
)
from ansible_collections.canary.release.plugins.module_utils._sources.metric_series import normalize_series_list

LE_LABEL = 'le'


class LatencyCountsError(ValueError):
    """No bucket at the threshold, or an invalid bucket bound."""


def parse_le(value):
    """A bucket bound (``"0.25"``, ``"+Inf"``, 0.25) as a float."""
    try:
        bound = float(value)
    except (TypeError, ValueError):
        raise LatencyCountsError('invalid bucket bound le=%r' % (value,))
    if math.isnan(bound):
        raise LatencyCountsError('invalid bucket bound le=%r' % (value,))
    return bound


def _same_bound(bound, threshold):
    if math.isinf(bound) or math.isinf(threshold):
        return bound == threshold
    return abs(bound - threshold) <= 1e-9 * max(1.0, abs(threshold))


def bucket_series(series_list, threshold, le_label=LE_LABEL):
    """The series of ``series_list`` whose ``le`` label equals ``threshold``, as ``[{'labels', 'samples'}]``.

    An empty list gives an empty list (no data). Raises :class:`LatencyCountsError` when a series has no ``le``
    label (the query selected one bucket and dropped ``le``, or returned something else: the threshold cannot be
    checked), and naming the available bounds when none matches.
    """
    threshold = parse_le(threshold)
    selected = []
    bounds = set()
    for labels, samples in normalize_series_list(series_list):
        if le_label not in labels:
            raise LatencyCountsError('a bucket series has no %s label (labels %s) but a threshold le=%s is set: '
                                     'return every bucket with its %s label, or select the bucket in the query '
                                     'and leave the threshold unset' % (le_label, _describe(labels), threshold, le_label))
        bound = parse_le(labels[le_label])
        bounds.add(bound)
        if _same_bound(bound, threshold):
            selected.append({'labels': labels, 'samples': samples})
    if bounds and not selected:
        raise LatencyCountsError('no histogram bucket at le=%s; bounds present: %s'
                                 % (threshold, ', '.join(repr(bound) for bound in sorted(bounds))))
    return selected


def single_bucket(series_list, le_label=LE_LABEL):
    """``series_list`` unchanged when its series hold at most one ``le`` bound (the bucket at the threshold).

    Raises :class:`LatencyCountsError` when they hold several: summed, they would count each request once per
    bucket and the slow count would be wrong, not missing.
    """
    bounds = set()
    for labels, _samples in normalize_series_list(series_list):
        if le_label in labels:
            bounds.add(parse_le(labels[le_label]))
    if len(bounds) > 1:
        raise LatencyCountsError('the bucket series hold %d bounds (le=%s) and no threshold is set: set the threshold '
                                 'le, or select one bucket in the query'
                                 % (len(bounds), ', '.join(repr(bound) for bound in sorted(bounds))))
    return series_list


def _describe(labels):
    return '{%s}' % ', '.join('%s=%r' % (key, labels[key]) for key in sorted(labels))


def _strip_le(series_list, le_label):
    """Series with the ``le`` label removed (so a bucket and its ``_count`` share a stratum key)."""
    stripped = []
    for labels, samples in normalize_series_list(series_list):
        labels = dict((key, value) for key, value in labels.items() if key != le_label)
        stripped.append({'labels': labels, 'samples': samples})
    return stripped


def slow_windows(canary_count, canary_bucket, baseline_count, baseline_bucket, start, end, step, threshold=None,
                 le_label=LE_LABEL, cumulative=True, period=None, max_gap=None, stratum_label=None, born_grace=None):
    """Per-window all/slow request counts of both arms: a :class:`~.counter_windows.WindowedCounts`.

    ``*_count`` are the ``_count`` series, ``*_bucket`` the ``_bucket`` series: either all buckets, each with
    its ``le`` label, with ``threshold`` given (the ``le`` bucket is selected), or already only the bucket at the
    threshold and no ``threshold`` (several bounds are then an error, see :func:`single_bucket`). An arm without
    any bucket series has no data (its requests are not all slow). In the returned windows ``*_errors`` are the
    slow requests.
    """
    count = window_count(start, end, step)
    notes = {}
    arms = {}
    for arm, totals, buckets in (('canary', canary_count, canary_bucket), ('baseline', baseline_count, baseline_bucket)):
        if threshold is not None:
            buckets = bucket_series(buckets, threshold, le_label)
        else:
            buckets = single_bucket(buckets, le_label)
        buckets = _strip_le(buckets, le_label)
        born_after = arm_born_after(totals, buckets) if cumulative else None
        options = dict(cumulative=cumulative, period=period, max_gap=max_gap, stratum_label=stratum_label,
                       born_after=born_after, born_grace=born_grace,
                       arm_spacing=arm_scrape_interval(totals, buckets) if cumulative else None)
        total_sums, total_notes = arm_window_sums(totals, start, end, step, **options)
        fast_sums, fast_notes = arm_window_sums(buckets, start, end, step, **options)
        slow_sums = {}
        for stratum, by_window in total_sums.items():
            fast = fast_sums.get(stratum, {})
            slow_sums[stratum] = dict((index, value - fast.get(index, 0.0)) for index, value in by_window.items())
        if not fast_notes['series']:
            # No bucket series: every request would count as slow. That arm has no data (not 100 % slow).
            total_sums, slow_sums = {}, {}
        arms[arm] = (total_sums, slow_sums)
        notes[arm] = {'count': total_notes, 'bucket': fast_notes}
    windows, clamps = combine_windows(arms['canary'][0], arms['canary'][1], arms['baseline'][0], arms['baseline'][1],
                                      start, step, count)
    notes['clamped_windows'] = clamps
    return WindowedCounts(windows=windows, window_count=count, notes=notes)
