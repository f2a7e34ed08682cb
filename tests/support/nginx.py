"""A real nginx for tests and benchmarks: its own prefix, configuration, logs and free 127.0.0.1 ports.

One nginx process serves both sides:

* backends: one ``server`` block per backend name on its own port, answering every request with
  ``200 "<name>\\n"`` and an ``X-Backend: <name>`` header, so a client can count which backend answered;
* the front end: whatever the test writes into the files it passes (typically an ``upstream`` block that the
  module under test edits and a ``server`` block listening on :attr:`NginxServer.port` that proxies to it).

Usage::

    with NginxServer(['stable-1', 'stable-2', 'canary-1']) as nginx:
        nginx.start({'upstream.conf': UPSTREAM.format(**nginx.addresses),
                     'site.conf': nginx.default_site('app')})
        counts = nginx.count_backends(1000)
        nginx.stop()

The master runs in the foreground (``daemon off``) as a child of this process and is stopped by its PID.
Validate/reload commands for the modules come from :meth:`NginxServer.command_line`.
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


def find_program(name):
    """``$CANARY_<NAME>``, ``/usr/sbin/<name>`` or ``<name>`` on PATH; None if there is none."""
    configured = os.environ.get('CANARY_' + name.upper())
    if configured:
        return configured
    candidate = '/usr/sbin/' + name
    if os.access(candidate, os.X_OK):
        return candidate
    return shutil.which(name)


def find_nginx():
    """The nginx binary (:func:`find_program`)."""
    return find_program('nginx')


def free_ports(count):
    """``count`` distinct TCP ports that were free on 127.0.0.1 a moment ago."""
    sockets = []
    try:
        for dummy in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(('127.0.0.1', 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def upstream_weights(text):
    """``{address: weight}`` of the ``server`` lines of an upstream configuration as NGINX reads them: 1 without
    ``weight=``, 0 when marked ``down`` (comments ignored)."""
    weights = {}
    for line in text.splitlines():
        words = line.split('#', 1)[0].replace(';', ' ').split()
        if words[:1] == ['server']:
            given = [int(word.split('=', 1)[1]) for word in words if word.startswith('weight=')]
            weights[words[1]] = 0 if 'down' in words else (given or [1])[0]
    return weights


def child_pids(parent):
    """PIDs of the live (not zombie) children of process ``parent``, from /proc."""
    children = set()
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry, 'rb') as handle:
                stat = handle.read()
        except OSError:
            continue
        # Field 3 (state) and 4 (ppid) follow the parenthesised command name, which may contain spaces.
        fields = stat[stat.rindex(b')') + 2:].split()
        if int(fields[1]) == parent and fields[0] != b'Z':
            children.add(int(entry))
    return children


def stop_process(process, timeout=10.0):
    """Stop a child we started, by its PID: SIGTERM, then SIGKILL after ``timeout``; None is fine."""
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    if process is not None and process.stderr is not None:
        process.stderr.close()


class ChildServer(object):
    """A server process this test process started (``self.process``), stopped by its PID; a context manager."""

    process = None

    def stop(self, timeout=10.0):
        """Stop the process by its PID (SIGTERM, then SIGKILL after ``timeout``); idempotent."""
        process, self.process = self.process, None
        stop_process(process, timeout)

    def cleanup(self):
        self.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.cleanup()
        return False

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None


def main_conf(prefix, includes, worker_processes=1, worker_connections=4096):
    """nginx.conf of an instance under ``prefix``: PID file and error log in ``<prefix>/logs``, temporary files in
    ``<prefix>/tmp``, no access log, the files ``includes`` (absolute paths) included in this order inside ``http {}``."""
    temp = os.path.join(prefix, 'tmp')
    lines = ''.join('    include %s;\n' % path for path in includes)
    return ('worker_processes %d;\n'
            'pid %s;\n'
            'error_log %s warn;\n'
            'events { worker_connections %d; }\n'
            'http {\n'
            '    access_log off;\n'
            '    client_body_temp_path %s/body;\n'
            '    proxy_temp_path %s/proxy;\n'
            '    fastcgi_temp_path %s/fastcgi;\n'
            '    uwsgi_temp_path %s/uwsgi;\n'
            '    scgi_temp_path %s/scgi;\n'
            '%s'
            '}\n' % (worker_processes, os.path.join(prefix, 'logs', 'nginx.pid'), os.path.join(prefix, 'logs', 'error.log'),
                     worker_connections, temp, temp, temp, temp, temp, lines))


class NginxError(RuntimeError):
    pass


class NginxServer(ChildServer):
    """One nginx instance under a temporary prefix.

    Attributes: ``prefix``, ``conf_dir``, ``main_conf``, ``error_log``, ``pid_file``, ``port`` (front end),
    ``url``, ``backend_ports`` and ``addresses`` (``{name: '127.0.0.1:PORT'}``), ``process`` once started.
    """

    def __init__(self, backends, workdir=None, worker_processes=1, worker_connections=4096, nginx=None,
                 keep_prefix=False):
        self.nginx = nginx or find_nginx()
        if not self.nginx:
            raise NginxError('nginx is not installed')
        self.backends = list(backends)
        self.worker_processes = worker_processes
        self.worker_connections = worker_connections
        self.keep_prefix = keep_prefix
        self.prefix = tempfile.mkdtemp(prefix='canary-nginx-', dir=workdir)
        self.conf_dir = os.path.join(self.prefix, 'conf')
        self.main_conf = os.path.join(self.conf_dir, 'nginx.conf')
        self.error_log = os.path.join(self.prefix, 'logs', 'error.log')
        self.pid_file = os.path.join(self.prefix, 'logs', 'nginx.pid')
        for directory in ('conf', 'logs', 'tmp'):
            os.makedirs(os.path.join(self.prefix, directory))
        # Workers drop to an unprivileged user when the master runs as root; they must reach the prefix.
        for directory, dummy, dummy in os.walk(self.prefix):
            os.chmod(directory, 0o755)
        ports = free_ports(len(self.backends) + 1)
        self.port = ports[0]
        self.url = 'http://127.0.0.1:%d' % self.port
        self.backend_ports = dict(zip(self.backends, ports[1:]))
        self.addresses = dict((name, '127.0.0.1:%d' % port) for name, port in self.backend_ports.items())
        self.files = []
        self.process = None

    # --- configuration -------------------------------------------------------------------------------------

    def path(self, name):
        """Absolute path of a file in the configuration directory."""
        return os.path.join(self.conf_dir, name)

    def write(self, name, text):
        """Write ``text`` to ``conf/<name>`` and return its path."""
        path = self.path(name)
        with open(path, 'w', encoding='utf-8', newline='') as handle:
            handle.write(text)
        return path

    def read(self, name):
        with open(self.path(name), 'rb') as handle:
            return handle.read()

    def default_site(self, target, extra_location=''):
        """A front-end ``server`` block on :attr:`port` proxying to ``target`` (an upstream name or ``$var``)."""
        return ('server {\n'
                '    listen 127.0.0.1:%d;\n'
                '    location / {\n'
                '        proxy_pass http://%s;\n'
                '        proxy_next_upstream off;\n'
                '%s'
                '    }\n'
                '}\n' % (self.port, target, extra_location))

    def upstream_block(self, name, members, directives=()):
        """``upstream name { directives; server ADDRESS params; ... }``; ``members`` are (backend, params)."""
        lines = ['upstream %s {\n' % name]
        lines.extend('    %s\n' % directive for directive in directives)
        for backend, params in members:
            lines.append('    server %s%s;\n' % (self.addresses[backend], (' ' + params) if params else ''))
        lines.append('}\n')
        return ''.join(lines)

    def _backends_conf(self):
        blocks = []
        for name in self.backends:
            blocks.append('server {\n'
                          '    listen 127.0.0.1:%d;\n'
                          '    location / {\n'
                          '        add_header X-Backend %s always;\n'
                          '        return 200 "%s\\n";\n'
                          '    }\n'
                          '}\n' % (self.backend_ports[name], name, name))
        return ''.join(blocks)

    def _main_conf(self, files):
        includes = [self.path('backends.conf')] + [self.path(name) for name in files]
        return main_conf(self.prefix, includes, self.worker_processes, self.worker_connections)

    def configure(self, files):
        """Write ``files`` (``{name: text}``, included in this order inside ``http {}``) and nginx.conf."""
        for name, text in files.items():
            self.write(name, text)
        self.files = list(files)
        self.write('backends.conf', self._backends_conf())
        self.write('nginx.conf', self._main_conf(self.files))

    # --- commands --------------------------------------------------------------------------------------------

    def nginx_cmd(self, *args):
        """argv for this instance's nginx, e.g. ``nginx_cmd('-t')`` or ``nginx_cmd('-s', 'reload')``."""
        return [self.nginx, '-p', self.prefix, '-c', self.main_conf, '-e', self.error_log] + list(args)

    def command_line(self, *args):
        """:meth:`nginx_cmd` as one shell-quoted string (what ``validate_command``/``reload_command`` take)."""
        return ' '.join(shlex.quote(part) for part in self.nginx_cmd(*args))

    @property
    def validate_command(self):
        return self.command_line('-t', '-q')

    @property
    def reload_command(self):
        return self.command_line('-s', 'reload')

    def test_config(self):
        """Run ``nginx -t``; return ``(rc, output)``."""
        completed = subprocess.run(self.nginx_cmd('-t'), capture_output=True, text=True, timeout=30, check=False)
        return completed.returncode, completed.stdout + completed.stderr

    # --- life cycle ------------------------------------------------------------------------------------------

    def start(self, files=None, timeout=10.0):
        """Write the configuration (when ``files`` is given), start nginx and wait until every port answers."""
        if files is not None:
            self.configure(files)
        rc, output = self.test_config()
        if rc != 0:
            raise NginxError('nginx -t failed:\n' + output)
        self.process = subprocess.Popen(self.nginx_cmd('-g', 'daemon off;'), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        pending = [self.port] + list(self.backend_ports.values())
        while pending:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode('utf-8', 'replace')
                self.process = None
                raise NginxError('nginx exited at start: %s\n%s' % (error, self.error_log_text()))
            if time.monotonic() > deadline:
                self.stop()
                raise NginxError('nginx did not listen on all ports within %s s' % timeout)
            try:
                socket.create_connection(('127.0.0.1', pending[0]), timeout=0.5).close()
                pending.pop(0)
            except OSError:
                time.sleep(0.02)
        self.wait_for_workers(set())
        return self

    def cleanup(self):
        self.stop()
        if not self.keep_prefix:
            shutil.rmtree(self.prefix, ignore_errors=True)

    def worker_pids(self):
        """PIDs of the master's children (its worker processes, old ones included while they drain)."""
        return child_pids(self.process.pid) if self.running else set()

    def wait_for_workers(self, old_pids, timeout=10.0):
        """Wait until the master has workers and none of them is in ``old_pids`` (a reload finished)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.worker_pids()
            if current and not current & set(old_pids):
                return current
            time.sleep(0.02)
        raise NginxError('nginx workers did not change within %s s (old %s, now %s)\n%s'
                         % (timeout, sorted(old_pids), sorted(self.worker_pids()), self.error_log_text()))

    def reload(self, timeout=10.0):
        """``nginx -s reload`` and wait until only new workers are left."""
        old = self.worker_pids()
        completed = subprocess.run(self.nginx_cmd('-s', 'reload'), capture_output=True, text=True, timeout=30,
                                   check=False)
        if completed.returncode != 0:
            raise NginxError('nginx -s reload failed: %s' % completed.stderr)
        return self.wait_for_workers(old, timeout)

    def error_log_text(self):
        try:
            with open(self.error_log, encoding='utf-8', errors='replace') as handle:
                return handle.read()
        except OSError:
            return ''

    # --- requests --------------------------------------------------------------------------------------------

    def request(self, path='/', headers=None, timeout=5.0, source=None):
        """One GET through the front end: ``(status, body, headers)`` with headers as a list of pairs.

        ``source``: the client's address (any 127.0.0.0/8 address routes through lo), for tests of source rules.
        """
        connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout,
                                                source_address=(source, 0) if source else None)
        try:
            connection.request('GET', path, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read().decode('utf-8', 'replace').strip(), response.getheaders()
        finally:
            connection.close()

    def count_backends(self, count, headers=None, path='/', timeout=60.0, source=None):
        """Send ``count`` GETs over one keep-alive connection; return a Counter of answering backends.

        Non-200 answers count under ``'status <code>'``; stops with NginxError after ``timeout`` seconds.
        ``source`` binds the client to that address (for example ``127.0.0.2``).
        """
        counts = collections.Counter()
        deadline = time.monotonic() + timeout
        connection = None
        try:
            for dummy in range(count):
                if time.monotonic() > deadline:
                    raise NginxError('count_backends timed out after %d requests' % sum(counts.values()))
                if connection is None:
                    connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=5,
                                                            source_address=(source, 0) if source else None)
                try:
                    connection.request('GET', path, headers=headers or {})
                    response = connection.getresponse()
                    body = response.read().decode('utf-8', 'replace').strip()
                except (OSError, http.client.HTTPException):
                    connection.close()
                    connection = None
                    counts['connection error'] += 1
                    continue
                counts[body if response.status == 200 else 'status %d' % response.status] += 1
                if response.will_close:
                    connection.close()
                    connection = None
        finally:
            if connection is not None:
                connection.close()
        return counts
