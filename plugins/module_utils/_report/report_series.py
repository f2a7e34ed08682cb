# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The time series of a rollout report, plain Python: weight, decisions, and per-window rates of both arms.

Weight and decisions come from the rollout record (:func:`~.rollout_state.new_record`):

* a step's weight applies from its ``started_at`` (else its ``at``) until the next step starts; before the first step
  the canary had 0 %; a rollout that was rolled back or aborted is at 0 % from its ``finished_at``, a promoted one
  keeps its last weight (the stable fleet runs the new version from then on);
* decisions are the step verdicts but ``continue`` (at the step's ``at``, the time the verdict was recorded), the finish
  (``promoted``, ``rolled_back``, ``aborted`` at ``finished_at``) and a pause (``paused`` at ``updated_at``).

Error rates and slow-request shares come from the judge's own windowing, :func:`~.judge.metric_windows`, with the
metric's definition (the same ``stratum_label``, ``max_gap``, ``period``, bucket bound: raw counter differences,
resets and new series handled, nothing interpolated), so the report shows the counts the judge used. Windows are
``(start + i*window, start + (i+1)*window]``; unlike the judge the report also keeps the last, incomplete window
(``partial``), so that the totals cover the whole span. The strata of a window are summed (the judge's evidence
totals sum them too). A window where an arm served no request has no rate for that arm (``None``), not 0.
"""

import math

from ansible_collections.canary.release.plugins.module_utils._common.audit import by_text
from ansible_collections.canary.release.plugins.module_utils._judge.judge import metric_windows
from ansible_collections.canary.release.plugins.module_utils._sources.metric_series import normalize_series_list
from ansible_collections.canary.release.plugins.module_utils.time_spec import TimeSpecError, parse_time

ARMS = ('canary', 'baseline')
GOOD = ('pass', 'watched', 'approved', 'promoted')
BAD = ('fail', 'rejected', 'rolled_back', 'aborted')
# Step verdicts that are not decisions (the step is still being judged).
NOT_DECISIONS = ('continue',)
FINISHES = ('promoted', 'rolled_back', 'aborted')
TO_ZERO = ('rolled_back', 'aborted')
# Automatic windows: the smallest of these giving at most MAX_AUTO_WINDOWS windows over the report's span.
NICE_WINDOWS = (5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_AUTO_WINDOWS = 120
_EDGE = 1e-9


class ReportError(ValueError):
    """The record or the report's options cannot be used (nothing was written)."""


def record_time(value, what):
    """Unix seconds of a time in the record (RFC 3339, as rollout_state writes it); None for None or ''."""
    if value is None or value == '':
        return None
    try:
        return parse_time(value)
    except TimeSpecError as error:
        raise ReportError('%s: %s' % (what, error))


def _weight(value, what):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 100.0:
        raise ReportError('%s: weight must be a percent from 0 to 100, got %r' % (what, value))
    return float(value)


def record_steps(record):
    """The record's steps as ``[{index, weight, verdict, reason, started, at, by}]`` in time order (unix seconds).

    ``started`` is the step's ``started_at``, else its ``at`` (records written before steps had ``started_at``).
    """
    steps = record.get('steps') or []
    if not isinstance(steps, list):
        raise ReportError('record.steps must be a list, got %r' % (steps,))
    result = []
    for position, step in enumerate(steps):
        if not isinstance(step, dict):
            raise ReportError('record.steps[%d] must be a dict, got %r' % (position, step))
        what = 'record.steps[%d]' % position
        at = record_time(step.get('at'), what + '.at')
        started = record_time(step.get('started_at'), what + '.started_at')
        started = at if started is None else started
        if started is None:
            raise ReportError('%s has neither started_at nor at' % what)
        result.append({'index': step.get('index', position), 'weight': _weight(step.get('weight'), what),
                       'verdict': step.get('verdict'), 'reason': step.get('reason'), 'started': started,
                       'at': started if at is None else at, 'by': step.get('by')})
    return sorted(result, key=lambda step: (step['started'], step['index']))


def weight_timeline(record, start, end):
    """The canary weight from ``start`` to ``end`` as change points ``[[t, percent], ...]`` (a step function).

    The first point is at ``start`` (the weight then in effect), the last at ``end`` (the weight at the end).
    """
    changes = [(step['started'], step['weight']) for step in record_steps(record) if step['weight'] is not None]
    finished = record_time(record.get('finished_at'), 'record.finished_at')
    if finished is not None and record.get('status') in TO_ZERO:
        changes.append((finished, 0.0))
    changes.sort(key=lambda change: change[0])
    current = 0.0
    points = []
    for stamp, weight in changes:
        if stamp <= start:
            current = weight
        elif stamp <= end:
            points.append([stamp, weight])
    timeline = [[start, current]] + points
    timeline.append([end, timeline[-1][1]])
    return timeline


def _label_weight(weight):
    return '' if weight is None else ' %g%%' % weight


