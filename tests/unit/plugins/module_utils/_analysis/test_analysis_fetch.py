# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fetching an analysis plan and turning the answers into the judge's metric dicts.

Prometheus answers come over real HTTP from tests/support/prometheus_stub.py (range-query semantics over raw
samples) or from a closed port; CloudWatch answers from a GetMetricData callable returning the API's response
shape (the documented interface of get_metric_data) or raising botocore's own exceptions.
"""

import datetime
import socket

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError

from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_fetch import (
    FetchResult,
    QueryRejectedError,
    cloudwatch_permanent,
    fetch_cloudwatch,
    fetch_plan,
    fetch_prometheus,
    judge_metrics,
    query_report,
)
from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_request import build_plan
from ansible_collections.canary.release.plugins.module_utils._judge.judge import judge
from ansible_collections.canary.release.plugins.module_utils._sources.prometheus_api import PrometheusClient
from tests.support.prometheus_stub import PrometheusStub

T0 = 1700000000.0
TRACKS = {'canary_track': 'track="canary"', 'baseline_track': 'track="stable"'}


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return 'http://127.0.0.1:%d' % sock.getsockname()[1]


def counter(rate, scrapes=60, every=5.0, start=T0):
    return [(start + index * every, float(rate * index)) for index in range(scrapes + 1)]


@pytest.fixture
def stub():
    answers = {
        'req_total{track="canary"}': [{'labels': {'instance': 'c1'}, 'samples': counter(10)}],
        'err_total{track="canary"}': [{'labels': {'instance': 'c1'}, 'samples': counter(1)}],
        'req_total{track="stable"}': [{'labels': {'instance': 'b1'}, 'samples': counter(40)},
                                      {'labels': {'instance': 'b2'}, 'samples': counter(40)}],
        'err_total{track="stable"}': (400, 'bad_data', 'parse error at char 3'),
    }
    server = PrometheusStub(answers, warnings=['remote read failed'])
    yield server
    server.stop()


def errors_metric(**extra):
    metric = {'name': 'errors', 'kind': 'errors', 'requests': 'req_total{${track}}', 'errors': 'err_total{${track}}'}
    metric.update(extra)
    return metric


def test_prometheus_one_range_query_per_series_and_errors_per_query(stub):
    plan = build_plan([errors_metric()], **TRACKS)
    fetched = fetch_prometheus(PrometheusClient(stub.url), plan.prometheus, T0, T0 + 300, 15.0)
    assert fetched.prometheus_queries == 4 and len(stub.requests) == 4
    assert [request['query'] for request in stub.requests] == list(plan.prometheus.values())
    assert all((request['start'], request['end'], request['step']) == ('1700000000', '1700000300', '15')
               for request in stub.requests)
    canary = fetched.series['m0_canary_requests']
    assert canary[0]['labels'] == {'instance': 'c1'}
    assert canary[0]['samples'][:3] == [[T0, 0.0], [T0 + 15, 30.0], [T0 + 30, 60.0]]  # last sample at each step
    assert len(fetched.series['m0_baseline_requests']) == 2
    assert 'bad_data' in fetched.errors['m0_baseline_errors'] and 'parse error at char 3' in fetched.errors['m0_baseline_errors']
    assert list(fetched.rejected) == ['m0_baseline_errors']  # a permanent error: fetch_plan fails on it
    assert fetched.warnings == ['Prometheus: remote read failed']

    metrics = judge_metrics(plan, fetched)
    assert metrics[0]['error'].startswith('baseline errors: Prometheus at %s returned bad_data' % stub.url)
    assert metrics[0]['canary']['requests'] == canary
    result = judge(metrics, T0, T0 + 300, window=60.0, max_duration=600)
    assert result['verdict'] == 'continue' and 'query error: baseline errors' in result['reason']


def test_prometheus_down_sends_one_query_and_fails_every_metric_that_needs_it():
    plan = build_plan([errors_metric(), {'name': 'p99', 'kind': 'threshold', 'query': 'p99', 'max': 1.0}], **TRACKS)
    fetched = fetch_prometheus(PrometheusClient(closed_port_url(), timeout=2), plan.prometheus, T0, T0 + 300, 15.0)
    assert fetched.prometheus_queries == 1
    assert set(fetched.errors) == set(plan.prometheus) and not fetched.series
    assert 'cannot connect to Prometheus' in fetched.errors['m0_canary_requests']
    assert fetched.errors['m1_canary_query'].startswith('not sent after an earlier failure: cannot connect')
    metrics = judge_metrics(plan, fetched)
    assert metrics[0]['error'].endswith('(+3 more failed)') and metrics[1]['error'].startswith('canary query: not sent')


def stamp(seconds):
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)


def cloudwatch_plan():
    dimensions = {'TargetGroup': '${track}'}
    metric = {'name': 'alb', 'kind': 'errors', 'provider': 'cloudwatch',
              'requests': {'namespace': 'AWS/ApplicationELB', 'metric_name': 'RequestCount', 'dimensions': dimensions},
              'errors': {'namespace': 'AWS/ApplicationELB', 'metric_name': 'HTTPCode_Target_5XX_Count',
                         'dimensions': dimensions}}
    return build_plan([metric], canary_track='tg/canary', baseline_track='tg/stable')


def test_cloudwatch_one_call_for_every_query():
    calls = []
    values = {'m0_canary_requests': 600.0, 'm0_canary_errors': 30.0, 'm0_baseline_requests': 5400.0,
              'm0_baseline_errors': 54.0}

    def get_metric_data(**params):
        calls.append(params)
        results = [{'Id': query['Id'], 'Label': query['Id'], 'StatusCode': 'Complete',
                    'Timestamps': [stamp(T0 + 60 * minute) for minute in range(10)],
                    'Values': [values.get(query['Id'], 0.0)] * 10} for query in params['MetricDataQueries']]
        results[-1]['StatusCode'] = 'Forbidden'
        results[-1]['Messages'] = [{'Code': 'Forbidden', 'Value': 'no access to account 123'}]
        return {'MetricDataResults': results, 'Messages': [{'Code': 'MaxQueryTimeRangeExceed', 'Value': 'too long'}]}

    plan = cloudwatch_plan()
    fetched = fetch_cloudwatch(get_metric_data, plan.cloudwatch, T0, T0 + 600)
    assert len(calls) == 1 and fetched.cloudwatch_calls == 1
    assert [query['Id'] for query in calls[0]['MetricDataQueries']] == list(plan.cloudwatch)
    assert calls[0]['MetricDataQueries'][0]['MetricStat']['Stat'] == 'Sum'
    assert fetched.series['m0_canary_errors'][0]['datapoints'] == [30.0] * 10
    assert fetched.errors == {'m0_baseline_errors': 'CloudWatch returned status Forbidden for query m0_baseline_errors: '
                                                    'Forbidden: no access to account 123'}
    assert fetched.warnings == ['CloudWatch: MaxQueryTimeRangeExceed: too long']
    metrics = judge_metrics(plan, fetched)
    assert metrics[0]['cumulative'] is False and metrics[0]['period'] == 60
    assert metrics[0]['error'].startswith('baseline errors: CloudWatch returned status Forbidden')

    calls.clear()

    def complete(**params):
        answer = get_metric_data(**params)
        answer['MetricDataResults'] = answer['MetricDataResults'][:-1]   # no data at all for baseline errors
        return answer

    fetched = fetch_cloudwatch(complete, plan.cloudwatch, T0, T0 + 600)
    metrics = judge_metrics(plan, fetched)
    assert 'error' not in metrics[0] and metrics[0]['baseline']['errors'] == []
    # Per-period sums (cumulative False): a missing error datapoint means zero errors in that period.
    result = judge(metrics, T0, T0 + 600, window=60.0)
    assert result['metrics'][0]['evidence']['baseline_errors'] == 0.0 and result['verdict'] == 'fail'


@pytest.mark.parametrize('error', [
    ClientError({'Error': {'Code': 'AccessDenied', 'Message': 'not allowed'}}, 'GetMetricData'),
    EndpointConnectionError(endpoint_url='http://127.0.0.1:1'),
])
def test_cloudwatch_errors_become_every_query_error(error):
    def get_metric_data(**params):
        raise error

    plan = cloudwatch_plan()
    fetched = fetch_cloudwatch(get_metric_data, plan.cloudwatch, T0, T0 + 600)
    assert set(fetched.errors) == set(plan.cloudwatch) and fetched.cloudwatch_calls == 1
    assert all(message.startswith('GetMetricData failed: ') for message in fetched.errors.values())
    result = judge(judge_metrics(plan, fetched), T0, T0 + 600, window=60.0, max_duration=600)
    assert result['verdict'] == 'inconclusive' and 'query error: canary requests: GetMetricData failed' in result['reason']


def test_judge_metric_shapes_and_query_report():
    metrics = [
        errors_metric(on_no_data='fail', max_ratio=3.0),
        {'name': 'slow', 'kind': 'latency', 'count': 'c{${track}}', 'bucket': 'b{${track}}', 'le': 0.5},
        {'name': 'p99', 'kind': 'threshold', 'query': 'q{${track}}', 'min': 0.0},
    ]
    plan = build_plan(metrics, **TRACKS)
    fetched = FetchResult()
    for key in plan.prometheus:
        fetched.series[key] = [{'labels': {'k': key}, 'samples': [[T0, 1.0]]}]
    fetched.errors['m1_baseline_count'] = 'boom'
    del fetched.series['m1_baseline_count']
    built = judge_metrics(plan, fetched)
    assert built[0] == {'name': 'errors', 'kind': 'errors', 'on_no_data': 'fail', 'max_ratio': 3.0,
                        'canary': {'requests': fetched.series['m0_canary_requests'],
                                   'errors': fetched.series['m0_canary_errors']},
                        'baseline': {'requests': fetched.series['m0_baseline_requests'],
                                     'errors': fetched.series['m0_baseline_errors']}}
    assert built[1]['le'] == 0.5 and built[1]['error'] == 'baseline count: boom'
    assert built[2] == {'name': 'p99', 'kind': 'threshold', 'on_no_data': 'hold', 'min': 0.0,
                        'values': fetched.series['m2_canary_query']}
    report = query_report(plan, fetched)
    assert len(report) == 4 + 4 + 1
    assert report[0] == {'metric': 'errors', 'arm': 'canary', 'role': 'requests', 'provider': 'prometheus',
                         'key': 'm0_canary_requests', 'query': 'req_total{track="canary"}', 'series': 1, 'samples': 1,
                         'error': None}
    failed = [entry for entry in report if entry['error']]
    assert failed == [{'metric': 'slow', 'arm': 'baseline', 'role': 'count', 'provider': 'prometheus',
                       'key': 'm1_baseline_count', 'query': 'c{track="stable"}', 'series': None, 'samples': None,
                       'error': 'boom'}]


# --- permanent query errors: refused as invalid, they fail the analysis at once; passing errors are no data --------

@pytest.fixture
def refusing():
    answers = {
        'req_total{track="canary"}': [{'labels': {}, 'samples': counter(10)}],
        'req_total{track="stable"}': [{'labels': {}, 'samples': counter(40)}],
        'err_total{track="canary"': (400, 'bad_data', '1:26: parse error: unexpected end of input inside braces'),
        'err_total{track="stable"': (400, 'bad_data', '1:26: parse error: unexpected end of input inside braces'),
        'busy{track="canary"}': (503, 'unavailable', 'too many queries'),
        'slow{track="canary"}': (503, 'timeout', 'query timed out in expression evaluation'),
        'many{track="canary"}': (422, 'execution', 'found duplicate series for the match group'),
        'vm{track="canary"}': (422, '422', 'cannot parse "rate(x[5m]": missing closing parenthesis'),
        'proxy{track="canary"}': (429, 'unavailable', 'rate limited'),
        'oops{track="canary"}': (500, 'internal', 'panic'),
    }
    server = PrometheusStub(answers)
    yield server
    server.stop()


def guard(name, query):
    return {'name': name, 'kind': 'threshold', 'query': query, 'max': 1.0}


def test_prometheus_refusals_are_rejected_and_passing_errors_are_no_data(refusing):
    plan = build_plan([errors_metric(errors='err_total{${track}'), guard('busy', 'busy{${track}}'),
                       guard('slow', 'slow{${track}}'), guard('many', 'many{${track}}'), guard('vm', 'vm{${track}}'),
                       guard('proxy', 'proxy{${track}}'), guard('oops', 'oops{${track}}')], **TRACKS)
    fetched = fetch_prometheus(PrometheusClient(refusing.url), plan.prometheus, T0, T0 + 300, 15.0)
    assert fetched.prometheus_queries == len(plan.prometheus)  # every query sent: every typo reported at once
    assert sorted(fetched.rejected) == ['m0_baseline_errors', 'm0_canary_errors', 'm4_canary_query']
    assert set(fetched.errors) - set(fetched.rejected) == {'m1_canary_query', 'm2_canary_query', 'm3_canary_query',
                                                           'm5_canary_query', 'm6_canary_query'}


def test_fetch_plan_names_the_metric_arm_role_query_and_server_message_of_a_refused_query(refusing):
    plan = build_plan([errors_metric(errors='err_total{${track}'), guard('busy', 'busy{${track}}')], **TRACKS)
    with pytest.raises(QueryRejectedError) as raised:
        fetch_plan(plan, T0, T0 + 300, 15.0, prometheus_client=lambda: PrometheusClient(refusing.url))
    message = str(raised.value)
    assert message.startswith('2 queries were refused as invalid - a permanent error, not missing data: fix the query '
                              'and run again. ')
    assert ("metric 'errors' (canary errors query): Prometheus at %s returned bad_data (HTTP 400) for query "
            "'err_total{track=\"canary\"': 1:26: parse error: unexpected end of input inside braces" % refusing.url
            in message), message
    assert "metric 'errors' (baseline errors query): " in message and 'busy' not in message
    assert [(entry['metric'], entry['arm'], entry['role'], entry['query']) for entry in raised.value.rejected] == [
        ('errors', 'canary', 'errors', 'err_total{track="canary"'),
        ('errors', 'baseline', 'errors', 'err_total{track="stable"')]

    # a passing error alone is no data, as before
    plan = build_plan([guard('busy', 'busy{${track}}')], **TRACKS)
    fetched, _step = fetch_plan(plan, T0, T0 + 300, 15.0, prometheus_client=lambda: PrometheusClient(refusing.url))
    assert not fetched.rejected and 'unavailable' in fetched.errors['m0_canary_query']


def aws_error(code, message):
    return ClientError({'Error': {'Code': code, 'Message': message}, 'ResponseMetadata': {'HTTPStatusCode': 400}},
                       'GetMetricData')


@pytest.mark.parametrize('code', ['ValidationError', 'InvalidParameterValue', 'InvalidParameterCombination',
                                  'MissingParameter'])
def test_cloudwatch_validation_errors_are_permanent(code):
    error = aws_error(code, 'Error in expression m0_baseline_errors: Unrecognized token')
    assert cloudwatch_permanent(error)

    def get_metric_data(**params):
        raise error

    plan = cloudwatch_plan()
    fetched = fetch_cloudwatch(get_metric_data, plan.cloudwatch, T0, T0 + 600)
    assert list(fetched.rejected) == ['m0_baseline_errors'] and fetched.cloudwatch_calls == 1
    assert fetched.rejected['m0_baseline_errors'] == (
        'CloudWatch refused GetMetricData: An error occurred (%s) when calling the GetMetricData operation: Error in '
        'expression m0_baseline_errors: Unrecognized token' % code)
    assert fetched.errors['m0_canary_requests'].startswith('not read: GetMetricData refused another query')
    with pytest.raises(QueryRejectedError) as raised:
        fetch_plan(plan, T0, T0 + 600, 60.0, cloudwatch_call=lambda: get_metric_data)
    assert "metric 'alb' (baseline errors query): CloudWatch refused GetMetricData: " in str(raised.value)
    assert '"metric_name": "HTTPCode_Target_5XX_Count"' in str(raised.value)  # the query, as sent


@pytest.mark.parametrize('code', ['Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'InternalFailure',
                                  'ServiceUnavailable', 'AccessDenied'])
def test_cloudwatch_throttling_and_outages_are_no_data(code):
    assert not cloudwatch_permanent(aws_error(code, 'Rate exceeded'))
    assert not cloudwatch_permanent(EndpointConnectionError(endpoint_url='http://127.0.0.1:1'))


def test_botocore_parameter_validation_is_permanent_and_blames_the_query_by_index():
    """An empty metric name: botocore refuses it before sending, as a real client does (botocore checks minimum
    lengths only; CloudWatch itself answers ValidationError for a name longer than 255 characters)."""
    metric = {'name': 'alb', 'kind': 'errors', 'provider': 'cloudwatch',
              'requests': {'namespace': 'AWS/ApplicationELB', 'metric_name': 'RequestCount',
                           'dimensions': {'TargetGroup': '${track}'}},
              'errors': {'namespace': 'AWS/ApplicationELB', 'metric_name': '',
                         'dimensions': {'TargetGroup': '${track}'}}}
    plan = build_plan([metric], canary_track='tg/canary', baseline_track='tg/stable')
    client = boto3.client('cloudwatch', region_name='us-east-1', endpoint_url='http://127.0.0.1:1',
                          aws_access_key_id='testing', aws_secret_access_key='testing')
    fetched = fetch_cloudwatch(client, plan.cloudwatch, T0, T0 + 600)
    assert sorted(fetched.rejected) == ['m0_baseline_errors', 'm0_canary_errors'], fetched.errors
    assert 'Invalid length for parameter MetricDataQueries[1].MetricStat.Metric.MetricName' in \
        fetched.rejected['m0_canary_errors']
    assert fetched.errors['m0_canary_requests'].startswith('not read: GetMetricData refused another query')
    assert cloudwatch_permanent(ParamValidationError(report='x'))


def test_cloudwatch_is_not_asked_for_less_than_a_second():
    calls = []
    plan = cloudwatch_plan()
    fetched, _step = fetch_plan(plan, T0 + 0.2, T0 + 0.9, 60.0, cloudwatch_call=lambda: calls.append)
    assert calls == [] and fetched.cloudwatch_calls == 0 and not fetched.errors
