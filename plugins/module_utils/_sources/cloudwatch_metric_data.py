# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""CloudWatch GetMetricData: request building, batching, pagination and merging, plain Python.

Used by the ``canary.release.cloudwatch_metrics`` module, the ``canary.release.cloudwatch`` lookup and the canary
judge. The caller passes the AWS client (or any callable taking GetMetricData's keyword arguments), so retries,
credentials and endpoints stay with the caller; this file needs neither boto3 nor AnsibleModule.

A query is a dict in one of two forms (``id``, ``label``, ``return_data``, ``account_id`` in both)::

    {'id': 'errors', 'namespace': 'AWS/ApplicationELB', 'metric_name': 'HTTPCode_Target_5XX_Count',
     'dimensions': {'TargetGroup': 'targetgroup/canary/0123456789abcdef'}, 'stat': 'Sum', 'period': 60,
     'unit': 'Count'}                                                     # metric form
    {'id': 'error_ratio', 'expression': 'errors / requests', 'period': 60}  # expression form

Ids follow CloudWatch's rules (first character a lowercase letter, then letters, digits and underscores, at most
255 characters, unique); a query without ``id`` gets ``q<index>``. The API takes at most 500 queries per call:
more are split into batches, keeping every expression in the same call as the ids it references
(``METRICS()`` references all of them). Each batch follows ``NextToken`` until the end; results are merged per
id with timestamps ascending. Up to 500 queries whose data fits in one page cost exactly one call.
"""

import re

from ansible_collections.canary.release.plugins.module_utils.time_spec import (
    TimeSpecError,
    format_rfc3339,
    parse_time,
    to_datetime,
)

MAX_QUERIES_PER_CALL = 500
MAX_ID_LENGTH = 255
MAX_DIMENSIONS = 30
MAX_PAGES = 1000
HIGH_RESOLUTION_PERIODS = (1, 5, 10, 20, 30)
ERROR_STATUS_CODES = ('InternalError', 'Forbidden')

METRIC_KEYS = ('namespace', 'metric_name', 'dimensions', 'stat', 'unit')
COMMON_KEYS = ('id', 'label', 'return_data', 'period', 'account_id')
EXPRESSION_KEYS = ('expression',)
QUERY_KEYS = COMMON_KEYS + METRIC_KEYS + EXPRESSION_KEYS

UNITS = ('Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes',
         'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second',
         'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second',
         'Kilobits/Second', 'Megabits/Second', 'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None')

ID_PATTERN = re.compile(r'^[a-z][a-zA-Z0-9_]*$')
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_WORD = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
_ALL_METRICS = re.compile(r'\bMETRICS\s*\(')


class CloudWatchQueryError(ValueError):
    """An invalid query list, time range or paging answer (nothing was sent, or paging went wrong)."""


def validate_query_id(query_id):
    """Return ``query_id`` if it is a valid GetMetricData id, else raise :class:`CloudWatchQueryError`."""
    if not isinstance(query_id, str) or not ID_PATTERN.match(query_id) or len(query_id) > MAX_ID_LENGTH:
        raise CloudWatchQueryError(
            'invalid query id %r: an id starts with a lowercase letter and has only letters, digits and '
            'underscores (at most %d characters), for example errors_canary' % (query_id, MAX_ID_LENGTH))
    return query_id


def _validate_period(period, where):
    seconds = period
    if isinstance(seconds, float) and seconds.is_integer():
        seconds = int(seconds)
    elif isinstance(seconds, str) and seconds.strip().isdigit():
        seconds = int(seconds.strip())
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise CloudWatchQueryError('%s: period must be a whole number of seconds, got %r' % (where, period))
    if seconds not in HIGH_RESOLUTION_PERIODS and (seconds < 60 or seconds % 60):
        raise CloudWatchQueryError('%s: period %r is not allowed: use 1, 5, 10, 20, 30 (high-resolution metrics) '
                                   'or a multiple of 60' % (where, period))
    return seconds


def build_metric_data_query(query, default_id=None):
    """One GetMetricData ``MetricDataQuery`` from a query in metric or expression form."""
    if not isinstance(query, dict):
        raise CloudWatchQueryError('a query must be a dict, got %r' % (query,))
    present = dict((key, value) for key, value in query.items() if value is not None)
    unknown = sorted(set(present) - set(QUERY_KEYS))
    query_id = present.get('id', default_id)
    where = 'query %r' % (query_id,) if query_id is not None else 'query %r' % (query,)
    if unknown:
        raise CloudWatchQueryError('%s: unknown keys %s (known: %s)' % (where, ', '.join(unknown), ', '.join(QUERY_KEYS)))
    validate_query_id(query_id)
    api = {'Id': query_id}
    has_expression = 'expression' in present
    metric_keys = [key for key in METRIC_KEYS if key in present]
    if has_expression and metric_keys:
        raise CloudWatchQueryError('%s: give either expression or the metric keys (%s), not both; found %s'
                                   % (where, ', '.join(METRIC_KEYS), ', '.join(metric_keys)))
    if has_expression:
        expression = present['expression']
        if not isinstance(expression, str) or not expression.strip():
            raise CloudWatchQueryError('%s: expression must be a non-empty string' % where)
        api['Expression'] = expression
        if 'period' in present:
            api['Period'] = _validate_period(present['period'], where)
    else:
        missing = [key for key in ('namespace', 'metric_name', 'stat', 'period') if key not in present]
        if missing:
            raise CloudWatchQueryError('%s: the metric form needs namespace, metric_name, stat and period; missing %s'
                                       % (where, ', '.join(missing)))
        metric = {'Namespace': str(present['namespace']), 'MetricName': str(present['metric_name'])}
        dimensions = present.get('dimensions') or {}
        if not isinstance(dimensions, dict):
            raise CloudWatchQueryError('%s: dimensions must be a dict of name: value, got %r' % (where, dimensions))
        if len(dimensions) > MAX_DIMENSIONS:
            raise CloudWatchQueryError('%s: at most %d dimensions, got %d' % (where, MAX_DIMENSIONS, len(dimensions)))
        if dimensions:
            for name, value in dimensions.items():
                if value is None or isinstance(value, (dict, list)):
                    raise CloudWatchQueryError('%s: dimension %r needs a string value, got %r' % (where, name, value))
            metric['Dimensions'] = [{'Name': str(name), 'Value': str(value)} for name, value in dimensions.items()]
        stat = {'Metric': metric, 'Period': _validate_period(present['period'], where), 'Stat': str(present['stat'])}
        if 'unit' in present:
            if present['unit'] not in UNITS:
                raise CloudWatchQueryError('%s: unknown unit %r (known: %s)' % (where, present['unit'], ', '.join(UNITS)))
            stat['Unit'] = present['unit']
        api['MetricStat'] = stat
    if 'label' in present:
        api['Label'] = str(present['label'])
    if 'return_data' in present:
        if not isinstance(present['return_data'], bool):
            raise CloudWatchQueryError('%s: return_data must be true or false, got %r' % (where, present['return_data']))
        api['ReturnData'] = present['return_data']
    if 'account_id' in present:
        api['AccountId'] = str(present['account_id'])
    return api


def build_metric_data_queries(queries):
    """Validate ``queries`` and return the list of ``MetricDataQuery`` dicts (ids unique, ``q<i>`` by default)."""
    if not isinstance(queries, (list, tuple)) or not queries:
        raise CloudWatchQueryError('queries must be a non-empty list')
    api_queries = [build_metric_data_query(query, default_id='q%d' % index) for index, query in enumerate(queries)]
    seen = set()
    for api in api_queries:
        if api['Id'] in seen:
            raise CloudWatchQueryError('query id %r is used more than once; ids must be unique' % api['Id'])
        seen.add(api['Id'])
    return api_queries


def expression_references(expression, ids):
    """The ids among ``ids`` that ``expression`` refers to (``METRICS()`` refers to all of them)."""
    if _ALL_METRICS.search(expression):
        return set(ids)
    words = set(_WORD.findall(_QUOTED.sub(' ', expression)))
    return words & set(ids)


def plan_batches(api_queries, max_per_call=MAX_QUERIES_PER_CALL):
    """Split ``api_queries`` into lists of at most ``max_per_call``, keeping expressions with what they reference.

    Queries keep their relative order; connected groups (an expression and the ids it uses, transitively) are
    packed first-fit in the order of their first query.
    """
    ids = [api['Id'] for api in api_queries]
    parent = dict((query_id, query_id) for query_id in ids)

    def find(query_id):
        while parent[query_id] != query_id:
            parent[query_id] = parent[parent[query_id]]
            query_id = parent[query_id]
        return query_id

    for api in api_queries:
        if 'Expression' in api:
            for other in expression_references(api['Expression'], ids):
                parent[find(other)] = find(api['Id'])

    groups = {}
    order = []
    for index, query_id in enumerate(ids):
        root = find(query_id)
        if root not in groups:
            groups[root] = []
            order.append(root)
        groups[root].append(index)

    batches = []
    for root in order:
        members = groups[root]
        if len(members) > max_per_call:
            raise CloudWatchQueryError(
                'the expression(s) %s and the queries they use are %d queries, more than the %d one GetMetricData '
                'call takes' % (', '.join(repr(ids[i]) for i in members if 'Expression' in api_queries[i]),
                                len(members), max_per_call))
        for batch in batches:
            if len(batch) + len(members) <= max_per_call:
                batch.extend(members)
                break
        else:
            batches.append(list(members))
    return [[api_queries[index] for index in sorted(batch)] for batch in batches]


def _timestamp(value):
    return parse_time(value)


def _messages(raw):
    return [{'code': message.get('Code'), 'value': message.get('Value')} for message in raw or []]


class _Merged:
    def __init__(self, query_id):
        self.query_id = query_id
        self.label = None
        self.status_code = None
        self.error_status = None
        self.points = []
        self.messages = []

    def add(self, result):
        if result.get('Label') is not None:
            self.label = result['Label']
        status = result.get('StatusCode')
        if status in ERROR_STATUS_CODES and self.error_status is None:
            self.error_status = status
        if status is not None:
            self.status_code = status
        timestamps = result.get('Timestamps') or []
        values = result.get('Values') or []
        if len(timestamps) != len(values):
            raise CloudWatchQueryError('GetMetricData returned %d timestamps but %d values for id %r'
                                       % (len(timestamps), len(values), self.query_id))
        self.points.extend((_timestamp(stamp), float(value)) for stamp, value in zip(timestamps, values))
        for message in _messages(result.get('Messages')):
            if message not in self.messages:
                self.messages.append(message)

    def as_dict(self):
        points = sorted(self.points, key=lambda point: point[0])
        return {
            'id': self.query_id,
            'label': self.label,
            'status_code': self.error_status or self.status_code,
            'timestamps': [format_rfc3339(stamp) for stamp, _value in points],
            'datapoints': [value for _stamp, value in points],
            'messages': self.messages,
        }


def resolve_range(start, end, now=None):
    """(start, end) as unix seconds; relative forms count from the same ``now``; end must be after start."""
    if now is None:
        now = parse_time('now')
    try:
        start_ts = parse_time(start, now=now)
        end_ts = parse_time(end, now=now)
    except TimeSpecError as error:
        raise CloudWatchQueryError(str(error))
    if end_ts <= start_ts:
        raise CloudWatchQueryError('end (%s) must be after start (%s)' % (format_rfc3339(end_ts), format_rfc3339(start_ts)))
    return start_ts, end_ts


def get_metric_data(client, queries, start='-1h', end='now', max_datapoints=None, now=None,
                    max_per_call=MAX_QUERIES_PER_CALL, max_pages=MAX_PAGES):
    """Run ``queries`` through GetMetricData and return the merged results.

    ``client`` is a boto3 CloudWatch client, or any callable that takes GetMetricData's keyword arguments and
    returns its response (wrap it for retries). Returns::

        {'metrics': {id: {'id', 'label', 'status_code', 'timestamps' (RFC 3339, ascending), 'datapoints' (floats),
                          'messages': [{'code', 'value'}]}},   # in query order, ids with return_data false left out
         'messages': [{'code', 'value'}],   # request-level messages of all calls
         'calls': int, 'batches': int, 'start': RFC 3339, 'end': RFC 3339,
         'metric_data_queries': [...]}      # what was sent, in query order
    """
    call = client.get_metric_data if hasattr(client, 'get_metric_data') else client
    start_ts, end_ts = resolve_range(start, end, now=now)
    api_queries = build_metric_data_queries(queries)
    valid_datapoints = isinstance(max_datapoints, int) and not isinstance(max_datapoints, bool) and max_datapoints >= 1
    if max_datapoints is not None and not valid_datapoints:
        raise CloudWatchQueryError('max_datapoints must be a positive integer, got %r' % (max_datapoints,))
    batches = plan_batches(api_queries, max_per_call=max_per_call)

    merged = {}
    messages = []
    calls = 0
    for batch in batches:
        token = None
        seen_tokens = set()
        pages = 0
        while True:
            params = {
                'MetricDataQueries': batch,
                'StartTime': to_datetime(start_ts),
                'EndTime': to_datetime(end_ts),
                'ScanBy': 'TimestampAscending',
            }
            if max_datapoints is not None:
                params['MaxDatapoints'] = max_datapoints
            if token is not None:
                params['NextToken'] = token
            response = call(**params)
            calls += 1
            pages += 1
            for result in response.get('MetricDataResults') or []:
                query_id = result.get('Id')
                if query_id not in merged:
                    merged[query_id] = _Merged(query_id)
                merged[query_id].add(result)
            for message in _messages(response.get('Messages')):
                if message not in messages:
                    messages.append(message)
            token = response.get('NextToken')
            if not token:
                break
            if token in seen_tokens:
                raise CloudWatchQueryError('GetMetricData returned the same NextToken twice; stopping to avoid a loop')
            if pages >= max_pages:
                raise CloudWatchQueryError('GetMetricData still had more pages after %d calls for one batch; narrow '
                                           'the time range or raise the period' % max_pages)
            seen_tokens.add(token)

    order = [api['Id'] for api in api_queries]
    metrics = {}
    for query_id in order + sorted(set(merged) - set(order), key=str):
        if query_id in merged:
            metrics[query_id] = merged[query_id].as_dict()
    return {
        'metrics': metrics,
        'messages': messages,
        'calls': calls,
        'batches': len(batches),
        'start': format_rfc3339(start_ts),
        'end': format_rfc3339(end_ts),
        'metric_data_queries': api_queries,
    }
