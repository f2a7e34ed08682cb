# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""run_analysis end to end over real HTTP (tests/support/prometheus_stub.py): times, clients, verdicts, errors."""

import json
import random
import socket

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_request import AnalysisRequestError
from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_run import resolve_times, run_analysis
from ansible_collections.canary.release.plugins.module_utils._sources.prometheus_api import PrometheusClient
from ansible_collections.canary.release.plugins.modules import analysis as analysis_module
from tests.support.prometheus_stub import PrometheusStub

T0 = 1700000000.0
SCRAPE = 5.0
SCRAPES = 360            # 30 minutes


def arm_counters(rng, instances, rate, error_rate, reset_at=None):
    """Per-instance request and error counter series (raw samples, one per scrape) of one arm."""
    requests, errors = [], []
    for instance in range(instances):
        total = failed = 0
        request_samples, error_samples = [], []
        for index in range(SCRAPES + 1):
            at = T0 + index * SCRAPE
            if reset_at is not None and at == reset_at:
                total = failed = 0
            request_samples.append((at, total))
            error_samples.append((at, failed))
            served = int(rate * SCRAPE)
            total += served
            failed += sum(1 for _request in range(served) if rng.random() < error_rate)
        labels = {'instance': 'i%d' % instance}
        requests.append({'labels': labels, 'samples': request_samples})
        errors.append({'labels': labels, 'samples': error_samples})
    return requests, errors


@pytest.fixture(scope='module')
def stub():
    rng = random.Random(7)
    answers = {}
    for scenario, canary_rate in (('bad', 0.05), ('same', 0.01)):
        canary = arm_counters(rng, 1, 10, canary_rate, reset_at=T0 + 150)
        baseline = arm_counters(rng, 2, 40, 0.01)
        for track, (requests, errors) in (('canary', canary), ('stable', baseline)):
            answers['req_total{s="%s", track="%s"}' % (scenario, track)] = requests
            answers['err_total{s="%s", track="%s"}' % (scenario, track)] = errors
    answers['p99{track="canary"}'] = [{'labels': {}, 'samples': [(T0 + 5 * index, 0.2 if index < 50 else 0.9)
                                                                 for index in range(SCRAPES + 1)]}]
    server = PrometheusStub(answers)
    yield server
    server.stop()


def options(scenario, **extra):
    value = {
        'start_time': T0, 'window': 60, 'canary_track': 'track="canary"', 'baseline_track': 'track="stable"',
        'metrics': [{'name': 'errors', 'kind': 'errors', 'requests': 'req_total{s="%s", ${track}}' % scenario,
                     'errors': 'err_total{s="%s", ${track}}' % scenario}],
    }
    value.update(extra)
    return value


def analyse(stub, opts, now):
    result, warnings = run_analysis(opts, prometheus_client=lambda: PrometheusClient(stub.url), now=now)
    json.dumps(result, allow_nan=False)
    return result, warnings


def test_regression_fails_and_the_queries_are_reported(stub):
    stub.requests.clear()
    result, warnings = analyse(stub, options('bad', end_time=T0 + 1200), now=T0 + 99999)
    assert result['verdict'] == 'fail', result['reason']
    assert result['reason'].startswith('fail: errors: canary')
    assert result['api_calls'] == {'prometheus': 4, 'cloudwatch': 0} and len(stub.requests) == 4
    # One range query per series, starting at the canary's start, on window boundaries.
    assert all((request['start'], request['end'], request['step']) == ('1700000000', '1700001200', '15')
               for request in stub.requests)
    assert result['step'] == 15.0 and result['start_time_rfc3339'] == '2023-11-14T22:13:20Z'
    assert result['metrics'][0]['evidence']['data_notes']['canary']['requests']['resets'] == 1
    assert [entry['query'] for entry in result['queries']] == [
        'req_total{s="bad", track="canary"}', 'err_total{s="bad", track="canary"}',
        'req_total{s="bad", track="stable"}', 'err_total{s="bad", track="stable"}']
    assert warnings == []


def test_identical_arms_never_fail_and_pass(stub):
    verdicts = [analyse(stub, options('same', end_time=T0 + 60 * minute, min_duration='5m'), now=T0 + 99999)[0]['verdict']
                for minute in range(0, 31, 3)]
    assert 'fail' not in verdicts and verdicts[0] == 'continue' and verdicts[-1] == 'pass', verdicts


