# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A whole canary set-up on one machine: sample app instances, an NGINX load balancer and Prometheus on 127.0.0.1.

    from examples.local.stack import LocalStack
    with LocalStack(workdir, stable=3, canary=1, baseline=1, stable_version='1', scrape_interval='1s') as stack:
        stack.deploy('canary-1', version='2', error_rate=0.05)
        load = stack.load(rate=100, duration=60)
        ...

Everything lives under ``workdir``: ``stack.json`` (ports, PIDs, URLs, the source of truth shared with the command
line), ``nginx/`` (its prefix; ``nginx/conf/upstream.conf`` holds ``upstream app { ... }``), ``prometheus/`` and
``logs/``. Instances ``stable-N`` and ``baseline-N`` start at ``stable_version``, ``canary-N`` too until deployed;
the canary servers start ``down`` (0 %), the others with ``weight=1``. Prometheus scrapes each instance with the
target labels ``track``, ``instance`` (its name) and ``service="sample"``.

Command line (from the repository root)::

    python -m examples.local.stack up --workdir DIR [--stable 3 --canary 1 --baseline 1 --stable-version 1]
    python -m examples.local.stack deploy --workdir DIR --instance canary-1 --app-version 2 [--error-rate 0.05 ...]
    python -m examples.local.stack status --workdir DIR [--json]
    python -m examples.local.stack down --workdir DIR
"""

import argparse
import contextlib
import dataclasses
import fcntl
import grp
import json
import os
import pwd
import shlex
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from examples.local.load import Load
from examples.local.processes import ProcessTable, StackError, child_pids, free_ports, is_alive, read_log, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
SAMPLE_APP = os.path.join(HERE, 'sample_app.py')
UPSTREAM = 'app'
SERVICE = 'sample'
TRACKS = ('stable', 'baseline', 'canary')
APP_DEFAULTS = {'error_rate': 0.0, 'latency_ms': 5.0, 'latency_jitter_ms': 2.0, 'slow_rate': 0.0, 'slow_ms': 300.0}
STATE_FILE = 'stack.json'
DEMO_VARS = os.path.join(HERE, 'group_vars', 'all.yml')


def find_binary(name, env_var, candidates):
    """A binary from ``$env_var``, one of ``candidates`` or PATH; None when there is none."""
    configured = os.environ.get(env_var)
    if configured:
        return configured
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which(name)


def find_nginx():
    return find_binary('nginx', 'CANARY_NGINX', ('/usr/sbin/nginx',))


def find_prometheus():
    return find_binary('prometheus', 'CANARY_PROMETHEUS', ('/usr/bin/prometheus',))


def http_get(url, timeout=2.0):
    """``(status, body text)`` of a GET without any proxy (the stack is on 127.0.0.1); HTTP errors are answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, response.read().decode('utf-8', 'replace')
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode('utf-8', 'replace')


def analysis_metrics():
    """The judge's metric definitions for the sample app (error rate and share of requests slower than 100 ms, canary
    vs baseline, with ``${track}`` selectors), as the demo's ``group_vars/all.yml`` defines them."""
    import yaml  # pylint: disable=import-outside-toplevel  # PyYAML comes with ansible-core
    with open(DEMO_VARS, encoding='utf-8') as handle:
        return yaml.safe_load(handle)['analysis_metrics']


@dataclasses.dataclass
class Instance:
    """One sample app process: name (``stable-1``), track, address ``host:port``, url, version and its flags."""
    name: str
    track: str
    address: str
    url: str
    version: str
    error_rate: float = 0.0
    pid: int = None
    started: int = None
    latency_ms: float = APP_DEFAULTS['latency_ms']
    latency_jitter_ms: float = APP_DEFAULTS['latency_jitter_ms']
    slow_rate: float = APP_DEFAULTS['slow_rate']
    slow_ms: float = APP_DEFAULTS['slow_ms']
    log: str = ''

    @property
    def port(self):
        return int(self.address.rsplit(':', 1)[1])

    @property
    def alive(self):
        return bool(self.pid) and is_alive(self.pid, self.started)


