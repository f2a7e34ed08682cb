# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Per-window request and error counts per arm, from raw counter samples, plain Python.

The judge compares canary and baseline over the same time windows: ``(start + i*step, start + (i+1)*step]`` for
``i = 0, 1, ...``, complete windows only (a window whose end is after ``end`` is not used yet). Every count is a
raw difference of counter samples; nothing is interpolated or extrapolated (no ``increase()``/``rate()``).

Cumulative counters (Prometheus ``*_total``, histogram ``_count``/``_bucket``)
    Between two consecutive samples ``(t_a, v_a)`` and ``(t_b, v_b)`` of one series, the increase is
    ``v_b - v_a``, or ``v_b`` when the value dropped (a counter reset: the process restarted and counted
    ``v_b`` since, as Prometheus assumes). The whole increase is put in the window that contains ``t_b``, the
    time it was observed; it is not split across the windows the interval overlaps, which would be a guess.

    *Gaps.* When two consecutive samples are further apart than ``max_gap`` seconds (missed scrapes, an
    instance down), their increase is dropped: it may belong to many windows, and putting it in one would
    compare it with a single window of the other arm. Requests and errors of one instance are scraped
    together, so the same intervals are dropped from both and what is left stays consistent. The default
    ``max_gap`` is, per series, the larger of two windows and three times the series' median sample spacing,
    so one missed scrape is kept (it spills into the next window) while an outage is dropped.

    *New series.* Prometheus only creates a labelled series (for example ``code="500"``) at its first
    increment. A series whose first sample comes more than ``born_grace`` seconds (default: 1.5 scrape
    intervals) after the first sample of any series of the same arm was born during the analysis, so its first value is
    counted as an increase from 0, observed at that sample. Without this the first error of every new error
    series would be lost, and the canary would look better than it is. Series present from the start only count
    increases after their first sample.

    *Start.* An increase is used only when both of its samples are at or after ``start``: a sample exactly at
    ``start`` (the analysis module's range queries put one there) opens the first window. Samples before
    ``start`` may be passed but only serve new-series detection and the scrape spacing; an increase from a
    sample before ``start`` to one after it is dropped, because part of it was counted before the canary took
    traffic (the instances' previous version, warm-up, health checks) and splitting it in proportion to time
    would be a guess. Dropping it costs at most one scrape interval of data per series and biases neither arm:
    the test conditions on each window's own request counts, whatever part of the window each arm's samples
    cover.

Per-period sums (CloudWatch ``Sum`` statistics, ``cumulative=False``)
    A datapoint ``(t, v)`` is the count over ``[t, t + period)``; it is put in the window that contains
    ``t + period`` and used when ``t >= start``. CloudWatch leaves out periods without data; a missing error
    datapoint therefore means zero errors when the requests datapoint is there.

Strata
    With ``stratum_label`` (for example ``zone``), series are grouped by that label's value and canary and
    baseline are compared per stratum (one :class:`CountWindow` per window and stratum). A stratum seen on one
    arm only carries no comparison. Without it, every series of an arm is summed.

Errors can never exceed requests in a window of an arm; if the counters say so (samples of the two counters
taken at different times), errors are clamped to requests and the number of clamps is reported.
"""

import math
from dataclasses import dataclass, field

from ansible_collections.canary.release.plugins.module_utils._sources.metric_series import normalize_series_list

# Tolerance, in units of a window, when placing a timestamp exactly on a window boundary.
_EDGE = 1e-9


class CounterWindowError(ValueError):
    """Invalid window grid or counter options."""


@dataclass(frozen=True)
class CountWindow:
    """Counts of one window (and stratum): requests and errors (or slow requests) of each arm."""

    end: float
    canary_requests: float
    canary_errors: float
    baseline_requests: float
    baseline_errors: float
    stratum: str = ''


@dataclass
class WindowedCounts:
    """The windows with data (in time order, then stratum) and what was done to the raw samples."""

    windows: list = field(default_factory=list)
    window_count: int = 0
    notes: dict = field(default_factory=dict)


def window_count(start, end, step):
    """Number of complete windows ``(start + i*step, start + (i+1)*step]`` that end at or before ``end``."""
    for name, value in (('start', start), ('end', end), ('step', step)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CounterWindowError('%s must be a finite number of seconds, got %r' % (name, value))
    if step <= 0:
        raise CounterWindowError('step must be > 0 seconds, got %r' % (step,))
    if end <= start:
        return 0
    return int(math.floor((end - start) / step + _EDGE))


def window_index(timestamp, start, step):
    """Index of the window ``(start + i*step, start + (i+1)*step]`` that contains ``timestamp`` (-1 before start)."""
    return int(math.ceil((timestamp - start) / step - _EDGE)) - 1


def _median(values):
    values = sorted(values)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2.0


def _median_spacing(samples):
    return _median([b[0] - a[0] for a, b in zip(samples, samples[1:])])


def _finite_samples(samples):
    return [(stamp, value) for stamp, value in samples if math.isfinite(value)]


def counter_increments(samples, max_gap=None, born_at_zero=False):
    """Increases of one cumulative counter: ``(increments, notes)``.

    ``increments`` is a list of ``(t_from, t_to, delta)``; ``notes`` counts ``resets`` and ``dropped_gaps``.
    Non-finite samples are ignored. With ``born_at_zero`` the first sample's value is an increase from 0
    observed at that sample (``t_from == t_to``).
    """
    samples = _finite_samples(samples)
    notes = {'resets': 0, 'dropped_gaps': 0}
    increments = []
    if not samples:
        return increments, notes
    if born_at_zero and samples[0][1] > 0:
        increments.append((samples[0][0], samples[0][0], samples[0][1]))
    for (t_from, v_from), (t_to, v_to) in zip(samples, samples[1:]):
        if v_to < v_from:
            notes['resets'] += 1
            delta = max(v_to, 0.0)
        else:
            delta = v_to - v_from
        if max_gap is not None and t_to - t_from > max_gap:
            notes['dropped_gaps'] += 1
            continue
        increments.append((t_from, t_to, delta))
    return increments, notes


def _first_sample_time(normalized):
    times = [samples[0][0] for _labels, samples in normalized if samples]
    return min(times) if times else None


def arm_window_sums(series_list, start, end, step, cumulative=True, period=None, max_gap=None,
                    stratum_label=None, born_after=None, born_grace=None, arm_spacing=None):
    """Per-window sums of a list of counter series of one arm: ``(sums, notes)``.

    ``sums`` maps stratum -> {window index: summed increase}; a window index is present when a sample was
    observed in that window (so a window with an observed zero increase is there with 0.0, a window nobody
    scraped is absent). ``born_after`` is the time after which a series' first sample means it was born during the
    analysis (default: the first sample of these series), ``born_grace`` how much later (default 1.5 scrape
    intervals: the series' own median sample spacing, else ``arm_spacing``, else ``step``); ``series_list`` is in any shape
    :func:`~ansible_collections.canary.release.plugins.module_utils._sources.metric_series.normalize_series_list` takes.
    """
    count = window_count(start, end, step)
    normalized = normalize_series_list(series_list)
    notes = {'series': len(normalized), 'resets': 0, 'dropped_gaps': 0, 'born_series': 0, 'used_increments': 0}
    sums = {}
    if born_after is None:
        born_after = _first_sample_time(normalized)
    if not cumulative:
        if period is None:
            period = step
        if isinstance(period, bool) or not isinstance(period, (int, float)) or not period > 0:
            raise CounterWindowError('period must be a number of seconds > 0, got %r' % (period,))
    for labels, samples in normalized:
        stratum = '' if stratum_label is None else str(labels.get(stratum_label, ''))
        if cumulative:
            finite = _finite_samples(samples)
            spacing = _median_spacing(finite) or arm_spacing
            gap = max_gap
            if gap is None:
                gap = max(2.0 * step, 3.0 * spacing) if spacing else 2.0 * step
            grace = born_grace
            if grace is None:
                grace = 1.5 * spacing if spacing else step
            born = bool(finite) and born_after is not None and finite[0][0] > born_after + grace
            increments, series_notes = counter_increments(finite, max_gap=gap, born_at_zero=born)
            notes['resets'] += series_notes['resets']
            notes['dropped_gaps'] += series_notes['dropped_gaps']
            notes['born_series'] += int(born)
        else:
            increments = [(stamp, stamp + period, value) for stamp, value in samples if math.isfinite(value)]
        target = sums.setdefault(stratum, {})
        for t_from, t_to, delta in increments:
            if t_from < start - _EDGE * step:
                continue
            index = window_index(t_to, start, step)
            if index < 0 or index >= count:
                continue
            target[index] = target.get(index, 0.0) + delta
            notes['used_increments'] += 1
    return sums, notes


def arm_born_after(*series_lists):
    """Earliest first sample over the series lists of one arm (the reference for new-series detection)."""
    firsts = [_first_sample_time(normalize_series_list(series)) for series in series_lists]
    firsts = [first for first in firsts if first is not None]
    return min(firsts) if firsts else None


def arm_scrape_interval(*series_lists):
    """Median spacing of consecutive samples over all series of one arm (None with fewer than two samples)."""
    gaps = []
    for series_list in series_lists:
        for _labels, samples in normalize_series_list(series_list):
            samples = _finite_samples(samples)
            gaps.extend(b[0] - a[0] for a, b in zip(samples, samples[1:]))
    return _median(gaps)


def combine_windows(canary_requests, canary_errors, baseline_requests, baseline_errors, start, step, count):
    """:class:`CountWindow` list from per-arm window sums (``{stratum: {index: value}}`` each): ``(windows, clamps)``.

    A (window, stratum) cell is emitted when either arm observed requests in it; strata present on one arm only
    are still emitted (they carry no comparison). Errors are clamped to ``[0, requests]``.
    """
    strata = sorted(set(canary_requests) | set(baseline_requests))
    windows = []
    clamps = 0
    for index in range(count):
        for stratum in strata:
            values = []
            for requests, errors in ((canary_requests, canary_errors), (baseline_requests, baseline_errors)):
                n = max(requests.get(stratum, {}).get(index, 0.0), 0.0)
                x = errors.get(stratum, {}).get(index, 0.0)
                if x > n or x < 0:
                    clamps += 1
                    x = min(max(x, 0.0), n)
                values.extend((n, x))
            if values[0] <= 0 and values[2] <= 0:
                continue
            windows.append(CountWindow(start + (index + 1) * step, values[0], values[1], values[2], values[3],
                                       stratum))
    return windows, clamps


def count_windows(canary_requests, canary_errors, baseline_requests, baseline_errors, start, end, step,
                  cumulative=True, period=None, max_gap=None, stratum_label=None, born_grace=None):
    """Per-window requests and errors of both arms, aligned on the same windows: a :class:`WindowedCounts`.

    Each argument ``*_requests``/``*_errors`` is a list of series (one per instance, status code, ...) of one
    counter of one arm, in any shape :mod:`metric_series` reads. See the module docstring for the rules.
    """
    count = window_count(start, end, step)
    notes = {}
    arms = {}
    for arm, requests, errors in (('canary', canary_requests, canary_errors),
                                  ('baseline', baseline_requests, baseline_errors)):
        born_after = arm_born_after(requests, errors) if cumulative else None
        options = dict(cumulative=cumulative, period=period, max_gap=max_gap, stratum_label=stratum_label,
                       born_after=born_after, born_grace=born_grace,
                       arm_spacing=arm_scrape_interval(requests, errors) if cumulative else None)
        request_sums, request_notes = arm_window_sums(requests, start, end, step, **options)
        error_sums, error_notes = arm_window_sums(errors, start, end, step, **options)
        arms[arm] = (request_sums, error_sums)
        notes[arm] = {'requests': request_notes, 'errors': error_notes}
    windows, clamps = combine_windows(arms['canary'][0], arms['canary'][1], arms['baseline'][0], arms['baseline'][1],
                                      start, step, count)
    notes['clamped_windows'] = clamps
    return WindowedCounts(windows=windows, window_count=count, notes=notes)