def test_relative_times_and_deadline(stub):
    now = T0 + 1200
    opts = options('same', start_time='-20m', rate_floor=0.0, alpha=0.001, beta=0.001, max_ratio=1.01)
    result, _warnings = analyse(stub, dict(opts, max_duration='30m'), now=now)
    assert result['verdict'] == 'continue' and result['start_time'] == T0 and result['deadline'] == T0 + 1800
    result, _warnings = analyse(stub, dict(opts, max_duration=600), now=now)
    assert result['verdict'] == 'inconclusive' and result['windows'] == 10


def test_threshold_breach_fails_at_once(stub):
    guard = {'name': 'p99', 'kind': 'threshold', 'query': 'p99{${track}}', 'max': 0.5}
    opts = options('same', metrics=options('same')['metrics'] + [guard], min_duration='10m')
    before, _warnings = analyse(stub, dict(opts, end_time=T0 + 240), now=T0 + 99999)
    assert before['verdict'] == 'continue'
    after, _warnings = analyse(stub, dict(opts, end_time=T0 + 255), now=T0 + 99999)
    assert after['verdict'] == 'fail' and after['reason'] == 'fail: p99: 0.9 breaches max 0.5'
    assert after['metrics'][1]['decided_at'] == T0 + 255   # the first range-query step after the sample


def test_prometheus_down_holds_then_is_inconclusive():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        url = 'http://127.0.0.1:%d' % sock.getsockname()[1]
    opts = options('bad', max_duration=1800)

    def factory():
        return PrometheusClient(url, timeout=2)

    result, _warnings = run_analysis(opts, prometheus_client=factory, now=T0 + 600)
    assert result['verdict'] == 'continue' and 'query error: canary requests: cannot connect' in result['reason']
    assert result['api_calls']['prometheus'] == 1
    result, _warnings = run_analysis(opts, prometheus_client=factory, now=T0 + 1800)
    assert result['verdict'] == 'inconclusive'
    failing = dict(opts, metrics=[dict(opts['metrics'][0], on_no_data='fail')])
    assert run_analysis(failing, prometheus_client=factory, now=T0 + 600)[0]['verdict'] == 'fail'


def test_start_time_not_reached_reads_nothing(stub):
    stub.requests.clear()
    result, _warnings = analyse(stub, options('same', start_time=T0 + 100), now=T0 + 50)
    assert result['verdict'] == 'continue' and result['api_calls']['prometheus'] == 0 and not stub.requests


def test_latency_buckets_must_be_unambiguous():
    bucket = [{'labels': {'le': le}, 'samples': [(T0, 0.0), (T0 + 60, 10.0)]} for le in ('0.5', '1', '+Inf')]
    stub = PrometheusStub({'c{track="canary"}': [{'labels': {}, 'samples': [(T0, 0.0), (T0 + 60, 10.0)]}],
                           'b{track="canary"}': bucket, 'b{track="stable"}': bucket,
                           'nole{track="canary"}': bucket[:1], 'nole{track="stable"}': [{'labels': {}, 'samples': []}]})
    try:
        latency = {'name': 'slow', 'kind': 'latency', 'count': 'c{${track}}', 'bucket': 'b{${track}}'}
        with pytest.raises(AnalysisRequestError, match=r'the canary bucket query returns 3 buckets \(le=\+Inf, 0.5, 1\)'):
            analyse(stub, options('x', metrics=[latency]), now=T0 + 120)
        result, _warnings = analyse(stub, options('x', metrics=[dict(latency, le=0.5)]), now=T0 + 120)
        assert result['verdict'] == 'continue'
        unlabelled = dict(latency, bucket='nole{${track}}', le=0.5)
        stub.answers['nole{track="canary"}'] = [{'labels': {}, 'samples': [(T0, 1.0)]}]
        with pytest.raises(AnalysisRequestError, match='le is set but the canary bucket series have no le label'):
            analyse(stub, options('x', metrics=[unlabelled]), now=T0 + 120)
    finally:
        stub.stop()


