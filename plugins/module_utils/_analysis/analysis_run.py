# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One stateless canary analysis: resolve the times, fetch from ``start_time`` to the end, judge, plain Python.

:func:`run_analysis` is what the ``canary.release.analysis`` module calls. Every call re-reads everything since the
canary's start, so nothing is kept between calls and a crashed controller loses nothing: run it again.

Clients are made only when a metric needs them (a Prometheus-only analysis never imports boto3), through the
factories the caller passes. Invalid input raises :class:`~.analysis_request.AnalysisRequestError`; a failed
query is not an error but no data for the metrics that need it (see :mod:`analysis_fetch`).
"""

from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_fetch import (
    fetch_plan,
    judge_metrics,
    query_report,
)
from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_request import (
    AnalysisRequestError,
    build_plan,
    period_warnings,
)
from ansible_collections.canary.release.plugins.module_utils._judge.judge import (
    JudgeError,
    judge,
    judge_design,
    restart_window_ends,
)
from ansible_collections.canary.release.plugins.module_utils._judge.latency_counts import LE_LABEL
from ansible_collections.canary.release.plugins.module_utils._judge.metric_definition import DEFAULT_WINDOW
from ansible_collections.canary.release.plugins.module_utils._sources.metric_series import MetricSeriesError, normalize_series_list
from ansible_collections.canary.release.plugins.module_utils._judge.sequential_counts import (
    DEFAULT_ALPHA,
    DEFAULT_BETA,
    DEFAULT_MAX_RATIO,
    DEFAULT_RATE_FLOOR,
)
from ansible_collections.canary.release.plugins.module_utils.time_spec import (
    TimeSpecError,
    format_rfc3339,
    parse_duration,
    parse_time,
)

# The module's defaults (its argument spec uses them too). Without CloudWatch metrics the window is the judge's
# DEFAULT_WINDOW; with them, their largest period (default_window).
# A start_time further than this after the end is a mistake (a time zone, a swapped option), not clock skew.
FUTURE_START_TOLERANCE = 300.0

DEFAULTS = {
    'end_time': None, 'window': None, 'step': None, 'alpha': DEFAULT_ALPHA, 'beta': DEFAULT_BETA,
    'max_ratio': DEFAULT_MAX_RATIO, 'rate_floor': DEFAULT_RATE_FLOOR, 'dispersion': True, 'min_duration': 0.0,
    'max_duration': None, 'canary_track': None, 'baseline_track': None, 'validate_only': False, 'restarts': [],
}


def _parsed_time(value, name, now):
    try:
        return round(parse_time(value, now=now), 3)
    except TimeSpecError as error:
        raise AnalysisRequestError('%s: %s' % (name, error))


def _time(options, name, now):
    return _parsed_time(options[name], name, now)


def _future(stamp, name, end):
    """A time further than :data:`FUTURE_START_TOLERANCE` after ``end`` is an error naming ``name``."""
    if stamp > end + FUTURE_START_TOLERANCE:
        raise AnalysisRequestError('%s %s is after end_time %s: check the time zone (a date-time without offset is '
                                   'UTC)' % (name, format_rfc3339(stamp), format_rfc3339(end)))


def _restarts(options, end, now):
    """The restart times (unix seconds, rounded to ms) of ``restarts``; their order and their place after the start
    are the judge's rule (:func:`~.judge.restart_window_ends`), checked once the window is known."""
    value = options.get('restarts')
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise AnalysisRequestError('restarts must be a list of times (RFC 3339 or unix seconds), got %r' % (value,))
    stamps = []
    for position, item in enumerate(value):
        name = 'restarts[%d]' % position
        if item is None or item == '':
            raise AnalysisRequestError('%s is empty: give a time (RFC 3339 or unix seconds)' % name)
        stamp = _parsed_time(item, name, now)
        _future(stamp, name, end)
        stamps.append(stamp)
    return stamps


def _duration(options, name, positive=False):
    value = options.get(name)
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except TimeSpecError as error:
        raise AnalysisRequestError('%s: %s' % (name, error))
    if positive and seconds <= 0:
        raise AnalysisRequestError('%s must be > 0, got %r' % (name, value))
    return seconds


def resolve_times(options, now):
    """``start``, ``end`` (unix seconds, rounded to ms), ``window`` (None when not given, see
    :func:`default_window`), ``min_duration``, ``max_duration``, ``deadline``, ``fetch_end`` (the end, or the
    deadline when earlier) and ``restarts`` (unix seconds) from the options."""
    if options.get('start_time') is None:
        raise AnalysisRequestError('start_time is required (the moment the canary started taking traffic)')
    start = _time(options, 'start_time', now)
    end = round(float(now), 3) if options.get('end_time') is None else _time(options, 'end_time', now)
    _future(start, 'start_time', end)
    window = _duration(options, 'window', positive=True)
    min_duration = _duration(options, 'min_duration') or 0.0
    max_duration = _duration(options, 'max_duration')
    if max_duration is not None and min_duration > max_duration:
        raise AnalysisRequestError('min_duration (%gs) is longer than max_duration (%gs): the canary could never pass'
                                   % (min_duration, max_duration))
    deadline = None if max_duration is None else start + max_duration
    fetch_end = end if deadline is None else min(end, deadline)
    return {'start': start, 'end': end, 'window': window, 'min_duration': min_duration, 'max_duration': max_duration,
            'deadline': deadline, 'fetch_end': fetch_end, 'restarts': _restarts(options, end, now)}


