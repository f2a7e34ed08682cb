"""A fault-injecting HTTP proxy on 127.0.0.1 in front of an AWS endpoint (the moto server), for retry tests.

Every request is forwarded unchanged, except that a deterministic share of the requests for one service
(Elastic Load Balancing v2 by default, recognised by the SigV4 credential scope) is answered by the proxy itself
with HTTP 400 and the query-protocol error document AWS sends when it throttles::

    <ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>...

With ``every=2`` the 2nd, 4th, 6th... request of that service is throttled, so every API call after the first
one is refused once and has to be retried. Throttled requests never reach the endpoint, so the endpoint's own
record still shows the logical calls. ``requests`` lists ``(operation, throttled)`` for every request seen.
"""

import http.client
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

THROTTLING_BODY = (
    '<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
    '<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>'
    '<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>'
).encode()

HOP_BY_HOP = ('connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'te', 'trailer', 'upgrade')


def _operation(body):
    fields = urllib.parse.parse_qs(body.decode('utf-8', 'replace'))
    return (fields.get('Action') or [None])[0]


class ThrottlingProxy(object):
    """``with ThrottlingProxy(target_url, every=2) as proxy: ... proxy.url ... proxy.throttled()``."""

    def __init__(self, target_url, every=2, service='elasticloadbalancing'):
        target = urllib.parse.urlsplit(target_url)
        self.target_host = target.hostname
        self.target_port = target.port
        self.every = every
        self.service = service
        self._lock = threading.Lock()
        self._count = 0
        self.requests = []
        self._server = ThreadingHTTPServer(('127.0.0.1', 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name='throttling-proxy', daemon=True)

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self._server.server_address[1]

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def throttled(self):
        with self._lock:
            return [operation for operation, throttled in self.requests if throttled]

    def _decide(self, headers, body):
        """Whether to throttle this request; records it."""
        operation = _operation(body)
        ours = ('/%s/aws4_request' % self.service) in (headers.get('Authorization') or '')
        with self._lock:
            throttle = False
            if ours:
                self._count += 1
                throttle = self._count % self.every == 0
            self.requests.append((operation, throttle))
        return throttle

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def _relay(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else b''
                if proxy._decide(self.headers, body):
                    self.send_response(400)
                    self.send_header('Content-Type', 'text/xml')
                    self.send_header('Content-Length', str(len(THROTTLING_BODY)))
                    self.end_headers()
                    self.wfile.write(THROTTLING_BODY)
                    return
                connection = http.client.HTTPConnection(proxy.target_host, proxy.target_port, timeout=30)
                try:
                    headers = dict((name, value) for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP)
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
                    self.send_response(response.status)
                    for name, value in response.getheaders():
                        if name.lower() not in HOP_BY_HOP and name.lower() != 'content-length':
                            self.send_header(name, value)
                    self.send_header('Content-Length', str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                finally:
                    connection.close()

            do_GET = do_POST = do_PUT = do_DELETE = _relay

        return Handler
