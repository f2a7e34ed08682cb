"""canary.release.cloudwatch_metrics and canary.release.cloudwatch against a moto server.

The test puts metric data with boto3, then runs real ansible-playbook processes whose module and lookup talk to
the moto server through ``endpoint_url``; the server records every GetMetricData request, which gives the call
counts and the exact request shapes. moto does not evaluate metric-math expressions (it returns an expression's
data only when the expression is a bare id), so for the expression form these tests check the request that was
sent, not computed values. moto does not paginate either: tests/support/moto.py adds CloudWatch's MaxDatapoints /
NextToken paging on top of moto's answer for requests that set MaxDatapoints.
"""

import ast
import datetime
import os

import boto3
import pytest
import yaml

from ansible_collections.canary.release.plugins.module_utils._sources.cloudwatch_metric_data import get_metric_data
from ansible_collections.canary.release.plugins.module_utils._common.aws_retry import retrying_get_metric_data
from tests.support.moto import REGION, MotoServer, aws_env
from tests.support.paths import REPO_ROOT
from tests.support.playbook import run_playbook

pytestmark = pytest.mark.integration

NAMESPACE = 'Canary/Integration'
MINUTES = 10


def iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


@pytest.fixture(scope='module')
def moto():
    server = MotoServer(paginate=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def data(moto):
    """Ten minutes of data, one point a minute, put with boto3; returns the window and what each query must give."""
    client = boto3.client('cloudwatch', endpoint_url=moto.endpoint_url, region_name=REGION,
                          aws_access_key_id='testing', aws_secret_access_key='testing')
    start = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0) - datetime.timedelta(minutes=30)
    canary = {'Service': 'web', 'Arm': 'canary'}
    stable = {'Service': 'web', 'Arm': 'stable'}

    def dims(dimensions):
        return [{'Name': name, 'Value': value} for name, value in dimensions.items()]

    points = []
    for minute in range(MINUTES):
        at = start + datetime.timedelta(minutes=minute)
        points += [
            {'MetricName': 'Requests', 'Dimensions': dims(canary), 'Timestamp': at, 'Value': minute + 1.0, 'Unit': 'Count'},
            {'MetricName': 'Requests', 'Dimensions': dims(stable), 'Timestamp': at, 'Value': 10.0 * (minute + 1), 'Unit': 'Count'},
            {'MetricName': 'Latency', 'Dimensions': dims(canary), 'Timestamp': at, 'Value': float(minute), 'Unit': 'Seconds'},
            {'MetricName': 'Latency', 'Dimensions': dims(canary), 'Timestamp': at + datetime.timedelta(seconds=20),
             'Value': minute + 2.0, 'Unit': 'Seconds'},
        ]
    for offset in range(0, len(points), 20):
        client.put_metric_data(Namespace=NAMESPACE, MetricData=points[offset:offset + 20])
    return {
        'start': iso(start),
        'end': iso(start + datetime.timedelta(minutes=MINUTES)),
        'timestamps': [iso(start + datetime.timedelta(minutes=minute)) for minute in range(MINUTES)],
        'canary': [minute + 1.0 for minute in range(MINUTES)],
        'stable': [10.0 * (minute + 1) for minute in range(MINUTES)],
        'latency_avg': [minute + 1.0 for minute in range(MINUTES)],
        'latency_max': [minute + 2.0 for minute in range(MINUTES)],
        'canary_dims': canary,
        'stable_dims': stable,
    }


def query(query_id, metric_name, dimensions, stat='Sum', **extra):
    spec = {'id': query_id, 'namespace': NAMESPACE, 'metric_name': metric_name, 'dimensions': dimensions,
            'stat': stat, 'period': 60}
    spec.update(extra)
    return spec


def play(moto, tasks, extra_vars=None):
    aws_defaults = {'endpoint_url': moto.endpoint_url, 'region': REGION}
    block = {'name': 'against moto', 'module_defaults': {'group/canary.release.aws': aws_defaults}, 'block': tasks}
    return run_playbook(tasks=[block], extra_vars=extra_vars, extra_env=aws_env(), timeout=180)


def metrics_task(name, queries, start, end, ignore_errors=False, **options):
    task = {'name': name, 'canary.release.cloudwatch_metrics': dict(queries=queries, start=start, end=end, **options)}
    if ignore_errors:
        task['ignore_errors'] = True
    return task


def get_metric_data_calls(moto):
    return [request['params'] for request in moto.requests('GetMetricData')]