def default_window(plan):
    """The window when none is given: the largest CloudWatch period of the metrics, else :data:`DEFAULT_WINDOW`."""
    periods = [entry.options['period'] for entry in plan.metrics if entry.options.get('period')]
    return float(max(periods)) if periods else DEFAULT_WINDOW


def _design(options):
    try:
        return judge_design(alpha=options['alpha'], beta=options['beta'], max_ratio=options['max_ratio'],
                            rate_floor=options['rate_floor'], dispersion=options['dispersion'])
    except JudgeError as error:
        raise AnalysisRequestError(str(error))


def bucket_problems(plan, fetched):
    """Latency metrics whose bucket series cannot be right: an ``le`` set but buckets without that label, or
    several bucket bounds and no ``le`` to choose one (the slow count would be wrong, not missing)."""
    problems = []
    for entry in plan.metrics:
        if entry.kind != 'latency':
            continue
        for binding in entry.bindings:
            if binding.role != 'bucket' or binding.key not in fetched.series:
                continue
            try:
                labels = [labels for labels, _samples in normalize_series_list(fetched.series[binding.key])]
            except MetricSeriesError:
                continue
            if not labels:
                continue
            bounds = set(str(one.get(LE_LABEL)) for one in labels if LE_LABEL in one)
            if entry.definition.le is not None and not bounds:
                problems.append('metric %r: le is set but the %s bucket series have no le label; select the bucket in '
                                'the query and drop le' % (entry.name, binding.arm))
            elif entry.definition.le is None and len(bounds) > 1:
                listed = ', '.join(sorted(bounds))
                problems.append('metric %r: the %s bucket query returns %d buckets (le=%s); select one with '
                                'le="<seconds>" in the query, or set le' % (entry.name, binding.arm, len(bounds), listed))
    return problems


def run_analysis(options, prometheus_client=None, cloudwatch_call=None, now=None):
    """Judge the canary described by ``options`` (the module's parameters): ``(result, warnings)``.

    ``result`` is the judge's verdict dict plus ``valid`` (True), ``queries`` (what was sent), ``api_calls``,
    ``step`` and the analysed range as RFC 3339; ``warnings`` are server warnings and doubtful settings, for the user.

    With ``validate_only`` everything a real run checks is checked the same way (times, design, metrics, the
    connection of every provider a metric uses: the clients are made) and every query is built, but nothing is
    sent: ``verdict`` is None and ``queries`` list what a run would send.

    ``prometheus_client()`` and ``cloudwatch_call()`` are factories, called only when a metric uses that provider;
    they return a :class:`~.prometheus_api.PrometheusClient` and a GetMetricData callable (or boto3 client).
    ``now`` (unix seconds) defaults to the clock.
    """
    options = dict(DEFAULTS, **dict((key, value) for key, value in options.items() if value is not None))
    if now is None:
        now = parse_time('now')
    times = resolve_times(options, now)
    design = _design(options)
    plan = build_plan(options.get('metrics'), canary_track=options['canary_track'],
                      baseline_track=options['baseline_track'])
    if times['window'] is None:
        times['window'] = default_window(plan)
    try:
        restart_window_ends(times['restarts'], times['start'], times['window'])
    except JudgeError as error:
        raise AnalysisRequestError(str(error))
    warnings = period_warnings(plan, times['window'])
    fetched, step = fetch_plan(plan, times['start'], times['fetch_end'], times['window'],
                               prometheus_client=prometheus_client, cloudwatch_call=cloudwatch_call,
                               step=_duration(options, 'step', True), send=not options['validate_only'])
    common = {
        'valid': True,
        'start_time_rfc3339': format_rfc3339(times['start']),
        'end_time_rfc3339': format_rfc3339(times['end']),
        'restarts_rfc3339': [format_rfc3339(stamp) for stamp in times['restarts']],
        'step': step,
        'queries': query_report(plan, fetched),
        'api_calls': {'prometheus': fetched.prometheus_queries, 'cloudwatch': fetched.cloudwatch_calls},
    }
    if options['validate_only']:
        result = {
            'verdict': None,
            'reason': 'valid: %d metrics, %d queries built, nothing sent (validate_only)'
                      % (len(plan.metrics), len(plan.prometheus) + len(plan.cloudwatch)),
            'metrics': [dict(name=entry.name, kind=entry.kind, provider=entry.provider, on_no_data=entry.on_no_data,
                             options=entry.options) for entry in plan.metrics],
            'start_time': times['start'], 'now': times['end'], 'elapsed': times['end'] - times['start'],
            'deadline': times['deadline'], 'restarts': times['restarts'],
            'window': times['window'], 'alpha': design.alpha, 'beta': design.beta,
        }
        result.update(common)
        return result, warnings
    problems = bucket_problems(plan, fetched)
    if problems:
        raise AnalysisRequestError('; '.join(problems))
    try:
        result = judge(judge_metrics(plan, fetched), times['start'], times['end'], window=times['window'],
                       min_duration=times['min_duration'], max_duration=times['max_duration'], design=design,
                       restarts=times['restarts'])
    except JudgeError as error:
        raise AnalysisRequestError(str(error))
    result.update(common)
    warnings.extend('%s' % warning for warning in fetched.warnings)
    return result, warnings