class LocalStack:
    """N sample app instances + one NGINX + one Prometheus, all on 127.0.0.1 free ports, all under ``workdir``.

    See the module docstring. :meth:`attach` opens a stack another process started (from its ``stack.json``)."""

    def __init__(self, workdir, stable=3, canary=1, baseline=1, stable_version='1', scrape_interval='1s',
                 nginx_workers=1, extra_scrape_configs=(), **app_options):
        unknown = set(app_options) - set(APP_DEFAULTS)
        if unknown:
            raise TypeError('unknown app options: %s' % ', '.join(sorted(unknown)))
        if stable < 1 or canary < 1 or baseline < 0:
            raise ValueError('a stack needs at least one stable and one canary instance (baseline may be 0)')
        self.workdir = os.path.abspath(str(workdir))
        self.counts = {'stable': stable, 'baseline': baseline, 'canary': canary}
        self.stable_version = str(stable_version)
        self.scrape_interval = scrape_interval
        self.nginx_workers = nginx_workers
        # More Prometheus scrape_configs entries (for example the release's own metrics), scraped beside the app.
        self.extra_scrape_configs = [dict(config) for config in extra_scrape_configs]
        self.app_options = dict(APP_DEFAULTS, **app_options)
        self.processes = ProcessTable()
        self.nginx_bin = find_nginx()
        self.prometheus_bin = find_prometheus()
        self.python = sys.executable
        self.state = None

    # --- paths and state ---------------------------------------------------------------------------------------

    def path(self, *parts):
        return os.path.join(self.workdir, *parts)

    @property
    def state_path(self):
        return self.path(STATE_FILE)

    @contextlib.contextmanager
    def _locked(self):
        """Serialise read-modify-write of stack.json between this object and the command line."""
        with open(self.path('stack.lock'), 'a+', encoding='utf-8') as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load(self):
        with open(self.state_path, encoding='utf-8') as handle:
            self.state = json.load(handle)
        return self.state

    def _save(self):
        temporary = self.state_path + '.tmp'
        with open(temporary, 'w', encoding='utf-8') as handle:
            json.dump(self.state, handle, indent=2, sort_keys=True)
            handle.write('\n')
        os.replace(temporary, self.state_path)

    @classmethod
    def attach(cls, workdir):
        """A LocalStack for a stack started elsewhere (``up``), read from ``workdir/stack.json``."""
        workdir = os.path.abspath(str(workdir))
        try:
            with open(os.path.join(workdir, STATE_FILE), encoding='utf-8') as handle:
                state = json.load(handle)
        except OSError as error:
            raise StackError('no local stack in %s (%s): start one with "up"' % (workdir, error))
        counts = state['counts']
        stack = cls(workdir, stable=counts['stable'], canary=counts['canary'], baseline=counts['baseline'],
                    stable_version=state['stable_version'], scrape_interval=state['scrape_interval'],
                    nginx_workers=state['nginx']['workers'], extra_scrape_configs=state.get('extra_scrape_configs', ()),
                    **state['app_options'])
        stack.state = state
        stack.python = state.get('python') or sys.executable
        return stack

    def _require_state(self):
        if self.state is None:
            raise StackError('the stack is not started')
        return self.state

    # --- what callers read -------------------------------------------------------------------------------------

    @property
    def instances(self):
        """``{name: Instance}``, re-read from stack.json (a deploy from the command line shows at once)."""
        self._require_state()
        with self._locked():
            state = self._load()
        return dict((name, Instance(**fields)) for name, fields in state['instances'].items())

    def names(self, track):
        """Instance names of one track, in order."""
        return ['%s-%d' % (track, number) for number in range(1, self.counts[track] + 1)]

    @property
    def nginx_conf(self):
        return self._require_state()['nginx']['upstream_conf']

    @property
    def upstream(self):
        return UPSTREAM

    @property
    def canary_servers(self):
        state = self._require_state()
        return [state['instances'][name]['address'] for name in self.names('canary')]

    @property
    def validate_command(self):
        return self._require_state()['nginx']['validate_command']

    @property
    def reload_command(self):
        return self._require_state()['nginx']['reload_command']

    @property
    def lb_url(self):
        return self._require_state()['nginx']['url']

    @property
    def prometheus_url(self):
        return self._require_state()['prometheus']['url']

    @property
    def inventory_path(self):
        return self.path('inventory.yml')

    def ansible_vars(self):
        """Role variables for this stack: traffic (NGINX) settings, the Prometheus URL and the metric definitions."""
        return {
            'traffic_backend': 'nginx',
            'traffic_nginx_path': self.nginx_conf,
            'traffic_nginx_upstream': self.upstream,
            'traffic_nginx_canary': self.canary_servers,
            'traffic_nginx_validate_command': self.validate_command,
            'traffic_nginx_reload_command': self.reload_command,
            'traffic_nginx_host': 'localhost',
            'analysis_prometheus_url': self.prometheus_url,
            'analysis_canary_track': 'track="canary"',
            'analysis_baseline_track': 'track="baseline"' if self.counts['baseline'] else 'track="stable"',
            'analysis_metrics': analysis_metrics(),
        }

    # --- start and stop ----------------------------------------------------------------------------------------

    def start(self, timeout=30.0):
        """Start every instance, nginx and Prometheus; return when all answer and Prometheus scrapes every instance."""
        if self.state is not None:
            raise StackError('the stack in %s is already started' % self.workdir)
        if not self.nginx_bin:
            raise StackError('nginx is not installed (Debian package nginx, or set CANARY_NGINX)')
        if not self.prometheus_bin:
            raise StackError('prometheus is not installed (Debian package prometheus, or set CANARY_PROMETHEUS)')
        for directory in ('', 'logs', 'nginx', 'nginx/conf', 'nginx/logs', 'nginx/tmp', 'prometheus'):
            os.makedirs(self.path(directory), exist_ok=True)
        if os.path.exists(self.state_path):
            previous = self._load()
            if any(is_alive(pid, started) for pid, started in _recorded_processes(previous)):
                self.state = None
                raise StackError('a stack still runs in %s: stop it first ("down")' % self.workdir)
        names = [name for track in TRACKS for name in self.names(track)]
        ports = free_ports(len(names) + 2)
        self.state = {
            'workdir': self.workdir, 'repo_root': REPO_ROOT, 'python': self.python, 'counts': self.counts,
            'stable_version': self.stable_version, 'scrape_interval': self.scrape_interval,
            'app_options': self.app_options, 'extra_scrape_configs': self.extra_scrape_configs, 'instances': {},
            'nginx': self._nginx_state(ports[0]), 'prometheus': self._prometheus_state(ports[1]),
        }
        for name, port in zip(names, ports[2:]):
            track = name.rsplit('-', 1)[0]
            address = '127.0.0.1:%d' % port
            self.state['instances'][name] = dataclasses.asdict(Instance(
                name=name, track=track, address=address, url='http://' + address, version=self.stable_version,
                log=self.path('logs', name + '.log'), **self.app_options))
        try:
            with self._locked():
                self._save()
                for name in names:
                    self._start_instance(self.state['instances'][name])
                    self._save()
            for name in names:
                self._wait_instance(self.state['instances'][name], timeout)
            self._write_nginx_config()
            self._start_nginx(timeout)
            self._write_prometheus_config()
            self.start_prometheus(timeout)
            self.write_inventory()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Stop everything this stack started, by PID (also what another process deployed); idempotent."""
        if self.state is None and os.path.exists(self.state_path):
            self._load()
        if self.state is None:
            return
        with self._locked():
            if os.path.exists(self.state_path):
                self._load()
            # The load balancer first, so that no request reaches an instance that is going away.
            self.processes.stop(self.state['nginx'].get('pid'), self.state['nginx'].get('started'))
            self.processes.stop(self.state['prometheus'].get('pid'), self.state['prometheus'].get('started'))
            for fields in self.state['instances'].values():
                self.processes.stop(fields.get('pid'), fields.get('started'), timeout=5)
            self.state['nginx']['pid'] = self.state['prometheus']['pid'] = None
            for fields in self.state['instances'].values():
                fields['pid'] = None
            self._save()
        self.processes.reap()
        for pid in list(self.processes.children):
            self.processes.stop(pid)

    def __enter__(self):
        if self.state is None:
            self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()
        return False

    def pids(self):
        """PIDs of every running process of the stack (instances, nginx master, Prometheus)."""
        with self._locked():
            state = self._load()
        return [pid for pid, started in _recorded_processes(state) if is_alive(pid, started)]

    # --- instances -------------------------------------------------------------------------------------------------

    def _start_instance(self, fields):
        argv = [self.python, SAMPLE_APP, '--listen', fields['address'], '--app-version', fields['version'],
                '--instance', fields['name'], '--error-rate', repr(fields['error_rate']),
                '--latency-ms', repr(fields['latency_ms']), '--latency-jitter-ms', repr(fields['latency_jitter_ms']),
                '--slow-rate', repr(fields['slow_rate']), '--slow-ms', repr(fields['slow_ms'])]
        fields['pid'], fields['started'] = self.processes.spawn(argv, fields['log'])

    def _wait_instance(self, fields, timeout):
        def healthy():
            if not is_alive(fields['pid'], fields['started']):
                raise StackError('%s exited: %s' % (fields['name'], read_log(fields['log'])))
            status, body = http_get(fields['url'] + '/health', timeout=1)
            return status == 200 and body.split() == ['ok', fields['version']]
        try:
            wait_until(healthy, timeout, message='%s to answer at %s' % (fields['name'], fields['url']))
        except StackError as error:
            raise StackError('%s\n%s' % (error, read_log(fields['log'])))

    def deploy(self, name, version, timeout=15.0, **app_options):
        """Restart instance ``name`` on the same port with ``version`` and the given flags (others at the defaults
        the stack was created with); return its new :class:`Instance` once its health check shows the version."""
        unknown = set(app_options) - set(APP_DEFAULTS)
        if unknown:
            raise TypeError('unknown app options: %s' % ', '.join(sorted(unknown)))
        options = dict(self.app_options)
        options.update((key, float(value)) for key, value in app_options.items() if value is not None)
        self._require_state()
        with self._locked():
            state = self._load()
            if name not in state['instances']:
                raise StackError('no instance %r; there are %s' % (name, ', '.join(sorted(state['instances']))))
            fields = state['instances'][name]
            self.processes.stop(fields.get('pid'), fields.get('started'))
            fields.update(options, version=str(version), pid=None, started=None)
            self._start_instance(fields)
            self._save()
        self._wait_instance(fields, timeout)
        return Instance(**fields)

    def instance_counters(self, name):
        """``{'200': n, '500': m, 'count': histogram count, 'buckets': {le: n}}`` read from the instance's /metrics."""
        from prometheus_client.parser import text_string_to_metric_families  # the stack's Python has it
        instance = self.instances[name]
        status, body = http_get(instance.url + '/metrics')
        if status != 200:
            raise StackError('%s /metrics answered %d' % (name, status))
        counters = {'200': 0.0, '500': 0.0, 'count': 0.0, 'buckets': {}}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == 'sample_app_requests_total':
                    counters[sample.labels['code']] = sample.value
                elif sample.name == 'sample_app_request_duration_seconds_count':
                    counters['count'] = sample.value
                elif sample.name == 'sample_app_request_duration_seconds_bucket':
                    counters['buckets'][sample.labels['le']] = sample.value
        return counters

    # --- nginx -----------------------------------------------------------------------------------------------------

    def _nginx_state(self, port):
        prefix = self.path('nginx')
        main_conf = os.path.join(prefix, 'conf', 'nginx.conf')
        error_log = os.path.join(prefix, 'logs', 'error.log')
        base = [self.nginx_bin, '-p', prefix + '/', '-c', main_conf, '-e', error_log]
        return {
            'prefix': prefix, 'main_conf': main_conf, 'upstream_conf': os.path.join(prefix, 'conf', 'upstream.conf'),
            'error_log': error_log, 'pid_file': os.path.join(prefix, 'logs', 'nginx.pid'),
            'address': '127.0.0.1:%d' % port, 'url': 'http://127.0.0.1:%d' % port, 'workers': self.nginx_workers,
            'argv': base + ['-g', 'daemon off;'],
            'validate_command': ' '.join(shlex.quote(part) for part in base + ['-t', '-q']),
            'reload_command': ' '.join(shlex.quote(part) for part in base + ['-s', 'reload']),
            'pid': None, 'started': None,
        }

    def _write_nginx_config(self):
        nginx = self.state['nginx']
        lines = ['# The canary.release local demo\'s load balancer. canary.release.nginx_weights edits the weights.\n',
                 'upstream %s {\n' % UPSTREAM, '    keepalive 32;\n']
        for track in ('stable', 'baseline', 'canary'):
            for name in self.names(track):
                params = 'down' if track == 'canary' else 'weight=1'
                lines.append('    server %s %s;  # %s\n' % (self.state['instances'][name]['address'], params, name))
        lines.append('}\n')
        _write(nginx['upstream_conf'], ''.join(lines))
        temp = os.path.join(nginx['prefix'], 'tmp')
        user = ''
        if os.geteuid() == 0:
            # Workers would otherwise drop to "nobody", which may not reach a workdir under a private directory.
            user = 'user %s %s;\n' % (pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name)
        _write(nginx['main_conf'], (
            '# The canary.release local demo: nginx in front of the sample app instances (upstream.conf).\n'
            '%s'
            'worker_processes %d;\n'
            'pid %s;\n'
            'error_log %s warn;\n'
            'events { worker_connections 4096; }\n'
            'http {\n'
            '    access_log off;\n'
            '    client_body_temp_path %s/body;\n'
            '    proxy_temp_path %s/proxy;\n'
            '    fastcgi_temp_path %s/fastcgi;\n'
            '    uwsgi_temp_path %s/uwsgi;\n'
            '    scgi_temp_path %s/scgi;\n'
            '    include %s;\n'
            '    server {\n'
            '        listen %s;\n'
            '        location / {\n'
            '            proxy_pass http://%s;\n'
            '            proxy_http_version 1.1;\n'
            '            proxy_set_header Connection "";\n'
            '            proxy_set_header Host $host;\n'
            '        }\n'
            '    }\n'
            '}\n' % (user, self.nginx_workers, nginx['pid_file'], nginx['error_log'], temp, temp, temp, temp, temp,
                     nginx['upstream_conf'], nginx['address'], UPSTREAM)))

    def _start_nginx(self, timeout):
        nginx = self.state['nginx']
        completed = _run(shlex.split(nginx['validate_command']))
        if completed[0] != 0:
            raise StackError('nginx -t failed: %s' % completed[1])
        with self._locked():
            nginx['pid'], nginx['started'] = self.processes.spawn(nginx['argv'], self.path('logs', 'nginx.log'))
            self._save()

        def answers():
            if not is_alive(nginx['pid'], nginx['started']):
                raise StackError('nginx exited: %s %s' % (read_log(self.path('logs', 'nginx.log')),
                                                          read_log(nginx['error_log'])))
            return http_get(nginx['url'] + '/', timeout=1)[0] == 200
        wait_until(answers, timeout, message='nginx to answer at %s' % nginx['url'])

    # --- Prometheus ------------------------------------------------------------------------------------------------

    def _prometheus_state(self, port):
        directory = self.path('prometheus')
        return {'directory': directory, 'config': os.path.join(directory, 'prometheus.yml'),
                'data': os.path.join(directory, 'data'), 'address': '127.0.0.1:%d' % port,
                'url': 'http://127.0.0.1:%d' % port, 'log': self.path('logs', 'prometheus.log'),
                'pid': None, 'started': None}

    def _write_prometheus_config(self):
        static_configs = []
        for name, fields in self.state['instances'].items():
            static_configs.append({'targets': [fields['address']],
                                   'labels': {'track': fields['track'], 'instance': name, 'service': SERVICE}})
        config = {
            'global': {'scrape_interval': self.scrape_interval, 'scrape_timeout': self.scrape_interval,
                       'evaluation_interval': '1m'},
            'scrape_configs': [{'job_name': SERVICE, 'static_configs': static_configs}] + self.extra_scrape_configs,
        }
        # JSON is YAML: no YAML library needed.
        _write(self.state['prometheus']['config'], json.dumps(config, indent=2) + '\n')

    def start_prometheus(self, timeout=30.0):
        """Start Prometheus (again, on the same port and data) and wait until it scrapes every instance."""
        prometheus = self._require_state()['prometheus']
        if prometheus.get('pid') and is_alive(prometheus['pid'], prometheus['started']):
            return
        argv = [self.prometheus_bin, '--config.file=' + prometheus['config'],
                '--storage.tsdb.path=' + prometheus['data'], '--storage.tsdb.retention.time=1d',
                '--web.listen-address=' + prometheus['address'], '--log.level=warn']
        with self._locked():
            self._load()
            prometheus = self.state['prometheus']
            prometheus['pid'], prometheus['started'] = self.processes.spawn(argv, prometheus['log'],
                                                                            cwd=prometheus['directory'])
            self._save()
        expected = len(self.state['instances'])

        def scraping():
            if not is_alive(prometheus['pid'], prometheus['started']):
                raise StackError('prometheus exited: %s' % read_log(prometheus['log']))
            status, body = http_get(prometheus['url'] + '/api/v1/targets?state=active', timeout=1)
            if status != 200:
                return False
            targets = [target for target in json.loads(body)['data']['activeTargets']
                       if target['labels'].get('job') == SERVICE]
            return len(targets) == expected and all(target['health'] == 'up' for target in targets)
        wait_until(scraping, timeout, interval=0.2, message='prometheus to scrape every instance')

    def stop_prometheus(self):
        """Stop Prometheus (its data stays), for example to test what a rollout does without metrics."""
        with self._locked():
            self._load()
            prometheus = self.state['prometheus']
            self.processes.stop(prometheus.get('pid'), prometheus.get('started'))
            prometheus['pid'] = prometheus['started'] = None
            self._save()

    def query(self, promql, timeout=5.0):
        """An instant query: the API's ``result`` list (raises StackError on an error answer)."""
        url = '%s/api/v1/query?%s' % (self.prometheus_url, urllib.parse.urlencode({'query': promql}))
        status, body = http_get(url, timeout=timeout)
        if status != 200:
            raise StackError('query %s answered %d: %s' % (promql, status, body[:300]))
        return json.loads(body)['data']['result']

    def track_rates(self, window='10s'):
        """Per-track request and error rates (req/s) over the last ``window``: ``{track: {'requests': r, 'errors': e}}``."""
        rates = dict((track, {'requests': 0.0, 'errors': 0.0}) for track in TRACKS if self.counts[track])
        for key, promql in (('requests', 'sum by (track) (rate(sample_app_requests_total{service="%s"}[%s]))'),
                            ('errors', 'sum by (track) (rate(sample_app_requests_total{service="%s", code=~"5.."}[%s]))')):
            for series in self.query(promql % (SERVICE, window)):
                track = series['metric'].get('track')
                if track in rates:
                    rates[track][key] = float(series['value'][1])
        return rates

    # --- traffic ---------------------------------------------------------------------------------------------------

    def load(self, rate=100, duration=60, path='/', **options):
        """Bounded background load through nginx (hey, else a Python loop): a started :class:`Load`."""
        return Load(self.lb_url + path, rate=rate, duration=duration, **options).start()

    def nginx_worker_pids(self):
        """PIDs of the nginx master's children: its workers, old ones too while they drain after a reload."""
        master = self.state['nginx'].get('pid')
        return child_pids(master) if master else set()

    def wait_nginx_reloaded(self, old_workers, timeout=10.0):
        """Wait until nginx has workers and none of ``old_workers`` is left among them: a request an old worker
        takes after a reload still follows the old weights."""
        old_workers = set(old_workers)

        def only_new_workers():
            now = self.nginx_worker_pids()
            return now if now and not now & old_workers else None
        return wait_until(only_new_workers, timeout, interval=0.02, message='the nginx workers of before the reload to exit')

    def count_instances(self, count, timeout=60.0):
        """Send ``count`` GETs through nginx; ``{instance name or 'status N' or 'error': n}`` (from ``X-Instance``)."""
        counts = {}
        deadline = time.monotonic() + timeout
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for dummy in range(count):
            if time.monotonic() > deadline:
                raise StackError('count_instances timed out after %d requests' % sum(counts.values()))
            try:
                with opener.open(self.lb_url + '/', timeout=5) as response:
                    response.read()
                    key = response.headers.get('X-Instance', 'unknown')
            except urllib.error.HTTPError as error:
                key = error.headers.get('X-Instance') or 'status %d' % error.code
                error.read()
            except OSError:
                key = 'error'
            counts[key] = counts.get(key, 0) + 1
        return counts

    def upstream_text(self):
        with open(self.nginx_conf, encoding='utf-8') as handle:
            return handle.read()

    # --- inventory -------------------------------------------------------------------------------------------------

    def write_inventory(self):
        """``workdir/inventory.yml``: groups stable, baseline, canary (one host per instance, local connection),
        with ``local_stack_workdir`` so that ``examples/local/deploy_tasks.yml`` finds this stack, and ``local_stack``
        (``stack.json``, read when used, as in ``examples/local/inventory.yml``) so that the demo's
        ``examples/local/group_vars/all.yml`` works with it too (``-e @examples/local/group_vars/all.yml``)."""
        groups = {}
        for track in TRACKS:
            hosts = self.names(track)
            if hosts:
                groups[track] = {'hosts': dict((name, {
                    'deploy_health_url': self.state['instances'][name]['url'] + '/health'}) for name in hosts)}
        inventory = {'all': {
            'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': self.python,
                     'local_stack_workdir': self.workdir, 'local_stack_root': REPO_ROOT,
                     'local_stack': "{{ lookup('ansible.builtin.file', local_stack_workdir ~ '/%s') | from_json }}"
                                    % STATE_FILE},
            'children': groups}}
        _write(self.inventory_path, json.dumps(inventory, indent=2) + '\n')
        return self.inventory_path

    # --- status ------------------------------------------------------------------------------------------------------

    def status(self):
        """Everything stack.json knows, with whether each process runs and what each instance's health check says."""
        with self._locked():
            state = self._load()
        report = {'workdir': self.workdir, 'lb_url': state['nginx']['url'], 'prometheus_url': state['prometheus']['url'],
                  'nginx_conf': state['nginx']['upstream_conf'],
                  'nginx_running': _running(state['nginx']), 'prometheus_running': _running(state['prometheus']),
                  'instances': {}}
        for name, fields in state['instances'].items():
            health = None
            try:
                status, body = http_get(fields['url'] + '/health', timeout=1)
                health = body.strip() if status == 200 else 'HTTP %d' % status
            except OSError as error:
                health = 'down (%s)' % getattr(error, 'reason', error)
            report['instances'][name] = {'track': fields['track'], 'address': fields['address'],
                                         'version': fields['version'], 'error_rate': fields['error_rate'],
                                         'pid': fields['pid'], 'health': health}
        return report


