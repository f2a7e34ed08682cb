"""The local demo stack (examples/local): the sample app, LocalStack and the deploy task file, all real.

The sample app runs as its own process and is asked over HTTP; its /metrics text is parsed with prometheus_client's
parser. LocalStack starts real sample app processes, a real nginx and a real Prometheus on 127.0.0.1; the canary
share is set by the real ``canary.release.nginx_weights`` module through ansible-playbook, and the deploy role
redeploys the canary through ``examples/local/deploy_tasks.yml``. Every process is stopped by its PID.
"""

import http.client
import json
import math
import os
import subprocess
import sys

import pytest
import yaml

from examples.local.demo import canary_share
from examples.local.load import parse_hey
from examples.local.processes import child_pids, free_ports, is_alive, wait_until
from examples.local.stack import REPO_ROOT, SAMPLE_APP, LocalStack, find_nginx, find_prometheus
from tests.support.playbook import run_playbook

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(find_nginx() is None or find_prometheus() is None,
                                 reason='nginx and prometheus are needed')]

DEPLOY_TASKS = os.path.join(REPO_ROOT, 'examples', 'local', 'deploy_tasks.yml')


# --- the sample app alone -------------------------------------------------------------------------------------------

class App:
    """One sample_app.py process on a free port, with a keep-alive client."""

    def __init__(self, *flags):
        self.port = free_ports(1)[0]
        self.process = subprocess.Popen([sys.executable, SAMPLE_APP, '--listen', '127.0.0.1:%d' % self.port,
                                         '--instance', 'test-1'] + list(flags),
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.connection = None
        wait_until(lambda: self.get('/health')[0] == 200, 10, message='sample app to answer')

    def get(self, path):
        if self.process.poll() is not None:
            raise AssertionError('sample app exited: %s' % self.process.stdout.read().decode())
        if self.connection is None:
            self.connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=5)
        try:
            self.connection.request('GET', path)
            response = self.connection.getresponse()
            return response.status, response.read().decode()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = None
            raise

    def samples(self):
        from prometheus_client.parser import text_string_to_metric_families
        status, text = self.get('/metrics')
        assert status == 200
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found

    def stop(self):
        if self.connection is not None:
            self.connection.close()
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)
        self.process.stdout.close()


@pytest.fixture
def app_factory():
    apps = []

    def make(*flags):
        apps.append(App(*flags))
        return apps[-1]
    yield make
    for app in apps:
        app.stop()


def test_app_counts_requests_and_latency_exactly(app_factory):
    app = app_factory('--app-version', '7', '--latency-ms', '30', '--latency-jitter-ms', '0')
    for dummy in range(3):
        assert app.get('/health') == (200, 'ok 7\n')  # not counted
    answers = [app.get('/') for dummy in range(40)]
    assert answers == [(200, 'hello from test-1 version 7\n')] * 40
    assert app.get('/nowhere')[0] == 404
    samples = app.samples()
    assert samples[('sample_app_requests_total', (('code', '200'),))] == 40
    assert samples[('sample_app_requests_total', (('code', '500'),))] == 0
    assert samples[('sample_app_request_duration_seconds_count', ())] == 40
    buckets = dict((labels[0][1], value) for (name, labels), value in samples.items()
                   if name == 'sample_app_request_duration_seconds_bucket')
    assert sorted(buckets, key=float) == ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1.0', '2.5', '5.0',
                                          '+Inf']
    # 30 ms each: none within 25 ms, all within 50 ms (a loaded machine may push a few past 50 ms, not past 1 s).
    assert buckets['0.025'] == 0
    assert buckets['0.05'] >= 36 and buckets['1.0'] == 40 and buckets['+Inf'] == 40
    assert 40 * 0.030 <= samples[('sample_app_request_duration_seconds_sum', ())] < 40 * 0.2
    assert samples[('sample_app_build_info', (('version', '7'),))] == 1


def test_app_error_and_slow_rates_are_honoured_within_statistical_bounds(app_factory):
    requests, error_rate, slow_rate = 600, 0.2, 0.1
    app = app_factory('--app-version', '3', '--error-rate', str(error_rate), '--latency-ms', '0',
                      '--latency-jitter-ms', '0', '--slow-rate', str(slow_rate), '--slow-ms', '12')
    codes = [app.get('/')[0] for dummy in range(requests)]
    assert set(codes) <= {200, 500}
    samples = app.samples()
    errors = samples[('sample_app_requests_total', (('code', '500'),))]
    assert errors == codes.count(500)
    assert samples[('sample_app_requests_total', (('code', '200'),))] == codes.count(200)
    # Binomial(600, p): 5 standard deviations either side (a false failure about once in 3 million runs).
    for observed, rate in ((errors, error_rate),
                           (requests - samples[('sample_app_request_duration_seconds_bucket', (('le', '0.01'),))],
                            slow_rate)):
        spread = 5 * math.sqrt(requests * rate * (1 - rate))
        assert abs(observed - requests * rate) <= spread, (observed, rate)


