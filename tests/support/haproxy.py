"""A real HAProxy for tests and benchmarks: its own directory, configuration, stats sockets and free 127.0.0.1 ports.

One HAProxy process serves both sides:

* backends: one ``frontend be_<name>`` per backend name on its own port, answering every request with
  ``200 "<name>\\n"`` (``http-request return``), so a client - or the frontend's request counter - tells which
  backend answered;
* the front end: ``frontend fe`` on :attr:`HaproxyServer.port`, forwarding to ``backend app``, whose ``server``
  lines (one per backend name, named like it) the module under test changes.

The process runs in master-worker mode in the foreground (``-W -db``) as a child of this process; :meth:`reload`
sends the master SIGUSR2 (a new worker reads the file), :meth:`stop` ends it by its PID. Stats sockets: ``admin.sock``
(level admin), ``operator.sock`` (level operator) and a TCP one at level admin on :attr:`stats_port`.
"""

import collections
import http.client
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from examples.local.load import parse_hey  # the demo's parser of hey's report
from tests.support.nginx import ChildServer, child_pids, find_program, free_ports


def find_haproxy():
    """The haproxy binary: ``$CANARY_HAPROXY``, ``/usr/sbin/haproxy`` or ``haproxy`` on PATH; None if there is none."""
    return find_program('haproxy')


class HaproxyError(RuntimeError):
    pass


