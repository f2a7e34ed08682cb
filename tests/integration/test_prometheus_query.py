"""canary.release.prometheus_query and canary.release.promql against the real prometheus binary.

Prometheus scrapes, every second, an exporter this test runs with prometheus_client; the test sets the counters
and histograms, waits (bounded) until Prometheus has scraped them, then runs real ansible-playbook processes and
compares what the module and the lookup return with what the exporter served.
"""

import ast
import os
import threading
import time

import pytest
import yaml

from tests.support.paths import REPO_ROOT
from tests.support.playbook import run_playbook
from tests.support.prometheus import LOCAL_ENV, Exporter, PrometheusServer, bcrypt_hash, free_port, make_tls_material

pytestmark = pytest.mark.integration

CANARY = 'canary_requests_total{arm="canary"}'
BUCKETS = 'canary_request_duration_seconds_bucket{arm="canary"}'
PLUGINS = os.path.join(REPO_ROOT, 'plugins')
MANY_TO_MANY = 'canary_request_duration_seconds_bucket + on() canary_request_duration_seconds_bucket'


def play(tasks, **kwargs):
    return run_playbook(tasks=tasks, extra_env=dict(LOCAL_ENV), timeout=120, **kwargs)


def query_task(name, url, query, ignore_errors=False, **options):
    task = {'name': name, 'canary.release.prometheus_query': dict(url=url, query=query, **options)}
    if ignore_errors:
        task['ignore_errors'] = True
    return task


def lookup_task(name, expression, ignore_errors=False, variables=None):
    task = {'name': name, 'ansible.builtin.set_fact': {'value': '{{ %s }}' % expression}}
    if variables:
        task['vars'] = variables
    if ignore_errors:
        task['ignore_errors'] = True
    return task


@pytest.fixture(scope='module')
def metrics():
    from prometheus_client import CollectorRegistry, Counter, Histogram  # pylint: disable=import-outside-toplevel

    registry = CollectorRegistry()
    counter = Counter('canary_requests', 'Requests served', ['arm'], registry=registry)
    histogram = Histogram('canary_request_duration_seconds', 'Latency', ['arm'], buckets=(0.1, 0.5, 1.0), registry=registry)
    range_counter = Counter('canary_range', 'Changed during the range test', registry=registry)
    # What the plugins' EXAMPLES query: steady traffic, a few old 5xx (so the error ratio is 0, not NaN).
    http = Counter('http_requests', 'HTTP requests', ['arm', 'code'], registry=registry)
    counter.labels(arm='canary').inc(5)
    counter.labels(arm='stable').inc(40)
    for seconds in (0.05, 0.05, 0.05, 0.3, 0.3):
        histogram.labels(arm='canary').observe(seconds)
    range_counter.inc(5)
    http.labels(arm='canary', code='500').inc(3)
    stop = threading.Event()

    def traffic():
        while not stop.wait(0.1):
            http.labels(arm='canary', code='200').inc(10)
            http.labels(arm='stable', code='200').inc(90)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    exporter = Exporter(registry)
    yield {'exporter': exporter, 'range': range_counter}
    stop.set()
    thread.join(5)
    exporter.stop()


@pytest.fixture(scope='module')
def prometheus(metrics, tmp_path_factory):
    server = PrometheusServer(tmp_path_factory.mktemp('prometheus'), targets=[metrics['exporter'].target], job_name='web')
    server.start()
    try:
        server.wait_for_value(CANARY, 5, timeout=30)
        server.wait_for_value('sum(canary_request_duration_seconds_count)', 5, timeout=10)
        server.wait_for_value('canary_range_total', 5, timeout=10)
        yield server
    finally:
        server.stop()


