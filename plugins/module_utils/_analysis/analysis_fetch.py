# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fetch the series of an analysis plan and turn them into the judge's metric dicts, plain Python.

* Prometheus: one range query per unique query of the plan (``PrometheusClient.query_range``), from the canary's
  start to the end of the analysis, every ``step`` seconds. After a connection, timeout or TLS failure the
  remaining queries are not sent (they would fail the same way, each after its own timeout) and carry that error.
* CloudWatch: all queries of the plan in one :func:`~.cloudwatch_metric_data.get_metric_data` call (up to 500
  queries; beyond that it batches).

A query that failed for a passing reason (a refused connection, a timeout, HTTP 5xx, 429/503, throttling) is not an
exception: it becomes the ``error`` of every metric that needs it, and the judge applies that metric's no-data
policy (``hold``: wait, ``inconclusive`` at the deadline). A query the source refused as invalid - a permanent
error that no amount of waiting fixes: Prometheus' ``bad_data`` (HTTP 400, a PromQL syntax error), CloudWatch's
``ValidationError`` family and botocore's parameter validation (a metric name longer than 255 characters, an
empty dimension value) - makes :func:`fetch_plan` raise :class:`QueryRejectedError`, naming the metric, the arm,
the role, the query and the server's message. :func:`judge_metrics` builds the judge's input, :func:`query_report`
what was sent, for the module's ``queries`` result.
"""

import json
import re

from ansible_collections.canary.release.plugins.module_utils._sources.cloudwatch_metric_data import (
    ERROR_STATUS_CODES,
    CloudWatchQueryError,
    get_metric_data,
)
from ansible_collections.canary.release.plugins.module_utils._sources.prometheus_api import PrometheusError
from ansible_collections.canary.release.plugins.module_utils._judge.judge import JudgeMetric
from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_request import AnalysisRequestError, prometheus_step

try:
    from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
    AWS_ERRORS = (BotoCoreError, ClientError)
    AWS_INVALID_REQUEST = (ParamValidationError,)
except ImportError:
    AWS_ERRORS = ()
    AWS_INVALID_REQUEST = ()

# After one of these, the server is unreachable: the other queries are not sent.
PROMETHEUS_FATAL_KINDS = ('connection', 'timeout', 'tls')

# CloudWatch error codes of a request that is invalid as written (HTTP 400): sending it again cannot succeed.
# Throttling, InternalFailure, ServiceUnavailable, AccessDenied and the like are not here: they are no data.
CLOUDWATCH_PERMANENT_CODES = ('ValidationError', 'ValidationException', 'InvalidParameterValue',
                              'InvalidParameterCombination', 'InvalidParameterInput', 'MissingParameter',
                              'MissingRequiredParameter', 'MalformedQueryString', 'InvalidQueryParameter')
_REQUEST_INDEX = re.compile(r'MetricDataQueries(?:\[(\d+)\]|\.member\.(\d+))')


class QueryRejectedError(AnalysisRequestError):
    """A source refused a query as invalid (a permanent error, not missing data).

    ``rejected`` lists ``{'metric', 'arm', 'role', 'provider', 'key', 'query', 'error'}``, one entry per metric, arm
    and role using a refused query.
    """

    def __init__(self, message, rejected):
        super(QueryRejectedError, self).__init__(message)
        self.rejected = rejected


def cloudwatch_error_code(error):
    """The AWS error code of a botocore ``ClientError`` (None for other exceptions)."""
    response = getattr(error, 'response', None)
    if not isinstance(response, dict):
        return None
    return (response.get('Error') or {}).get('Code')


def cloudwatch_permanent(error, invalid_request=AWS_INVALID_REQUEST):
    """Whether a GetMetricData failure is permanent: botocore's parameter validation (``invalid_request``) or an
    error code of :data:`CLOUDWATCH_PERMANENT_CODES`."""
    if invalid_request and isinstance(error, invalid_request):  # pylint: disable=isinstance-second-argument-not-valid-type
        return True
    return cloudwatch_error_code(error) in CLOUDWATCH_PERMANENT_CODES


def _blamed_keys(message, keys):
    """The query keys an AWS error message is about: the ids it names, else the ``MetricDataQueries`` indexes it
    names (of ``keys``, in the order sent), else all of them."""
    named = [key for key in keys if re.search(r'\b%s\b' % re.escape(key), message)]
    if named:
        return named
    indexes = set()
    for match in _REQUEST_INDEX.finditer(message):
        if match.group(1) is not None:
            indexes.add(int(match.group(1)))
        else:
            indexes.add(int(match.group(2)) - 1)  # the query protocol counts from 1
    named = [key for index, key in enumerate(keys) if index in indexes]
    return named or list(keys)


class FetchResult:
    """Per fetch key: ``series`` (list) or ``error`` (str); plus calls made and server warnings."""

    def __init__(self):
        self.series = {}
        self.errors = {}
        self.rejected = {}
        self.warnings = []
        self.prometheus_queries = 0
        self.cloudwatch_calls = 0

    def error(self, key, message):
        self.errors[key] = message

    def reject(self, key, message):
        """A permanent error: the source refused the query as invalid."""
        self.errors[key] = message
        self.rejected[key] = message

    def merge(self, other):
        self.series.update(other.series)
        self.errors.update(other.errors)
        self.rejected.update(other.rejected)
        self.warnings.extend(warning for warning in other.warnings if warning not in self.warnings)
        self.prometheus_queries += other.prometheus_queries
        self.cloudwatch_calls += other.cloudwatch_calls
        return self


def fetch_prometheus(client, queries, start, end, step):
    """Run each PromQL query of ``queries`` (key -> query) as a range query; return a :class:`FetchResult`.

    A query the server refuses as invalid (:attr:`~.prometheus_api.PrometheusError.permanent`) is ``rejected``; the
    other queries are still sent, so that every invalid query is reported at once.
    """
    fetched = FetchResult()
    unreachable = None
    for key, query in queries.items():
        if unreachable is not None:
            fetched.error(key, 'not sent after an earlier failure: %s' % unreachable)
            continue
        fetched.prometheus_queries += 1
        try:
            result = client.query_range(query, start, end, step)
        except PrometheusError as error:
            if error.permanent:
                fetched.reject(key, str(error))
                continue
            fetched.error(key, str(error))
            if error.kind in PROMETHEUS_FATAL_KINDS:
                unreachable = str(error)
            continue
        fetched.series[key] = result['series']
        for warning in result.get('warnings') or []:
            text = 'Prometheus: %s' % warning
            if text not in fetched.warnings:
                fetched.warnings.append(text)
    return fetched


def _result_error(result):
    status = result.get('status_code')
    if status not in ERROR_STATUS_CODES:
        return None
    details = '; '.join('%s: %s' % (message.get('code'), message.get('value')) for message in result.get('messages') or [])
    return 'CloudWatch returned status %s for query %s%s' % (status, result.get('id'), (': ' + details) if details else '')


def fetch_cloudwatch(call, queries, start, end, aws_errors=AWS_ERRORS, permanent=cloudwatch_permanent):
    """Run ``queries`` (key -> get_metric_data query dict) in one GetMetricData call; return a :class:`FetchResult`.

    ``call`` is a boto3 CloudWatch client or a callable taking GetMetricData's keyword arguments. AWS errors
    (``aws_errors``, botocore's by default) and paging errors become the error of every query; an AWS error that
    ``permanent(error)`` says is permanent (:func:`cloudwatch_permanent`) rejects the queries its message names (all
    of them when it names none).
    """
    fetched = FetchResult()
    if not queries:
        return fetched
    try:
        data = get_metric_data(call, list(queries.values()), start=start, end=end)
    except CloudWatchQueryError as error:
        for key in queries:
            fetched.error(key, 'GetMetricData: %s' % error)
        fetched.cloudwatch_calls += 1
        return fetched
    except aws_errors as error:  # pylint: disable=catching-non-exception
        fetched.cloudwatch_calls += 1
        text = ' '.join(str(error).split())
        if permanent(error):
            blamed = _blamed_keys(text, list(queries))
            for key in queries:
                if key in blamed:
                    fetched.reject(key, 'CloudWatch refused GetMetricData: %s' % text)
                else:
                    fetched.error(key, 'not read: GetMetricData refused another query of the call: %s' % text)
            return fetched
        for key in queries:
            fetched.error(key, 'GetMetricData failed: %s' % error)
        return fetched
    fetched.cloudwatch_calls += data['calls']
    for message in data.get('messages') or []:
        text = 'CloudWatch: %s: %s' % (message.get('code'), message.get('value'))
        if text not in fetched.warnings:
            fetched.warnings.append(text)
    for key in queries:
        result = data['metrics'].get(key)
        if result is None:
            fetched.series[key] = []
            continue
        problem = _result_error(result)
        if problem:
            fetched.error(key, problem)
        else:
            fetched.series[key] = [result]
    return fetched


def fetch_plan(plan, start, end, window, prometheus_client=None, cloudwatch_call=None, step=None, send=True,
               reject_invalid=True):
    """Fetch every query of ``plan`` from ``start`` to ``end`` (unix seconds): ``(FetchResult, step)``.

    ``step`` is the Prometheus range-query step (seconds, from :func:`~.analysis_request.prometheus_step` for
    ``window``; None without Prometheus queries). ``prometheus_client()`` and ``cloudwatch_call()`` are
    factories, called only when the plan has queries for that provider. Nothing is read when ``end <= start``,
    nor with ``send`` False (the clients are still made, so a missing connection fails as in a real run).
    A missing factory or a client that cannot be made raises :class:`~.analysis_request.AnalysisRequestError`; a
    query a source refused as invalid raises :class:`QueryRejectedError` (after every query was tried), unless
    ``reject_invalid`` is False (the rollout report: it draws what it has and lists the rest as missing).
    """
    fetched = FetchResult()
    reading = end > start and send
    if plan.prometheus:
        step = prometheus_step(window, start, end, step=step)
        if prometheus_client is None:
            raise AnalysisRequestError('a metric uses provider prometheus but no Prometheus connection is configured')
        try:
            client = prometheus_client()
        except PrometheusError as error:
            raise AnalysisRequestError(str(error))
        if reading:
            fetched.merge(fetch_prometheus(client, plan.prometheus, start, end, step))
    else:
        step = None
    if plan.cloudwatch:
        if cloudwatch_call is None:
            raise AnalysisRequestError('a metric uses provider cloudwatch but no AWS connection is configured')
        call = cloudwatch_call()
        # CloudWatch reads whole seconds: a range within one second is empty (and refused: StartTime equals EndTime)
        if reading and int(end) > int(start):
            fetched.merge(fetch_cloudwatch(call, plan.cloudwatch, start, end))
    if fetched.rejected and reject_invalid:
        raise rejected_error(plan, fetched)
    return fetched, step


def rejected_error(plan, fetched):
    """The :class:`QueryRejectedError` for the queries of ``plan`` that ``fetched`` says were refused as invalid."""
    rejected = []
    parts = []
    for key, message in fetched.rejected.items():
        users = [binding for binding in plan.bindings() if binding.key == key]
        query = plan.prometheus.get(key) if key in plan.prometheus else plan.cloudwatch.get(key)
        for binding in users:
            rejected.append({'metric': binding.metric, 'arm': binding.arm, 'role': binding.role,
                             'provider': binding.provider, 'key': key, 'query': query, 'error': message})
        who = ', '.join("metric '%s' (%s %s query)" % (binding.metric, binding.arm, binding.role) for binding in users)
        shown = '' if key in plan.prometheus else ' - query %s' % json.dumps(query, sort_keys=True)
        parts.append('%s: %s%s' % (who or key, message, shown))
    return QueryRejectedError(
        '%s refused as invalid - a permanent error, not missing data: fix the query and run again. %s'
        % ('a query was' if len(parts) == 1 else '%d queries were' % len(parts), '; '.join(parts)), rejected)


def judge_metrics(plan, fetched):
    """The judge's metrics (:class:`~.judge.JudgeMetric`: dicts carrying the plan's definition, which the judge
    does not check again) from an :class:`~.analysis_request.AnalysisPlan` and its data.

    A metric whose query failed gets ``error`` (the first failure, naming arm and role), so the judge applies its
    no-data policy.
    """
    metrics = []
    for entry in plan.metrics:
        metric = {'name': entry.name, 'kind': entry.kind, 'on_no_data': entry.on_no_data}
        metric.update(entry.options)
        problems = []
        for binding in entry.bindings:
            if binding.key in fetched.errors:
                problems.append('%s %s: %s' % (binding.arm, binding.role, fetched.errors[binding.key]))
                continue
            series = fetched.series.get(binding.key, [])
            if entry.kind == 'threshold':
                metric['values'] = series
            else:
                metric.setdefault(binding.arm, {})[binding.role] = series
        if problems:
            metric['error'] = problems[0] + ('' if len(problems) == 1 else ' (+%d more failed)' % (len(problems) - 1))
        metrics.append(JudgeMetric(entry.definition, metric))
    return metrics


def _samples(series):
    total = 0
    for one in series:
        if 'samples' in one:
            total += len(one.get('samples') or [])
        elif 'datapoints' in one:
            total += len(one.get('datapoints') or [])
    return total


def query_report(plan, fetched):
    """What was sent, one entry per metric, arm and role (shared queries appear under each metric using them)."""
    report = []
    for binding in plan.bindings():
        query = plan.prometheus.get(binding.key) if binding.provider == 'prometheus' else plan.cloudwatch.get(binding.key)
        series = fetched.series.get(binding.key)
        report.append({
            'metric': binding.metric,
            'arm': binding.arm,
            'role': binding.role,
            'provider': binding.provider,
            'key': binding.key,
            'query': query,
            'series': None if series is None else len(series),
            'samples': None if series is None else _samples(series),
            'error': fetched.errors.get(binding.key),
        })
    return report