def test_module_and_lookup_return_what_was_put(moto, data):
    canary = query('canary', 'Requests', data['canary_dims'])
    stable = query('stable', 'Requests', data['stable_dims'], label='stable requests')
    queries = [
        canary, stable,
        query('latency_avg', 'Latency', data['canary_dims'], stat='Average'),
        query('latency_max', 'Latency', data['canary_dims'], stat='Maximum'),
        query('latency_n', 'Latency', data['canary_dims'], stat='SampleCount', unit='Seconds'),
        query('latency_as_count', 'Latency', data['canary_dims'], unit='Count'),
    ]
    window = {'start': data['start'], 'end': data['end']}
    lookup_options = "start='%s', end='%s', endpoint_url='%s', region='%s'" % (data['start'], data['end'], moto.endpoint_url, REGION)
    moto.clear()
    run = play(moto, [
        metrics_task('metric form', queries, **window),
        dict(metrics_task('check mode', [canary], **window), check_mode=True),
        metrics_task('relative window', [canary], start='-45m', end='now'),
        metrics_task('paged', [canary, stable], max_datapoints=3, **window),
        {'name': 'lookup several', 'ansible.builtin.set_fact': {
            'looked_up': "{{ query('canary.release.cloudwatch', canary_q, stable_q, %s) }}" % lookup_options}},
        {'name': 'lookup one', 'ansible.builtin.set_fact': {
            'looked_up': "{{ lookup('canary.release.cloudwatch', canary_q, %s)['datapoints'] | sum }}" % lookup_options}},
        metrics_task('invalid id', [dict(canary, id='Canary')], ignore_errors=True, **window),
        metrics_task('no metric and no expression', [{'id': 'x', 'period': 60}], ignore_errors=True, **window),
    ], extra_vars={'canary_q': canary, 'stable_q': stable})

    result = run.result('metric form')
    assert result['changed'] is False and result['calls'] == 1 and result['batches'] == 1
    assert (result['start'], result['end']) == (data['start'], data['end'])
    metrics = result['metrics']
    assert sorted(metrics) == sorted(['canary', 'stable', 'latency_avg', 'latency_max', 'latency_n', 'latency_as_count'])
    for query_id in ('canary', 'stable', 'latency_avg', 'latency_max'):
        assert metrics[query_id]['timestamps'] == data['timestamps'], query_id
        assert metrics[query_id]['datapoints'] == data[query_id if query_id.startswith('latency') else query_id], query_id
        assert metrics[query_id]['status_code'] == 'Complete'
    assert metrics['latency_n']['datapoints'] == [2.0] * MINUTES
    assert metrics['latency_as_count']['datapoints'] == []  # stored in Seconds: the unit filter excludes it
    assert metrics['stable']['label'] == 'stable requests'

    assert run.result('check mode')['metrics']['canary']['datapoints'] == data['canary']
    assert run.result('relative window')['metrics']['canary']['datapoints'] == data['canary']

    paged = run.result('paged')
    assert paged['calls'] == 7  # 20 data points, at most 3 a page
    assert paged['metrics']['canary']['datapoints'] == data['canary']
    assert paged['metrics']['stable']['datapoints'] == data['stable']
    assert paged['metrics']['canary']['timestamps'] == data['timestamps']
    assert paged['metrics']['canary']['status_code'] == 'Complete'

    several = run.result('lookup several')['ansible_facts']['looked_up']
    assert [entry['id'] for entry in several] == ['canary', 'stable']
    assert several[0]['datapoints'] == data['canary'] and several[1]['datapoints'] == data['stable']
    assert several[0]['timestamps'] == data['timestamps']
    assert float(run.result('lookup one')['ansible_facts']['looked_up']) == sum(data['canary'])

    invalid = run.result('invalid id')
    assert invalid['failed'] is True and "invalid query id 'Canary'" in invalid['msg']
    assert run.result('no metric and no expression')['failed'] is True

    calls = get_metric_data_calls(moto)
    # metric form, check mode, relative window, 7 pages, 2 lookups; the invalid queries never reach the API.
    assert len(calls) == 1 + 1 + 1 + 7 + 1 + 1
    assert [call.get('NextToken') for call in calls[3:10]] == [None, '3', '6', '9', '12', '15', '18']
    assert all(call['ScanBy'] == 'TimestampAscending' for call in calls)


def test_batches_of_500_one_call_each(moto, data):
    five_hundred = [query('m%d' % index, 'Requests', data['canary_dims']) for index in range(500)]
    five_hundred_one = five_hundred + [query('m500', 'Requests', data['stable_dims'])]
    window = {'start': data['start'], 'end': data['end']}
    moto.clear()
    run = play(moto, [
        metrics_task('500 queries', '{{ q500 }}', **window),
        metrics_task('501 queries', '{{ q501 }}', **window),
        {'name': 'lookup 501', 'ansible.builtin.set_fact': {
            'looked_up': "{{ query('canary.release.cloudwatch', q501, start='%s', end='%s', endpoint_url='%s') }}"
                         % (data['start'], data['end'], moto.endpoint_url)}},
    ], extra_vars={'q500': five_hundred, 'q501': five_hundred_one})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    assert [len(call['MetricDataQueries']) for call in get_metric_data_calls(moto)] == [500, 500, 1, 500, 1]

    first = run.result('500 queries')
    assert first['calls'] == 1 and first['batches'] == 1 and len(first['metrics']) == 500
    assert all(result['datapoints'] == data['canary'] for result in first['metrics'].values())
    second = run.result('501 queries')
    assert second['calls'] == 2 and second['batches'] == 2 and len(second['metrics']) == 501
    assert second['metrics']['m500']['datapoints'] == data['stable']
    assert all(second['metrics']['m%d' % index]['datapoints'] == data['canary'] for index in range(500))
    looked_up = run.result('lookup 501')['ansible_facts']['looked_up']
    assert len(looked_up) == 501 and looked_up[500]['datapoints'] == data['stable'] and looked_up[0]['datapoints'] == data['canary']