class HaproxyServer(ChildServer):
    """One HAProxy under a temporary directory; ``addresses`` maps backend names to ``127.0.0.1:PORT``."""

    def __init__(self, backends, threads=2, haproxy=None):
        self.haproxy = haproxy or find_haproxy()
        if not self.haproxy:
            raise HaproxyError('haproxy is not installed')
        self.backends = list(backends)
        self.threads = threads
        self.directory = tempfile.mkdtemp(prefix='canary-haproxy-')
        self.config = os.path.join(self.directory, 'haproxy.cfg')
        self.stderr_path = os.path.join(self.directory, 'haproxy.stderr')
        self.admin_socket = os.path.join(self.directory, 'admin.sock')
        self.operator_socket = os.path.join(self.directory, 'operator.sock')
        ports = free_ports(len(self.backends) + 2)
        self.port, self.stats_port = ports[0], ports[1]
        self.tcp_socket = '127.0.0.1:%d' % self.stats_port
        self.url = 'http://127.0.0.1:%d' % self.port
        self.backend_ports = dict(zip(self.backends, ports[2:]))
        self.addresses = dict((name, '127.0.0.1:%d' % port) for name, port in self.backend_ports.items())
        self.process = None

    # --- configuration -------------------------------------------------------------------------------------

    def server_lines(self, params=None, indent='    '):
        """``server <name> <address> <params>`` for every backend; ``params`` maps names to parameter strings."""
        params = params or {}
        return ''.join('%sserver %s %s%s\n' % (indent, name, self.addresses[name],
                                               (' ' + params[name]) if params.get(name) else '')
                       for name in self.backends)

    def configuration(self, app_section=None, balance='roundrobin'):
        """The whole haproxy.cfg; ``app_section`` replaces the default ``backend app`` section (text)."""
        if app_section is None:
            app_section = 'backend app\n    balance %s\n%s' % (balance, self.server_lines())
        answering = ''.join(
            'frontend be_%s\n'
            '    bind 127.0.0.1:%d\n'
            '    http-request return status 200 content-type text/plain string "%s\\n"\n\n'
            % (name, port, name) for name, port in self.backend_ports.items())
        return ('# Written by tests/support/haproxy.py\n'
                'global\n'
                '    nbthread %d\n'
                '    maxconn 4096\n'
                '    stats socket %s mode 600 level admin\n'
                '    stats socket %s mode 600 level operator\n'
                '    stats socket ipv4@%s level admin\n'
                '\n'
                'defaults\n'
                '    mode http\n'
                '    timeout connect 2s\n'
                '    timeout client 30s\n'
                '    timeout server 30s\n'
                '    timeout http-keep-alive 30s\n'
                '\n'
                'frontend fe\n'
                '    bind 127.0.0.1:%d\n'
                '    default_backend app\n'
                '\n'
                '%s\n'
                '%s' % (self.threads, self.admin_socket, self.operator_socket, self.tcp_socket, self.port,
                        app_section.rstrip('\n') + '\n', answering))

    def write(self, text):
        with open(self.config, 'w', encoding='utf-8', newline='') as handle:
            handle.write(text)

    def read(self):
        with open(self.config, 'rb') as handle:
            return handle.read()

    @property
    def validate_command(self):
        return '%s -c -q -f %%s' % shlex.quote(self.haproxy)

    def check(self, path=None):
        """``haproxy -c`` on ``path`` (default: the configuration); ``(rc, output)``."""
        completed = subprocess.run([self.haproxy, '-c', '-f', path or self.config], capture_output=True, text=True,
                                   timeout=30, check=False)
        return completed.returncode, completed.stdout + completed.stderr

    # --- life cycle ------------------------------------------------------------------------------------------

    def start(self, text=None, timeout=10.0):
        """Write the configuration (default: :meth:`configuration`), start HAProxy, wait until every port answers."""
        self.write(text if text is not None else self.configuration())
        rc, output = self.check()
        if rc != 0:
            raise HaproxyError('haproxy -c failed:\n' + output)
        # stderr to a file, not a pipe: nobody reads a pipe while HAProxy runs, and once its 64 KiB fill with the
        # notices of many reloads the master blocks on the write and starts no new worker
        with open(self.stderr_path, 'ab') as stderr:
            self.process = subprocess.Popen([self.haproxy, '-W', '-db', '-f', self.config], stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=stderr)
        self._wait_for_ports(timeout)
        return self

    def _wait_for_ports(self, timeout):
        deadline = time.monotonic() + timeout
        pending = [self.port, self.stats_port] + list(self.backend_ports.values())
        while pending:
            if self.process.poll() is not None:
                with open(self.stderr_path, 'rb') as log:
                    error = log.read().decode('utf-8', 'replace')
                self.process = None
                raise HaproxyError('haproxy exited at start: %s' % error)
            if time.monotonic() > deadline:
                self.stop()
                raise HaproxyError('haproxy did not listen on all ports within %s s' % timeout)
            try:
                socket.create_connection(('127.0.0.1', pending[0]), timeout=0.5).close()
                pending.pop(0)
            except OSError:
                time.sleep(0.02)

    def reload(self, timeout=10.0):
        """Master-worker reload (SIGUSR2 to the master): a new worker starts from the file. Waits for it."""
        old = self.worker_pids()
        self.process.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.worker_pids()
            if current - old:
                try:
                    self.runtime('show info')
                    return current - old
                except OSError:
                    pass
            time.sleep(0.05)
        raise HaproxyError('no new haproxy worker within %s s; haproxy said: %s' % (timeout, self.stderr_tail()))

    def stderr_tail(self, lines=8):
        """The last lines HAProxy wrote to its stderr (its notices, warnings and alerts)."""
        try:
            with open(self.stderr_path, 'rb') as log:
                return ' | '.join(log.read().decode('utf-8', 'replace').splitlines()[-lines:])
        except OSError as error:
            return '(no stderr: %s)' % error

    def worker_pids(self):
        return child_pids(self.process.pid) if self.running else set()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    # --- runtime API and traffic -----------------------------------------------------------------------------

    def runtime(self, command, timeout=5.0):
        """One command on the admin socket; its answer."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(timeout)
        try:
            connection.connect(self.admin_socket)
            connection.sendall(command.encode() + b'\n')
            chunks = []
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            connection.close()
        return b''.join(chunks).decode()

    def weights(self, backend='app'):
        """``{server: weight}`` as HAProxy has them (``show servers state``), read independently of the module."""
        lines = self.runtime('show servers state %s' % backend).splitlines()
        header = lines[1][2:].split()
        rows = [dict(zip(header, line.split())) for line in lines[2:] if line.strip()]
        return dict((row['srv_name'], int(row['srv_uweight'])) for row in rows)

    def served(self):
        """``{backend name: requests its frontend answered}`` since start (``show stat``'s req_tot)."""
        lines = self.runtime('show stat').splitlines()
        header = lines[0][2:].split(',')
        counts = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(',')))
            if row.get('svname') == 'FRONTEND' and row.get('pxname', '').startswith('be_'):
                counts[row['pxname'][3:]] = int(row['req_tot'] or 0)
        return counts

    def count_with_hey(self, requests, connections=8, timeout=120):
        """Send ``requests`` GETs with ``hey``; return ``(Counter of answering backends, {status: n}, errors)``.

        The backends are counted by HAProxy's own per-frontend request counters (before/after), the statuses and
        transport errors by hey's report.
        """
        hey = shutil.which('hey')
        if not hey:
            raise HaproxyError('hey is not installed')
        before = self.served()
        completed = subprocess.run([hey, '-n', str(requests), '-c', str(connections), '-t', '10', self.url + '/'],
                                   capture_output=True, text=True, timeout=timeout, check=False)
        after = self.served()
        statuses, errors, dummy = parse_hey(completed.stdout)
        counts = collections.Counter(dict((name, after[name] - before.get(name, 0)) for name in after))
        return +counts, statuses, errors

    def request(self, timeout=5.0):
        """One GET through the front end: ``(status, body)``."""
        connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)
        try:
            connection.request('GET', '/')
            response = connection.getresponse()
            return response.status, response.read().decode('utf-8', 'replace').strip()
        finally:
            connection.close()
