"""GetMetricData request building, id validation, batching, pagination and merging.

The client here is a small in-process stand-in for the API (it enforces the 500-query limit, requires every id an
expression uses to be in the same call, and pages with NextToken the way CloudWatch does). The real request
path through botocore and a moto server is covered by tests/integration/test_cloudwatch_metrics.py.
"""

import datetime
import random

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.canary.release.plugins.module_utils._sources.cloudwatch_metric_data import (
    MAX_QUERIES_PER_CALL,
    CloudWatchQueryError,
    build_metric_data_queries,
    build_metric_data_query,
    expression_references,
    get_metric_data,
    plan_batches,
    resolve_range,
    validate_query_id,
)

UTC = datetime.timezone.utc
NOW = 1714564800.0  # 2024-05-01T12:00:00Z


def metric(query_id, value_key='m', **extra):
    query = {'id': query_id, 'namespace': 'Canary/Test', 'metric_name': 'Requests',
             'dimensions': {'Arm': value_key}, 'stat': 'Sum', 'period': 60}
    query.update(extra)
    return query


class FakeCloudWatch:
    """GetMetricData semantics that matter here: limits, expression scope, NextToken paging."""

    def __init__(self, points, page_size=None, reverse_pages=False):
        self.points = points  # {dimension Arm value: [(unix seconds, value)]}
        self.page_size = page_size
        self.reverse_pages = reverse_pages
        self.calls = []

    def get_metric_data(self, **params):
        self.calls.append(params)
        queries = params['MetricDataQueries']
        if len(queries) > MAX_QUERIES_PER_CALL:
            raise ValueError('ValidationError: The collection MetricDataQueries must not have a size greater than 500.')
        ids = set(query['Id'] for query in queries)
        assert len(ids) == len(queries)
        start = params['StartTime'].timestamp()
        end = params['EndTime'].timestamp()
        rows = []
        for query in queries:
            if 'Expression' in query:
                missing = expression_references(query['Expression'], set(word for word in query['Expression'].split())) - ids
                if missing:
                    raise ValueError('ValidationError: Error in expression %s: Unrecognized metrics %s'
                                     % (query['Id'], sorted(missing)))
                continue
            arm = query['MetricStat']['Metric']['Dimensions'][0]['Value']
            for stamp, value in self.points.get(arm, []):
                if start <= stamp < end and query.get('ReturnData', True):
                    rows.append((query['Id'], stamp, value))
        rows.sort(key=lambda row: row[1])
        offset = int(params.get('NextToken') or 0)
        size = self.page_size or len(rows) or 1
        page = rows[offset:offset + size]
        more = offset + size < len(rows)
        if self.reverse_pages:
            page = list(reversed(page))
        results = []
        for query in queries:
            if not query.get('ReturnData', True):
                continue
            mine = [row for row in page if row[0] == query['Id']]
            results.append({'Id': query['Id'], 'Label': query.get('Label', query['Id']),
                            'Timestamps': [datetime.datetime.fromtimestamp(row[1], UTC) for row in mine],
                            'Values': [row[2] for row in mine],
                            'StatusCode': 'PartialData' if more else 'Complete'})
        response = {'MetricDataResults': results, 'Messages': []}
        if more:
            response['NextToken'] = str(offset + size)
        return response


# -- ids and request building ------------------------------------------------------------------------------------

@pytest.mark.parametrize('good', ['a', 'errors', 'errors_canary', 'm1', 'aB9_', 'x' * 255])
def test_valid_ids(good):
    assert validate_query_id(good) == good


@pytest.mark.parametrize('bad', ['', 'Errors', '1m', '_x', 'err-ors', 'err ors', 'é', 'x' * 256, None, 5])
def test_invalid_ids(bad):
    with pytest.raises(CloudWatchQueryError, match='starts with a lowercase letter'):
        validate_query_id(bad)


