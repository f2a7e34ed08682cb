"""The ALB path end to end: playbooks/canary_release.yml against the moto server, judged on CloudWatch data.

moto serves ELBv2 (the listener's weighted forward action, tests/support/alb_fixture.py) and CloudWatch. While a
release runs, a thread of the test puts one datapoint per second and target group - ``RequestCount`` and
``HTTPCode_Target_5XX_Count`` with the ``TargetGroup`` dimension of the canary and of the stable target group, as an
ALB publishes them - so the analysis role judges the canary on CloudWatch (``provider: cloudwatch``, 5 s periods and
windows). The hosts (one canary, two stable) are inventory hosts with the local connection whose deploy writes the
version to a file. A good release (0.5 % errors on both arms) is promoted - the stable hosts take the version and
the canary's weight ends at 0 -; a bad one (25 % errors on the canary) is rolled back by the judge.
"""

import datetime
import json
import os
import threading

import boto3
import pytest
import yaml

from tests.support.alb_fixture import Stack
from tests.support.moto import REGION, MotoServer, aws_env
from tests.support.paths import REPO_ROOT
from tests.support.playbook import run_playbook
from tests.support.recording_server import RecordingServer

pytestmark = pytest.mark.integration

SERVICE = 'web'
PERIOD = 5


class AlbMetrics(object):
    """Puts one datapoint per second per target group into CloudWatch: ``rate`` requests, ``error_rates[group]``
    of them errors (a whole number), until stopped (at most ``limit`` seconds)."""

    def __init__(self, moto, groups, rate=200, limit=170):
        self.client = boto3.client('cloudwatch', endpoint_url=moto.endpoint_url, region_name=REGION,
                                   aws_access_key_id='testing', aws_secret_access_key='testing')
        self.groups = groups
        self.rate = rate
        self.limit = limit
        self.error_rates = dict.fromkeys(groups, 0.005)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _put(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        data = []
        for group in self.groups:
            dimensions = [{'Name': 'TargetGroup', 'Value': group}]
            for name, value in (('RequestCount', self.rate), ('HTTPCode_Target_5XX_Count', round(self.rate * self.error_rates[group]))):
                data.append({'MetricName': name, 'Dimensions': dimensions, 'Timestamp': now, 'Value': float(value),
                             'Unit': 'Count', 'StorageResolution': 1})
        self.client.put_metric_data(Namespace='AWS/ApplicationELB', MetricData=data)

    def _run(self):
        for dummy in range(self.limit):
            self._put()
            if self.stopped.wait(1.0):
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopped.set()
        self.thread.join(10)
        return False


def stats(run):
    """The set_stats of a run (ansible.builtin.pause prints a line before the json callback's document)."""
    document, dummy = json.JSONDecoder().raw_decode(run.stdout[run.stdout.index('{'):])
    return document['global_custom_stats']['canary_release']


def dimension(arn):
    """The TargetGroup dimension of CloudWatch's ALB metrics: ``targetgroup/<name>/<id>``."""
    return arn.split(':')[-1]


def metric(name):
    return {'namespace': 'AWS/ApplicationELB', 'metric_name': name, 'dimensions': {'TargetGroup': '${track}'}}


def test_alb_release_promoted_then_bad_release_rolled_back(tmp_path):
    versions_dir = tmp_path / 'versions'
    versions_dir.mkdir()
    deploy = tmp_path / 'deploy.yml'
    deploy.write_text(yaml.safe_dump([{'name': 'install the version', 'ansible.builtin.copy': {
        'dest': str(versions_dir) + '/{{ inventory_hostname }}', 'content': '{{ deploy_version }}', 'mode': '0600'}}]))
    inventory = tmp_path / 'inventory.yml'
    inventory.write_text(yaml.safe_dump({'all': {
        'vars': {'ansible_connection': 'local'},
        'children': {'canary': {'hosts': {'canary-1': {}}}, 'stable': {'hosts': {'stable-1': {}, 'stable-2': {}}}}}}))
    state_dir = str(tmp_path / 'state')

    server = MotoServer()
    server.start()
    try:
        alb = Stack(server)
        canary, stable = dimension(alb.canary), dimension(alb.stable)
        with RecordingServer(200) as health, AlbMetrics(server, [canary, stable]) as metrics:
            variables = {
                'rollout_service': SERVICE, 'rollout_state_dir': state_dir, 'rollout_report': False,
                'rollout_steps': [{'weight': 50, 'pause': 2 * PERIOD}, {'weight': 100, 'pause': 0}],
                'traffic_backend': 'alb', 'traffic_alb_listener_arn': alb.listener,
                'traffic_alb_stable': alb.name('stable'), 'traffic_alb_canary': alb.name('canary'),
                'traffic_aws_endpoint_url': server.endpoint_url, 'traffic_aws_region': REGION,
                'deploy_tasks_file': str(deploy), 'deploy_health_url': health.url + '/health', 'deploy_health_delay': 0,
                'analysis_aws_endpoint_url': server.endpoint_url, 'analysis_aws_region': REGION,
                'analysis_canary_track': canary, 'analysis_baseline_track': stable,
                'analysis_window': PERIOD, 'analysis_interval': 2, 'analysis_max_duration': '2m', 'promote_serial': 2,
                # the good release is promoted on the judge's pass (the default): at 0.5 % errors it passes in about
                # two periods once a canary error rate of 2 % is ruled out, instead of waiting for the ratio test
                'analysis_rate_floor': 0.02,
                # the test's arms have no per-arm noise beyond the binomial: no overdispersion tempering, so that two
                # 5 s windows decide
                'analysis_dispersion': False,
                'analysis_metrics': [{'name': 'alb_5xx', 'kind': 'errors', 'provider': 'cloudwatch', 'period': PERIOD,
                                      'requests': metric('RequestCount'), 'errors': metric('HTTPCode_Target_5XX_Count')}],
            }

            def release(version):
                return run_playbook(playbook=os.path.join(REPO_ROOT, 'playbooks', 'canary_release.yml'),
                                    extra_vars=dict(variables, rollout_version=version), extra_args=['-i', str(inventory)],
                                    extra_env=dict(aws_env(), ANSIBLE_SHOW_CUSTOM_STATS='True'), timeout=150)

            good = release('2')
            assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
            assert dict((host, (versions_dir / host).read_text()) for host in ('canary-1', 'stable-1', 'stable-2')) == \
                {'canary-1': '2', 'stable-1': '2', 'stable-2': '2'}
            assert alb.weights(alb.default_actions()) == {'stable': 1, 'canary': 0}
            with open(os.path.join(state_dir, SERVICE + '.json'), encoding='utf-8') as handle:
                record = json.load(handle)
            assert record['status'] == 'promoted' and record['version'] == '2'
            assert [step['weight'] for step in record['steps']] == [50.0, 100.0]
            # promoted on the judge's pass (the 100 % step is not judged: a soak)
            assert [step['verdict'] for step in record['steps']] == ['pass', 'watched']
            assert stats(good)['outcome'] == 'promoted'

            metrics.error_rates[canary] = 0.25
            bad = release('3')
        assert bad.returncode == 2, bad.stdout[-3000:] + bad.stderr[-3000:]  # rolled back: not promoted
        assert alb.weights(alb.default_actions()) == {'stable': 1, 'canary': 0}
        with open(os.path.join(state_dir, SERVICE + '.json'), encoding='utf-8') as handle:
            record = json.load(handle)
        assert record['status'] == 'rolled_back' and record['version'] == '3' and record['previous_version'] == '2'
        assert record['steps'][0]['verdict'] == 'fail' and record['steps'][0]['weight'] == 50.0
        assert record['steps'][0]['reason'].startswith('alb_5xx: canary 25% (')
        assert stats(bad)['outcome'] == 'rolled_back'
        # the stable hosts never saw version 3
        assert [(versions_dir / host).read_text() for host in ('canary-1', 'stable-1', 'stable-2')] == ['3', '2', '2']
    finally:
        server.stop()