def decisions(record):
    """The decisions of the record, in time order: ``[{at, kind, outcome, label, reason, by}]`` (``by``: who decided,
    ``-`` in records written before the audit trail).

    ``kind`` is ``step`` (a step verdict), ``finish`` or ``pause``; ``outcome`` is ``good``, ``bad`` or ``neutral``.
    """
    found = []
    for step in record_steps(record):
        if step['verdict'] and step['verdict'] not in NOT_DECISIONS:
            found.append({'at': step['at'], 'kind': 'step', 'verdict': step['verdict'],
                          'label': 'step %s%s: %s' % (step['index'], _label_weight(step['weight']), step['verdict']),
                          'reason': step['reason'], 'by': by_text(step.get('by'))})
    status = record.get('status')
    finished = record_time(record.get('finished_at'), 'record.finished_at')
    if status in FINISHES and finished is not None:
        found.append({'at': finished, 'kind': 'finish', 'verdict': status, 'label': status.replace('_', ' '),
                      'reason': record.get('reason'), 'by': by_text(record.get('finished_by'))})
    elif status == 'paused':
        paused = record_time(record.get('updated_at'), 'record.updated_at')
        if paused is not None:
            found.append({'at': paused, 'kind': 'pause', 'verdict': 'paused', 'label': 'paused',
                          'reason': record.get('reason'), 'by': '-'})
    for decision in found:
        verdict = decision['verdict']
        decision['outcome'] = 'good' if verdict in GOOD else 'bad' if verdict in BAD else 'neutral'
    return sorted(found, key=lambda decision: decision['at'])


def auto_window(start, end, minimum=NICE_WINDOWS[0]):
    """A window length (seconds) giving at most :data:`MAX_AUTO_WINDOWS` windows, a multiple of ``minimum``."""
    span = max(end - start, 0.0)
    wanted = max(span / MAX_AUTO_WINDOWS, float(minimum))
    for nice in NICE_WINDOWS:
        if nice >= wanted and nice % minimum == 0:
            return float(nice)
    return float(minimum * math.ceil(wanted / minimum))


def window_grid(start, end, window):
    """Number of windows covering ``(start, end]``, the last one possibly incomplete (at least one)."""
    if not window > 0:
        raise ReportError('window must be > 0 seconds, got %r' % (window,))
    return max(1, int(math.ceil((end - start) / window - _EDGE)))


def rate(errors, requests):
    """``errors / requests``, or None without requests (or when either is unknown)."""
    if errors is None or requests is None or requests <= 0:
        return None
    return errors / requests


def _arm_cell(requests, errors):
    return {'requests': requests, 'errors': errors, 'rate': rate(errors, requests)}


def _until(series_list, end):
    """The series with only their samples at or before ``end`` (the last window may reach beyond it)."""
    return [{'labels': labels, 'samples': [sample for sample in samples if sample[0] <= end + _EDGE]}
            for labels, samples in normalize_series_list(series_list)]


def window_table(definition, canary, baseline, start, end, window, missing_arms=()):
    """Per-window counts and rates of both arms of one ``errors`` or ``latency`` metric, and their totals.

    ``definition`` is the metric's :class:`~.metric_definition.MetricDefinition`; ``canary`` and ``baseline`` are
    ``{role: series list}`` with the roles of the kind (``requests`` and ``errors``, or ``count`` and ``bucket``);
    for latency, ``errors`` in the result are the slow requests. Arms in ``missing_arms`` (their query failed)
    have ``None`` counts. Counter samples after ``end`` are not used. Returns ``{'windows': [{start, end, partial,
    canary: {requests, errors, rate}, baseline: {...}}], 'totals': {canary: {...}, baseline: {...}}, 'ratio',
    'notes'}``.
    """
    if definition.kind not in ('errors', 'latency'):
        raise ReportError('kind must be errors or latency, got %r' % (definition.kind,))
    count = window_grid(start, end, window)
    grid_end = start + count * window
    if definition.cumulative:
        canary = dict((role, _until(series, end)) for role, series in canary.items())
        baseline = dict((role, _until(series, end)) for role, series in baseline.items())
    counts = metric_windows(definition, canary, baseline, start, grid_end, window)
    cells = {}
    for cell in counts.windows:
        sums = cells.setdefault(int(round((cell.end - start) / window)) - 1, dict((arm, [0.0, 0.0]) for arm in ARMS))
        for arm in ARMS:
            sums[arm][0] += getattr(cell, arm + '_requests')
            sums[arm][1] += getattr(cell, arm + '_errors')
    totals = dict((arm, {'requests': 0.0, 'errors': 0.0}) for arm in ARMS)
    windows = []
    for index in range(count):
        cell = cells.get(index)
        row = {'start': start + index * window, 'end': min(start + (index + 1) * window, end),
               'partial': start + (index + 1) * window > end + _EDGE * window}
        for arm in ARMS:
            if arm in missing_arms:
                row[arm] = _arm_cell(None, None)
                continue
            requests, errors = cell[arm] if cell else (0.0, 0.0)
            totals[arm]['requests'] += requests
            totals[arm]['errors'] += errors
            row[arm] = _arm_cell(requests, errors)
        windows.append(row)
    for arm in ARMS:
        if arm in missing_arms:
            totals[arm] = _arm_cell(None, None)
        else:
            totals[arm] = _arm_cell(totals[arm]['requests'], totals[arm]['errors'])
    canary_rate, baseline_rate = totals['canary']['rate'], totals['baseline']['rate']
    ratio = canary_rate / baseline_rate if canary_rate is not None and baseline_rate else None
    return {'windows': windows, 'totals': totals, 'ratio': ratio, 'notes': counts.notes}


def value_series(series_list, start, end):
    """Samples of scalar series (a threshold metric's query) within ``[start, end]``: ``[{labels, points}]``."""
    result = []
    for labels, samples in normalize_series_list(series_list):
        points = [[stamp, value] for stamp, value in samples
                  if start - _EDGE <= stamp <= end + _EDGE and math.isfinite(value)]
        if points:
            result.append({'labels': labels, 'points': points})
    return result