def test_instant_queries_return_what_the_exporter_served(prometheus):
    url = prometheus.url
    long_query = ' or '.join([CANARY] + ['canary_requests_total{arm="absent-%03d"}' % index for index in range(80)])
    assert len(long_query) > 2048
    run = play([
        query_task('one series', url, CANARY),
        query_task('sum', url, 'sum(canary_requests_total)'),
        query_task('buckets', url, BUCKETS),
        query_task('nothing', url, 'canary_no_such_metric'),
        query_task('nan', url, 'vector(0) / 0'),
        query_task('inf', url, 'vector(1) / 0'),
        query_task('minus inf', url, '-vector(1) / 0'),
        query_task('scalar', url, 'scalar(sum(canary_requests_total))'),
        query_task('long query is posted', url, long_query),
        query_task('forced post', url, CANARY, method='POST'),
        dict(query_task('check mode', url, CANARY), check_mode=True),
        lookup_task('lookup one series', "lookup('canary.release.promql', '%s')" % CANARY,
                    variables={'canary_prometheus_url': url}),
        lookup_task('lookup list', "lookup('canary.release.promql', '%s', url='%s')" % (BUCKETS, url)),
        lookup_task('lookup nothing', "lookup('canary.release.promql', 'canary_no_such_metric', url='%s')" % url),
        lookup_task('lookup always list', "lookup('canary.release.promql', '%s', url='%s', always_list=true)" % (CANARY, url)),
        lookup_task('lookup scalar and nan', "query('canary.release.promql', 'scalar(sum(canary_requests_total))', "
                                             "'vector(0) / 0', url='%s')" % url),
    ])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    one = run.result('one series')
    assert one['changed'] is False and one['result_type'] == 'vector'
    assert len(one['series']) == 1 and one['series'][0]['value'] == 5.0
    assert one['series'][0]['labels'] == {'__name__': 'canary_requests_total', 'arm': 'canary', 'job': 'web',
                                          'instance': prometheus.targets[0]}
    assert abs(one['series'][0]['timestamp'] - time.time()) < 60
    assert one['request']['method'] == 'GET' and one['request']['path'] == '/api/v1/query'
    assert run.result('sum')['series'][0]['value'] == 45.0

    buckets = dict((series['labels']['le'], series['value']) for series in run.result('buckets')['series'])
    assert buckets == {'0.1': 3.0, '0.5': 5.0, '1.0': 5.0, '+Inf': 5.0}

    assert run.result('nothing')['series'] == [] and run.result('nothing')['result_type'] == 'vector'
    assert run.result('nan')['series'][0]['value'] == 'NaN'
    assert run.result('inf')['series'][0]['value'] == '+Inf'
    assert run.result('minus inf')['series'][0]['value'] == '-Inf'
    scalar = run.result('scalar')
    assert scalar['result_type'] == 'scalar' and len(scalar['series']) == 1
    assert scalar['series'][0]['labels'] == {} and scalar['series'][0]['value'] == 45.0

    posted = run.result('long query is posted')
    assert posted['request']['method'] == 'POST' and posted['series'][0]['value'] == 5.0
    assert run.result('forced post')['request']['method'] == 'POST'
    assert run.result('check mode')['series'][0]['value'] == 5.0 and run.result('check mode')['changed'] is False

    assert run.result('lookup one series')['ansible_facts']['value'] == 5.0
    listed = run.result('lookup list')['ansible_facts']['value']
    assert sorted((series['labels']['le'], series['value']) for series in listed) == \
        sorted([('0.1', 3.0), ('0.5', 5.0), ('1.0', 5.0), ('+Inf', 5.0)])
    assert run.result('lookup nothing')['ansible_facts']['value'] == []
    always = run.result('lookup always list')['ansible_facts']['value']
    assert len(always) == 1 and always[0]['value'] == 5.0 and always[0]['labels']['arm'] == 'canary'
    assert run.result('lookup scalar and nan')['ansible_facts']['value'] == [45.0, 'NaN']


