"""Real Prometheus servers for tests: the Debian ``prometheus`` binary on a free 127.0.0.1 port with its own data
directory and a 1 s scrape interval, scraping an exporter the test runs (PyPI ``prometheus_client``) whose
counters and histograms the test sets. Optional ``--web.config.file`` for basic auth and TLS (certificates made
with the ``openssl`` CLI). Every process is stopped by its PID; every wait is bounded.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import warnings

import requests
import yaml

PROMETHEUS_BIN = shutil.which('prometheus') or '/usr/bin/prometheus'
OPENSSL_BIN = shutil.which('openssl') or '/usr/bin/openssl'

# Requests from tests and from ansible-playbook go straight to 127.0.0.1 even where a proxy is configured.
LOCAL_ENV = {'NO_PROXY': '127.0.0.1,localhost', 'no_proxy': '127.0.0.1,localhost'}


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, interval=0.1, message='condition'):
    """Call ``predicate`` until it returns a true value (returned) or ``timeout`` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # pylint: disable=broad-except
            last_error = error
        if time.monotonic() >= deadline:
            raise AssertionError('timed out after %.1f s waiting for %s (last error: %r)' % (timeout, message, last_error))
        time.sleep(interval)


class Exporter:
    """A /metrics endpoint on a free port serving ``registry`` (a ``prometheus_client.CollectorRegistry``)."""

    def __init__(self, registry):
        from prometheus_client import start_http_server  # test dependency, imported where used

        self.registry = registry
        self.port = free_port()
        self._server, self._thread = start_http_server(self.port, addr='127.0.0.1', registry=registry)
        self.target = '127.0.0.1:%d' % self.port

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def bcrypt_hash(password):
    """A bcrypt hash for Prometheus's ``basic_auth_users``: the ``bcrypt`` package if installed, else the C
    library's crypt(3) (glibc/libxcrypt on Debian support ``$2b$``) through the stdlib ``crypt`` module."""
    try:
        import bcrypt  # pylint: disable=import-outside-toplevel
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    except ImportError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        import crypt  # pylint: disable=import-outside-toplevel,deprecated-module
    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    if not hashed or not hashed.startswith('$2'):
        raise RuntimeError('no bcrypt available: install the bcrypt package')
    return hashed