def test_metric_form():
    api = build_metric_data_query({'id': 'errors', 'namespace': 'AWS/ApplicationELB', 'metric_name': 'HTTPCode_Target_5XX_Count',
                                   'dimensions': {'LoadBalancer': 'app/web/1', 'TargetGroup': 'targetgroup/c/2'},
                                   'stat': 'Sum', 'period': 60, 'unit': 'Count', 'label': '5xx', 'return_data': True,
                                   'account_id': '123456789012'})
    assert api == {
        'Id': 'errors',
        'MetricStat': {
            'Metric': {'Namespace': 'AWS/ApplicationELB', 'MetricName': 'HTTPCode_Target_5XX_Count',
                       'Dimensions': [{'Name': 'LoadBalancer', 'Value': 'app/web/1'},
                                      {'Name': 'TargetGroup', 'Value': 'targetgroup/c/2'}]},
            'Period': 60, 'Stat': 'Sum', 'Unit': 'Count'},
        'Label': '5xx', 'ReturnData': True, 'AccountId': '123456789012',
    }


def test_expression_form_and_none_values_are_ignored():
    api = build_metric_data_query({'id': 'ratio', 'expression': 'errors / requests', 'period': 300,
                                   'namespace': None, 'metric_name': None, 'return_data': None})
    assert api == {'Id': 'ratio', 'Expression': 'errors / requests', 'Period': 300}


def test_dimension_values_become_strings_and_no_dimensions_is_fine():
    api = build_metric_data_query({'id': 'a', 'namespace': 'N', 'metric_name': 'M', 'dimensions': {'Port': 8080},
                                   'stat': 'p99', 'period': '120'})
    assert api['MetricStat']['Metric']['Dimensions'] == [{'Name': 'Port', 'Value': '8080'}]
    assert api['MetricStat']['Period'] == 120
    plain = build_metric_data_query({'id': 'a', 'namespace': 'N', 'metric_name': 'M', 'stat': 'Sum', 'period': 1})
    assert 'Dimensions' not in plain['MetricStat']['Metric']


@pytest.mark.parametrize('query, message', [
    ({'id': 'a', 'expression': 'b', 'metric_name': 'M'}, 'either expression or the metric keys'),
    ({'id': 'a', 'namespace': 'N', 'metric_name': 'M', 'stat': 'Sum'}, 'missing period'),
    ({'id': 'a', 'metric_name': 'M', 'stat': 'Sum', 'period': 60}, 'missing namespace'),
    ({'id': 'a', 'namespace': 'N', 'metric_name': 'M', 'stat': 'Sum', 'period': 45}, 'period 45 is not allowed'),
    ({'id': 'a', 'namespace': 'N', 'metric_name': 'M', 'stat': 'Sum', 'period': 61.5}, 'whole number'),
    ({'id': 'a', 'namespace': 'N', 'metric_name': 'M', 'stat': 'Sum', 'period': True}, 'whole number'),
    ({'id': 'a', 'namespace': 'N', 'metric_name': 'M', 'stat': 'Sum', 'period': 60, 'unit': 'Requests'}, 'unknown unit'),
    ({'id': 'a', 'namespace': 'N', 'metric_name': 'M', 'stat': 'Sum', 'period': 60, 'dimensions': ['x']}, 'must be a dict'),
    ({'id': 'a', 'namespace': 'N', 'metric_name': 'M', 'stat': 'Sum', 'period': 60, 'dimensions': {'x': None}}, 'needs a string'),
    ({'id': 'a', 'namespace': 'N', 'metric_name': 'M', 'stat': 'Sum', 'period': 60, 'return_data': 'yes'}, 'true or false'),
    ({'id': 'a', 'namespace': 'N', 'metric_name': 'M', 'stat': 'Sum', 'period': 60, 'metricname': 'x'}, 'unknown keys metricname'),
    ({'id': 'a', 'expression': '  '}, 'non-empty string'),
    ({'id': 'Bad', 'expression': 'x'}, 'invalid query id'),
    ('errors', 'must be a dict'),
])
def test_invalid_queries(query, message):
    with pytest.raises(CloudWatchQueryError, match=message):
        build_metric_data_query(query, default_id='q0')


