"""A moto server on a free 127.0.0.1 port as the AWS endpoint for tests, recording every AWS operation it serves.

``MotoServer`` is moto's ``ThreadedMotoServer`` (port 0: the OS picks a free one) with a small WSGI layer that
records, per request, the operation name and the decoded JSON parameters, so tests can count GetMetricData calls
made by a module running in another process (ansible-playbook) and check the exact request shape.

moto's GetMetricData never paginates. With ``paginate=True`` the layer adds CloudWatch's ``MaxDatapoints`` /
``NextToken`` paging on top of moto's full answer (rows ordered by timestamp, at most MaxDatapoints per page,
``PartialData`` until the last page), so clients exercise real paging over HTTP. It only applies to requests that
set ``MaxDatapoints``; it is the one place where this test endpoint does more than moto.
"""

import io
import json
import threading

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

REGION = 'us-east-1'


def aws_env(region=REGION):
    """Fake credentials and a region, and no shared config files: nothing can reach real AWS by accident."""
    return {
        'AWS_ACCESS_KEY_ID': 'testing',
        'AWS_SECRET_ACCESS_KEY': 'testing',
        'AWS_SESSION_TOKEN': 'testing',
        'AWS_DEFAULT_REGION': region,
        'AWS_REGION': region,
        'AWS_CONFIG_FILE': '/nonexistent/aws-config',
        'AWS_SHARED_CREDENTIALS_FILE': '/nonexistent/aws-credentials',
        'AWS_EC2_METADATA_DISABLED': 'true',
        'NO_PROXY': '127.0.0.1,localhost',
        'no_proxy': '127.0.0.1,localhost',
    }


class _QuietHandler(MotoRequestHandler):
    def log_request(self, code='-', size='-'):
        pass


class _Recorder:
    """WSGI middleware: record each request's operation and JSON parameters; optionally page GetMetricData."""

    def __init__(self, app, server):
        self.app = app
        self.server = server

    def __call__(self, environ, start_response):
        length = int(environ.get('CONTENT_LENGTH') or 0)
        body = environ['wsgi.input'].read(length) if length else b''
        environ['wsgi.input'] = io.BytesIO(body)
        target = environ.get('HTTP_X_AMZ_TARGET', '')
        operation = target.rsplit('.', 1)[-1] if target else None
        params = None
        if body and 'json' in environ.get('CONTENT_TYPE', ''):
            try:
                params = json.loads(body)
            except ValueError:
                params = None
        if operation is None and body.startswith(b'Action='):
            operation = body.split(b'&', 1)[0].split(b'=', 1)[1].decode()
        self.server.record(operation, params)
        if (self.server.paginate and operation == 'GetMetricData' and isinstance(params, dict)
                and params.get('MaxDatapoints')):
            return self._paged_get_metric_data(environ, start_response, params)
        return self.app(environ, start_response)

    def _paged_get_metric_data(self, environ, start_response, params):
        page_size = int(params['MaxDatapoints'])
        offset = int(params.get('NextToken') or 0)
        full = dict(params)
        full.pop('MaxDatapoints', None)
        full.pop('NextToken', None)
        raw = json.dumps(full).encode()
        environ['wsgi.input'] = io.BytesIO(raw)
        environ['CONTENT_LENGTH'] = str(len(raw))
        captured = {}

        def capture(status, headers, exc_info=None):
            captured['status'] = status
            captured['headers'] = headers
            return lambda data: None

        answer = b''.join(self.app(environ, capture))
        if not captured['status'].startswith('200'):
            start_response(captured['status'], captured['headers'])
            return [answer]
        document = json.loads(answer)
        rows = []
        for result in document.get('MetricDataResults', []):
            for stamp, value in zip(result.get('Timestamps', []), result.get('Values', [])):
                rows.append((stamp, result['Id'], value))
        rows.sort(key=lambda row: row[0])
        page = rows[offset:offset + page_size]
        more = offset + page_size < len(rows)
        for result in document.get('MetricDataResults', []):
            mine = [row for row in page if row[1] == result['Id']]
            result['Timestamps'] = [row[0] for row in mine]
            result['Values'] = [row[2] for row in mine]
            result['StatusCode'] = 'PartialData' if more else 'Complete'
        if more:
            document['NextToken'] = str(offset + page_size)
        else:
            document.pop('NextToken', None)
        paged = json.dumps(document).encode()
        headers = [(name, value) for name, value in captured['headers'] if name.lower() != 'content-length']
        headers.append(('Content-Length', str(len(paged))))
        start_response(captured['status'], headers)
        return [paged]


class MotoServer(ThreadedMotoServer):
    """moto on 127.0.0.1 with a free port and a record of the operations it served."""

    def __init__(self, paginate=False):
        super().__init__(ip_address='127.0.0.1', port=0, verbose=False)
        self.paginate = paginate
        self._lock = threading.Lock()
        self._requests = []

    def _server_entry(self):
        app = _Recorder(DomainDispatcherApplication(create_backend_app), self)
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=_QuietHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint_url(self):
        host, port = self.get_host_and_port()
        return 'http://%s:%d' % (host, port)

    def record(self, operation, params):
        with self._lock:
            self._requests.append({'operation': operation, 'params': params})

    def requests(self, operation=None):
        """The recorded requests (``{'operation', 'params'}``), all or of one operation."""
        with self._lock:
            return [request for request in self._requests if operation is None or request['operation'] == operation]

    def clear(self):
        with self._lock:
            del self._requests[:]