def test_expression_form_request_shape(moto, data):
    """moto does not evaluate metric math: check what was sent, and that expression-only inputs are not returned."""
    queries = [
        query('errors', 'Requests', data['canary_dims'], return_data=False),
        query('requests', 'Requests', data['stable_dims'], return_data=False),
        {'id': 'error_ratio', 'expression': '100 * errors / requests', 'label': 'canary vs stable', 'period': 60},
    ]
    moto.clear()
    run = play(moto, [metrics_task('expression', queries, start=data['start'], end=data['end'])])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = run.result('expression')
    assert list(result['metrics']) == ['error_ratio'] and result['calls'] == 1

    calls = get_metric_data_calls(moto)
    assert len(calls) == 1
    assert calls[0]['MetricDataQueries'] == [
        {'Id': 'errors', 'ReturnData': False, 'MetricStat': {
            'Metric': {'Namespace': NAMESPACE, 'MetricName': 'Requests',
                       'Dimensions': [{'Name': 'Service', 'Value': 'web'}, {'Name': 'Arm', 'Value': 'canary'}]},
            'Period': 60, 'Stat': 'Sum'}},
        {'Id': 'requests', 'ReturnData': False, 'MetricStat': {
            'Metric': {'Namespace': NAMESPACE, 'MetricName': 'Requests',
                       'Dimensions': [{'Name': 'Service', 'Value': 'web'}, {'Name': 'Arm', 'Value': 'stable'}]},
            'Period': 60, 'Stat': 'Sum'}},
        {'Id': 'error_ratio', 'Expression': '100 * errors / requests', 'Label': 'canary vs stable', 'Period': 60},
    ]
    assert result['metric_data_queries'] == calls[0]['MetricDataQueries']
    assert datetime.datetime.fromtimestamp(calls[0]['StartTime'], datetime.timezone.utc) == \
        datetime.datetime.strptime(data['start'], '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)


def test_one_botocore_call_per_poll_in_process(moto, data):
    """The core with the module's retry wrapper and a real boto3 client: botocore's own event hook counts calls."""
    client = boto3.client('cloudwatch', endpoint_url=moto.endpoint_url, region_name=REGION,
                          aws_access_key_id='testing', aws_secret_access_key='testing')
    seen = []
    client.meta.events.register('before-parameter-build.cloudwatch.GetMetricData',
                                lambda params, **kwargs: seen.append(len(params['MetricDataQueries'])))
    queries = [query('q%d' % index, 'Requests', data['canary_dims'] if index % 2 else data['stable_dims'])
               for index in range(499)] + [{'id': 'total', 'expression': 'q1 + q2'}]
    result = get_metric_data(retrying_get_metric_data(client), queries, start=data['start'], end=data['end'])
    assert seen == [500] and result['calls'] == 1
    assert result['metrics']['q1']['datapoints'] == data['canary'] and result['metrics']['q2']['datapoints'] == data['stable']
    seen.clear()
    get_metric_data(retrying_get_metric_data(client), queries + [query('extra', 'Requests', data['canary_dims'])],
                    start=data['start'], end=data['end'])
    assert seen == [500, 1]


def plugin_examples(plugin_path):
    """The tasks in a plugin's EXAMPLES (read with ast, without importing the plugin)."""
    with open(plugin_path, encoding='utf-8') as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [target.id for target in node.targets] == ['EXAMPLES']:
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError('no EXAMPLES in %s' % plugin_path)


def test_the_examples_run_as_written(moto):
    """Every EXAMPLES task of the module and the lookup runs unchanged; AWS_URL points them at moto (no data
    there for their load balancers, so the sums are 0 and the assert passes)."""
    tasks = [task for name in ('modules/cloudwatch_metrics.py', 'lookup/cloudwatch.py')
             for task in plugin_examples(os.path.join(REPO_ROOT, 'plugins', name))]
    assert len(tasks) == 6
    moto.clear()
    run = run_playbook(tasks=tasks, extra_env=dict(aws_env(), AWS_URL=moto.endpoint_url), timeout=180)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
    assert len(run.tasks) == 6 and all(not task['result'].get('failed') for task in run.tasks)
    # one call per module task and per lookup (the second lookup example sends three queries in one call)
    assert [len(call['MetricDataQueries']) for call in get_metric_data_calls(moto)] == [3, 3, 1, 3, 1]
