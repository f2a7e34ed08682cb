# -*- coding: utf-8 -*-
# Copyright (c) 2026, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Send a load plan's requests until its time bound, a stop signal, or the end of the process it watches.

Per target, ``hey`` (``-z`` the time bound, ``-q``/``-c`` the rate; its CSV report, one line per request, gives
the counts when it ends, so its targets count 0 requests until then) or a
Python loop (connections sending one request at a time on a fixed schedule, so a slow service gets fewer
requests, never a backlog). Every second the counts go to the status file (JSON, replaced atomically); the last
write says why the load ended: ``duration``, ``stopped`` (SIGTERM, the ``stopped`` state of the module) or
``play ended`` (the watched process - the ``ansible-playbook`` that started the load - is gone).
"""

import http.client
import json
import os
import signal
import ssl
import subprocess
import threading
import time
from urllib.parse import urlsplit

from ansible_collections.canary.release.plugins.module_utils._loadtest.load_plan import connections_for

STATUS_INTERVAL = 1.0
HEY_CONNECTIONS = 10


def process_alive(pid):
    """Whether process ``pid`` exists (and is not a zombie)."""
    try:
        with open('/proc/%d/stat' % pid, encoding='utf-8') as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


class _Counts:
    """One target's counts, shared by its workers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.status = {}
        self.errors = 0

    def add(self, status=None):
        with self.lock:
            if status is None:
                self.errors += 1
            else:
                key = str(status)
                self.status[key] = self.status.get(key, 0) + 1

    def snapshot(self):
        with self.lock:
            return dict(self.status), self.errors


class LoadRunner:
    """Runs ``plan`` (from :func:`.load_plan.build_load_plan`) in this process; :meth:`run` blocks until it ends."""

    def __init__(self, plan, status_path, watch_pid=None, clock=time.monotonic):
        self.plan = plan
        self.status_path = status_path
        self.watch_pid = watch_pid
        self.clock = clock
        self.stop_event = threading.Event()
        self.counts = [_Counts() for dummy in plan['targets']]
        self.processes = []
        self.threads = []
        self.started = None
        self.started_at = None
        self.ended = None
        self.reason = None

    # --- the life of the load ------------------------------------------------------------------------------

    def run(self):
        """Send the load, write the status every second, and the final status with the reason it ended."""
        self.started = self.clock()
        self.started_at = time.time()
        signal.signal(signal.SIGTERM, lambda signum, frame: self.stop_event.set())
        for index, target in enumerate(self.plan['targets']):
            if self.plan['tool'] == 'hey':
                self._start_hey(index, target)
            else:
                self._start_python(index, target)
        deadline = self.started + self.plan['duration']
        while True:
            self.write_status(running=True)
            if self.stop_event.wait(STATUS_INTERVAL):
                self.reason = 'stopped'
                break
            if self.clock() >= deadline:
                self.reason = 'duration'
                break
            if self.watch_pid and not process_alive(self.watch_pid):
                self.reason = 'play ended'
                break
        self.stop_event.set()
        self.ended = self.clock()
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # hey stops and prints its CSV (SIGTERM would lose it)
        for process in self.processes:
            try:
                process.wait(self.plan['timeout'] + 5.0)
            except subprocess.TimeoutExpired:
                process.kill()
        for thread in self.threads:
            thread.join(self.plan['timeout'] + 5.0)
        self.write_status(running=False)
        return self.reason

    def status(self, running):
        targets = []
        requests = errors = 0
        for target, counts in zip(self.plan['targets'], self.counts):
            statuses, transport_errors = counts.snapshot()
            sent = sum(statuses.values()) + transport_errors
            requests += sent
            errors += transport_errors
            targets.append({'arm': target['arm'], 'url': target['url'], 'rate': target['rate'], 'requests': sent,
                            'status': statuses, 'transport_errors': transport_errors})
        # the time it sent requests (not the time hey takes to print its report afterwards)
        seconds = ((self.ended or self.clock()) - self.started) if self.started is not None else 0.0
        return {'name': self.plan['name'], 'running': running, 'pid': os.getpid(), 'tool': self.plan['tool'],
                'started_at': self.started_at, 'seconds': round(seconds, 3), 'duration': self.plan['duration'],
                'rate': self.plan['rate'], 'requests': requests, 'transport_errors': errors, 'targets': targets,
                'ended': None if running else self.reason}

    def write_status(self, running):
        temporary = '%s.%d.tmp' % (self.status_path, os.getpid())
        with open(temporary, 'w', encoding='utf-8') as handle:
            json.dump(self.status(running), handle, sort_keys=True)
        os.replace(temporary, self.status_path)

    # --- hey -----------------------------------------------------------------------------------------------

    def _start_hey(self, index, target):
        connections = max(1, min(HEY_CONNECTIONS, int(target['rate'])))
        argv = [self.plan['tool_path'], '-z', '%gs' % self.plan['duration'], '-c', str(connections),
                '-q', '%g' % (target['rate'] / connections), '-m', self.plan['method'],
                '-t', '%d' % max(1, round(self.plan['timeout'])), '-o', 'csv', '-disable-redirects']
        for header, value in sorted(self.plan['headers'].items()):
            argv += ['-H', '%s: %s' % (header, value)]
        if self.plan['body']:
            argv += ['-d', self.plan['body']]
        argv.append(target['url'])
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True)
        self.processes.append(process)
        thread = threading.Thread(target=self._read_hey, args=(process, self.counts[index]), daemon=True)
        thread.start()
        self.threads.append(thread)

    @staticmethod
    def _read_hey(process, counts):
        """hey -o csv: one line per request, the status code in the 7th column (empty or 0 when none came)."""
        for line in process.stdout:
            fields = line.strip().split(',')
            if len(fields) < 7 or not fields[6].isdigit():
                continue  # the header line
            code = int(fields[6])
            counts.add(code if code > 0 else None)

    # --- the Python loop -----------------------------------------------------------------------------------

    def _start_python(self, index, target):
        connections = connections_for(target['rate'])
        for number in range(connections):
            thread = threading.Thread(target=self._loop, args=(target, self.counts[index], number, connections),
                                      daemon=True)
            thread.start()
            self.threads.append(thread)

    def _connection(self, parts):
        timeout = self.plan['timeout']
        if parts.scheme == 'https':
            context = ssl.create_default_context()
            if not self.plan['validate_certs']:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=context)
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

    def _loop(self, target, counts, number, connections):
        parts = urlsplit(target['url'])
        path = (parts.path or '/') + ('?' + parts.query if parts.query else '')
        body = self.plan['body'].encode('utf-8') if self.plan['body'] else None
        interval = connections / target['rate']
        next_at = self.started + number * interval / connections
        deadline = self.started + self.plan['duration']
        connection = None
        while not self.stop_event.is_set():
            now = self.clock()
            if now >= deadline:
                break
            if next_at > now:
                self.stop_event.wait(min(next_at, deadline) - now)
                continue
            next_at = max(next_at + interval, now)
            try:
                if connection is None:
                    connection = self._connection(parts)
                connection.request(self.plan['method'], path, body=body, headers=self.plan['headers'])
                response = connection.getresponse()
                response.read()
                counts.add(response.status)
                if response.getheader('connection', '').lower() == 'close':
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException):
                counts.add(None)
                if connection is not None:
                    connection.close()
                connection = None
        if connection is not None:
            connection.close()