def _running(entry):
    return bool(entry.get('pid')) and is_alive(entry['pid'], entry.get('started'))


def _recorded_processes(state):
    entries = [state['nginx'], state['prometheus']] + list(state['instances'].values())
    return [(entry['pid'], entry.get('started')) for entry in entries if entry.get('pid')]


def _write(path, text):
    temporary = path + '.tmp'
    with open(temporary, 'w', encoding='utf-8') as handle:
        handle.write(text)
    os.replace(temporary, path)


def _run(argv):
    import subprocess  # pylint: disable=import-outside-toplevel
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return completed.returncode, completed.stdout + completed.stderr


# --- command line --------------------------------------------------------------------------------------------------

def _app_arguments(parser, defaults):
    parser.add_argument('--error-rate', type=float, default=defaults, help='probability that / answers 500')
    parser.add_argument('--latency-ms', type=float, default=defaults, help='mean latency of / in ms')
    parser.add_argument('--latency-jitter-ms', type=float, default=defaults, help='latency jitter in ms')
    parser.add_argument('--slow-rate', type=float, default=defaults, help='probability that / takes --slow-ms')
    parser.add_argument('--slow-ms', type=float, default=defaults, help='latency of slow requests in ms')


def _app_options(args):
    return dict((key, getattr(args, key)) for key in APP_DEFAULTS if getattr(args, key) is not None)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m examples.local.stack',
                                     description='The canary.release local stack: sample app instances, nginx, Prometheus.')
    commands = parser.add_subparsers(dest='command', required=True)
    up = commands.add_parser('up', help='start a stack and leave it running (writes WORKDIR/stack.json)')
    deploy = commands.add_parser('deploy', help='restart one instance with a new version and flags')
    status = commands.add_parser('status', help='show the instances, their versions and health')
    down = commands.add_parser('down', help='stop every process recorded in WORKDIR/stack.json')
    for command in (up, deploy, status, down):
        command.add_argument('--workdir', required=True, help='directory of the stack')
    up.add_argument('--stable', type=int, default=3)
    up.add_argument('--canary', type=int, default=1)
    up.add_argument('--baseline', type=int, default=1)
    up.add_argument('--stable-version', default='1')
    up.add_argument('--scrape-interval', default='1s')
    _app_arguments(up, None)
    deploy.add_argument('--instance', required=True, help='instance name, for example canary-1')
    deploy.add_argument('--app-version', required=True)
    _app_arguments(deploy, None)
    deploy.add_argument('--app-options', type=json.loads, default=None,
                        help='the app flags as one JSON object, e.g. {"error_rate": 0.05} (individual flags win)')
    deploy.add_argument('--restart', action='store_true',
                        help='restart even when the instance already runs this version with these flags')
    status.add_argument('--json', action='store_true', help='print JSON')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == 'up':
            os.makedirs(args.workdir, exist_ok=True)
            stack = LocalStack(args.workdir, stable=args.stable, canary=args.canary, baseline=args.baseline,
                               stable_version=args.stable_version, scrape_interval=args.scrape_interval,
                               **_app_options(args))
            stack.start()
            print('local stack up in %s: load balancer %s, Prometheus %s, inventory %s'
                  % (stack.workdir, stack.lb_url, stack.prometheus_url, stack.inventory_path))
        elif args.command == 'deploy':
            stack = LocalStack.attach(args.workdir)
            options = dict(args.app_options or {}, **_app_options(args))
            current = stack.instances.get(args.instance)
            wanted = dict(stack.app_options, **dict((key, float(value)) for key, value in options.items()))
            if (not args.restart and current is not None and current.alive and current.version == args.app_version
                    and all(getattr(current, key) == wanted[key] for key in APP_DEFAULTS if key in wanted)):
                print('%s already runs version %s with these flags at %s (PID %d)'
                      % (current.name, current.version, current.address, current.pid))
                return 0
            instance = stack.deploy(args.instance, args.app_version, **options)
            print('%s now runs version %s at %s (error rate %g, PID %d)'
                  % (instance.name, instance.version, instance.address, instance.error_rate, instance.pid))
        elif args.command == 'status':
            report = LocalStack.attach(args.workdir).status()
            if args.json:
                print(json.dumps(report, indent=2, sort_keys=True))
            else:
                print('load balancer %s (%s), Prometheus %s (%s)' % (
                    report['lb_url'], 'running' if report['nginx_running'] else 'stopped', report['prometheus_url'],
                    'running' if report['prometheus_running'] else 'stopped'))
                for name, instance in report['instances'].items():
                    print('  %-12s %-8s %-16s version %-6s error rate %-6g %s' % (
                        name, instance['track'], instance['address'], instance['version'], instance['error_rate'],
                        instance['health']))
        elif args.command == 'down':
            stack = LocalStack.attach(args.workdir)
            running = stack.pids()
            stack.stop()
            print('local stack in %s stopped (%d processes)' % (stack.workdir, len(running)))
    except (StackError, TypeError, ValueError) as error:
        print('error: %s' % error, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
