# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The canary judge: metric series in, one verdict out, plain Python (stateless; re-run it on all data so far).

:func:`judge` takes the metrics as plain dicts holding the series fetched since ``start_time`` (Prometheus range
results or CloudWatch results, see :mod:`metric_series`) and returns a JSON-safe dict::

    {'verdict': 'pass' | 'fail' | 'continue' | 'inconclusive', 'reason': '<one line>', 'metrics': [...], ...}

Metric kinds
    ``errors``: ``canary`` and ``baseline`` are ``{'requests': [series...], 'errors': [series...]}`` (counter
    series, or per-period sums with ``cumulative: False``). ``latency``: ``{'count': [...], 'bucket': [...]}``
    from a classic histogram, with ``threshold`` the bucket bound ``le`` above which a request is slow (omit it
    when only that bucket is passed). Both run the sequential test of :mod:`sequential_counts` on per-window
    counts from :mod:`counter_windows` / :mod:`latency_counts`. ``threshold``: ``values`` (scalar series) with
    ``min`` and/or ``max``, a guard (:mod:`threshold_guard`): any breach fails at once.

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

Every metric entry has ``name``, ``kind``, ``status`` (``pass``, ``fail``, ``continue``, ``no_data`` for tests;
``ok``, ``fail``, ``no_data`` for guards), ``decided_at``, a one-line ``reason`` and ``evidence``.
"""

import math

from ansible_collections.canary.release.plugins.module_utils.counter_windows import CounterWindowError, count_windows
from ansible_collections.canary.release.plugins.module_utils.latency_counts import LatencyCountsError, parse_le, slow_windows
from ansible_collections.canary.release.plugins.module_utils.metric_series import MetricSeriesError
from ansible_collections.canary.release.plugins.module_utils.sequential_counts import (
    DEFAULT_ALPHA,
    DEFAULT_BETA,
    DEFAULT_MAX_RATIO,
    DEFAULT_RATE_FLOOR,
    CountsDesign,
    CountsTestError,
    evaluate_counts,
)
from ansible_collections.canary.release.plugins.module_utils.threshold_guard import ThresholdGuardError, check_threshold

VERDICTS = ('pass', 'fail', 'continue', 'inconclusive')
KINDS = ('errors', 'latency', 'threshold')
TEST_KINDS = ('errors', 'latency')
NO_DATA_POLICIES = ('hold', 'fail', 'pass')
DEFAULT_WINDOW = 15.0

_INPUT_ERRORS = (CounterWindowError, LatencyCountsError, MetricSeriesError, ThresholdGuardError, CountsTestError)


class JudgeError(ValueError):
    """Invalid judge or metric configuration (not bad data: missing data is a verdict, not an error)."""


def json_clean(value):
    """A copy of ``value`` with non-finite floats replaced by None (dicts, lists and tuples recursively)."""
    if isinstance(value, dict):
        return dict((key, json_clean(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [json_clean(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _number(name, value, minimum=None, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise JudgeError('%s must be a finite number, got %r' % (name, value))
    if minimum is not None and value < minimum:
        raise JudgeError('%s must be >= %s, got %r' % (name, minimum, value))
    return float(value)


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


def _test_reason(name, result):
    evidence = result.evidence
    summary = _test_summary(evidence)
    ratio = evidence['ratio_estimate']
    ratio_text = '' if ratio is None else ', ratio %s' % _fmt(ratio)
    if result.decision == 'fail':
        return ('%s: %s%s; log mixture LR %s >= %s (ratio >= %s is likely)'
                % (name, summary, ratio_text, _fmt(evidence['log_mixture_lr']), _fmt(evidence['fail_threshold']),
                   _fmt(evidence['max_ratio'])))
    if result.decision == 'pass' and result.route == 'ratio':
        return ('%s: %s%s; log LR of ratio %s %s <= %s'
                % (name, summary, ratio_text, _fmt(evidence['max_ratio']), _fmt(evidence['log_lr']),
                   _fmt(evidence['pass_threshold'])))
    if result.decision == 'pass':
        return ('%s: %s; canary rate upper bound %s < floor %s'
                % (name, summary, _percent(evidence['canary_rate_upper']), _percent(evidence['rate_floor'])))
    return ('%s: undecided, %s%s; log LR %s (pass at %s), log mixture LR %s (fail at %s)'
            % (name, summary, ratio_text, _fmt(evidence['log_lr']), _fmt(evidence['pass_threshold']),
               _fmt(evidence['log_mixture_lr']), _fmt(evidence['fail_threshold'])))


def _windows(metric, kind, start_time, end, window):
    canary = metric.get('canary') or {}
    baseline = metric.get('baseline') or {}
    if not isinstance(canary, dict) or not isinstance(baseline, dict):
        raise JudgeError('canary and baseline must be dicts of series lists')
    options = dict(cumulative=metric.get('cumulative') is not False, period=metric.get('period'),
                   max_gap=metric.get('max_gap'), stratum_label=metric.get('stratum_label'))
    if kind == 'errors':
        return count_windows(canary.get('requests'), canary.get('errors'), baseline.get('requests'),
                             baseline.get('errors'), start_time, end, window, **options)
    return slow_windows(canary.get('count'), canary.get('bucket'), baseline.get('count'), baseline.get('bucket'),
                        start_time, end, window, threshold=metric.get('threshold'), **options)


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


def _option(metric, key, settings):
    value = metric.get(key)
    return settings[key] if value is None else value


def _optional_seconds(metric, key):
    value = metric.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                              or value <= 0):
        raise JudgeError('%s must be a number of seconds > 0, got %r' % (key, value))


def _check_metric(metric, entry, settings):
    """Validate the metric's own options before any data is looked at (also when its query failed).

    Returns the :class:`CountsDesign` of a test metric, None for a guard.
    """
    if entry['kind'] == 'threshold':
        if 'min' not in metric and 'max' not in metric:
            raise JudgeError('a threshold metric needs min, max or both')
        check_threshold([], metric.get('min'), metric.get('max'))
        return None
    for key in ('period', 'max_gap'):
        _optional_seconds(metric, key)
    label = metric.get('stratum_label')
    if label is not None and not isinstance(label, str):
        raise JudgeError('stratum_label must be a label name, got %r' % (label,))
    if entry['kind'] == 'latency' and metric.get('threshold') is not None:
        parse_le(metric['threshold'])
    return CountsDesign(alpha=settings['alpha_per_metric'], beta=settings['beta'],
                        max_ratio=_number('max_ratio', _option(metric, 'max_ratio', settings)),
                        rate_floor=_number('rate_floor', _option(metric, 'rate_floor', settings), 0.0),
                        dispersion=bool(_option(metric, 'dispersion', settings)))


def _judge_test(metric, entry, settings, design):
    kind = entry['kind']
    windowed = _windows(metric, kind, settings['start_time'], settings['end'], settings['window'])
    entry['evidence']['data_notes'] = windowed.notes
    if not _has_data(windowed.windows):
        return _no_data(entry, entry['on_no_data'], 'no window where both arms served requests')
    result = evaluate_counts(windowed.windows, design, min_end=settings['min_end'])
    entry['evidence'].update(result.evidence)
    entry['evidence']['route'] = result.route
    entry['decided_at'] = result.decided_at
    entry['status'] = result.decision or 'continue'
    entry['reason'] = _test_reason(entry['name'], result)
    return entry


def _judge_guard(metric, entry, settings):
    guard = check_threshold(metric.get('values'), metric.get('min'), metric.get('max'),
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


def _metric_header(metric, index, names):
    if not isinstance(metric, dict):
        raise JudgeError('metric #%d must be a dict, got %s' % (index, type(metric).__name__))
    name = str(metric.get('name') or 'metric%d' % index)
    if name in names:
        raise JudgeError('metric name %r is used twice' % (name,))
    names.add(name)
    kind = metric.get('kind')
    if kind not in KINDS:
        raise JudgeError('metric %r: kind must be one of %s, got %r' % (name, ', '.join(KINDS), kind))
    policy = metric.get('on_no_data', 'hold')
    if policy not in NO_DATA_POLICIES:
        raise JudgeError('metric %r: on_no_data must be one of %s, got %r'
                         % (name, ', '.join(NO_DATA_POLICIES), policy))
    return {'name': name, 'kind': kind, 'on_no_data': policy, 'status': None, 'decided_at': None, 'reason': '',
            'evidence': {}}


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


def judge(metrics, start_time, now, window=DEFAULT_WINDOW, alpha=DEFAULT_ALPHA, beta=DEFAULT_BETA,
          min_duration=0.0, max_duration=None, max_ratio=DEFAULT_MAX_RATIO, rate_floor=DEFAULT_RATE_FLOOR,
          dispersion=True):
    """Judge the canary from ``metrics`` (list of dicts, see the module docstring); times in unix seconds.

    ``window`` is the window length in seconds (at least the scrape interval / CloudWatch period);
    ``max_ratio``, ``rate_floor`` and ``dispersion`` are defaults a metric may override. Returns a JSON-safe dict.
    """
    start_time = _number('start_time', start_time)
    now = _number('now', now)
    window = _number('window', window)
    if window <= 0:
        raise JudgeError('window must be > 0 seconds, got %r' % (window,))
    min_duration = _number('min_duration', min_duration, 0.0)
    max_duration = _number('max_duration', max_duration, 0.0, allow_none=True)
    for name, value in (('alpha', alpha), ('beta', beta)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
            raise JudgeError('%s must be strictly between 0 and 1, got %r' % (name, value))
    if not isinstance(metrics, (list, tuple)) or not metrics:
        raise JudgeError('metrics must be a non-empty list')
    names = set()
    headers = [_metric_header(metric, index, names) for index, metric in enumerate(metrics)]
    tests = sum(1 for entry in headers if entry['kind'] in TEST_KINDS)
    deadline = start_time + max_duration if max_duration is not None else None
    end = now if deadline is None else min(now, deadline)
    settings = {
        'start_time': start_time, 'now': now, 'end': end, 'window': window, 'deadline': deadline,
        'min_end': start_time + min_duration, 'alpha_per_metric': alpha / tests if tests else alpha, 'beta': beta,
        'max_ratio': max_ratio, 'rate_floor': rate_floor, 'dispersion': dispersion,
    }
    entries = []
    for metric, entry in zip(metrics, headers):
        try:
            design = _check_metric(metric, entry, settings)
            if metric.get('error'):
                entries.append(_no_data(entry, entry['on_no_data'], 'query error: %s' % (metric['error'],)))
            elif entry['kind'] == 'threshold':
                entries.append(_judge_guard(metric, entry, settings))
            else:
                entries.append(_judge_test(metric, entry, settings, design))
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
    return json_clean({
        'verdict': verdict,
        'reason': reason,
        'start_time': start_time,
        'now': now,
        'elapsed': now - start_time,
        'deadline': deadline,
        'window': window,
        'windows': max(0, int(math.floor((end - start_time) / window + 1e-9))),
        'alpha': alpha,
        'alpha_per_metric': settings['alpha_per_metric'],
        'beta': beta,
        'metrics': entries,
    })
