"""The Prometheus client without a Prometheus: answer parsing, request building, error mapping, transport errors.

Server behaviour (real answers, auth, TLS) is covered by tests/integration/test_prometheus_query.py against the
real prometheus binary. Here the transport errors use real sockets on 127.0.0.1 (a closed port, a listener that
never answers, a plain HTTP "proxy" answering 502), not mocks.
"""

import json
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, strategies as st

from ansible_collections.canary.release.plugins.module_utils._common.json_safe import json_safe, nonfinite_to_string
from ansible_collections.canary.release.plugins.module_utils._sources.prometheus_api import (
    MAX_GET_URL_LENGTH,
    QUERY_PATH,
    QUERY_RANGE_PATH,
    PrometheusClient,
    PrometheusError,
    client_from_options,
    decode_answer,
    lookup_value,
    mask_url,
    parse_response,
)

URL = 'http://127.0.0.1:9'


def success(result_type, result, **extra):
    payload = {'status': 'success', 'data': {'resultType': result_type, 'result': result}}
    payload.update(extra)
    return payload


# -- parsing -----------------------------------------------------------------------------------------------------

def test_instant_vector():
    parsed = parse_response(success('vector', [
        {'metric': {'__name__': 'up', 'job': 'web'}, 'value': [1714564800.123, '1']},
        {'metric': {'__name__': 'up', 'job': 'db'}, 'value': [1714564800.123, '0']},
    ]))
    assert parsed == {
        'result_type': 'vector',
        'series': [
            {'labels': {'__name__': 'up', 'job': 'web'}, 'timestamp': 1714564800.123, 'value': 1.0},
            {'labels': {'__name__': 'up', 'job': 'db'}, 'timestamp': 1714564800.123, 'value': 0.0},
        ],
        'warnings': [],
        'infos': [],
    }


def test_range_matrix_keeps_sample_order():
    parsed = parse_response(success('matrix', [
        {'metric': {'job': 'web'}, 'values': [[10, '1'], [11, '2.5'], [12, '1e+06']]},
    ]))
    assert parsed['result_type'] == 'matrix'
    assert parsed['series'] == [{'labels': {'job': 'web'}, 'samples': [[10.0, 1.0], [11.0, 2.5], [12.0, 1e6]]}]


def test_scalar_and_string_are_one_series_without_labels():
    assert parse_response(success('scalar', [5, '0.25']))['series'] == [{'labels': {}, 'timestamp': 5.0, 'value': 0.25}]
    assert parse_response(success('string', [5, 'hello']))['series'] == [{'labels': {}, 'timestamp': 5.0, 'value': 'hello'}]


def test_empty_result_is_an_empty_list():
    assert parse_response(success('vector', []))['series'] == []
    assert parse_response(success('matrix', None))['series'] == []


def test_nan_and_infinities():
    parsed = parse_response(success('vector', [
        {'metric': {'a': '1'}, 'value': [1, 'NaN']},
        {'metric': {'a': '2'}, 'value': [1, '+Inf']},
        {'metric': {'a': '3'}, 'value': [1, '-Inf']},
    ]))
    values = [series['value'] for series in parsed['series']]
    assert math.isnan(values[0]) and values[1] == float('inf') and values[2] == float('-inf')
    safe = json_safe(parsed)
    assert [series['value'] for series in safe['series']] == ['NaN', '+Inf', '-Inf']
    json.dumps(safe, allow_nan=False)  # strict JSON


def test_warnings_and_infos_are_surfaced():
    parsed = parse_response(success('vector', [], warnings=['remote_read: connection refused'],
                                    infos=['PromQL info: metric might not be a counter']))
    assert parsed['warnings'] == ['remote_read: connection refused']
    assert parsed['infos'] == ['PromQL info: metric might not be a counter']


