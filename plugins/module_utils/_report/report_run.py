# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One rollout report: read the record, fetch the metrics over the rollout's span, compute the series, plain Python.

:func:`build_report` is what the ``canary.release.rollout_report`` module calls before rendering
(:mod:`report_html`, :mod:`report_charts`) and writing (:mod:`report_files`). The metric definitions are those of
the ``analysis`` module (validated and deduplicated by :func:`~.analysis_request.build_plan`, fetched by
:func:`~.analysis_fetch.fetch_plan`): one Prometheus range query per distinct query from the start to the end of the
report, one CloudWatch GetMetricData call for all CloudWatch queries. The metrics are checked exactly as the
analysis checks them (one plan object); the report's windows are the judge's (:func:`~.judge.metric_windows`).
The judge's design options of a metric (``on_no_data``, ``max_ratio``, ...) are checked and not used.

A failed query does not fail the report: the metric's arm has no values and the report lists it under
``missing``. Invalid options (an unreadable record or time, an invalid metric) raise :class:`ReportError`.
"""

import json

from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_fetch import fetch_plan, query_report
from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_request import (
    AnalysisPlan,
    AnalysisRequestError,
    build_plan,
    period_warnings,
)
from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_run import bucket_problems
from ansible_collections.canary.release.plugins.module_utils._judge.counter_windows import CounterWindowError
from ansible_collections.canary.release.plugins.module_utils._judge.judge import JudgeError
from ansible_collections.canary.release.plugins.module_utils._common.json_safe import json_safe
from ansible_collections.canary.release.plugins.module_utils._judge.latency_counts import LatencyCountsError
from ansible_collections.canary.release.plugins.module_utils._sources.metric_series import MetricSeriesError
from ansible_collections.canary.release.plugins.module_utils._report.report_charts import ChartsUnavailable, render_charts
from ansible_collections.canary.release.plugins.module_utils._report.report_html import render_html
from ansible_collections.canary.release.plugins.module_utils._report.report_series import (
    ReportError,
    auto_window,
    decisions,
    record_steps,
    record_time,
    value_series,
    weight_timeline,
    window_table,
)
from ansible_collections.canary.release.plugins.module_utils.time_spec import (
    TimeSpecError,
    format_rfc3339,
    parse_duration,
    parse_time,
)

SCHEMA_VERSION = 1
# More windows than this make a report nobody can read (and a long computation): raise the window.
MAX_WINDOWS = 10000
# The role whose empty answer means "no traffic data" for an arm (an empty errors series just means no error yet).
TRAFFIC_ROLES = {'errors': 'requests', 'latency': 'count'}
_DATA_ERRORS = (CounterWindowError, LatencyCountsError, MetricSeriesError, JudgeError)


def _option_time(options, name, now):
    try:
        return round(parse_time(options[name], now=now), 3)
    except TimeSpecError as error:
        raise ReportError('%s: %s' % (name, error))


def _check_record(record):
    if not isinstance(record, dict):
        raise ReportError('record must be the rollout record (a dict, as rollout_state returns it), got %r' % (record,))
    for key in ('service', 'version'):
        if not record.get(key):
            raise ReportError('record has no %s: pass the record returned by canary.release.rollout_state' % key)


def report_times(options, record, now):
    """``(start, end, window)`` in seconds from the options, else the record, else now (end) and auto (window)."""
    if options.get('start_time') is not None:
        start = _option_time(options, 'start_time', now)
    else:
        start = record_time(record.get('started_at'), 'record.started_at')
        if start is None:
            raise ReportError('the record has no started_at: set start_time')
    if options.get('end_time') is not None:
        end = _option_time(options, 'end_time', now)
    else:
        end = record_time(record.get('finished_at'), 'record.finished_at')
        end = round(float(now), 3) if end is None else end
    if end <= start:
        raise ReportError('the report ends (%s) before it starts (%s): check start_time and end_time'
                          % (format_rfc3339(end), format_rfc3339(start)))
    return start, end


def report_window(options, plan, start, end):
    """The window length: the option, else :func:`~.report_series.auto_window` (a multiple of every period)."""
    periods = [entry.options['period'] for entry in plan.metrics if entry.options.get('period')]
    if options.get('window') is not None:
        try:
            window = parse_duration(options['window'])
        except TimeSpecError as error:
            raise ReportError('window: %s' % error)
        if window <= 0:
            raise ReportError('window must be > 0, got %r' % (options['window'],))
        if (end - start) / window > MAX_WINDOWS:
            raise ReportError('window %gs cuts the report (%gs) into more than %d windows; raise window or omit it'
                              % (window, end - start, MAX_WINDOWS))
        return window
    return auto_window(start, end, minimum=max(periods) if periods else 5)


def _arm_data(entry, fetched):
    """``({arm: {role: series}}, {arm: reason})`` of one metric: an arm is missing when a query failed, or when
    its traffic query (requests, count, or a threshold's query) returned no series."""
    data, missing = {}, {}
    traffic = TRAFFIC_ROLES.get(entry.kind, 'query')
    for binding in entry.bindings:
        if binding.key in fetched.errors:
            missing.setdefault(binding.arm, '%s %s: %s' % (binding.arm, binding.role, fetched.errors[binding.key]))
            continue
        series = fetched.series.get(binding.key)
        data.setdefault(binding.arm, {})[binding.role] = series
        if binding.role == traffic and not series:
            missing.setdefault(binding.arm, '%s %s: no series' % (binding.arm, binding.role))
    return data, missing


def metric_report(entry, fetched, start, end, window):
    """The report of one metric of the plan: series, totals and what is missing."""
    report = {'name': entry.name, 'kind': entry.kind, 'provider': entry.provider, 'missing': []}
    data, missing = _arm_data(entry, fetched)
    report['missing'] = ['%s: %s' % (entry.name, missing[arm]) for arm in ('canary', 'baseline') if arm in missing]
    if entry.kind == 'threshold':
        report.update({'min': entry.definition.min, 'max': entry.definition.max, 'series': []})
        if 'canary' not in missing:
            try:
                report['series'] = value_series(data['canary'].get('query'), start, end)
            except MetricSeriesError as error:
                report['missing'].append('%s: canary query: %s' % (entry.name, error))
        return report
    report['threshold'] = entry.definition.le
    problems = bucket_problems(AnalysisPlan(metrics=[entry]), fetched)
    if problems:
        report['missing'].extend(problems)
        missing = {'canary': problems[0], 'baseline': problems[0]}
    try:
        report.update(window_table(entry.definition, data.get('canary', {}), data.get('baseline', {}), start, end,
                                   window, missing_arms=tuple(missing)))
    except _DATA_ERRORS as error:
        report['missing'].append('%s: %s' % (entry.name, error))
        report.update(window_table(entry.definition, {}, {}, start, end, window, missing_arms=('canary', 'baseline')))
    return report


def _step_entries(record):
    return [dict(step, started_rfc3339=format_rfc3339(step['started']), at_rfc3339=format_rfc3339(step['at']))
            for step in record_steps(record)]


def build_report(options, prometheus_client=None, cloudwatch_call=None, now=None):
    """The report dict of ``options`` (the module's parameters): ``(report, warnings)``.

    ``prometheus_client()`` and ``cloudwatch_call()`` are factories called only when a metric needs them (see
    :func:`~.analysis_fetch.fetch_plan`). ``now`` (unix seconds) defaults to the clock.
    """
    now = parse_time('now') if now is None else now
    record = options.get('record')
    _check_record(record)
    start, end = report_times(options, record, now)
    metrics = options.get('metrics') or []
    try:
        plan = build_plan(metrics, canary_track=options.get('canary_track'),
                          baseline_track=options.get('baseline_track')) if metrics else AnalysisPlan()
        window = report_window(options, plan, start, end)
        warnings = period_warnings(plan, window)
        # a query refused as invalid is missing here too: the release is over, the report shows what it can
        fetched, step = fetch_plan(plan, start, end, window, prometheus_client=prometheus_client,
                                   cloudwatch_call=cloudwatch_call, reject_invalid=False)
    except AnalysisRequestError as error:
        raise ReportError(str(error))
    metric_reports = [metric_report(entry, fetched, start, end, window) for entry in plan.metrics]
    missing = [text for metric in metric_reports for text in metric['missing']]
    marks = [dict(decision, time=format_rfc3339(decision['at'])) for decision in decisions(record)]
    report = {
        'schema': SCHEMA_VERSION,
        'service': record.get('service'),
        'version': record.get('version'),
        'previous_version': record.get('previous_version'),
        'status': record.get('status'),
        'reason': record.get('reason'),
        'start': start,
        'end': end,
        'start_rfc3339': format_rfc3339(start),
        'end_rfc3339': format_rfc3339(end),
        'window': window,
        'step': step,
        'tracks': {'canary': options.get('canary_track'), 'baseline': options.get('baseline_track')},
        'weight': weight_timeline(record, start, end),
        'steps': _step_entries(record),
        'decisions': marks,
        'metrics': metric_reports,
        'missing': missing,
        'queries': query_report(plan, fetched),
        'api_calls': {'prometheus': fetched.prometheus_queries, 'cloudwatch': fetched.cloudwatch_calls},
        'record': record,
    }
    warnings.extend(fetched.warnings)
    if missing:
        warnings.append('the report misses series: %s' % '; '.join(missing))
    return report, warnings


def summary(report):
    """The short form the module returns: per-metric totals of both arms, the decisions and what is missing."""
    metrics = []
    for metric in report['metrics']:
        entry = {'name': metric['name'], 'kind': metric['kind'], 'missing': metric['missing']}
        if metric['kind'] == 'threshold':
            entry['samples'] = sum(len(series['points']) for series in metric['series'])
        else:
            entry.update({'canary': metric['totals']['canary'], 'baseline': metric['totals']['baseline'],
                          'ratio': metric['ratio']})
        metrics.append(entry)
    return {
        'service': report['service'], 'version': report['version'], 'status': report['status'],
        'start': report['start_rfc3339'], 'end': report['end_rfc3339'], 'window': report['window'],
        'metrics': metrics,
        'decisions': [{'time': mark['time'], 'label': mark['label'], 'reason': mark['reason'], 'by': mark['by']}
                      for mark in report['decisions']],
        'missing': report['missing'],
    }


def report_json(report):
    """The bytes of ``report.json``: sorted keys, two-space indent, no NaN or Infinity."""
    return (json.dumps(json_safe(report), sort_keys=True, indent=2, allow_nan=False) + '\n').encode('utf-8')


def render_report(report):
    """The files of the report, ``([(name, bytes)], charts_note)``: report.json, report.html and the charts.

    Without matplotlib there are no charts and ``charts_note`` says why (the page says it too).
    """
    try:
        charts = render_charts(report)
        note = None
    except ChartsUnavailable as error:
        charts = []
        note = str(error)
    page = render_html(report, charts=[name for name, _data in charts], charts_note=note)
    return [('report.json', report_json(report)), ('report.html', page.encode('utf-8'))] + charts, note
