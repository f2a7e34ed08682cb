"""A tiny HTTP server for tests: a chat webhook or a health check that answers every request with one status."""

import http.server
import threading


class RecordingServer(object):
    """HTTP on a free 127.0.0.1 port answering every request with ``status``; records method, path and body."""

    def __init__(self, status):
        records = self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else b''
                records.append((self.command, self.path, body))
                self.send_response(status)
                self.send_header('Content-Length', '0')
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
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
