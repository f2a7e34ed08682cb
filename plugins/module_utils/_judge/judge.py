# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The canary judge: metric series in, one verdict out, plain Python (stateless; re-run it on all data so far).

:func:`judge` takes the metrics as dicts holding the series fetched since ``start_time`` (Prometheus range
results or CloudWatch results, see :mod:`metric_series`) and returns a JSON-safe dict::

    {'verdict': 'pass' | 'fail' | 'continue' | 'inconclusive', 'reason': '<one line>', 'metrics': [...], ...}

Metric kinds
    ``errors``: ``canary`` and ``baseline`` are ``{'requests': [series...], 'errors': [series...]}`` (counter
    series, or per-period sums with ``cumulative: False``). ``latency``: ``{'count': [...], 'bucket': [...]}``
    from a classic histogram, with ``le`` the bucket bound above which a request is slow (omit it when only that
    bucket is passed). Both run the sequential test of :mod:`sequential_counts` on per-window
    counts from :mod:`counter_windows` / :mod:`latency_counts`. ``threshold``: ``values`` (scalar series) with
    ``min`` and/or ``max``, a guard (:mod:`threshold_guard`): any breach fails at once.

Schema
    The keys of a metric besides its data (``name``, ``kind``, ``on_no_data``, ``le``, ``min``, ``max``, the
    overrides ``max_ratio``/``rate_floor``/``dispersion``, ``period``, ``cumulative``, ``max_gap``,
    ``stratum_label``) are checked once, by :func:`~.metric_definition.define_metric`; a :class:`JudgeMetric`
    carries a definition made already (the analysis' plan) and is not checked again. The windows are those of
    :func:`metric_windows`, which the rollout report uses too.

Rules
    * Windows are ``(start_time + i*window, start_time + (i+1)*window]``; only complete windows ending at or before
      ``min(now, start_time + max_duration)`` are used. Until the first window is complete the verdict is
      ``continue``.
    * alpha is split evenly across the ``errors``/``latency`` metrics (Bonferroni), so the chance that any of them
      fails a good canary is at most alpha; beta is not split (a bad metric must itself pass to pass the canary).
    * No data (a query error given as ``error``, no series, or no window where both arms served requests) is
      handled by the metric's ``on_no_data``: ``hold`` (default) keeps waiting and blocks a pass, ``fail`` fails,
      ``pass`` counts the metric as passed (only for optional metrics).
    * ``fail`` when any metric failed (a test crossed its fail boundary, a guard was breached, or no data under
      ``fail``). Otherwise ``pass`` when every metric passed (guards: have data and no breach) and
      ``min_duration`` has elapsed (a test only passes in windows ending after ``start_time + min_duration``).
      Otherwise ``inconclusive`` once ``now >= start_time + max_duration``: an undecided test, or a metric still
      holding for data, never turns into a silent pass. Otherwise ``continue``.
    * ``restarts`` (unix times, increasing, after ``start_time``; a release passes the start of every step after
      its first) restart the counting tests: a restart at ``r`` starts a new test with the first window that starts
      at or after ``r`` (:func:`restart_window_ends`). Every window since ``start_time`` still counts to fail (all
      tests' evidence in one e-process, see :func:`~.sequential_counts.evaluate_counts`), but a test passes only on
      the windows since the latest restart, and not before its first window is complete (a restart after ``now``
      blocks a pass until then). The reasons say so. ``min_duration`` still counts from ``start_time``; guards are
      not affected.

Every metric entry has ``name``, ``kind``, ``status`` (``pass``, ``fail``, ``continue``, ``no_data`` for tests;
``ok``, ``fail``, ``no_data`` for guards), ``decided_at``, a one-line ``reason`` and ``evidence``.
"""

import dataclasses
import math

from ansible_collections.canary.release.plugins.module_utils._common.json_safe import json_safe
from ansible_collections.canary.release.plugins.module_utils._sources.metric_series import MetricSeriesError
from ansible_collections.canary.release.plugins.module_utils._judge.counter_windows import (
    CounterWindowError,
    count_windows,
    window_index,
)
from ansible_collections.canary.release.plugins.module_utils._judge.latency_counts import LatencyCountsError, slow_windows
from ansible_collections.canary.release.plugins.module_utils._judge.metric_definition import (
    DEFAULT_WINDOW,
    MetricDefinitionError,
    define_metric,
    number,
)
from ansible_collections.canary.release.plugins.module_utils._judge.sequential_counts import (
    DEFAULT_ALPHA,
    DEFAULT_BETA,
    DEFAULT_MAX_RATIO,
    DEFAULT_RATE_FLOOR,
    CountsDesign,
    CountsTestError,
    evaluate_counts,
)
from ansible_collections.canary.release.plugins.module_utils._judge.threshold_guard import ThresholdGuardError, check_threshold
from ansible_collections.canary.release.plugins.module_utils.time_spec import format_rfc3339

_INPUT_ERRORS = (CounterWindowError, LatencyCountsError, MetricSeriesError, ThresholdGuardError, CountsTestError)


class JudgeError(ValueError):
    """Invalid judge or metric configuration (not bad data: missing data is a verdict, not an error)."""


class JudgeMetric(dict):
    """A judge metric dict whose :class:`~.metric_definition.MetricDefinition` was made already (by the analysis'
    plan): the judge reads ``definition`` and does not check the metric again."""

    def __init__(self, definition, data):
        super(JudgeMetric, self).__init__(data)
        self.definition = definition


def judge_design(alpha=DEFAULT_ALPHA, beta=DEFAULT_BETA, max_ratio=DEFAULT_MAX_RATIO, rate_floor=DEFAULT_RATE_FLOOR,
                 dispersion=True):
    """The module-wide :class:`~.sequential_counts.CountsDesign`, checked by the one set of rules; a metric's
    overrides are applied to it by :func:`judge`. Raises :class:`JudgeError`."""
    try:
        return CountsDesign(alpha=alpha, beta=beta, max_ratio=max_ratio, rate_floor=rate_floor,
                            dispersion=bool(dispersion))
    except CountsTestError as error:
        raise JudgeError(str(error))


def metric_windows(definition, canary, baseline, start, end, window):
    """Per-window counts of an ``errors`` or ``latency`` metric (a :class:`~.counter_windows.WindowedCounts`).

    The one windowing of the collection: the judge tests these windows and the rollout report shows them, with the
    same options (``cumulative``, ``period``, ``max_gap``, ``stratum_label``, the bucket bound ``le``).
    ``canary`` and ``baseline`` are ``{role: series list}``.
    """
    if not isinstance(canary, dict) or not isinstance(baseline, dict):
        raise JudgeError('canary and baseline must be dicts of series lists')
    options = dict(cumulative=definition.cumulative, period=definition.period, max_gap=definition.max_gap,
                   stratum_label=definition.stratum_label)
    if definition.kind == 'errors':
        return count_windows(canary.get('requests'), canary.get('errors'), baseline.get('requests'),
                             baseline.get('errors'), start, end, window, **options)
    if definition.kind == 'latency':
        return slow_windows(canary.get('count'), canary.get('bucket'), baseline.get('count'), baseline.get('bucket'),
                            start, end, window, threshold=definition.le, **options)
    raise JudgeError('metric %r: only errors and latency metrics have windows' % (definition.name,))


def restart_window_ends(restarts, start_time, window):
    """The end of the first window of each restarted test: ``[start_time + (k + 1) * window, ...]`` where window
    ``k`` is the first that starts at or after the restart (a restart on a window boundary starts that window).

    ``restarts`` is a list of unix times (None: no restart), each after ``start_time`` and after the one before it.
    Raises :class:`JudgeError` naming the restart. A restart after the data (after ``now`` or the deadline) is
    valid: its test has no window yet, so nothing can pass until it has.
    """
    if restarts is None:
        return []
    if not isinstance(restarts, (list, tuple)):
        raise JudgeError('restarts must be a list of unix times (the start of every step after the first), got %r'
                         % (restarts,))
    ends = []
    previous, previous_name = start_time, 'start_time'
    for position, value in enumerate(restarts):
        name = 'restarts[%d]' % position
        try:
            value = number(value, name)
        except ValueError as error:
            raise JudgeError(str(error))
        if value <= previous:
            raise JudgeError('%s (%s) must be after %s (%s): a restart begins a new test later in the release, and '
                             'restarts are in increasing order' % (name, format_rfc3339(value), previous_name,
                                                                   format_rfc3339(previous)))
        ends.append(start_time + (window_index(value, start_time, window) + 2) * window)
        previous, previous_name = value, name
    return ends


def _percent(rate):
    return 'n/a' if rate is None else '%.3g%%' % (100.0 * rate)


def _count(value):
    return '%d' % value if value == int(value) else '%.6g' % value


def _test_summary(evidence):
    return ('canary %s (%s/%s) vs baseline %s (%s/%s)'
            % (_percent(evidence['canary_rate']), _count(evidence['canary_errors']),
               _count(evidence['canary_requests']), _percent(evidence['baseline_rate']),
               _count(evidence['baseline_errors']), _count(evidence['baseline_requests'])))


def _fmt(value):
    return 'n/a' if value is None else '%.3g' % value


def _latest_restart(evidence, settings):
    """``(latest, begun)`` of a test: ``latest`` names the data of the latest restarted test that has begun (its
    first window is complete), None when none has; ``begun`` is whether that is the last restart, the test a pass
    is judged on (always True without restarts)."""
    ends, number = settings['restart_ends'], evidence['restarts']
    latest = None
    if number:
        latest = 'data since %s (restart %d)' % (format_rfc3339(ends[number - 1] - settings['window']), number)
    return latest, number >= len(ends)


def _test_reason(name, result, settings):
    evidence = result.evidence
    summary = _test_summary(evidence)
    ratio = evidence['ratio_estimate']
    ratio_text = '' if ratio is None else ', ratio %s' % _fmt(ratio)
    latest, begun = _latest_restart(evidence, settings)
    if result.decision == 'fail':
        reason = ('%s: %s%s; log mixture LR %s >= %s (ratio >= %s is likely)'
                  % (name, summary, ratio_text, _fmt(evidence['log_mixture_lr']), _fmt(evidence['fail_threshold']),
                     _fmt(evidence['max_ratio'])))
        if evidence['restarts']:
            reason += ('; summed over the test from start_time and %d restarted; on %s: canary %s/%s, log mixture '
                       'LR %s' % (evidence['restarts'], latest, _count(evidence['current_canary_errors']),
                                  _count(evidence['current_canary_requests']),
                                  _fmt(evidence['current_log_mixture_lr'])))
        return reason
    judged = '' if latest is None else '; judged on %s' % latest
    if result.decision == 'pass' and result.route == 'ratio':
        return ('%s: %s%s%s%s log LR of ratio %s %s <= %s'
                % (name, summary, ratio_text, judged, ':' if judged else ';', _fmt(evidence['max_ratio']),
                   _fmt(evidence['log_lr']), _fmt(evidence['pass_threshold'])))
    if result.decision == 'pass':
        current = ';'
        if latest is not None:
            current = ': canary %s/%s,' % (_count(evidence['current_canary_errors']),
                                           _count(evidence['current_canary_requests']))
        return ('%s: %s%s%s canary rate upper bound %s < floor %s'
                % (name, summary, judged, current, _percent(evidence['canary_rate_upper']),
                   _percent(evidence['rate_floor'])))
    if not begun:
        pass_text = ('no pass before the first window since restart %d is complete (%s)'
                     % (len(settings['restart_ends']), format_rfc3339(settings['restart_ends'][-1])))
    else:
        on_latest = '' if latest is None else ' on ' + latest
        pass_text = 'log LR%s %s (pass at %s)' % (on_latest, _fmt(evidence['log_lr']), _fmt(evidence['pass_threshold']))
    return ('%s: undecided, %s%s; %s, log mixture LR %s (fail at %s)'
            % (name, summary, ratio_text, pass_text, _fmt(evidence['log_mixture_lr']),
               _fmt(evidence['fail_threshold'])))


def _has_data(windows):
    return any(cell.canary_requests > 0 and cell.baseline_requests > 0 for cell in windows)


def _no_data(entry, policy, why):
    entry['evidence']['no_data'] = why
    if policy == 'fail':
        entry['status'] = 'fail'
        entry['reason'] = '%s: no data (%s); on_no_data=fail' % (entry['name'], why)
    elif policy == 'pass':
        entry['status'] = 'ok' if entry['kind'] == 'threshold' else 'pass'
        entry['reason'] = '%s: no data (%s); on_no_data=pass' % (entry['name'], why)
    else:
        entry['status'] = 'no_data'
        entry['reason'] = '%s: no data (%s); holding' % (entry['name'], why)
    return entry


def _judge_test(metric, definition, entry, settings, design):
    windowed = metric_windows(definition, metric.get('canary') or {}, metric.get('baseline') or {},
                              settings['start_time'], settings['end'], settings['window'])
    entry['evidence']['data_notes'] = windowed.notes
    if not _has_data(windowed.windows):
        return _no_data(entry, entry['on_no_data'], 'no window where both arms served requests')
    result = evaluate_counts(windowed.windows, design, min_end=settings['min_end'],
                             restarts=settings['restart_ends'])
    entry['evidence'].update(result.evidence)
    entry['evidence']['route'] = result.route
    entry['decided_at'] = result.decided_at
    entry['status'] = result.decision or 'continue'
    entry['reason'] = _test_reason(entry['name'], result, settings)
    return entry


def _judge_guard(metric, definition, entry, settings):
    guard = check_threshold(metric.get('values'), definition.min, definition.max,
                            start=settings['start_time'], end=settings['end'])
    entry['evidence'].update({
        'samples': guard.samples, 'min': guard.min_value, 'max': guard.max_value, 'last_value': guard.last_value,
        'last_at': guard.last_at, 'breached_at': guard.breached_at, 'breach_value': guard.breach_value,
        'breach_labels': guard.breach_labels,
    })
    if guard.status == 'no_data':
        return _no_data(entry, entry['on_no_data'], 'no sample')
    entry['status'] = guard.status
    if guard.status == 'fail':
        entry['decided_at'] = guard.breached_at
        if guard.min_value is not None and guard.breach_value < guard.min_value:
            bound = 'min %s' % _fmt(guard.min_value)
        else:
            bound = 'max %s' % _fmt(guard.max_value)
        entry['reason'] = '%s: %s breaches %s' % (entry['name'], _fmt(guard.breach_value), bound)
    else:
        entry['reason'] = '%s: %d samples within bounds, last %s' % (entry['name'], guard.samples, _fmt(guard.last_value))
    return entry


def _overall(entries, settings):
    now, deadline = settings['now'], settings['deadline']
    failed = [entry for entry in entries if entry['status'] == 'fail']
    if failed:
        first = min(failed, key=lambda entry: entry['decided_at'] if entry['decided_at'] is not None else now)
        return 'fail', 'fail: ' + first['reason'] + ('' if len(failed) == 1 else ' (+%d more)' % (len(failed) - 1))
    waiting = [entry for entry in entries if entry['status'] not in ('pass', 'ok')]
    if not waiting and settings['end'] >= settings['min_end']:
        return 'pass', 'pass: ' + '; '.join(entry['reason'] for entry in entries)
    if deadline is not None and now >= deadline:
        if waiting:
            return 'inconclusive', 'inconclusive: deadline reached, ' + '; '.join(entry['reason'] for entry in waiting)
        return 'inconclusive', 'inconclusive: deadline reached before min_duration'
    if not waiting:
        return 'continue', 'continue: every metric passed, waiting for min_duration'
    return 'continue', 'continue: ' + '; '.join(entry['reason'] for entry in waiting)


def _definitions(metrics):
    """The :class:`~.metric_definition.MetricDefinition` of every metric: made by :func:`define_metric` for a plain
    dict, taken as it is from a :class:`JudgeMetric`."""
    if not isinstance(metrics, (list, tuple)) or not metrics:
        raise JudgeError('metrics must be a non-empty list')
    names = set()
    definitions = []
    for index, metric in enumerate(metrics):
        if isinstance(metric, JudgeMetric):
            definition = metric.definition
            if definition.name in names:
                raise JudgeError('metric %r: the name is used twice' % (definition.name,))
            names.add(definition.name)
        else:
            try:
                definition = define_metric(metric, index, names)
            except MetricDefinitionError as error:
                raise JudgeError(str(error))
        definitions.append(definition)
    return definitions


def judge(metrics, start_time, now, window=DEFAULT_WINDOW, alpha=DEFAULT_ALPHA, beta=DEFAULT_BETA,
          min_duration=0.0, max_duration=None, max_ratio=DEFAULT_MAX_RATIO, rate_floor=DEFAULT_RATE_FLOOR,
          dispersion=True, design=None, restarts=None):
    """Judge the canary from ``metrics`` (list of dicts, see the module docstring); times in unix seconds.

    ``window`` is the window length in seconds (at least the scrape interval / CloudWatch period).
    ``alpha``, ``beta``, ``max_ratio``, ``rate_floor`` and ``dispersion`` make the module-wide design (or pass
    ``design``, from :func:`judge_design`); a metric may override the last three. ``restarts`` (unix times, see
    the module docstring and :func:`restart_window_ends`) restart the counting tests. Returns a JSON-safe dict
    (non-finite numbers as :func:`~.json_safe.json_safe` writes them); ``restarts`` and ``test_start`` in it are the
    restart times and the start of the data the tests pass on (``start_time`` without restarts).
    """
    try:
        for name, value in (('start_time', start_time), ('now', now), ('window', window), ('min_duration', min_duration)):
            if value is None:
                raise ValueError('%s must be a finite number, got None' % name)
        start_time, now = number(start_time, 'start_time'), number(now, 'now')
        window = number(window, 'window', above=0.0)
        min_duration = number(min_duration, 'min_duration', minimum=0.0)
        max_duration = number(max_duration, 'max_duration', minimum=0.0)
    except ValueError as error:
        raise JudgeError(str(error))
    restart_ends = restart_window_ends(restarts, start_time, window)
    if design is None:
        design = judge_design(alpha=alpha, beta=beta, max_ratio=max_ratio, rate_floor=rate_floor,
                              dispersion=dispersion)
    definitions = _definitions(metrics)
    tests = sum(1 for definition in definitions if definition.is_test)
    deadline = start_time + max_duration if max_duration is not None else None
    end = now if deadline is None else min(now, deadline)
    settings = {
        'start_time': start_time, 'now': now, 'end': end, 'window': window, 'deadline': deadline,
        'min_end': start_time + min_duration, 'alpha_per_metric': design.alpha / tests if tests else design.alpha,
        'restart_ends': restart_ends,
    }
    entries = []
    for metric, definition in zip(metrics, definitions):
        entry = {'name': definition.name, 'kind': definition.kind, 'on_no_data': definition.on_no_data,
                 'status': None, 'decided_at': None, 'reason': '', 'evidence': {}}
        try:
            if metric.get('error'):
                entries.append(_no_data(entry, entry['on_no_data'], 'query error: %s' % (metric['error'],)))
            elif definition.kind == 'threshold':
                entries.append(_judge_guard(metric, definition, entry, settings))
            else:
                metric_design = dataclasses.replace(design, alpha=settings['alpha_per_metric'],
                                                    **definition.overrides())
                entries.append(_judge_test(metric, definition, entry, settings, metric_design))
        except (JudgeError,) + _INPUT_ERRORS as error:
            raise JudgeError('metric %r: %s' % (entry['name'], error))
    breached = [entry for entry in entries if entry['kind'] == 'threshold' and entry['decided_at'] is not None]
    if end - start_time >= window:
        verdict, reason = _overall(entries, settings)
    elif breached:
        verdict, reason = 'fail', 'fail: ' + breached[0]['reason']
    elif deadline is not None and now >= deadline:
        verdict, reason = 'inconclusive', 'inconclusive: max_duration is shorter than one window'
    else:
        # Too early for no-data policies: nothing could have been scraped yet.
        verdict, reason = 'continue', 'continue: the first %gs window is not complete yet' % window
    return json_safe({
        'verdict': verdict,
        'reason': reason,
        'start_time': start_time,
        'now': now,
        'elapsed': now - start_time,
        'deadline': deadline,
        'window': window,
        'windows': max(0, int(math.floor((end - start_time) / window + 1e-9))),
        'restarts': [float(value) for value in restarts or ()],
        'test_start': restart_ends[-1] - window if restart_ends else start_time,
        'alpha': design.alpha,
        'alpha_per_metric': settings['alpha_per_metric'],
        'beta': design.beta,
        'metrics': entries,
    })