def test_ids_default_to_q_index_and_must_be_unique():
    api = build_metric_data_queries([metric(None), metric('x'), {'expression': 'q0 + x'}])
    assert [query['Id'] for query in api] == ['q0', 'x', 'q2']
    with pytest.raises(CloudWatchQueryError, match="'x' is used more than once"):
        build_metric_data_queries([metric('x'), metric('x')])
    with pytest.raises(CloudWatchQueryError, match='non-empty list'):
        build_metric_data_queries([])


def test_expression_references_ignore_strings_and_functions():
    ids = {'errors', 'requests', 'm1', 'cpu'}
    assert expression_references('100 * errors / requests', ids) == {'errors', 'requests'}
    assert expression_references('FILL(m1, 0) + errors_total', ids) == {'m1'}
    assert expression_references("SEARCH('{AWS/EC2,InstanceId} MetricName=\"cpu\"', 'Average', 300)", ids) == set()
    assert expression_references('SUM(METRICS())', ids) == ids


# -- time range --------------------------------------------------------------------------------------------------

def test_relative_range_shares_now_and_must_be_ordered():
    assert resolve_range('-15m', 'now', now=NOW) == (NOW - 900, NOW)
    assert resolve_range('2024-05-01T11:00:00Z', '-30m', now=NOW) == (NOW - 3600, NOW - 1800)
    with pytest.raises(CloudWatchQueryError, match='must be after start'):
        resolve_range('now', '-1h', now=NOW)
    with pytest.raises(CloudWatchQueryError, match='invalid'):
        resolve_range('last week', 'now', now=NOW)


# -- batching ----------------------------------------------------------------------------------------------------

def test_500_queries_are_one_batch_and_501_are_two():
    queries = build_metric_data_queries([metric('m%d' % index) for index in range(501)])
    assert [len(batch) for batch in plan_batches(queries[:500])] == [500]
    assert [len(batch) for batch in plan_batches(queries)] == [500, 1]


def test_expressions_stay_with_what_they_reference():
    queries = [metric('m%d' % index) for index in range(499)]
    queries += [metric('errors'), metric('requests'), {'id': 'ratio', 'expression': 'errors / requests'}]
    batches = plan_batches(build_metric_data_queries(queries))
    assert [len(batch) for batch in batches] == [499, 3]
    assert [query['Id'] for query in batches[1]] == ['errors', 'requests', 'ratio']