def test_app_rejects_bad_flags_and_stops_on_sigterm(app_factory):
    completed = subprocess.run([sys.executable, SAMPLE_APP, '--listen', '127.0.0.1:1', '--instance', 'x',
                                '--app-version', '1', '--error-rate', '1.5'], capture_output=True, text=True,
                               timeout=30, check=False)
    assert completed.returncode != 0 and 'error rate must be between 0 and 1' in completed.stderr
    app = app_factory('--app-version', '1')
    app.get('/')
    app.process.terminate()
    assert app.process.wait(1) == 0


def test_hey_report_and_canary_share_parsing():
    report = ('Summary:\n  Total:\t1.5105 secs\n\nStatus code distribution:\n  [200]\t111 responses\n'
              '  [500]\t39 responses\n\nError distribution:\n  [3]\tGet "http://127.0.0.1:1/": dial tcp: refused\n'
              '  [2]\tGet "http://127.0.0.1:1/": EOF\n')
    assert parse_hey(report) == ({'200': 111, '500': 39}, 5, 1.5105)
    upstream = ('upstream app {\n    keepalive 32;\n    server 127.0.0.1:1 weight=9;  # stable-1\n'
                '    server 127.0.0.1:2;\n    server 127.0.0.1:4 backup;\n    server 127.0.0.1:3 weight=10;\n}\n')
    assert canary_share(upstream, ['127.0.0.1:3']) == 50.0
    assert canary_share(upstream.replace('weight=10', 'weight=10 down'), ['127.0.0.1:3']) == 0.0


# --- the whole stack ------------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    local = LocalStack(tmp_path_factory.mktemp('stack'), stable=3, canary=1, baseline=1, stable_version='1')
    with local:
        yield local


def write_playbook(path, plays):
    with open(path, 'w', encoding='utf-8') as handle:
        yaml.safe_dump(plays, handle, sort_keys=False)
    return str(path)


def test_stack_layout_and_nginx_sends_nothing_to_the_canary_at_first(stack):
    instances = stack.instances
    assert sorted(instances) == ['baseline-1', 'canary-1', 'stable-1', 'stable-2', 'stable-3']
    assert set((i.name, i.track, i.version) for i in instances.values()) == {
        ('stable-1', 'stable', '1'), ('stable-2', 'stable', '1'), ('stable-3', 'stable', '1'),
        ('baseline-1', 'baseline', '1'), ('canary-1', 'canary', '1')}
    assert stack.canary_servers == [instances['canary-1'].address]
    assert len(set(i.address for i in instances.values())) == 5 and all(i.alive for i in instances.values())
    counts = stack.count_instances(80)
    assert counts == {'stable-1': 20, 'stable-2': 20, 'stable-3': 20, 'baseline-1': 20}
    variables = stack.ansible_vars()
    assert variables['traffic_nginx_path'] == stack.nginx_conf and variables['traffic_nginx_upstream'] == 'app'
    assert [metric['kind'] for metric in variables['analysis_metrics']] == ['errors', 'latency']


def test_prometheus_scrapes_every_instance_with_track_and_instance_labels(stack):
    series = stack.query('sample_app_build_info')
    labels = sorted((s['metric']['instance'], s['metric']['track'], s['metric']['service'], s['metric']['version'])
                    for s in series)
    assert labels == [('baseline-1', 'baseline', 'sample', '1'), ('canary-1', 'canary', 'sample', '1'),
                      ('stable-1', 'stable', 'sample', '1'), ('stable-2', 'stable', 'sample', '1'),
                      ('stable-3', 'stable', 'sample', '1')]
    # Both status series exist from the start, so a canary's first errors are a counter increase, not a new series.
    codes = stack.query('sample_app_requests_total{instance="canary-1"}')
    assert sorted(s['metric']['code'] for s in codes) == ['200', '500']


def test_deploy_keeps_the_port_and_changes_the_version(stack):
    before = stack.instances['canary-1']
    after = stack.deploy('canary-1', version='2', error_rate=0.5, latency_ms=1)
    assert (after.address, after.version, after.error_rate, after.latency_ms) == (before.address, '2', 0.5, 1.0)
    assert after.pid != before.pid and not is_alive(before.pid, before.started) and after.alive
    assert stack.instances['canary-1'] == after
    # Prometheus sees the new version on the same target.
    wait_until(lambda: [s['metric']['version'] for s in stack.query('sample_app_build_info{instance="canary-1"}')]
               == ['2'], 15, interval=0.2, message='Prometheus to scrape version 2')


