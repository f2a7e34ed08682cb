"""canary.release.analysis through real ansible-playbook runs, against a real Prometheus and a moto server.

Prometheus holds known data: the test writes 30 minutes of synthetic scrapes (5 s apart, ending 10 minutes ago)
as OpenMetrics, turns them into TSDB blocks with ``promtool tsdb create-blocks-from openmetrics`` in the data
directory of a Prometheus it then starts (tests/support/prometheus.py), so every verdict is deterministic. The
scenarios share one server and differ by a ``scenario`` label; the arms differ by ``track``:

* ``regression``: canary 10 req/s at 5 % errors (and a counter reset at 2.5 min) vs two baseline instances at
  40 req/s and 1 %;
* ``identical``: canary 20 req/s and two baseline instances at 40 req/s, all at 1 %;
* ``latency``: a histogram, canary 10 % slower than 0.5 s vs baseline 2 %;
* ``threshold``: a canary p99 gauge at 0.2 s that jumps to 0.9 s at 4 min.

Polls use ``end_time`` to replay the past window, one poll per minute. The CloudWatch path puts per-minute Sum
data into moto and counts the GetMetricData calls the server receives.
"""

import datetime
import math
import random
import subprocess
import time

import boto3
import pytest

from tests.support.moto import REGION, MotoServer, aws_env
from tests.support.playbook import run_playbook
from tests.support.prometheus import LOCAL_ENV, PrometheusServer

pytestmark = pytest.mark.integration

PROMTOOL = '/usr/bin/promtool'
SCRAPE = 5
MINUTES = 30
TRACKS = {'canary_track': 'track="canary"', 'baseline_track': 'track="stable"'}
BUCKETS = ('0.1', '0.25', '0.5', '1', '+Inf')
BREACH_AFTER = 240


def binomial(rng, count, probability):
    return sum(1 for _draw in range(count) if rng.random() < probability)


class OpenMetrics:
    """OpenMetrics text, one family at a time, every series in time order, ending with ``# EOF``."""

    def __init__(self):
        self.lines = []

    def family(self, name, kind):
        self.lines.append('# TYPE %s %s' % (name, kind))

    def sample(self, name, labels, value, stamp):
        text = ','.join('%s="%s"' % item for item in sorted(labels.items()))
        self.lines.append('%s{%s} %r %d' % (name, text, float(value), stamp))

    def text(self):
        return '\n'.join(self.lines + ['# EOF']) + '\n'


