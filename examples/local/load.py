# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bounded background load: ``hey`` at a fixed rate for at most a given time, or a Python loop where hey is missing.

    load = Load(url, rate=100, duration=60).start()
    ...
    load.stop()
    load.result()   # {'requests': n, 'status': {'200': n, '500': m}, 'errors': k, 'rate': r, 'seconds': s, 'tool': 'hey'}

Both are bounded in time (``duration``) and therefore in count (about ``rate * duration`` requests).
"""

import http.client
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse

HEY_CONNECTIONS = 10


def parse_hey(output):
    """``(statuses, transport_errors, seconds)`` from hey's text report (statuses as ``{'200': n}``)."""
    statuses = dict((code, int(count)) for code, count in re.findall(r'\[(\d{3})\]\s+(\d+) responses', output))
    errors = 0
    if 'Error distribution:' in output:
        section = output.split('Error distribution:', 1)[1]
        errors = sum(int(count) for count in re.findall(r'^\s+\[(\d+)\]\s', section, re.MULTILINE))
    total = re.search(r'Total:\s+([0-9.]+) secs', output)
    return statuses, errors, float(total.group(1)) if total else None


class Load:
    """``rate`` requests per second to ``url`` for at most ``duration`` seconds, in the background."""

    def __init__(self, url, rate=100, duration=60, connections=None, tool=None, headers=None):
        if rate <= 0 or duration <= 0:
            raise ValueError('rate and duration must be positive')
        self.url = url
        self.rate = float(rate)
        self.duration = float(duration)
        self.connections = int(connections or min(HEY_CONNECTIONS, max(1, int(rate))))
        self.headers = dict(headers or {})
        self.hey = shutil.which('hey') if tool in (None, 'hey') else None
        if tool == 'hey' and not self.hey:
            raise ValueError('hey is not installed')
        self.tool = 'hey' if self.hey else 'python'
        self.process = None
        self.output = None
        self.threads = []
        self.stop_event = threading.Event()
        self.counts = {}
        self.errors = 0
        self.lock = threading.Lock()
        self.started = None
        self.finished = None

    # --- life cycle ------------------------------------------------------------------------------------------

    def start(self):
        self.started = time.monotonic()
        if self.hey:
            argv = [self.hey, '-z', '%gs' % self.duration, '-c', str(self.connections),
                    '-q', '%g' % (self.rate / self.connections)]
            for name, value in self.headers.items():
                argv += ['-H', '%s: %s' % (name, value)]
            argv.append(self.url)
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        else:
            for index in range(self.connections):
                thread = threading.Thread(target=self._loop, args=(index,), daemon=True)
                thread.start()
                self.threads.append(thread)
        return self

    @property
    def running(self):
        if self.process is not None:
            return self.process.poll() is None
        return any(thread.is_alive() for thread in self.threads)

    def stop(self, timeout=10.0):
        """Stop early (hey gets SIGINT and prints its report); idempotent. Returns :meth:`result`."""
        if self.process is not None and self.output is None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
            self._collect(timeout)
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)
        if self.finished is None and self.started is not None:
            self.finished = time.monotonic()
        return self.result()

    def wait(self, timeout=None):
        """Wait until the load ends by itself (at most ``duration`` + 10 s, or ``timeout``); returns :meth:`result`."""
        limit = self.duration + 10.0 if timeout is None else timeout
        if self.process is not None:
            self._collect(limit)
        else:
            deadline = time.monotonic() + limit
            for thread in self.threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            self.stop_event.set()
        return self.stop()

    def _collect(self, timeout):
        try:
            self.output, dummy = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.output, dummy = self.process.communicate(timeout=5)
        self.finished = time.monotonic()
        statuses, errors, seconds = parse_hey(self.output or '')
        with self.lock:
            self.counts = statuses
            self.errors = errors
        if seconds:
            self.finished = self.started + seconds

    # --- the Python loop -------------------------------------------------------------------------------------

    def _loop(self, index):
        parts = urllib.parse.urlsplit(self.url)
        path = (parts.path or '/') + ('?' + parts.query if parts.query else '')
        interval = self.connections / self.rate
        next_at = self.started + index * interval / self.connections
        deadline = self.started + self.duration
        connection = None
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now >= deadline:
                break
            if next_at > now:
                self.stop_event.wait(next_at - now)
                continue
            next_at += interval
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10)
                connection.request('GET', path, headers=self.headers)
                response = connection.getresponse()
                response.read()
                key = str(response.status)
                if response.will_close:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException):
                if connection is not None:
                    connection.close()
                connection = None
                key = None
            with self.lock:
                if key is None:
                    self.errors += 1
                else:
                    self.counts[key] = self.counts.get(key, 0) + 1
        if connection is not None:
            connection.close()

    # --- results ---------------------------------------------------------------------------------------------

    def result(self):
        with self.lock:
            status = dict(self.counts)
            errors = self.errors
        requests = sum(status.values()) + errors
        end = self.finished if self.finished is not None else time.monotonic()
        seconds = max(end - self.started, 1e-9) if self.started is not None else 0.0
        return {'requests': requests, 'status': status, 'errors': errors,
                'failed': errors + sum(count for code, count in status.items() if not code.startswith('2')),
                'seconds': round(seconds, 3), 'rate': round(requests / seconds, 1) if seconds else 0.0,
                'tool': self.tool}
