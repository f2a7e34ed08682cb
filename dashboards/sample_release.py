# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A short canary release on the local demo stack (examples/local) with the release's own ``canary_release_*``
metrics beside it, for the dashboard's query test and its preview PNG (dashboards/preview.py).

:class:`ReleaseExposition` serves the release metrics in the Prometheus text format a node_exporter textfile holds
(``canary_release_canary_weight_percent``, ``canary_release_step``, ``canary_release_verdict``,
``canary_release_outcome``, ``canary_release_last_change_timestamp_seconds``, labelled ``service`` and ``version``)
on 127.0.0.1, for the stack's Prometheus to scrape. :func:`play` deploys a worse canary, moves the real NGINX
upstream through the steps with the collection's own ``nginx_weights`` core, under bounded load, and keeps the
exposition in step. Needs ``tests/output/collections`` on ``sys.path`` (``make bootstrap`` builds it).
"""

import contextlib
import http.server
import threading
import time

from ansible_collections.canary.release.plugins.module_utils._nginx import nginx_traffic
from examples.local.stack import LocalStack

JOB = 'canary_release'
VERDICTS = ('pass', 'fail', 'continue', 'inconclusive', 'watched')
OUTCOMES = ('running', 'held', 'promoted', 'rolled_back', 'aborted')
# (weight, step, verdict, outcome) in order: what a 5-25-50-100 release promoted on the judge's passes goes through.
PLAN = ((5, 0, 'continue', 'running'), (5, 0, 'pass', 'running'), (25, 1, 'continue', 'running'),
        (25, 1, 'pass', 'running'), (50, 2, 'pass', 'running'), (100, 3, None, 'promoted'))
# The canary is worse than the baseline, so the comparison panels show two different lines.
BASELINE_APP = {'error_rate': 0.01, 'slow_rate': 0.02, 'slow_ms': 150.0}
CANARY_APP = {'error_rate': 0.05, 'slow_rate': 0.10, 'slow_ms': 150.0}


class ReleaseExposition:
    """The ``canary_release_*`` series of one release, served at ``http://127.0.0.1:<port>/metrics``."""

    def __init__(self, service, version):
        self.service = service
        self.version = version
        self.lock = threading.Lock()
        self.body = b''
        self.set(0, -1, None, 'running')
        exposition = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                with exposition.lock:
                    body = exposition.body
                self.send_response(200 if self.path == '/metrics' else 404)
                self.send_header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args):  # pylint: disable=redefined-builtin
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.address = '127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.2}, daemon=True)
        self.thread.start()

    def scrape_config(self):
        """The Prometheus ``scrape_configs`` entry for this endpoint."""
        return {'job_name': JOB, 'static_configs': [{'targets': [self.address]}]}

    def set(self, weight, step, verdict, outcome):
        """The release's state now: canary weight (percent), step (-1 before the first), latest verdict, outcome."""
        labels = 'service="%s",version="%s"' % (self.service, self.version)
        lines = ['# TYPE canary_release_canary_weight_percent gauge',
                 'canary_release_canary_weight_percent{%s} %g' % (labels, weight),
                 '# TYPE canary_release_step gauge', 'canary_release_step{%s} %d' % (labels, step)]
        for metric, name, values, current in (('canary_release_verdict', 'verdict', VERDICTS, verdict),
                                              ('canary_release_outcome', 'outcome', OUTCOMES, outcome)):
            if current is None:
                continue
            lines.append('# TYPE %s gauge' % metric)
            lines += ['%s{%s,%s="%s"} %d' % (metric, labels, name, value, value == current) for value in values]
        lines += ['# TYPE canary_release_last_change_timestamp_seconds gauge',
                  'canary_release_last_change_timestamp_seconds{%s} %.3f' % (labels, time.time())]
        with self.lock:
            self.body = ('\n'.join(lines) + '\n').encode()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def set_weight(stack, percent):
    """The canary's share of the stack's NGINX upstream, through the ``nginx_weights`` module's core."""
    nginx_traffic.set_upstream_weights(stack.nginx_conf, stack.upstream, canary=stack.canary_servers,
                                       canary_percent=percent, validate_command=stack.validate_command,
                                       reload_command=stack.reload_command)


def play(stack, exposition, step_seconds=5.0, rate=60):
    """Deploy the exposition's version to the canary and walk :data:`PLAN`, ``step_seconds`` per entry, under load
    bounded to the plan's length. Returns ``(start, end)`` (Unix seconds) and the load's result."""
    stack.deploy('canary-1', version=exposition.version, **CANARY_APP)
    started = time.time()
    load = stack.load(rate=rate, duration=step_seconds * len(PLAN) + 1)
    try:
        for weight, step, verdict, outcome in PLAN:
            set_weight(stack, weight)
            exposition.set(weight, step, verdict or 'pass', outcome)
            time.sleep(step_seconds)
    except BaseException:
        load.stop()
        raise
    result = load.wait()
    return (started, time.time()), result


@contextlib.contextmanager
def released_stack(workdir, service='sample', version='2', step_seconds=4.0, rate=60):
    """A started local stack (one stable, one baseline, one canary instance) and the release's exposition, after
    :func:`play`: yields ``(stack, (start, end), load result)``; stops both at the end."""
    exposition = ReleaseExposition(service, version)
    stack = LocalStack(workdir, stable=1, canary=1, baseline=1, extra_scrape_configs=[exposition.scrape_config()],
                       **BASELINE_APP)
    try:
        stack.start()
        span, load = play(stack, exposition, step_seconds=step_seconds, rate=rate)
        yield stack, span, load
    finally:
        stack.stop()
        exposition.stop()
