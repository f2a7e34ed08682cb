#!/usr/bin/env python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The demo's sample service: one HTTP instance whose version, error rate and latency are set by flags.

``GET /`` answers ``200 hello from <instance> version <v>`` (or ``500`` with probability ``--error-rate``) after a
sleep drawn from the latency settings; ``GET /health`` answers ``200 ok <version>`` at once and never fails;
``GET /metrics`` serves Prometheus text:

* ``sample_app_requests_total{code="200"|"500"}``: requests to ``/`` by status (both series exist from the start);
* ``sample_app_request_duration_seconds``: histogram of ``/`` requests, buckets 5 ms .. 5 s;
* ``sample_app_build_info{version="<v>"} 1``.

The ``track`` and ``instance`` labels come from Prometheus's target labels, not from the app. Standard library and
``prometheus_client`` only. SIGTERM or SIGINT stops it within a second.

    python examples/local/sample_app.py --listen 127.0.0.1:8001 --app-version 2 --instance canary-1 --error-rate 0.05
"""

import argparse
import http.server
import random
import signal
import sys
import threading
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client import generate_latest

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Behaviour:
    """What one instance does: its identity, error probability and latency distribution (seconds)."""

    def __init__(self, instance, version, error_rate=0.0, latency_ms=5.0, latency_jitter_ms=2.0, slow_rate=0.0,
                 slow_ms=300.0, rng=None):
        for name, rate in (('error rate', error_rate), ('slow rate', slow_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError('%s must be between 0 and 1, got %r' % (name, rate))
        for name, value in (('latency', latency_ms), ('latency jitter', latency_jitter_ms), ('slow latency', slow_ms)):
            if value < 0:
                raise ValueError('%s must not be negative, got %r ms' % (name, value))
        self.instance = instance
        self.version = version
        self.error_rate = error_rate
        self.latency_ms = latency_ms
        self.latency_jitter_ms = latency_jitter_ms
        self.slow_rate = slow_rate
        self.slow_ms = slow_ms
        self.rng = rng or random.Random()
        self.lock = threading.Lock()

    def draw(self):
        """``(status, delay_seconds)`` for one request to ``/``."""
        with self.lock:
            failed = self.rng.random() < self.error_rate
            slow = self.rng.random() < self.slow_rate
            jitter = self.rng.uniform(-self.latency_jitter_ms, self.latency_jitter_ms)
        delay_ms = self.slow_ms if slow else max(0.0, self.latency_ms + jitter)
        return (500 if failed else 200), delay_ms / 1000.0


class Metrics:
    """The app's own registry (no process or platform collectors, so /metrics stays small)."""

    def __init__(self, version):
        disable_created_metrics()  # no *_created series: nothing in the demo reads them
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter('sample_app_requests', 'Requests to / by HTTP status code.', ['code'],
                                registry=self.registry)
        self.duration = Histogram('sample_app_request_duration_seconds', 'Time spent answering requests to /.',
                                  buckets=BUCKETS, registry=self.registry)
        self.build_info = Gauge('sample_app_build_info', 'The version this instance runs.', ['version'],
                                registry=self.registry)
        for code in ('200', '500'):
            self.requests.labels(code=code)
        self.build_info.labels(version=version).set(1)

    def observe(self, status, seconds):
        self.requests.labels(code=str(status)).inc()
        self.duration.observe(seconds)

    def exposition(self):
        return generate_latest(self.registry)


class Activity:
    """Counts requests in flight, so that a stop lets them finish (nginx never sees a cut answer)."""

    def __init__(self):
        self.condition = threading.Condition()
        self.active = 0

    def __enter__(self):
        with self.condition:
            self.active += 1

    def __exit__(self, *exc_info):
        with self.condition:
            self.active -= 1
            self.condition.notify_all()

    def drain(self, timeout):
        with self.condition:
            return self.condition.wait_for(lambda: self.active == 0, timeout)


def make_handler(behaviour, metrics, activity):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'  # keep-alive with nginx's upstream connections
        disable_nagle_algorithm = True  # headers and body leave at once, no 40 ms delayed-ACK stall per request
        server_version = 'sample_app'

        def do_GET(self):  # noqa: N802 (http.server's naming)
            with activity:
                self.answer()

        def answer(self):
            path = self.path.split('?', 1)[0]
            if path == '/':
                started = time.monotonic()
                status, delay = behaviour.draw()
                if delay:
                    time.sleep(delay)
                if status == 200:
                    body = 'hello from %s version %s\n' % (behaviour.instance, behaviour.version)
                else:
                    body = 'error from %s version %s\n' % (behaviour.instance, behaviour.version)
                self.reply(status, body.encode())
                metrics.observe(status, time.monotonic() - started)
            elif path == '/health':
                self.reply(200, ('ok %s\n' % behaviour.version).encode())
            elif path == '/metrics':
                self.reply(200, metrics.exposition(), CONTENT_TYPE_LATEST)
            else:
                self.reply(404, b'not found\n')

        def reply(self, status, body, content_type='text/plain; charset=utf-8'):
            self.send_response(status)
            self.send_header('Content-Type', content_type)
            self.send_header('Content-Length', str(len(body)))
            self.send_header('X-Instance', behaviour.instance)
            self.send_header('X-Version', behaviour.version)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            pass  # one line per request would swamp the log at 100 req/s

    return Handler


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def parse_listen(text):
    host, sep, port = text.rpartition(':')
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError('--listen must be HOST:PORT, got %r' % text)
    return host, int(port)


def parse_args(argv):
    parser = argparse.ArgumentParser(description='Sample HTTP service of the canary.release demo.')
    parser.add_argument('--listen', type=parse_listen, required=True, help='HOST:PORT to listen on')
    parser.add_argument('--app-version', required=True, help='version this instance reports')
    parser.add_argument('--instance', required=True, help='instance name (in answers and headers)')
    parser.add_argument('--error-rate', type=float, default=0.0, help='probability that / answers 500')
    parser.add_argument('--latency-ms', type=float, default=5.0, help='mean latency of / in ms')
    parser.add_argument('--latency-jitter-ms', type=float, default=2.0, help='latency drawn uniformly +- this')
    parser.add_argument('--slow-rate', type=float, default=0.0, help='probability that / takes --slow-ms')
    parser.add_argument('--slow-ms', type=float, default=300.0, help='latency of slow requests in ms')
    parser.add_argument('--seed', type=int, default=None, help='random seed (reproducible draws)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        behaviour = Behaviour(args.instance, args.app_version, args.error_rate, args.latency_ms,
                              args.latency_jitter_ms, args.slow_rate, args.slow_ms, random.Random(args.seed))
    except ValueError as error:
        sys.exit('sample_app: %s' % error)
    metrics = Metrics(args.app_version)
    activity = Activity()
    server = Server(args.listen, make_handler(behaviour, metrics, activity))

    def stop(signum, frame):  # pylint: disable=unused-argument
        # shutdown() waits for serve_forever() to return, so it must not run in the thread that serves.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        activity.drain(0.5)  # requests in flight finish (at most 0.5 s); idle keep-alive connections just close
    return 0


if __name__ == '__main__':
    sys.exit(main())