def test_native_histograms_are_parsed():
    histogram = {'count': '3', 'sum': '0.5', 'buckets': [[0, '0.1', '0.2', '3']]}
    instant = parse_response(success('vector', [{'metric': {}, 'histogram': [7, histogram]}]))
    assert instant['series'] == [{'labels': {}, 'timestamp': 7.0,
                                  'histogram': {'count': 3.0, 'sum': 0.5, 'buckets': [[0, 0.1, 0.2, 3.0]]}}]
    ranged = parse_response(success('matrix', [{'metric': {}, 'histograms': [[7, histogram]]}]))
    assert ranged['series'][0]['histograms'][0][1]['count'] == 3.0


def test_unknown_result_type_is_rejected():
    with pytest.raises(ValueError):
        parse_response(success('tensor', []))


# -- the lookup's return rule ------------------------------------------------------------------------------------

def test_lookup_rule_single_series_gives_the_value():
    assert lookup_value(parse_response(success('vector', [{'metric': {'a': 'b'}, 'value': [1, '42']}]))) == 42.0
    assert lookup_value(parse_response(success('scalar', [1, '3']))) == 3.0
    assert lookup_value(parse_response(success('string', [1, 'x']))) == 'x'


def test_lookup_rule_otherwise_the_list():
    two = parse_response(success('vector', [{'metric': {'a': '1'}, 'value': [1, '1']},
                                            {'metric': {'a': '2'}, 'value': [1, '2']}]))
    assert lookup_value(two) == two['series']
    assert lookup_value(parse_response(success('vector', []))) == []
    one_range = parse_response(success('matrix', [{'metric': {}, 'values': [[1, '1']]}]))
    assert lookup_value(one_range) == [{'labels': {}, 'samples': [[1.0, 1.0]]}]


@given(st.recursive(st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.text(max_size=5) | st.none(),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
                    max_leaves=20))
def test_json_safe_always_gives_strict_json(value):
    json.dumps(json_safe(value), allow_nan=False)


def test_nonfinite_to_string_leaves_finite_values():
    assert nonfinite_to_string(1.5) == 1.5
    assert nonfinite_to_string(3) == 3
    assert nonfinite_to_string(float('-inf')) == '-Inf'


# -- request building --------------------------------------------------------------------------------------------

def test_short_query_is_a_get_with_the_query_string():
    client = PrometheusClient('http://prom.example:9090/', headers={'X-Scope-OrgID': 'team-a'})
    prepared = client.prepare(QUERY_PATH, [('query', 'up{job="web"}'), ('time', '1714564800')])
    assert prepared.method == 'GET' and prepared.data is None
    parts = urlsplit(prepared.url)
    assert parts.path == '/api/v1/query'
    assert parse_qs(parts.query) == {'query': ['up{job="web"}'], 'time': ['1714564800']}
    assert prepared.headers['X-Scope-OrgID'] == 'team-a'
    assert prepared.headers['Accept'] == 'application/json'


def test_long_query_is_a_form_encoded_post():
    query = ' or '.join('up{instance="web-%04d:9100"}' % index for index in range(200))
    client = PrometheusClient('https://mimir.example/prometheus')
    prepared = client.prepare(QUERY_RANGE_PATH, [('query', query), ('start', '1'), ('end', '2'), ('step', '1')])
    assert len(query) > MAX_GET_URL_LENGTH
    assert prepared.method == 'POST'
    assert prepared.url == 'https://mimir.example/prometheus/api/v1/query_range'
    assert prepared.headers['Content-Type'] == 'application/x-www-form-urlencoded'
    assert parse_qs(prepared.data.decode()) == {'query': [query], 'start': ['1'], 'end': ['2'], 'step': ['1']}


def test_method_can_be_forced():
    assert PrometheusClient(URL, method='POST').prepare(QUERY_PATH, [('query', 'up')]).method == 'POST'
    long_query = 'up' + ' ' * 5000
    assert PrometheusClient(URL, method='get').prepare(QUERY_PATH, [('query', long_query)]).method == 'GET'


def test_bearer_token_header():
    prepared = PrometheusClient(URL, bearer_token='s3cret').prepare(QUERY_PATH, [('query', 'up')])
    assert prepared.headers['Authorization'] == 'Bearer s3cret'