def test_cloudwatch_factory_is_only_called_when_needed(stub):
    def cloudwatch():
        raise AssertionError('no CloudWatch metric: the AWS client must not be created')

    result, _warnings = run_analysis(options('same'), prometheus_client=lambda: PrometheusClient(stub.url),
                                     cloudwatch_call=cloudwatch, now=T0 + 120)
    assert result['api_calls'] == {'prometheus': 4, 'cloudwatch': 0}
    cloudwatch_metric = {'name': 'alb', 'kind': 'errors', 'provider': 'cloudwatch', 'period': 60,
                         'requests': {'namespace': 'N', 'metric_name': 'R', 'dimensions': {'T': '${track}'}},
                         'errors': {'namespace': 'N', 'metric_name': 'E', 'dimensions': {'T': '${track}'}}}
    with pytest.raises(AnalysisRequestError, match='no Prometheus connection'):
        run_analysis(options('same'), now=T0 + 120)
    with pytest.raises(AnalysisRequestError, match='no AWS connection'):
        run_analysis(options('same', metrics=[cloudwatch_metric]), now=T0 + 120)
    calls = []

    def get_metric_data(**params):
        calls.append(params)
        return {'MetricDataResults': []}

    result, warnings = run_analysis(options('same', metrics=[cloudwatch_metric], window=90),
                                    cloudwatch_call=lambda: get_metric_data, now=T0 + 600)
    assert len(calls) == 1 and result['api_calls'] == {'prometheus': 0, 'cloudwatch': 1} and result['step'] is None
    assert result['verdict'] == 'continue' and 'no window where both arms served requests' in result['reason']
    assert warnings == ["metric 'alb': window (90s) is not a multiple of its period (60s); some windows hold no "
                        "period and others two"]


@pytest.mark.parametrize('extra, message', [
    ({'start_time': 'yesterday'}, 'start_time: invalid time'),
    ({'start_time': None}, 'start_time is required'),
    ({'end_time': '2023-13-01T00:00:00Z'}, 'end_time: invalid time'),
    ({'start_time': T0 + 3600}, 'start_time 2023-11-14T23:13:20Z is after end_time 2023-11-14T22:23:20Z'),
    ({'window': 0}, 'window must be > 0'),
    ({'window': '1 minute'}, 'window: invalid duration'),
    ({'min_duration': '20m', 'max_duration': '10m'}, 'min_duration (1200s) is longer than max_duration (600s)'),
    ({'alpha': 1.5}, 'alpha must be a number strictly between 0 and 1'),
    ({'max_ratio': 0.5}, 'max_ratio must be a number > 1'),
    ({'step': 7}, 'step 7s must divide window 60s'),
    ({'restarts': ['yesterday']}, 'restarts[0]: invalid time'),
    ({'restarts': [T0 + 60, '']}, 'restarts[1] is empty'),
    ({'restarts': 'T0 + 60'}, 'restarts must be a list of times'),
    ({'restarts': [T0]}, 'restarts[0] (2023-11-14T22:13:20Z) must be after start_time (2023-11-14T22:13:20Z)'),
    ({'restarts': [T0 + 120, '2023-11-14T22:14:20Z']}, 'restarts[1] (2023-11-14T22:14:20Z) must be after restarts[0]'),
    ({'restarts': [T0 + 3600]}, 'restarts[0] 2023-11-14T23:13:20Z is after end_time 2023-11-14T22:23:20Z'),
])
def test_invalid_options(stub, extra, message):
    with pytest.raises(AnalysisRequestError) as raised:
        analyse(stub, options('same', **extra), now=T0 + 600)
    assert message in str(raised.value)


def test_resolve_times_rounds_to_milliseconds():
    times = resolve_times({'start_time': '2023-11-14T22:13:20.12345Z', 'window': '1m', 'max_duration': '1h'},
                          now=T0 + 100.0004)
    assert times == {'start': T0 + 0.123, 'end': T0 + 100.0, 'window': 60.0, 'min_duration': 0.0,
                     'max_duration': 3600.0, 'deadline': T0 + 3600.123, 'fetch_end': T0 + 100.0,
                     'restarts': []}


