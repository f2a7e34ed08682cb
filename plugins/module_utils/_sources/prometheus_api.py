# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A small Prometheus HTTP API client (instant and range queries), plain Python.

Used by the ``canary.release.prometheus_query`` module, the ``canary.release.promql`` lookup and the canary judge.
HTTP goes through ``ansible.module_utils.urls`` so proxies, CA bundles, client certificates and basic auth work as
in ``ansible.builtin.uri``; no extra dependency on the managed node.

Results are plain data::

    {'result_type': 'vector' | 'matrix' | 'scalar' | 'string',
     'series': [...],            # empty list when nothing matched
     'warnings': [...],          # the server's warnings (for example a failing remote-read endpoint)
     'infos': [...],             # the server's info annotations (Prometheus >= 2.45; else empty)
     'request': {'method': 'GET' | 'POST', 'path': '/api/v1/query', 'params': {'query': ..., 'time': ...}}}

A series of an instant vector is ``{'labels': {...}, 'timestamp': float, 'value': float}``; of a range vector
``{'labels': {...}, 'samples': [[timestamp, value], ...]}``. A scalar or string result is one series with empty
labels (a string's ``value`` is the string). Native histogram samples appear under ``histogram`` / ``histograms``.
(``samples``, not ``values``: in Jinja ``series.values`` would be the dict method.)

Values are Python floats here, ``nan``/``inf``/``-inf`` included. Ansible results must be JSON: plugins pass results
through ``json_safe()`` from ``module_utils/_common/json_safe.py``, which turns the non-finite floats into the strings
Prometheus itself uses (``"NaN"``, ``"+Inf"``, ``"-Inf"``); ``| float`` turns them back into floats in a template.

Every failure (the server's ``status: error`` with its ``errorType``, HTTP errors, refused connections, timeouts,
TLS problems, unreadable answers, invalid arguments) raises :class:`PrometheusError`, whose message names the
query and the server.
"""

import json
import socket
import ssl
import urllib.error

from urllib.parse import urlencode, urlsplit, urlunsplit
from http.client import HTTPException

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import Request, SSLValidationError

from ansible_collections.canary.release.plugins.module_utils.time_spec import (
    TimeSpecError,
    parse_duration,
    parse_time,
)

QUERY_PATH = '/api/v1/query'
QUERY_RANGE_PATH = '/api/v1/query_range'
DEFAULT_TIMEOUT = 30
# Above this many characters of URL the request is sent as a form-encoded POST (proxies and servers commonly
# limit request lines to 4-8 KiB; Prometheus accepts POST for both query endpoints).
MAX_GET_URL_LENGTH = 2048
METHODS = ('auto', 'GET', 'POST')
USER_AGENT = 'canary.release (ansible.module_utils.urls)'
QUERY_IN_MESSAGE_MAX = 300
# The server's errorType for a request it will never run as written (Prometheus, Thanos, Mimir: HTTP 400).
PERMANENT_ERROR_TYPES = ('bad_data',)
# Parse errors of servers that report them with another errorType (VictoriaMetrics: "422", "cannot parse").
PARSE_ERROR_MARKERS = ('parse error', 'cannot parse')


class PrometheusError(Exception):
    """Any failure of a Prometheus query.

    ``kind`` is one of ``prometheus`` (the server answered ``status: error``; ``error_type`` holds its
    ``errorType`` such as ``bad_data``, ``execution``, ``timeout``, ``canceled``, ``unavailable``, ``internal``),
    ``http`` (an HTTP error without a Prometheus error body, for example from a proxy, or 401/403),
    ``connection``, ``timeout``, ``tls``, ``response`` (an answer that is not the Prometheus API format) and
    ``invalid_argument``.
    """

    def __init__(self, message, kind, url=None, query=None, error_type=None, http_status=None):
        super(PrometheusError, self).__init__(message)
        self.message = message
        self.kind = kind
        self.url = url
        self.query = query
        self.error_type = error_type
        self.http_status = http_status

    @property
    def permanent(self):
        """Whether the same query can never succeed: the server refused the query itself (``errorType``
        ``bad_data``, as for a PromQL syntax error, or HTTP 400 with a Prometheus error body, or a parse error), or
        the request was invalid before it was sent (``invalid_argument``).

        Not permanent: connection, timeout and TLS failures, HTTP errors without a Prometheus error body (a proxy,
        401/403/404), 5xx, 429, 503 (``timeout``, ``unavailable``), ``execution`` errors (HTTP 422, which can depend on
        the data), ``internal`` and unreadable answers.
        """
        if self.kind == 'invalid_argument':
            return True
        if self.kind != 'prometheus':
            return False
        try:
            status = int(self.http_status)
        except (TypeError, ValueError):
            status = None
        unparsable = any(marker in str(self.message).lower() for marker in PARSE_ERROR_MARKERS)
        return self.error_type in PERMANENT_ERROR_TYPES or status == 400 or unparsable


class PreparedRequest:
    """What will go over the wire: method, full URL, body (bytes or None) and headers (without auth)."""

    def __init__(self, method, url, data, headers):
        self.method = method
        self.url = url
        self.data = data
        self.headers = headers

    def __repr__(self):
        return 'PreparedRequest(%r, %r, data=%d bytes)' % (self.method, self.url, len(self.data or b''))


def mask_url(url):
    """``url`` without any ``user:password@`` part, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ''
    if ':' in host:
        host = '[%s]' % host
    if parts.port:
        host = '%s:%d' % (host, parts.port)
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _short(query):
    if query is None:
        return ''
    text = str(query)
    if len(text) > QUERY_IN_MESSAGE_MAX:
        text = text[:QUERY_IN_MESSAGE_MAX] + '... (%d characters)' % len(text)
    return text


def _format_timestamp(value):
    text = '%.3f' % value
    return text.rstrip('0').rstrip('.') if '.' in text else text


class PrometheusClient:
    """Query one Prometheus-compatible server (Prometheus, Thanos, Mimir, Cortex, VictoriaMetrics).

    ``url`` is the base URL (``https://prometheus.example.com:9090`` or with a path prefix such as
    ``https://mimir.example.com/prometheus``); ``/api/v1/query`` and ``/api/v1/query_range`` are appended.
    ``method`` is ``auto`` (GET, or POST when the URL would exceed :data:`MAX_GET_URL_LENGTH`), ``GET`` or ``POST``.
    """

    def __init__(self, url, bearer_token=None, url_username=None, url_password=None, client_cert=None,
                 client_key=None, ca_path=None, validate_certs=True, headers=None, timeout=DEFAULT_TIMEOUT,
                 use_proxy=True, method='auto'):
        self.display_url = mask_url(str(url or ''))
        if not url or urlsplit(str(url)).scheme not in ('http', 'https') or not urlsplit(str(url)).netloc:
            raise PrometheusError('invalid Prometheus url %r: expected http(s)://host[:port][/prefix]' % (self.display_url,),
                                  kind='invalid_argument', url=self.display_url)
        self.url = str(url).rstrip('/')
        method = 'auto' if method is None else str(method)
        if method.upper() in ('GET', 'POST'):
            method = method.upper()
        if method not in METHODS:
            raise PrometheusError('invalid method %r for Prometheus at %s: expected one of auto, GET, POST'
                                  % (method, self.display_url), kind='invalid_argument', url=self.display_url)
        self.method = method
        self.headers = dict(headers or {})
        header_names = set(name.lower() for name in self.headers)
        if bearer_token and (url_username or url_password):
            raise PrometheusError('bearer_token and url_username/url_password are mutually exclusive (Prometheus at %s)'
                                  % self.display_url, kind='invalid_argument', url=self.display_url)
        if bearer_token:
            if 'authorization' in header_names:
                raise PrometheusError('bearer_token and an Authorization header are mutually exclusive (Prometheus at %s)'
                                      % self.display_url, kind='invalid_argument', url=self.display_url)
            self.headers['Authorization'] = 'Bearer %s' % bearer_token
        self.url_username = url_username
        self.url_password = url_password
        self.client_cert = client_cert
        self.client_key = client_key
        self.ca_path = ca_path
        self.validate_certs = bool(validate_certs)
        try:
            self.timeout = float(timeout if timeout is not None else DEFAULT_TIMEOUT)
        except (TypeError, ValueError):
            self.timeout = -1.0
        if not self.timeout > 0:
            raise PrometheusError('invalid timeout %r for Prometheus at %s: expected seconds > 0' % (timeout, self.display_url),
                                  kind='invalid_argument', url=self.display_url)
        self.use_proxy = bool(use_proxy)

    # -- public API -------------------------------------------------------------------------------------------

    def query(self, query, time=None, now=None):
        """Evaluate an instant query at ``time`` (default: the server's now). Returns the parsed result."""
        params = [('query', self._check_query(query))]
        if time is not None:
            params.append(('time', _format_timestamp(self._time(time, 'time', query, now))))
        return self.request(QUERY_PATH, params, query)

    def query_range(self, query, start, end, step, now=None):
        """Evaluate a range query from ``start`` to ``end`` every ``step``. Relative times share one ``now``."""
        params = [('query', self._check_query(query))]
        if now is None:
            now = self._now()
        start_ts = self._time(start, 'start', query, now)
        end_ts = self._time(end, 'end', query, now)
        try:
            step_seconds = parse_duration(step)
        except TimeSpecError as error:
            raise PrometheusError('invalid step for query %r on Prometheus at %s: %s' % (_short(query), self.display_url, error),
                                  kind='invalid_argument', url=self.display_url, query=query)
        if step_seconds <= 0:
            raise PrometheusError('invalid step %r for query %r on Prometheus at %s: must be > 0'
                                  % (step, _short(query), self.display_url), kind='invalid_argument',
                                  url=self.display_url, query=query)
        params += [('start', _format_timestamp(start_ts)), ('end', _format_timestamp(end_ts)),
                   ('step', _format_timestamp(step_seconds))]
        return self.request(QUERY_RANGE_PATH, params, query)

    def request(self, path, params, query=None):
        """Send ``params`` to ``path`` and return the parsed result (raises :class:`PrometheusError`)."""
        prepared = self.prepare(path, params)
        payload = self.send(prepared, query)
        try:
            result = parse_response(payload)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as error:
            raise PrometheusError('Prometheus at %s sent an unexpected answer for query %r: %s'
                                  % (self.display_url, _short(query), error), kind='response',
                                  url=self.display_url, query=query)
        result['request'] = {'method': prepared.method, 'path': path, 'params': dict(params)}
        return result

    def prepare(self, path, params):
        """Build the :class:`PreparedRequest` (GET with a query string, or form-encoded POST)."""
        encoded = urlencode(params)
        endpoint = self.url + path
        headers = {'Accept': 'application/json'}
        headers.update(self.headers)
        method = self.method
        if method == 'auto':
            method = 'GET' if len(endpoint) + 1 + len(encoded) <= MAX_GET_URL_LENGTH else 'POST'
        if method == 'GET':
            return PreparedRequest('GET', endpoint + '?' + encoded, None, headers)
        headers['Content-Type'] = 'application/x-www-form-urlencoded'
        return PreparedRequest('POST', endpoint, encoded.encode('utf-8'), headers)

    def send(self, prepared, query=None):
        """Send a :class:`PreparedRequest`; return the decoded JSON of a ``status: success`` answer."""
        where = 'Prometheus at %s' % self.display_url
        about = 'query %r' % _short(query)
        try:
            response = Request().open(
                prepared.method, prepared.url, data=prepared.data, headers=prepared.headers,
                use_proxy=self.use_proxy, timeout=self.timeout, validate_certs=self.validate_certs,
                url_username=self.url_username, url_password=self.url_password,
                force_basic_auth=bool(self.url_username), client_cert=self.client_cert, client_key=self.client_key,
                ca_path=self.ca_path, http_agent=USER_AGENT, follow_redirects='safe')
            status = response.getcode()
            body = response.read()
        except urllib.error.HTTPError as error:
            status = error.code
            try:
                body = error.read()
            except Exception:  # pylint: disable=broad-except
                body = b''
            return decode_answer(body, status, self.display_url, query, reason=getattr(error, 'reason', ''))
        except (socket.timeout, TimeoutError):
            raise self._timeout(where, about, query)
        except urllib.error.URLError as error:
            raise self._transport_error(error.reason, where, about, query)
        except SSLValidationError as error:
            raise PrometheusError('TLS error talking to %s for %s: %s%s' % (where, about, error, _TLS_HINT),
                                  kind='tls', url=self.display_url, query=query)
        except (UrlsConnectionError, HTTPException, OSError, ValueError) as error:
            raise self._transport_error(error, where, about, query)
        return decode_answer(body, status, self.display_url, query)

    # -- internals --------------------------------------------------------------------------------------------

    @staticmethod
    def _now():
        return parse_time('now')

    def _check_query(self, query):
        if not isinstance(query, str) or not query.strip():
            raise PrometheusError('empty or non-string PromQL query %r for Prometheus at %s' % (query, self.display_url),
                                  kind='invalid_argument', url=self.display_url, query=query)
        return query

    def _time(self, value, name, query, now):
        try:
            return parse_time(value, now=now)
        except TimeSpecError as error:
            raise PrometheusError('invalid %s for query %r on Prometheus at %s: %s' % (name, _short(query), self.display_url, error),
                                  kind='invalid_argument', url=self.display_url, query=query)

    def _timeout(self, where, about, query):
        return PrometheusError('%s did not answer within %s seconds for %s (raise timeout, or check the server load)'
                               % (where, _format_timestamp(self.timeout), about),
                               kind='timeout', url=self.display_url, query=query)

    def _transport_error(self, reason, where, about, query):
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return self._timeout(where, about, query)
        if isinstance(reason, (ssl.SSLError, ssl.CertificateError, SSLValidationError)):
            return PrometheusError('TLS error talking to %s for %s: %s%s' % (where, about, reason, _TLS_HINT),
                                   kind='tls', url=self.display_url, query=query)
        return PrometheusError('cannot connect to %s for %s: %s' % (where, about, reason),
                               kind='connection', url=self.display_url, query=query)


_TLS_HINT = ' (set ca_path to the CA that signed the server certificate, or client_cert/client_key if the server asks for one)'
_HTTP_HINTS = {
    401: ' (check bearer_token or url_username/url_password)',
    403: ' (the credentials are not allowed to query; check bearer_token, url_username or headers such as X-Scope-OrgID)',
    404: ' (check url: it is the base URL, without /api/v1)',
}


def _snippet(body, limit=300):
    try:
        text = body.decode('utf-8', 'replace') if isinstance(body, bytes) else str(body or '')
    except Exception:  # pylint: disable=broad-except
        return ''
    text = ' '.join(text.split())
    return text[:limit] + ('...' if len(text) > limit else '')


def decode_answer(body, status, url, query=None, reason=''):
    """The decoded JSON of a ``status: success`` answer (``body`` bytes, HTTP ``status``) from the server at ``url``;
    anything else raises :class:`PrometheusError` (``prometheus`` with the server's errorType, ``http``, ``response``)."""
    where = 'Prometheus at %s' % url
    try:
        payload = json.loads(body.decode('utf-8'))
    except (ValueError, UnicodeDecodeError, AttributeError):
        payload = None
    if isinstance(payload, dict) and payload.get('status') == 'error':
        error_type = payload.get('errorType') or 'unknown'
        raise PrometheusError('%s returned %s (HTTP %s) for query %r: %s'
                              % (where, error_type, status, _short(query), payload.get('error') or '(no message)'),
                              kind='prometheus', url=url, query=query, error_type=error_type, http_status=status)
    if status is not None and not 200 <= int(status) < 300:
        snippet = _snippet(body)
        hint = _HTTP_HINTS.get(int(status), '')
        raise PrometheusError('%s answered HTTP %s%s for query %r%s%s'
                              % (where, status, (' ' + str(reason)) if reason else '', _short(query),
                                 (': ' + snippet) if snippet else '', hint),
                              kind='http', url=url, query=query, http_status=status)
    if not isinstance(payload, dict) or payload.get('status') != 'success':
        raise PrometheusError('%s sent an answer that is not the Prometheus HTTP API format for query %r: %s'
                              % (where, _short(query), _snippet(body) or '(empty body)'),
                              kind='response', url=url, query=query, http_status=status)
    return payload


def sample_value(text):
    """A Prometheus sample value (``"1.5"``, ``"NaN"``, ``"+Inf"``, ``"-Inf"``, ``"1e+06"``) as a float."""
    return float(text)


def _parse_histogram(histogram):
    parsed = dict(histogram)
    for key in ('count', 'sum'):
        if key in parsed:
            parsed[key] = sample_value(parsed[key])
    if 'buckets' in parsed:
        parsed['buckets'] = [[int(rule), sample_value(low), sample_value(high), sample_value(count)]
                             for rule, low, high, count in parsed['buckets']]
    return parsed


def parse_response(payload):
    """Turn a decoded ``status: success`` answer into the plain result described in the module docstring."""
    data = payload.get('data') or {}
    result_type = data.get('resultType')
    raw = data.get('result')
    series = []
    if result_type == 'vector':
        for item in raw or []:
            entry = {'labels': dict(item.get('metric') or {})}
            if 'value' in item:
                entry['timestamp'] = float(item['value'][0])
                entry['value'] = sample_value(item['value'][1])
            if 'histogram' in item:
                entry['timestamp'] = float(item['histogram'][0])
                entry['histogram'] = _parse_histogram(item['histogram'][1])
            series.append(entry)
    elif result_type == 'matrix':
        for item in raw or []:
            entry = {'labels': dict(item.get('metric') or {}),
                     'samples': [[float(ts), sample_value(value)] for ts, value in item.get('values') or []]}
            if 'histograms' in item:
                entry['histograms'] = [[float(ts), _parse_histogram(histogram)] for ts, histogram in item['histograms']]
            series.append(entry)
    elif result_type == 'scalar':
        series.append({'labels': {}, 'timestamp': float(raw[0]), 'value': sample_value(raw[1])})
    elif result_type == 'string':
        series.append({'labels': {}, 'timestamp': float(raw[0]), 'value': str(raw[1])})
    else:
        raise ValueError('unknown resultType %r' % (result_type,))
    return {
        'result_type': result_type,
        'series': series,
        'warnings': [str(warning) for warning in payload.get('warnings') or []],
        'infos': [str(info) for info in payload.get('infos') or []],
    }


def lookup_value(result):
    """The ``promql`` lookup's return rule: the single value of a one-series instant vector, a scalar or a
    string; otherwise the list of series (empty when nothing matched)."""
    series = result['series']
    if result['result_type'] in ('scalar', 'string'):
        return series[0]['value']
    if result['result_type'] == 'vector' and len(series) == 1:
        only = series[0]
        return only['value'] if 'value' in only else only.get('histogram')
    return series


# The connection options shared by the prometheus_query module and the promql lookup (doc fragment
# canary.release.prometheus), in the order of PrometheusClient's keyword arguments.
CONNECTION_OPTIONS = ('url', 'bearer_token', 'url_username', 'url_password', 'client_cert', 'client_key', 'ca_path',
                      'validate_certs', 'headers', 'timeout', 'use_proxy', 'method')


def connection_argument_spec(url_required=True):
    """The module argument spec of the connection options (documented by the canary.release.prometheus fragment)."""
    return dict(
        url=dict(type='str', required=url_required),
        bearer_token=dict(type='str', no_log=True),
        url_username=dict(type='str', aliases=['username']),
        url_password=dict(type='str', no_log=True, aliases=['password']),
        client_cert=dict(type='path'),
        client_key=dict(type='path'),
        ca_path=dict(type='path'),
        validate_certs=dict(type='bool', default=True),
        headers=dict(type='dict', default={}),
        timeout=dict(type='float', default=30),
        use_proxy=dict(type='bool', default=True),
        method=dict(type='str', default='auto', choices=['auto', 'GET', 'POST']),
    )


def client_from_options(get_option):
    """A :class:`PrometheusClient` from plugin options; ``get_option(name)`` returns an option's value."""
    return PrometheusClient(**dict((name, get_option(name)) for name in CONNECTION_OPTIONS))