def scrape_times(t0):
    return [t0 + index * SCRAPE for index in range(MINUTES * 60 // SCRAPE + 1)]


def write_counters(out, rng, t0):
    """app_requests_total / app_errors_total per scenario, arm and instance."""
    instances = []
    for scenario, canary_rate, canary_errors in (('regression', 10, 0.05), ('identical', 20, 0.01)):
        instances.append((scenario, 'canary', 'c1', canary_rate, canary_errors, t0 + 150 if scenario == 'regression' else None))
        instances += [(scenario, 'stable', name, 40, 0.01, None) for name in ('b1', 'b2')]
    series = {}
    for scenario, track, instance, rate, error_rate, reset_at in instances:
        labels = {'scenario': scenario, 'track': track, 'instance': instance}
        requests = errors = 0
        points = []
        for stamp in scrape_times(t0):
            if stamp == reset_at:
                requests = errors = 0
            points.append((stamp, requests, errors))
            served = rate * SCRAPE
            requests += served
            errors += binomial(rng, served, error_rate)
        series[(scenario, track, instance)] = (labels, points)
    for family, column in (('app_requests', 1), ('app_errors', 2)):
        out.family(family, 'counter')
        for labels, points in series.values():
            for point in points:
                out.sample(family + '_total', labels, point[column], point[0])


def write_histogram(out, rng, t0):
    out.family('app_request_duration_seconds', 'histogram')
    bounds = [float(bound) for bound in BUCKETS]
    for track, instance, rate, slow in (('canary', 'c1', 10, 0.10), ('stable', 'b1', 40, 0.02)):
        labels = {'scenario': 'latency', 'track': track, 'instance': instance}
        counts = [0] * len(bounds)
        total = seconds = 0.0
        for stamp in scrape_times(t0):
            for index, bound in enumerate(BUCKETS):
                out.sample('app_request_duration_seconds_bucket', dict(labels, le=bound), counts[index], stamp)
            out.sample('app_request_duration_seconds_count', labels, total, stamp)
            out.sample('app_request_duration_seconds_sum', labels, seconds, stamp)
            for _request in range(rate * SCRAPE):
                took = rng.uniform(0.6, 0.9) if rng.random() < slow else rng.uniform(0.01, 0.4)
                total += 1
                seconds += took
                for index, bound in enumerate(bounds):
                    if took <= bound:
                        counts[index] += 1


def write_gauge(out, t0):
    out.family('app_p99_seconds', 'gauge')
    for stamp in scrape_times(t0):
        value = 0.9 if stamp - t0 >= BREACH_AFTER else 0.2
        out.sample('app_p99_seconds', {'scenario': 'threshold', 'track': 'canary'}, value, stamp)


@pytest.fixture(scope='module')
def prometheus(tmp_path_factory):
    """A Prometheus whose data directory holds the backfilled scenarios; yields (server, t0)."""
    workdir = tmp_path_factory.mktemp('prometheus-analysis')
    t0 = int(time.time() // 60 * 60) - (MINUTES + 10) * 60
    out = OpenMetrics()
    rng = random.Random(20250101)
    write_counters(out, rng, t0)
    write_histogram(out, rng, t0)
    write_gauge(out, t0)
    source = workdir / 'backfill.om'
    source.write_text(out.text(), encoding='utf-8')
    data = workdir / 'data'
    data.mkdir()
    subprocess.run([PROMTOOL, 'tsdb', 'create-blocks-from', 'openmetrics', str(source), str(data)],
                   check=True, capture_output=True, timeout=60)
    server = PrometheusServer(workdir).start()
    try:
        answer = server.session.get(server.url + '/api/v1/query', timeout=10,
                                    params={'query': 'count(app_requests_total)', 'time': t0 + 60}).json()
        assert answer['data']['result'][0]['value'][1] == '6', answer    # the blocks were loaded at start-up
        yield server, t0
    finally:
        server.stop()


def play(tasks, extra_env=None, **kwargs):
    env = dict(LOCAL_ENV)
    env.update(extra_env or {})
    return run_playbook(tasks=tasks, extra_env=env, timeout=150, **kwargs)


def errors_metric(scenario, **extra):
    metric = {'name': 'http_errors', 'kind': 'errors',
              'requests': 'app_requests_total{scenario="%s", ${track}}' % scenario,
              'errors': 'app_errors_total{scenario="%s", ${track}}' % scenario}
    metric.update(extra)
    return metric


def analysis(name, url, t0, metrics, **options):
    arguments = dict(url=url, start_time=t0, metrics=metrics, **TRACKS)
    arguments.update(options)
    return {'name': name, 'canary.release.analysis': arguments, 'register': 'result'}


def test_prometheus_verdicts(prometheus):
    server, t0 = prometheus
    url = server.url
    latency = {'name': 'slow_requests', 'kind': 'latency',
               'count': 'app_request_duration_seconds_count{scenario="latency", ${track}}',
               'bucket': 'app_request_duration_seconds_bucket{scenario="latency", ${track}}', 'le': 0.5}
    guard = {'name': 'p99', 'kind': 'threshold', 'query': 'app_p99_seconds{scenario="threshold", ${track}}', 'max': 0.5}
    identical = errors_metric('identical')
    polled = dict(analysis('regression polled', url, t0, [errors_metric('regression')], end_time=t0 + 1200),
                  until="result is failed or result.verdict != 'continue'", retries=3, delay=1)
    run = play([
        analysis('regression', url, t0, [errors_metric('regression')], end_time=t0 + 1200, max_duration='30m'),
        polled,
        dict(analysis('regression check mode', url, '{{ %d | string }}' % t0, [errors_metric('regression')],
                      end_time=t0 + 1200), check_mode=True),
        dict(analysis('identical polls', url, t0, [identical], min_duration='5m', max_duration='30m',
                      end_time='{{ %d + 60 * item }}' % t0), loop='{{ range(1, 21) | list }}'),
        analysis('latency', url, t0, [latency], end_time=t0 + 1200),
        analysis('threshold before the breach', url, t0, [identical, guard], min_duration='10m',
                 end_time=t0 + BREACH_AFTER - 5),
        analysis('threshold at the breach', url, t0, [identical, guard], min_duration='10m',
                 end_time=t0 + BREACH_AFTER + 5),
        dict(analysis('invalid PromQL fails the task at once', url, t0,
                      [errors_metric('identical', errors='app_errors_total{${track}')], end_time=t0 + 1200,
                      max_duration='30m', label='web 7: step 0 at 10 %'), ignore_errors=True),
        dict(analysis('unknown kind fails the task', url, t0, [errors_metric('identical', kind='ratio')]),
             ignore_errors=True),
        dict(analysis('template without placeholder fails the task', url, t0,
                      [errors_metric('identical', requests='app_requests_total')]), ignore_errors=True),
    ])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    regression = run.result('regression')
    assert regression['verdict'] == 'fail' and regression['changed'] is False, regression['reason']
    assert regression['reason'].startswith('fail: http_errors: canary ')
    evidence = regression['metrics'][0]['evidence']
    assert evidence['ratio_estimate'] > 3 and evidence['log_mixture_lr'] >= evidence['fail_threshold']
    assert evidence['data_notes']['canary']['requests']['resets'] == 1
    assert regression['metrics'][0]['decided_at'] <= t0 + 600
    assert regression['api_calls'] == {'prometheus': 4, 'cloudwatch': 0} and regression['step'] == 15.0
    assert regression['deadline'] == t0 + 1800 and regression['elapsed'] == 1200
    assert [query['query'] for query in regression['queries']] == [
        'app_requests_total{scenario="regression", track="canary"}', 'app_errors_total{scenario="regression", track="canary"}',
        'app_requests_total{scenario="regression", track="stable"}', 'app_errors_total{scenario="regression", track="stable"}']
    assert [query['series'] for query in regression['queries']] == [1, 1, 2, 2]
    assert run.result('regression polled')['verdict'] == 'fail' and run.result('regression polled')['attempts'] == 1
    assert run.result('regression check mode')['verdict'] == 'fail'

    polls = run.result('identical polls')['results']
    verdicts = [poll['verdict'] for poll in polls]
    assert 'fail' not in verdicts, verdicts
    assert verdicts[:4] == ['continue'] * 4 and verdicts[-1] == 'pass', verdicts
    first_pass = verdicts.index('pass')
    assert set(verdicts[first_pass:]) == {'pass'}
    assert polls[-1]['metrics'][0]['decided_at'] >= t0 + 300          # min_duration

    latency_result = run.result('latency')
    assert latency_result['verdict'] == 'fail', latency_result['reason']
    assert latency_result['metrics'][0]['kind'] == 'latency' and latency_result['metrics'][0]['evidence']['ratio_estimate'] > 2

    assert run.result('threshold before the breach')['verdict'] == 'continue'
    breach = run.result('threshold at the breach')
    assert breach['verdict'] == 'fail' and breach['reason'] == 'fail: p99: 0.9 breaches max 0.5'
    assert breach['metrics'][1]['status'] == 'fail' and breach['metrics'][0]['status'] != 'fail'

    invalid = run.result('invalid PromQL fails the task at once')
    assert invalid['failed'] is True and 'verdict' not in invalid
    assert invalid['msg'].startswith('web 7: step 0 at 10 %: 2 queries were refused as invalid - a permanent error, '
                                     'not missing data: fix the query and run again. '), invalid['msg']
    assert ("metric 'http_errors' (canary errors query): Prometheus at %s returned bad_data (HTTP 400) for query "
            "'app_errors_total{track=\"canary\"': 1:32: parse error: " % url) in invalid['msg'], invalid['msg']
    assert 'parse error' in invalid['msg']
    assert [(entry['metric'], entry['arm'], entry['role']) for entry in invalid['rejected']] == [
        ('http_errors', 'canary', 'errors'), ('http_errors', 'baseline', 'errors')]

    unknown = run.result('unknown kind fails the task')
    assert unknown['failed'] is True and 'value of kind must be one of: errors, latency, threshold' in unknown['msg']
    template = run.result('template without placeholder fails the task')
    assert template['failed'] is True
    assert "metric 'http_errors': the requests query has no ${track} placeholder" in template['msg']


def test_connection_dict_and_validate_only(prometheus):
    """One ``connection`` dict instead of the top-level options (a given top-level option wins, the secrets are
    no_log), and ``validate_only``: everything checked, every query built, nothing sent."""
    server, t0 = prometheus
    secret = 'sekrit-bearer-4711'

    def task(name, metrics=None, **arguments):
        arguments = dict(dict(start_time=t0, end_time=t0 + 1200, metrics=metrics or [errors_metric('regression')],
                              **TRACKS), **arguments)
        return {'name': name, 'canary.release.analysis': arguments, 'register': 'result', 'ignore_errors': True}

    run = play([
        task('validate only', connection={'url': server.url, 'timeout': 5, 'bearer_token': secret},
             validate_only=True),
        task('through connection', connection={'url': server.url, 'timeout': 5}),
        task('the top-level url wins', url=server.url, connection={'url': 'http://127.0.0.1:1'}),
        task('validate only refuses a bad metric', metrics=[errors_metric('identical', requests='app_requests_total')],
             connection={'url': server.url}, validate_only=True),
        task('validate only needs a url', validate_only=True),
    ])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert secret not in run.stdout and secret not in run.stderr
    checked = run.result('validate only')
    assert not checked.get('failed'), checked
    assert checked['valid'] is True and checked['verdict'] is None
    assert checked['api_calls'] == {'prometheus': 0, 'cloudwatch': 0} and len(checked['queries']) == 4
    assert checked['queries'][0]['query'] == 'app_requests_total{scenario="regression", track="canary"}'
    real = run.result('through connection')
    assert real['verdict'] == 'fail' and real['valid'] is True and real['api_calls']['prometheus'] == 4
    assert run.result('the top-level url wins')['verdict'] == 'fail'
    refused = run.result('validate only refuses a bad metric')
    assert refused['failed'] and 'has no ${track} placeholder' in refused['msg']
    no_url = run.result('validate only needs a url')
    assert no_url['failed'] and 'url is required when a metric uses provider prometheus' in no_url['msg']


def test_prometheus_stopped_continues_then_is_inconclusive(tmp_path):
    server = PrometheusServer(tmp_path / 'stopped').start()
    url = server.url
    server.stop()
    start = int(time.time()) - 600
    metric = errors_metric('identical')
    run = play([
        analysis('before the deadline', url, start, [metric], max_duration='15m', timeout=5),
        analysis('at the deadline', url, start, [metric], max_duration='15m', end_time=start + 900, timeout=5),
        analysis('after the deadline', url, start, [metric], max_duration='9m', timeout=5),
        analysis('no data fails', url, start, [dict(metric, on_no_data='fail')], max_duration='15m', timeout=5),
        analysis('polls inside the task', url, start, [metric], max_duration='15m', timeout=5, interval=1, wait=2.5,
                 polls=4, label='down'),
    ])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    before = run.result('before the deadline')
    assert before['verdict'] == 'continue' and not before.get('failed')
    assert 'query error: canary requests: cannot connect to Prometheus at %s' % url in before['reason']
    assert before['api_calls']['prometheus'] == 1           # the other queries are not sent to a dead server
    assert run.result('at the deadline')['verdict'] == 'inconclusive'
    assert run.result('after the deadline')['verdict'] == 'inconclusive'
    assert run.result('no data fails')['verdict'] == 'fail'
    # a connection refused is no data under on_no_data (hold): the task polls on, every second for 2.5 s
    polled = run.result('polls inside the task')
    assert polled['verdict'] == 'continue' and not polled.get('failed')
    assert polled['poll']['made'] == 3 and polled['poll']['number'] == 7 and polled['poll']['stopped'] == 'polling'
    assert [line.split(' at ')[0] for line in polled['poll']['messages']] == ['down: poll 5', 'down: poll 6',
                                                                              'down: poll 7']
    assert all(': continue' in line for line in polled['poll']['messages'])
    assert polled['poll']['message'] == polled['poll']['messages'][-1]
    assert polled['poll']['next_at'] == pytest.approx(polled['now'] + 1, abs=0.01)


@pytest.fixture(scope='module')
def moto():
    server = MotoServer()
    server.start()
    yield server
    server.stop()


def test_cloudwatch_regression_one_call_per_run(moto):
    client = boto3.client('cloudwatch', endpoint_url=moto.endpoint_url, region_name=REGION,
                          aws_access_key_id='testing', aws_secret_access_key='testing')
    start = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0) - datetime.timedelta(minutes=30)
    rng = random.Random(5)
    points = []
    for minute in range(20):
        at = start + datetime.timedelta(minutes=minute)
        for group, requests, error_rate in (('tg/canary', 600, 0.05), ('tg/stable', 5400, 0.01)):
            dimensions = [{'Name': 'TargetGroup', 'Value': group}]
            errors = binomial(rng, requests, error_rate)
            points += [
                {'MetricName': 'RequestCount', 'Dimensions': dimensions, 'Timestamp': at, 'Value': float(requests), 'Unit': 'Count'},
                {'MetricName': 'HTTPCode_Target_5XX_Count', 'Dimensions': dimensions, 'Timestamp': at,
                 'Value': float(errors), 'Unit': 'Count'},
                {'MetricName': 'TargetResponseTime', 'Dimensions': dimensions, 'Timestamp': at, 'Value': 0.2,
                 'Unit': 'Seconds'},
            ]
    for offset in range(0, len(points), 20):
        client.put_metric_data(Namespace='Canary/ALB', MetricData=points[offset:offset + 20])

    def query(name, **extra):
        spec = {'namespace': 'Canary/ALB', 'metric_name': name, 'dimensions': {'TargetGroup': '${track}'}}
        spec.update(extra)
        return spec

    alb_errors = {'name': 'alb_5xx', 'kind': 'errors', 'provider': 'cloudwatch', 'period': 60,
                  'requests': query('RequestCount'), 'errors': query('HTTPCode_Target_5XX_Count')}
    guard = {'name': 'response_time', 'kind': 'threshold', 'provider': 'cloudwatch', 'max': 1.0,
             'query': query('TargetResponseTime', stat='Maximum')}
    aws = {'endpoint_url': moto.endpoint_url, 'region': REGION, 'canary_track': 'tg/canary',
           'baseline_track': 'tg/stable', 'start_time': start.strftime('%Y-%m-%dT%H:%M:%SZ')}
    end = (start + datetime.timedelta(minutes=20)).strftime('%Y-%m-%dT%H:%M:%SZ')
    moto.clear()
    run = play([
        {'name': 'errors', 'canary.release.analysis': dict(aws, metrics=[alb_errors], end_time=end),
         'register': 'result'},
        {'name': 'errors and guard', 'canary.release.analysis': dict(aws, metrics=[alb_errors, guard], end_time=end),
         'register': 'result'},
        {'name': 'first minute only', 'canary.release.analysis': dict(aws, metrics=[alb_errors, guard], window=60,
                                                                      end_time=start.strftime('%Y-%m-%dT%H:%M:30Z')),
         'register': 'result'},
        # botocore refuses an empty metric name before sending: a permanent error, the task fails at once
        {'name': 'an empty metric name fails the task',
         'canary.release.analysis': dict(aws, metrics=[dict(alb_errors, errors=query(''))], end_time=end),
         'register': 'result', 'ignore_errors': True},
    ], extra_env=aws_env())
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    errors = run.result('errors')
    assert errors['verdict'] == 'fail', errors['reason']
    assert errors['metrics'][0]['evidence']['canary_requests'] == 600.0 * errors['metrics'][0]['evidence']['windows']
    assert errors['api_calls'] == {'prometheus': 0, 'cloudwatch': 1} and errors['step'] is None
    both = run.result('errors and guard')
    assert both['verdict'] == 'fail' and both['metrics'][1]['status'] == 'ok'
    assert both['metrics'][1]['evidence']['samples'] == 20
    assert run.result('first minute only')['verdict'] == 'continue'

    invalid = run.result('an empty metric name fails the task')
    assert invalid['failed'] is True and 'verdict' not in invalid
    assert "metric 'alb_5xx' (canary errors query): CloudWatch refused GetMetricData: Parameter validation failed: " \
        "Invalid length for parameter MetricDataQueries[1].MetricStat.Metric.MetricName, value: 0" in invalid['msg'], \
        invalid['msg']
    assert '"metric_name": ""' in invalid['msg']  # the query, as built
    rejected = [(entry['arm'], entry['role']) for entry in invalid['rejected']]
    assert rejected == [('canary', 'errors'), ('baseline', 'errors')]

    calls = [request['params'] for request in moto.requests('GetMetricData')]
    # Exactly one GetMetricData call per module run, with every query of the run in it.
    assert [len(call['MetricDataQueries']) for call in calls] == [4, 5, 5]
    assert calls[0]['MetricDataQueries'][0] == {
        'Id': 'm0_canary_requests', 'MetricStat': {
            'Metric': {'Namespace': 'Canary/ALB', 'MetricName': 'RequestCount',
                       'Dimensions': [{'Name': 'TargetGroup', 'Value': 'tg/canary'}]},
            'Period': 60, 'Stat': 'Sum'}}
    assert math.isclose(both['elapsed'], 1200.0)