@pytest.mark.parametrize('kwargs', [
    {'bearer_token': 't', 'url_username': 'u'},
    {'bearer_token': 't', 'headers': {'authorization': 'Basic x'}},
    {'method': 'PUT'},
    {'timeout': 0},
    {'timeout': 'soon'},
])
def test_conflicting_or_invalid_options(kwargs):
    with pytest.raises(PrometheusError) as raised:
        PrometheusClient(URL, **kwargs)
    assert raised.value.kind == 'invalid_argument'


@pytest.mark.parametrize('url', ['', None, 'prometheus:9090', 'ftp://host/', 'http://'])
def test_invalid_urls(url):
    with pytest.raises(PrometheusError, match='invalid Prometheus url'):
        PrometheusClient(url)


def test_client_from_options_takes_every_connection_option():
    options = {'url': URL, 'bearer_token': None, 'url_username': 'u', 'url_password': 'p', 'client_cert': None,
               'client_key': None, 'ca_path': None, 'validate_certs': False, 'headers': {'X': '1'}, 'timeout': 5,
               'use_proxy': False, 'method': 'POST'}
    client = client_from_options(options.get)
    assert (client.url_username, client.validate_certs, client.timeout, client.use_proxy, client.method) == \
        ('u', False, 5.0, False, 'POST')


def test_credentials_in_the_url_are_masked():
    assert mask_url('https://user:pw@prom.example:9090/x') == 'https://prom.example:9090/x'
    assert mask_url('http://prom.example') == 'http://prom.example'
    with pytest.raises(PrometheusError) as raised:
        PrometheusClient('https://user:pw@127.0.0.1:9/').query('up', time='tomorrow')
    assert 'pw' not in str(raised.value) and 'https://127.0.0.1:9' in str(raised.value)


def test_invalid_times_name_the_query_and_server():
    client = PrometheusClient(URL)
    with pytest.raises(PrometheusError, match=r"invalid time for query 'up' on Prometheus at http://127.0.0.1:9"):
        client.query('up', time='tomorrow')
    with pytest.raises(PrometheusError, match='invalid step'):
        client.query_range('up', '-1h', 'now', 'often')
    with pytest.raises(PrometheusError, match='must be > 0'):
        client.query_range('up', '-1h', 'now', 0)
    with pytest.raises(PrometheusError, match='empty or non-string'):
        client.query('  ')


# -- error mapping -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize('status, error_type', [
    (400, 'bad_data'), (422, 'execution'), (503, 'timeout'), (503, 'unavailable'), (499, 'canceled'),
    (500, 'internal'),
])
def test_prometheus_error_bodies(status, error_type):
    body = json.dumps({'status': 'error', 'errorType': error_type, 'error': 'something about %s' % error_type}).encode()
    with pytest.raises(PrometheusError) as raised:
        decode_answer(body, status, 'http://prom:9090', query='rate(x[5m])')
    error = raised.value
    assert (error.kind, error.error_type, error.http_status) == ('prometheus', error_type, status)
    assert str(error) == ("Prometheus at http://prom:9090 returned %s (HTTP %d) for query 'rate(x[5m])': something about %s"
                          % (error_type, status, error_type))


def test_http_error_without_prometheus_body():
    with pytest.raises(PrometheusError) as raised:
        decode_answer(b'<html><body>Unauthorized</body></html>', 401, 'https://prom', query='up', reason='Unauthorized')
    assert raised.value.kind == 'http' and raised.value.http_status == 401
    assert 'HTTP 401 Unauthorized' in str(raised.value) and 'url_username' in str(raised.value)


def test_success_status_without_api_format():
    with pytest.raises(PrometheusError) as raised:
        decode_answer(b'<html>a login page</html>', 200, 'https://prom', query='up')
    assert raised.value.kind == 'response' and 'a login page' in str(raised.value)