def test_range_and_time_return_the_values_over_time(prometheus, metrics):
    before = prometheus.wait_for_value('canary_range_total', 5)
    time.sleep(1.5)  # at least one more scrape of 5
    metrics['range'].inc(7)
    after = prometheus.wait_for_value('canary_range_total', 12, timeout=15)
    start = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(before - 1))
    run = play([
        query_task('range', prometheus.url, 'canary_range_total', start=start, end='now', step='1s'),
        query_task('at before', prometheus.url, 'canary_range_total', time=before),
        query_task('at after', prometheus.url, 'canary_range_total', time=after),
        query_task('relative range', prometheus.url, 'canary_range_total', start='-2m', step=1),
        lookup_task('lookup range', "lookup('canary.release.promql', 'canary_range_total', url='%s', start='%s', step='1s')"
                    % (prometheus.url, start)),
    ])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    ranged = run.result('range')
    assert ranged['result_type'] == 'matrix' and len(ranged['series']) == 1
    samples = ranged['series'][0]['samples']
    values = [value for _stamp, value in samples]
    stamps = [stamp for stamp, _value in samples]
    assert set(values) == {5.0, 12.0}
    assert values == sorted(values) and values[0] == 5.0 and values[-1] == 12.0
    assert all(abs((later - earlier) - 1.0) < 1e-6 for earlier, later in zip(stamps, stamps[1:]))
    assert ranged['request']['path'] == '/api/v1/query_range' and ranged['request']['params']['step'] == '1'

    assert run.result('at before')['series'][0]['value'] == 5.0
    assert run.result('at after')['series'][0]['value'] == 12.0
    relative = run.result('relative range')['request']['params']
    assert float(relative['end']) - float(relative['start']) == pytest.approx(120)
    looked_up = run.result('lookup range')['ansible_facts']['value']
    looked_up_values = [value for _stamp, value in looked_up[0]['samples']]
    assert looked_up_values[:len(values)] == values  # same start and step; the lookup ran a moment later
    assert set(looked_up_values) == {5.0, 12.0} and looked_up_values == sorted(looked_up_values)


def plugin_examples(plugin_path):
    """The tasks in a plugin's EXAMPLES (read with ast, without importing the plugin)."""
    with open(plugin_path, encoding='utf-8') as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [target.id for target in node.targets] == ['EXAMPLES']:
            return yaml.safe_load(ast.literal_eval(node.value))
    raise AssertionError('no EXAMPLES in %s' % plugin_path)


def runnable_examples(plugin_path, url):
    """The EXAMPLES tasks that need no remote service (none aimed at *.example.com), with http://localhost:9090
    replaced by ``url``; and the number of examples in all."""
    tasks = plugin_examples(plugin_path)
    runnable = [task for task in tasks if 'example.com' not in yaml.safe_dump(task)]
    return yaml.safe_load(yaml.safe_dump(runnable).replace('http://localhost:9090', url)), len(tasks)


def test_the_examples_run_as_written(prometheus):
    """Every EXAMPLES task aimed at a local Prometheus (http://localhost:9090) runs, against the test server."""
    module_tasks, module_total = runnable_examples(os.path.join(PLUGINS, 'modules', 'prometheus_query.py'), prometheus.url)
    lookup_tasks, lookup_total = runnable_examples(os.path.join(PLUGINS, 'lookup', 'promql.py'), prometheus.url)
    assert (len(module_tasks), module_total) == (4, 6)  # the other two need a TLS Mimir and a vaulted password
    assert (len(lookup_tasks), lookup_total) == (5, 6)
    prometheus.wait_for_value('count(rate(http_requests_total{job="web", arm="canary", code="200"}[5m]) > 0)', 1)
    run = play(module_tasks + lookup_tasks)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
    assert len(run.tasks) >= len(module_tasks) + len(lookup_tasks)
    assert all(not task['result'].get('failed') for task in run.tasks)
    assert run.result('Error ratio of the canary over the last 5 minutes')['series'][0]['value'] == 0.0
    assert run.result('Request rate per instance, one point a minute over the last hour')['result_type'] == 'matrix'


