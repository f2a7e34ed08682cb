"""A canned Prometheus HTTP API on a free 127.0.0.1 port, for unit tests of code that sends range queries.

The test gives raw samples per query (``{query: [{'labels': {...}, 'samples': [(ts, value), ...]}]}``) or an error
per query (``{query: (http_status, error_type, message)}``). ``/api/v1/query_range`` answers like Prometheus: for
each evaluation time ``start + k*step`` up to ``end``, each series' last sample at or before that time, if not
older than the 5 minute lookback. Every request is recorded. The real server is exercised by the integration tests.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOOKBACK = 300.0


def evaluate_range(series_list, start, end, step):
    """Prometheus range-query semantics over raw samples: ``[{'metric', 'values'}]`` (API shape)."""
    result = []
    for series in series_list:
        samples = sorted(series['samples'])
        values = []
        count = int((end - start) / step + 1e-9)
        for index in range(count + 1):
            at = start + index * step
            earlier = [sample for sample in samples if sample[0] <= at + 1e-9 and sample[0] > at - LOOKBACK]
            if earlier:
                values.append([round(at, 3), repr(float(earlier[-1][1]))])
        if values:
            result.append({'metric': dict(series.get('labels') or {}), 'values': values})
    return result


class PrometheusStub:
    """Serve ``answers`` (see the module docstring); ``requests`` lists the parameters of every query received."""

    def __init__(self, answers, warnings=None):
        self.answers = answers
        self.warnings = list(warnings or [])
        self.requests = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._answer(parse_qs(urlsplit(self.path).query))

            def do_POST(self):
                length = int(self.headers.get('Content-Length') or 0)
                self._answer(parse_qs(self.rfile.read(length).decode()))

            def _answer(self, raw):
                params = dict((key, values[-1]) for key, values in raw.items())
                stub.requests.append(params)
                status, payload = stub.respond(urlsplit(self.path).path, params)
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.server.server_address[1]

    def respond(self, path, params):
        if path != '/api/v1/query_range':
            return 404, {'status': 'error', 'errorType': 'bad_data', 'error': 'unsupported path %s' % path}
        answer = self.answers.get(params.get('query'), [])
        if isinstance(answer, tuple):
            status, error_type, message = answer
            return status, {'status': 'error', 'errorType': error_type, 'error': message}
        result = evaluate_range(answer, float(params['start']), float(params['end']), float(params['step']))
        payload = {'status': 'success', 'data': {'resultType': 'matrix', 'result': result}}
        if self.warnings:
            payload['warnings'] = self.warnings
        return 200, payload

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