def test_long_queries_are_shortened_in_messages():
    query = 'x' * 1000
    with pytest.raises(PrometheusError) as raised:
        decode_answer(json.dumps({'status': 'error', 'errorType': 'bad_data', 'error': 'e'}).encode(), 400, 'u', query=query)
    assert '(1000 characters)' in str(raised.value) and len(str(raised.value)) < 500
    assert raised.value.query == query


# -- transport errors against real sockets -----------------------------------------------------------------------

def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_connection_refused_names_query_and_server():
    url = 'http://127.0.0.1:%d' % free_port()
    with pytest.raises(PrometheusError) as raised:
        PrometheusClient(url, timeout=5).query('up')
    assert raised.value.kind == 'connection'
    assert str(raised.value).startswith("cannot connect to Prometheus at %s for query 'up':" % url)
    assert 'refused' in str(raised.value).lower()


def test_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(5)
    url = 'http://127.0.0.1:%d' % listener.getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(PrometheusError) as raised:
            PrometheusClient(url, timeout=0.5).query('sum(up)')
        assert time.monotonic() - started < 5
    finally:
        listener.close()
    assert raised.value.kind == 'timeout'
    assert str(raised.value) == ("Prometheus at %s did not answer within 0.5 seconds for query 'sum(up)' "
                                 "(raise timeout, or check the server load)" % url)


def test_tls_to_a_plain_http_port_is_a_tls_error():
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(5)

    def answer_plain_http():
        connection, _address = listener.accept()
        with connection:
            connection.recv(4096)
            connection.sendall(b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')

    thread = threading.Thread(target=answer_plain_http, daemon=True)
    thread.start()
    try:
        with pytest.raises(PrometheusError) as raised:
            PrometheusClient('https://127.0.0.1:%d' % listener.getsockname()[1], timeout=5).query('up')
    finally:
        thread.join(5)
        listener.close()
    assert raised.value.kind == 'tls' and 'TLS error talking to Prometheus' in str(raised.value)


class _BadGateway(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = b'<html><h1>502 Bad Gateway</h1></html>'
        self.send_response(502)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


def test_proxy_answering_502_is_an_http_error():
    server = ThreadingHTTPServer(('127.0.0.1', 0), _BadGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = 'http://127.0.0.1:%d' % server.server_address[1]
        with pytest.raises(PrometheusError) as raised:
            PrometheusClient(url, timeout=5).query('up')
    finally:
        server.shutdown()
        server.server_close()
    assert raised.value.kind == 'http' and raised.value.http_status == 502
    assert "answered HTTP 502 Bad Gateway for query 'up': <html><h1>502 Bad Gateway</h1></html>" in str(raised.value)


@pytest.mark.parametrize('kind, error_type, status, message, permanent', [
    ('prometheus', 'bad_data', 400, '1:5: parse error: unexpected end of input', True),
    ('prometheus', 'bad_data', 422, 'invalid parameter "query"', True),
    ('prometheus', 'unknown', 400, 'bad request', True),
    ('prometheus', '422', 422, 'cannot parse "rate(x[5m]"', True),           # VictoriaMetrics' parse errors
    ('invalid_argument', None, None, 'invalid step', True),
    ('prometheus', 'execution', 422, 'found duplicate series for the match group', False),
    ('prometheus', 'timeout', 503, 'query timed out', False),
    ('prometheus', 'unavailable', 503, 'too many queries', False),
    ('prometheus', 'internal', 500, 'panic', False),
    ('http', None, 400, 'a proxy said no', False),
    ('http', None, 429, 'rate limited', False),
    ('http', None, 502, 'bad gateway', False),
    ('connection', None, None, 'refused', False),
    ('timeout', None, None, 'timed out', False),
    ('tls', None, None, 'certificate', False),
    ('response', None, 200, 'not JSON', False),
])
def test_permanent_errors_are_the_refused_queries(kind, error_type, status, message, permanent):
    error = PrometheusError(message, kind, error_type=error_type, http_status=status)
    assert error.permanent is permanent
