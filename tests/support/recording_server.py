"""A tiny HTTP server for tests: a chat webhook or a health check that answers every request with one status.

As a process of its own (the molecule scenarios' webhook, stopped by its PID), it appends every request to a file,
one JSON object a line (method, path, headers, body)::

    python -m tests.support.recording_server --port 8125 --log events.jsonl [--status 200]
"""

import argparse
import hashlib
import hmac
import http.server
import json
import threading
import time


class RecordingServer(object):
    """HTTP on a free 127.0.0.1 port answering every request with ``status``.

    ``requests`` holds ``(method, path, body)`` of every request, ``headers`` the request's headers at the same index
    (``http.client.HTTPMessage``: ``headers[i].get('x-name')`` ignores case). With ``log_path`` every request is
    also appended to that file as one JSON line; ``port`` 0 takes a free one.
    """

    def __init__(self, status, port=0, log_path=None):
        records = self.requests = []
        headers = self.headers = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else b''
                headers.append(self.headers)  # an email.message.Message: names compare case-insensitively
                records.append((self.command, self.path, body))
                if log_path:
                    with open(log_path, 'a', encoding='utf-8') as log:
                        log.write(json.dumps({'method': self.command, 'path': self.path, 'headers': dict(self.headers),
                                              'body': body.decode('utf-8', 'replace')}) + '\n')
                self.send_response(status)
                self.send_header('Content-Length', '0')
                self.end_headers()

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', port), Handler)
        self.url = 'http://127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        return False


SIGNATURE_HEADER = 'X-Canary-Release-Signature'
TIMESTAMP_HEADER = 'X-Canary-Release-Timestamp'


def signature_problem(secret, headers, body, tolerance=300):
    """Why a recorded request is not a valid signed event (None when it is), checked as a receiver would.

    Written from docs/webhooks.md, independently of the collection's code: HMAC-SHA256 under ``secret`` of
    ``<timestamp>.<raw body>``, ``sha256=<hex>``, the timestamp within ``tolerance`` seconds of now.
    """
    timestamp, received = headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
    if timestamp is None or received is None:
        return 'not signed: headers %r' % sorted(headers.keys())
    if not (timestamp.isascii() and timestamp.isdigit()) or abs(time.time() - int(timestamp)) > tolerance:
        return 'timestamp %r is not within %d s of now' % (timestamp, tolerance)
    expected = 'sha256=' + hmac.new(secret.encode('utf-8'), timestamp.encode('ascii') + b'.' + body,
                                    hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), received.encode()):
        return 'signature %r does not sign %r at %s' % (received, body, timestamp)
    if headers.get('Content-Type') != 'application/json':
        return 'Content-Type is %r' % headers.get('Content-Type')
    return None


def unsigned(headers):
    """Whether the request carries neither signature header."""
    return SIGNATURE_HEADER not in headers and TIMESTAMP_HEADER not in headers


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.support.recording_server')
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--log', required=True, help='file the requests are appended to, one JSON object a line')
    parser.add_argument('--status', type=int, default=200)
    args = parser.parse_args(argv)
    server = RecordingServer(args.status, port=args.port, log_path=args.log)
    try:
        server.server.serve_forever()
    finally:
        server.server.server_close()


if __name__ == '__main__':
    main()