def make_tls_material(directory):
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with ``openssl``.

    Returns a dict of paths: ca, server_cert, server_key, client_cert, client_key, other_ca (an unrelated CA)."""
    os.makedirs(directory, exist_ok=True)
    path = dict((name, os.path.join(directory, name + '.pem')) for name in (
        'ca', 'ca_key', 'server_cert', 'server_key', 'client_cert', 'client_key', 'other_ca', 'other_ca_key'))

    def openssl(*args):
        subprocess.run([OPENSSL_BIN] + list(args), check=True, capture_output=True, timeout=60)

    for ca, key, name in (('ca', 'ca_key', 'canary test CA'), ('other_ca', 'other_ca_key', 'unrelated CA')):
        openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
                '-keyout', path[key], '-out', path[ca], '-days', '2', '-subj', '/CN=%s' % name)
    for role, extensions in (('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'),
                             ('client', 'extendedKeyUsage=clientAuth')):
        request = os.path.join(directory, role + '.csr')
        extfile = os.path.join(directory, role + '.ext')
        with open(extfile, 'w', encoding='utf-8') as handle:
            handle.write(extensions + '\n')
        openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
                '-keyout', path[role + '_key'], '-out', request, '-subj', '/CN=canary %s' % role)
        openssl('x509', '-req', '-in', request, '-CA', path['ca'], '-CAkey', path['ca_key'], '-CAcreateserial',
                '-out', path[role + '_cert'], '-days', '2', '-extfile', extfile)
    return path


class PrometheusServer:
    """One ``prometheus`` process on a free 127.0.0.1 port.

    ``targets``: host:port strings scraped every ``scrape_interval`` as job ``job_name``. ``web_config``: a dict written as the
    ``--web.config.file`` (TLS, basic auth); rewrite it with :meth:`write_web_config` (Prometheus re-reads it on
    every request). ``remote_read_url``: a remote-read endpoint (a dead one makes every query carry a warning).
    """

    def __init__(self, workdir, targets=(), scrape_interval='1s', web_config=None, remote_read_url=None, job_name='exporter'):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.port = free_port()
        self.targets = list(targets)
        self.job_name = job_name
        self.scrape_interval = scrape_interval
        self.web_config_path = os.path.join(self.workdir, 'web.yml') if web_config is not None else None
        self.web_config = web_config
        self.remote_read_url = remote_read_url
        self.process = None
        self.log_path = os.path.join(self.workdir, 'prometheus.log')
        self.session = requests.Session()
        self.session.trust_env = False

    @property
    def scheme(self):
        return 'https' if self.web_config and self.web_config.get('tls_server_config') else 'http'

    @property
    def url(self):
        return '%s://127.0.0.1:%d' % (self.scheme, self.port)

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def write_web_config(self, web_config):
        self.web_config = web_config
        with open(self.web_config_path, 'w', encoding='utf-8') as handle:
            yaml.safe_dump(web_config, handle)

    def start(self, ready_timeout=30, **request_kwargs):
        config = {
            'global': {'scrape_interval': self.scrape_interval, 'scrape_timeout': self.scrape_interval,
                       'evaluation_interval': '1m'},
            'scrape_configs': [{'job_name': self.job_name, 'static_configs': [{'targets': self.targets}]}] if self.targets else [],
        }
        if self.remote_read_url:
            config['remote_read'] = [{'url': self.remote_read_url, 'read_recent': True, 'remote_timeout': '2s'}]
        config_path = os.path.join(self.workdir, 'prometheus.yml')
        with open(config_path, 'w', encoding='utf-8') as handle:
            yaml.safe_dump(config, handle)
        command = [PROMETHEUS_BIN, '--config.file=' + config_path,
                   '--storage.tsdb.path=' + os.path.join(self.workdir, 'data'),
                   '--web.listen-address=127.0.0.1:%d' % self.port, '--log.level=warn']
        if self.web_config_path:
            self.write_web_config(self.web_config)
            command.append('--web.config.file=' + self.web_config_path)
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        try:
            wait_until(lambda: self._ready(request_kwargs), ready_timeout, message='prometheus ready on %s' % self.url)
        except AssertionError:
            self.stop()
            raise AssertionError('prometheus did not become ready; log:\n' + self.log())
        return self

    def _ready(self, request_kwargs):
        if self.process.poll() is not None:
            raise AssertionError('prometheus exited with %s; log:\n%s' % (self.process.returncode, self.log()))
        response = self.session.get(self.url + '/-/ready', timeout=2, **request_kwargs)
        return response.status_code == 200

    def log(self):
        try:
            with open(self.log_path, encoding='utf-8', errors='replace') as handle:
                return handle.read()[-4000:]
        except OSError:
            return ''

    def query(self, query, **request_kwargs):
        """The test's own view of an instant query (plain ``requests``), as the API's ``data`` dict."""
        response = self.session.get(self.url + '/api/v1/query', params={'query': query}, timeout=5, **request_kwargs)
        response.raise_for_status()
        return response.json()['data']

    def wait_for_value(self, query, expected, timeout=20, **request_kwargs):
        """Wait until ``query`` returns one series whose value is ``expected`` (bounded); return the scrape time."""
        def check():
            result = self.query(query, **request_kwargs)['result']
            if len(result) == 1 and float(result[0]['value'][1]) == float(expected):
                return float(result[0]['value'][0])
            return None
        return wait_until(check, timeout, interval=0.2, message='%s == %s on %s' % (query, expected, self.url))

    def stop(self, timeout=10):
        """Stop the process this object started (by its PID), at most ``timeout`` seconds for a clean exit."""
        self.session.close()
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