def test_metrics_function_needs_everything_in_one_call():
    queries = [metric('m%d' % index) for index in range(500)] + [{'id': 'total', 'expression': 'SUM(METRICS())'}]
    with pytest.raises(CloudWatchQueryError, match="'total'.*501 queries, more than the 500"):
        plan_batches(build_metric_data_queries(queries))


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=1300), st.integers(min_value=0, max_value=40), st.randoms(use_true_random=False))
def test_batches_are_complete_ordered_bounded_and_closed(count, expressions, rng):
    queries = [metric('m%d' % index) for index in range(count)]
    for index in range(expressions):
        used = rng.sample(range(count), min(count, rng.randint(1, 5)))
        queries.append({'id': 'e%d' % index, 'expression': ' + '.join('m%d' % other for other in used)})
    api = build_metric_data_queries(queries)
    batches = plan_batches(api, max_per_call=500)
    flat = [query['Id'] for batch in batches for query in batch]
    assert sorted(flat) == sorted(query['Id'] for query in api)
    assert all(1 <= len(batch) <= 500 for batch in batches)
    position = dict((query['Id'], index) for index, query in enumerate(api))
    for batch in batches:
        ids = set(query['Id'] for query in batch)
        assert [position[query['Id']] for query in batch] == sorted(position[query['Id']] for query in batch)
        for query in batch:
            if 'Expression' in query:
                assert expression_references(query['Expression'], position) <= ids
    lower_bound = -(-len(api) // 500)
    assert len(batches) <= lower_bound + expressions  # first-fit never wastes more than one batch per group


# -- calls, pagination, merging ----------------------------------------------------------------------------------

def minute_points(count, start=NOW - 3600, first_value=1.0):
    return [(start + 60 * index, first_value + index) for index in range(count)]


def test_one_call_for_up_to_500_queries_without_paging():
    fake = FakeCloudWatch({'m': minute_points(10)})
    data = get_metric_data(fake, [metric('m%d' % index) for index in range(500)], start='-1h', end='now', now=NOW)
    assert data['calls'] == len(fake.calls) == 1 and data['batches'] == 1
    assert len(data['metrics']) == 500
    assert data['metrics']['m499']['datapoints'] == [float(value) for value in range(1, 11)]


def test_501_queries_cost_two_calls():
    fake = FakeCloudWatch({'m': minute_points(3)})
    data = get_metric_data(fake, [metric('m%d' % index) for index in range(501)], start='-1h', end='now', now=NOW)
    assert [len(call['MetricDataQueries']) for call in fake.calls] == [500, 1]
    assert data['calls'] == 2 and list(data['metrics'])[-1] == 'm500'


def test_request_parameters():
    fake = FakeCloudWatch({})
    data = get_metric_data(fake, [metric('a'), {'id': 'b', 'expression': 'a * 2'}], start='-15m', end='-5m', now=NOW,
                           max_datapoints=1000)
    call = fake.calls[0]
    assert call['StartTime'] == datetime.datetime(2024, 5, 1, 11, 45, tzinfo=UTC)
    assert call['EndTime'] == datetime.datetime(2024, 5, 1, 11, 55, tzinfo=UTC)
    assert call['ScanBy'] == 'TimestampAscending' and call['MaxDatapoints'] == 1000 and 'NextToken' not in call
    assert call['MetricDataQueries'] == data['metric_data_queries']
    assert (data['start'], data['end']) == ('2024-05-01T11:45:00Z', '2024-05-01T11:55:00Z')


def test_pages_are_followed_and_merged_per_id_ascending():
    fake = FakeCloudWatch({'a': minute_points(7), 'b': minute_points(5, first_value=100.0)}, page_size=3,
                          reverse_pages=True)
    data = get_metric_data(fake, [metric('ida', 'a'), metric('idb', 'b')], start='-1h', end='now', now=NOW)
    assert data['calls'] == len(fake.calls) == 4
    assert [call.get('NextToken') for call in fake.calls] == [None, '3', '6', '9']
    assert data['metrics']['ida']['datapoints'] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert data['metrics']['idb']['datapoints'] == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert data['metrics']['ida']['timestamps'][:2] == ['2024-05-01T11:00:00Z', '2024-05-01T11:01:00Z']
    assert data['metrics']['ida']['status_code'] == 'Complete'


def test_return_data_false_is_left_out_and_results_keep_query_order():
    fake = FakeCloudWatch({'a': minute_points(2), 'b': minute_points(2)})
    data = get_metric_data(fake, [metric('zeta', 'a'), metric('alpha', 'b', return_data=False), metric('mid', 'a')],
                           now=NOW)
    assert list(data['metrics']) == ['zeta', 'mid']


class ScriptedCloudWatch:
    def __init__(self, responses):
        self.responses = list(responses)
        self.calls = 0

    def __call__(self, **params):
        self.calls += 1
        return self.responses.pop(0)


def test_status_codes_and_messages():
    stamp = datetime.datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
    pages = [
        {'MetricDataResults': [{'Id': 'a', 'Label': 'A', 'Timestamps': [stamp], 'Values': [1.0], 'StatusCode': 'InternalError',
                                'Messages': [{'Code': 'InternalError', 'Value': 'try again'}]}],
         'Messages': [{'Code': 'Warning', 'Value': 'partial'}], 'NextToken': 't1'},
        {'MetricDataResults': [{'Id': 'a', 'Label': 'A', 'Timestamps': [], 'Values': [], 'StatusCode': 'Complete'}],
         'Messages': [{'Code': 'Warning', 'Value': 'partial'}]},
    ]
    call = ScriptedCloudWatch(pages)
    data = get_metric_data(call, [metric('a')], now=NOW)
    assert call.calls == 2
    assert data['metrics']['a']['status_code'] == 'InternalError'  # an error on any page is not hidden
    assert data['metrics']['a']['messages'] == [{'code': 'InternalError', 'value': 'try again'}]
    assert data['messages'] == [{'code': 'Warning', 'value': 'partial'}]


def test_repeated_next_token_stops():
    page = {'MetricDataResults': [], 'NextToken': 'same'}
    with pytest.raises(CloudWatchQueryError, match='same NextToken twice'):
        get_metric_data(ScriptedCloudWatch([page, page, page]), [metric('a')], now=NOW)


def test_page_limit_stops():
    pages = [{'MetricDataResults': [], 'NextToken': 't%d' % index} for index in range(5)]
    with pytest.raises(CloudWatchQueryError, match='more pages after 3 calls'):
        get_metric_data(ScriptedCloudWatch(pages), [metric('a')], now=NOW, max_pages=3)


def test_mismatched_timestamps_and_values_are_reported():
    page = {'MetricDataResults': [{'Id': 'a', 'Timestamps': [NOW], 'Values': [], 'StatusCode': 'Complete'}]}
    with pytest.raises(CloudWatchQueryError, match='1 timestamps but 0 values'):
        get_metric_data(ScriptedCloudWatch([page]), [metric('a')], now=NOW)


@pytest.mark.parametrize('bad', [0, -1, True, '10'])
def test_max_datapoints_must_be_positive(bad):
    with pytest.raises(CloudWatchQueryError, match='max_datapoints'):
        get_metric_data(ScriptedCloudWatch([]), [metric('a')], now=NOW, max_datapoints=bad)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=60), st.integers(min_value=1, max_value=25), st.integers(min_value=0, max_value=2 ** 32))
