"""Release metrics through real ansible-playbook runs: the traffic role changes a real nginx's weights and writes the
.prom file that a real node_exporter (textfile collector only) serves and a real Prometheus scrapes every second;
the rollout role's event path publishes a record's step, verdict and outcome; a Pushgateway push is checked on a
local recording HTTP server. Everything listens on 127.0.0.1; every process is stopped by its PID.
"""

import os
import time

import pytest

from tests.support.nginx import NginxServer, find_nginx
from tests.support.node_exporter import NodeExporter, find_node_exporter
from tests.support.playbook import run_playbook
from tests.support.prometheus import PROMETHEUS_BIN, PrometheusServer
from tests.support.recording_server import RecordingServer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_nginx() is None, reason='nginx is not installed'),
    pytest.mark.skipif(find_node_exporter() is None, reason='prometheus-node-exporter is not installed'),
    pytest.mark.skipif(not os.access(PROMETHEUS_BIN, os.X_OK), reason='prometheus is not installed'),
]

CANARY = 'canary-1'
STABLE = ['stable-1', 'stable-2', 'stable-3']
SERVICE = 'web'
VERSION = '2.4.1'
TOKEN = 'pushgateway-token-7d1e'  # noqa: S105 - a test value
WEIGHT = 'canary_release_canary_weight_percent{service="web",version="2.4.1"}'


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    """nginx with one canary and three stable servers; node_exporter reading a textfile directory; Prometheus
    scraping node_exporter every second."""
    workdir = tmp_path_factory.mktemp('release_metrics')
    textfile_dir = workdir / 'textfile'
    textfile_dir.mkdir()
    nginx = NginxServer([CANARY] + STABLE)
    exporter = NodeExporter(textfile_dir, workdir / 'node_exporter.log')
    prometheus = PrometheusServer(workdir / 'prometheus', job_name='node')
    try:
        nginx.start({'upstream.conf': nginx.upstream_block('app', [(CANARY, 'down')] + [(name, '') for name in STABLE]),
                     'site.conf': nginx.default_site('app')})
        exporter.start()
        prometheus.targets = [exporter.target]
        prometheus.start()
        yield nginx, exporter, prometheus, str(textfile_dir)
    finally:
        prometheus.stop()
        exporter.cleanup()
        nginx.cleanup()


def traffic_vars(nginx, path, percent, **extra):
    variables = {'traffic_backend': 'nginx', 'traffic_service': SERVICE, 'traffic_nginx_path': nginx.path('upstream.conf'),
                 'traffic_nginx_upstream': 'app', 'traffic_nginx_canary': [nginx.addresses[CANARY]],
                 'traffic_nginx_validate_command': nginx.validate_command,
                 'traffic_nginx_reload_command': nginx.reload_command,
                 'traffic_canary_percent': percent, 'traffic_metrics_textfile_path': path,
                 'traffic_metrics_version': VERSION}
    variables.update(extra)
    return variables


def traffic(variables, **kwargs):
    task = {'name': 'traffic', 'ansible.builtin.include_role': {'name': 'canary.release.traffic'}}
    return run_playbook([task], extra_vars=variables, timeout=120, **kwargs)


def ok(run):
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def published(run):
    return [task['result'] for task in run.tasks if task['name'].endswith('Publish the release metrics')]