def test_validate_only_builds_every_query_and_sends_none(stub):
    made = []

    def client():
        made.append(True)
        return PrometheusClient(stub.url)

    before = len(stub.requests)
    result, warnings = run_analysis(options('bad', validate_only=True), prometheus_client=client, now=T0 + 1800)
    json.dumps(result, allow_nan=False)
    assert len(stub.requests) == before and made == [True]        # the client is made (checked), nothing is sent
    assert result['valid'] is True and result['verdict'] is None
    assert result['api_calls'] == {'prometheus': 0, 'cloudwatch': 0} and result['step'] == 15.0
    assert [query['query'] for query in result['queries']] == [
        'req_total{s="bad", track="canary"}', 'err_total{s="bad", track="canary"}',
        'req_total{s="bad", track="stable"}', 'err_total{s="bad", track="stable"}']
    assert all(query['series'] is None and query['error'] is None for query in result['queries'])
    assert result['metrics'] == [{'name': 'errors', 'kind': 'errors', 'provider': 'prometheus', 'on_no_data': 'hold',
                                  'options': {}}]
    real, _warnings = analyse(stub, options('bad'), now=T0 + 1800)
    assert real['valid'] is True and real['verdict'] == 'fail'


@pytest.mark.parametrize('extra, message', [
    ({'max_ratio': 0.5}, 'max_ratio must be a number > 1'),
    ({'step': 7}, 'step 7s must divide window 60s'),
    ({'metrics': [{'name': 'errors', 'kind': 'errors', 'requests': 'r{${trak}}', 'errors': 'e{${track}}'}]},
     'unknown placeholder ${trak}'),
    ({'restarts': [T0 + 120, T0 + 60]}, 'restarts[1] (2023-11-14T22:14:20Z) must be after restarts[0]'),
])
def test_validate_only_fails_with_the_message_of_a_real_run(stub, extra, message):
    messages = []
    before = len(stub.requests)
    for validate_only in (False, True):
        with pytest.raises(AnalysisRequestError) as raised:
            analyse(stub, options('same', validate_only=validate_only, **extra), now=T0 + 600)
        messages.append(str(raised.value))
    assert messages[0] == messages[1] and message in messages[0]
    if 'restarts' in extra:
        assert len(stub.requests) == before  # refused before any query


def test_restarts_in_the_forms_of_start_time_reach_the_judge(stub):
    restarts = ['2023-11-14T22:23:20.0004Z', T0 + 1200, str(T0 + 1500)]
    result, _warnings = analyse(stub, options('same', end_time=T0 + 1800, restarts=restarts), now=T0 + 99999)
    assert result['restarts'] == [T0 + 600, T0 + 1200, T0 + 1500] and result['test_start'] == T0 + 1500
    assert result['restarts_rfc3339'] == ['2023-11-14T22:23:20Z', '2023-11-14T22:33:20Z', '2023-11-14T22:38:20Z']
    evidence = result['metrics'][0]['evidence']
    assert evidence['restarts'] == 3 and evidence['current_canary_requests'] == 10 * 300
    assert set(['current_canary_errors', 'current_log_mixture_lr']) <= set(evidence)
    checked, _warnings = run_analysis(options('same', validate_only=True, restarts=restarts), now=T0 + 1800,
                                      prometheus_client=lambda: PrometheusClient(stub.url))
    assert checked['restarts'] == result['restarts'] and checked['restarts_rfc3339'] == result['restarts_rfc3339']


def test_the_modules_restarts_option():
    spec = analysis_module.argument_spec()
    assert spec['restarts'] == {'type': 'list', 'elements': 'raw', 'default': []}
    base = {'metrics': [{'name': 'errors', 'kind': 'errors'}], 'start_time': T0}
    assert ArgumentSpecValidator(spec).validate(base).validated_parameters['restarts'] == []
    given = ArgumentSpecValidator(spec).validate(dict(base, restarts=[T0 + 60, '2023-11-14T22:15:20Z']))
    assert given.error_messages == [] and given.validated_parameters['restarts'] == [T0 + 60, '2023-11-14T22:15:20Z']


def test_validate_only_checks_the_connection_of_every_provider_used():
    with pytest.raises(AnalysisRequestError, match='no Prometheus connection'):
        run_analysis(options('same', validate_only=True), now=T0 + 120)
    with pytest.raises(AnalysisRequestError, match='invalid Prometheus url'):
        run_analysis(options('same', validate_only=True), prometheus_client=lambda: PrometheusClient('ftp://x'),
                     now=T0 + 120)