def test_paging_never_changes_the_merged_result(points, page_size, seed):
    rng = random.Random(seed)
    data = {'a': [(NOW - 3600 + 60 * index, rng.uniform(-5, 5)) for index in range(points)],
            'b': [(NOW - 3600 + 60 * index, rng.uniform(0, 100)) for index in rng.sample(range(60), rng.randint(0, 60))]}
    queries = [metric('ida', 'a'), metric('idb', 'b')]
    whole = get_metric_data(FakeCloudWatch(data), queries, now=NOW)
    paged = get_metric_data(FakeCloudWatch(data, page_size=page_size, reverse_pages=True), queries, now=NOW)
    assert paged['metrics'] == whole['metrics']
    assert whole['calls'] == 1
    for result in whole['metrics'].values():
        assert result['timestamps'] == sorted(result['timestamps'])


def test_expression_spanning_the_500_boundary_is_sent_with_its_inputs():
    queries = [metric('m%d' % index) for index in range(600)] + [{'id': 'spread', 'expression': 'm0 + m599'}]
    fake = FakeCloudWatch({'m': minute_points(2)})
    data = get_metric_data(fake, queries, now=NOW)  # the fake rejects an expression whose inputs are elsewhere
    assert data['calls'] == 2 and [len(call['MetricDataQueries']) for call in fake.calls] == [500, 101]
    first = [query['Id'] for query in fake.calls[0]['MetricDataQueries']]
    assert first[0] == 'm0' and first[-2:] == ['m599', 'spread']
    assert list(data['metrics'])[:3] == ['m0', 'm1', 'm2'] and len(data['metrics']) == 601