def test_a_weight_change_shows_in_prometheus_within_one_scrape(stack):
    nginx, exporter, prometheus, textfile_dir = stack
    path = os.path.join(textfile_dir, 'canary_release_web.prom')
    for percent in (25, 50):
        ok(traffic(traffic_vars(nginx, path, percent)))
        written = os.stat(path).st_mtime
        prometheus.wait_for_value(WEIGHT, percent, timeout=10)
        # within one scrape, on Prometheus' own clock (so a loaded machine cannot blur it): every sample scraped
        # after the file was written has the new weight, and there is one
        samples = [(float(stamp), float(value))
                   for stamp, value in prometheus.query(WEIGHT + '[60s]')['result'][0]['values']]
        after = [(stamp, value) for stamp, value in samples if stamp > written + 0.05]
        assert after and all(value == percent for stamp, value in after), (written, samples)
        assert abs(100.0 * nginx.count_backends(200)[CANARY] / 200 - percent) <= 15
    text = exporter.metrics_text()
    assert 'node_textfile_scrape_error 0' in text
    assert 'canary_release_step{service="web",version="2.4.1"} -1' in text
    assert 'canary_release_outcome{outcome="running",service="web",version="2.4.1"} 1' in text
    assert sorted(os.listdir(textfile_dir)) == ['canary_release_web.prom']  # no temporary file left behind
    assert oct(os.stat(path).st_mode & 0o777) == '0o644'

    # the same weight again: nothing to change, the file (and its timestamp) stay as they were
    before = os.stat(path)
    again = ok(traffic(traffic_vars(nginx, path, 50)))
    assert [result['changed'] for result in published(again)] == [False]
    assert os.stat(path).st_ino == before.st_ino and os.stat(path).st_mtime_ns == before.st_mtime_ns

    # check mode with diff: the new weight is shown, nothing is written
    checked = ok(traffic(traffic_vars(nginx, path, 10), check=True, diff=True))
    result = published(checked)[0]
    assert result['changed'] and result['metrics']['weight'] == 10.0
    assert WEIGHT + ' 10' in result['diff']['after'] and WEIGHT + ' 50' in result['diff']['before']
    assert os.stat(path).st_ino == before.st_ino
    assert float(prometheus.query(WEIGHT)['result'][0]['value'][1]) == 50


def test_the_rollout_event_path_publishes_step_verdict_and_outcome(stack, tmp_path):
    nginx, exporter, prometheus, textfile_dir = stack
    path = os.path.join(textfile_dir, 'canary_release_api.prom')
    record = {'service': 'api', 'version': '7', 'status': 'paused', 'step': 1, 'weight': 25,
              'steps': [{'index': 0, 'weight': 5, 'verdict': 'pass'}, {'index': 1, 'weight': 25, 'verdict': 'inconclusive'}]}
    event = {'name': 'event', 'ansible.builtin.include_role': {'name': 'canary.release.rollout', 'tasks_from': 'event'},
             'vars': {'rollout_service': 'api', 'rollout_version': '7', 'rollout_record': record,
                      'rollout_event': 'api 7: held at step 1', 'rollout_event_outcome': 'held', 'rollout_stats': False,
                      'rollout_metrics_textfile_path': path, 'traffic_backend': 'nginx'}}
    ok(run_playbook([event], timeout=120))
    labels = 'service="api",version="7"'
    prometheus.wait_for_value('canary_release_step{%s}' % labels, 1, timeout=10)
    assert prometheus.wait_for_value('canary_release_verdict{%s,verdict="inconclusive"}' % labels, 1, timeout=5)
    assert prometheus.wait_for_value('canary_release_outcome{%s,outcome="held"}' % labels, 1, timeout=5)
    assert prometheus.wait_for_value('canary_release_canary_weight_percent{%s}' % labels, 25, timeout=5)
    changed = prometheus.query('canary_release_last_change_timestamp_seconds{%s}' % labels)['result']
    assert abs(float(changed[0]['value'][1]) - time.time()) < 60


def test_a_push_replaces_the_services_group_on_the_pushgateway_with_the_token_kept_out_of_the_log(stack, tmp_path):
    nginx = stack[0]
    with RecordingServer(200) as pushgateway:
        run = ok(traffic(traffic_vars(nginx, '', 0, traffic_metrics_pushgateway_url=pushgateway.url + '/',
                                      traffic_metrics_pushgateway_token=TOKEN), extra_args=['-vvv']))
    assert [(method, path) for method, path, _body in pushgateway.requests] == [
        ('PUT', '/metrics/job/canary_release/service/web')]
    assert pushgateway.headers[0].get('Authorization') == 'Bearer ' + TOKEN
    assert pushgateway.headers[0].get('Content-Type').startswith('text/plain; version=0.0.4')
    body = pushgateway.requests[0][2].decode('utf-8')
    assert WEIGHT + ' 0\n' in body and '# TYPE canary_release_step gauge\n' in body
    assert TOKEN not in run.stdout + run.stderr
    assert published(run)[0]['pushed'] is True