def test_server_errors_are_clear_failures(prometheus):
    bad = 'sum(rate(canary_requests_total[5m])'
    run = play([
        query_task('bad promql', prometheus.url, bad, ignore_errors=True),
        query_task('execution error', prometheus.url, MANY_TO_MANY, ignore_errors=True),
        query_task('bad step', prometheus.url, 'up', start='-1h', step='0', ignore_errors=True),
        query_task('too many points', prometheus.url, 'up', start='-30d', step='1s', ignore_errors=True),
        lookup_task('lookup bad promql', "lookup('canary.release.promql', '%s', url='%s')" % (bad, prometheus.url),
                    ignore_errors=True),
        {'name': 'mutually exclusive', 'ignore_errors': True,
         'canary.release.prometheus_query': {'url': prometheus.url, 'query': 'up', 'time': 'now', 'start': '-1h', 'step': 1}},
    ])
    bad_result = run.result('bad promql')
    assert bad_result['failed'] is True and bad_result['error_type'] == 'bad_data'
    assert bad_result['msg'].startswith("Prometheus at %s returned bad_data (HTTP 400) for query '%s': " % (prometheus.url, bad))
    assert 'parse error' in bad_result['msg']

    execution = run.result('execution error')
    assert execution['error_type'] == 'execution' and '(HTTP 422)' in execution['msg']
    assert 'many-to-many matching not allowed' in execution['msg']

    assert run.result('bad step')['error_type'] == 'invalid_argument' and 'must be > 0' in run.result('bad step')['msg']
    points = run.result('too many points')
    assert points['error_type'] == 'bad_data' and 'exceeded maximum resolution of 11,000 points' in points['msg']

    looked_up = run.result('lookup bad promql')
    assert looked_up['failed'] is True and 'returned bad_data (HTTP 400)' in looked_up['msg'] and prometheus.url in looked_up['msg']
    assert 'mutually exclusive' in run.result('mutually exclusive')['msg']


def test_server_warnings_are_surfaced(tmp_path):
    dead = 'http://127.0.0.1:%d/read' % free_port()
    server = PrometheusServer(tmp_path / 'warn', remote_read_url=dead).start()
    try:
        run = play([
            query_task('warned', server.url, 'up'),
            lookup_task('lookup warned', "lookup('canary.release.promql', 'up', url='%s')" % server.url),
        ])
    finally:
        server.stop()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    warned = run.result('warned')
    assert warned['series'] == []
    assert any('remote_read' in warning and 'connection refused' in warning for warning in warned['prometheus_warnings'])
    assert any(warning.startswith('Prometheus: remote_read') for warning in warned['warnings'])
    lookup_warnings = run.result('lookup warned').get('warnings', [])  # Ansible attaches the lookup's warning to the task
    assert any(warning.startswith("Prometheus (query 'up'): remote_read") for warning in lookup_warnings), lookup_warnings


def test_prometheus_stopped_mid_run_is_a_clear_error(tmp_path):
    server = PrometheusServer(tmp_path / 'stop').start()
    try:
        run = play([
            query_task('while up', server.url, 'vector(7)'),
            {'name': 'stop prometheus', 'ansible.builtin.command': {'argv': ['kill', '-TERM', str(server.pid)]}},
            {'name': 'wait until stopped',
             'ansible.builtin.wait_for': {'host': '127.0.0.1', 'port': server.port, 'state': 'stopped', 'timeout': 20}},
            query_task('after stop', server.url, 'vector(7)', ignore_errors=True),
            lookup_task('lookup after stop', "lookup('canary.release.promql', 'vector(7)', url='%s')" % server.url,
                        ignore_errors=True),
        ])
    finally:
        server.stop()
    assert run.result('while up')['series'][0]['value'] == 7.0
    after = run.result('after stop')
    assert after['failed'] is True and after['error_type'] == 'connection'
    assert after['msg'] == "cannot connect to Prometheus at %s for query 'vector(7)': [Errno 111] Connection refused" % server.url
    looked_up = run.result('lookup after stop')
    assert looked_up['failed'] is True and "cannot connect to Prometheus at %s for query 'vector(7)'" % server.url in looked_up['msg']