def test_deploy_role_redeploys_through_the_task_file_and_is_idempotent(stack, tmp_path):
    role = {'ansible.builtin.include_role': {'name': 'canary.release.deploy'},
            'vars': {'deploy_service': 'sample', 'deploy_version': '5', 'deploy_tasks_file': DEPLOY_TASKS,
                     'deploy_health_retries': 20, 'deploy_health_delay': 1,
                     'local_stack_versions': {'5': {'error_rate': 0.25}}}}
    playbook = write_playbook(tmp_path / 'deploy.yml', [
        {'name': 'deploy the canary', 'hosts': 'canary', 'gather_facts': False,
         'tasks': [dict(role, name='first deploy'), dict(role, name='second deploy')]}])
    before = stack.instances['canary-1']
    run = run_playbook(playbook=playbook, extra_args=['-i', stack.inventory_path], timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    deploys = [task['result'] for task in run.tasks if 'Deploy version 5 to canary-1' in task['name']]
    assert [result['changed'] for result in deploys] == [True, False], [task['name'] for task in run.tasks]
    after = stack.instances['canary-1']
    assert (after.address, after.version, after.error_rate) == (before.address, '5', 0.25) and after.alive
    assert after.pid != before.pid
    health = [task['result'] for task in run.tasks if 'Wait until the health check' in task['name']]
    assert [result['status'] for result in health] == [200, 200]


def test_canary_share_set_by_nginx_weights_splits_the_traffic(stack):
    variables = stack.ansible_vars()
    workers = stack.nginx_worker_pids()
    run = run_playbook(tasks=[{'name': 'canary share', 'canary.release.nginx_weights': {
        'path': variables['traffic_nginx_path'], 'upstream': variables['traffic_nginx_upstream'],
        'canary': variables['traffic_nginx_canary'], 'canary_percent': 25,
        'validate_command': variables['traffic_nginx_validate_command'],
        'reload_command': variables['traffic_nginx_reload_command']}}], timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.result('canary share')['changed'] is True
    # a request that an old worker takes while it drains follows the old weights (seen once in CI: 99 of 100)
    stack.wait_nginx_reloaded(workers)
    counts = stack.count_instances(400)
    # One nginx worker runs smooth weighted round robin: every full cycle of the weights is exact.
    assert counts.get('canary-1', 0) + counts.get('status 500', 0) == 100, counts
    assert sum(counts.values()) == 400
    assert sum(counts.get(name, 0) for name in ('stable-1', 'stable-2', 'stable-3', 'baseline-1')) == 300


def test_stop_leaves_no_process_behind_and_prometheus_restarts(tmp_path):
    workdir = tmp_path / 'small'
    up = subprocess.run([sys.executable, '-m', 'examples.local.stack', 'up', '--workdir', str(workdir), '--stable', '1',
                         '--baseline', '0'], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    local = LocalStack.attach(workdir)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        # A deploy from another process: the new instance is not a child of this test.
        deploy = subprocess.run([sys.executable, '-m', 'examples.local.stack', 'deploy', '--workdir', str(workdir),
                                 '--instance', 'canary-1', '--app-version', '9'], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=60, check=False)
        assert deploy.returncode == 0 and 'canary-1 now runs version 9' in deploy.stdout, deploy.stderr
        for tool in ('hey', 'python'):
            result = local.load(rate=40, duration=1.5, tool=tool).wait()
            assert result['tool'] == tool and result['failed'] == 0 and 45 <= result['requests'] <= 70, result
        local.stop_prometheus()
        assert not local.status()['prometheus_running']
        local.start_prometheus()
        wait_until(lambda: len(local.query('up == 1')) == 2, 15, message='Prometheus back')
        with open(local.state_path, encoding='utf-8') as handle:
            state = json.load(handle)
        recorded = [state['nginx']['pid'], state['prometheus']['pid']] + [
            fields['pid'] for fields in state['instances'].values()]
        workers = child_pids(state['nginx']['pid'])
        assert len(recorded) == 4 and all(is_alive(pid) for pid in recorded) and workers
    finally:
        down = subprocess.run([sys.executable, '-m', 'examples.local.stack', 'down', '--workdir', str(workdir)],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
        local.stop()
    assert down.returncode == 0 and '(4 processes)' in down.stdout, down.stdout + down.stderr
    assert not [pid for pid in recorded + sorted(workers) if is_alive(pid)]
    assert local.pids() == []