def test_basic_auth_tls_and_client_certificates(tmp_path):
    tls = make_tls_material(str(tmp_path / 'tls'))
    web = {'tls_server_config': {'cert_file': tls['server_cert'], 'key_file': tls['server_key']},
           'basic_auth_users': {'canary': bcrypt_hash('s3cret-pass')}}
    auth = {'url_username': 'canary', 'url_password': 's3cret-pass'}
    server = PrometheusServer(tmp_path / 'tls-prom', web_config=web)
    server.start(verify=tls['ca'], auth=('canary', 's3cret-pass'))
    url = server.url
    try:
        run = play([
            query_task('ca and password', url, 'vector(42)', ca_path=tls['ca'], **auth),
            query_task('without ca', url, 'vector(42)', ignore_errors=True, **auth),
            query_task('wrong ca', url, 'vector(42)', ca_path=tls['other_ca'], ignore_errors=True, **auth),
            query_task('no validation', url, 'vector(42)', validate_certs=False, **auth),
            query_task('wrong password', url, 'vector(42)', ca_path=tls['ca'], url_username='canary',
                       url_password='nope', ignore_errors=True),
            query_task('no credentials', url, 'vector(42)', ca_path=tls['ca'], ignore_errors=True),
            lookup_task('lookup from variables', "lookup('canary.release.promql', 'vector(42)')",
                        variables={'canary_prometheus_url': url, 'canary_prometheus_username': 'canary',
                                   'canary_prometheus_password': 's3cret-pass', 'canary_prometheus_ca_path': tls['ca']}),
        ])
        assert run.result('ca and password')['series'][0]['value'] == 42.0
        for name in ('without ca', 'wrong ca'):
            failed = run.result(name)
            assert failed['error_type'] == 'tls', failed
            assert 'CERTIFICATE_VERIFY_FAILED' in failed['msg'] and url in failed['msg']
        assert run.result('no validation')['series'][0]['value'] == 42.0
        for name in ('wrong password', 'no credentials'):
            failed = run.result(name)
            assert failed['error_type'] == 'http' and 'HTTP 401' in failed['msg'] and 'url_username' in failed['msg'], failed
        assert run.result('lookup from variables')['ansible_facts']['value'] == 42.0

        # Now require a client certificate signed by the CA (Prometheus re-reads the web config on each request).
        web['tls_server_config'].update({'client_auth_type': 'RequireAndVerifyClientCert', 'client_ca_file': tls['ca']})
        server.write_web_config(web)
        wait_for_client_cert_requirement(server, tls)
        client_cert = {'client_cert': tls['client_cert'], 'client_key': tls['client_key']}
        run = play([
            query_task('no client cert', url, 'vector(42)', ca_path=tls['ca'], ignore_errors=True, **auth),
            query_task('client cert', url, 'vector(42)', ca_path=tls['ca'], **dict(auth, **client_cert)),
            lookup_task('lookup client cert', "lookup('canary.release.promql', 'vector(42)', url='%s', ca_path='%s', "
                        "client_cert='%s', client_key='%s', url_username='canary', url_password='s3cret-pass')"
                        % (url, tls['ca'], tls['client_cert'], tls['client_key'])),
        ])
    finally:
        server.stop()
    refused = run.result('no client cert')
    assert refused['failed'] is True and refused['error_type'] == 'tls', refused
    assert 'BAD_CERTIFICATE' in refused['msg'] or 'CERTIFICATE_REQUIRED' in refused['msg'], refused
    assert url in refused['msg'] and "query 'vector(42)'" in refused['msg']
    assert run.result('client cert')['series'][0]['value'] == 42.0
    assert run.result('lookup client cert')['ansible_facts']['value'] == 42.0


def wait_for_client_cert_requirement(server, tls):
    """Bounded wait until a fresh TLS connection without a client certificate is refused."""
    import requests  # pylint: disable=import-outside-toplevel

    def get(**kwargs):
        with requests.Session() as session:  # a new connection, so a new handshake
            session.trust_env = False
            return session.get(server.url + '/-/ready', verify=tls['ca'], auth=('canary', 's3cret-pass'), timeout=2,
                               **kwargs)

    deadline = time.monotonic() + 10
    while True:
        try:
            get()
        except requests.exceptions.RequestException:
            break
        assert time.monotonic() < deadline, 'prometheus did not start requiring client certificates'
        time.sleep(0.2)
    assert get(cert=(tls['client_cert'], tls['client_key'])).status_code == 200
