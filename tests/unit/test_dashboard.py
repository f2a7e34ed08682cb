"""dashboards/generate.py: the committed Grafana dashboard JSON is exactly what the generator writes now (nobody
edits it by hand), and its template variables, panels and metric-name parameters are what docs/dashboard.md says.
The queries themselves run against a real Prometheus in tests/integration/test_dashboard.py."""

import json
import subprocess
import sys

import pytest

from dashboards import generate


def committed():
    with open(generate.OUTPUT, encoding='utf-8') as handle:
        return handle.read()


def test_committed_json_equals_what_the_generator_writes():
    assert committed() == generate.render(), 'dashboards/canary_release.json is stale: run python dashboards/generate.py'


def test_check_mode_of_the_script_agrees(tmp_path):
    stale = tmp_path / 'stale.json'
    stale.write_text('{}\n')
    for path, code in ((generate.OUTPUT, 0), (str(stale), 1)):
        run = subprocess.run([sys.executable, generate.__file__, '--check', '--output', path], capture_output=True,
                             text=True, timeout=60, check=False, cwd=generate.HERE + '/..')
        assert run.returncode == code, run.stdout + run.stderr
    assert stale.read_text() == '{}\n'


def test_variables_and_panels():
    model = json.loads(committed())
    assert [variable['name'] for variable in model['templating']['list']] == [
        'datasource', 'service', 'version', 'canary', 'baseline', 'window', 'le']
    titles = [panel['title'] for panel in model['panels']]
    assert titles == ['Release', 'Canary weight', 'Step', 'Latest verdict', 'Outcome', 'Last change',
                      'Canary weight and step', 'Verdicts', 'Outcome', 'Canary vs baseline',
                      'Error rate per $window window, canary vs baseline',
                      'Requests slower than $le s per $window window, canary vs baseline',
                      'Requests per second per track']
    queries = generate.panel_queries(model)
    release = [expr for _title, expr in queries if 'canary_release_' in expr]
    for metric in ('canary_release_canary_weight_percent', 'canary_release_step', 'canary_release_verdict',
                   'canary_release_outcome', 'canary_release_last_change_timestamp_seconds'):
        assert any(metric + '{service="$service", version=~"$version"}' in expr for expr in release), metric
    # Every query uses only variables the dashboard defines, and every panel reads the chosen data source.
    names = set(variable['name'] for variable in model['templating']['list'])
    for _title, expr in queries:
        generate.substitute(expr, dict((name, 'x') for name in names))
    assert all(panel['datasource'] == {'type': 'prometheus', 'uid': '${datasource}'}
               for panel in model['panels'] if panel['type'] != 'row')


def test_metric_names_are_parameters():
    app = generate.AppMetrics(requests='http_requests_total', duration='http_request_duration_seconds',
                              service_label='job', track_label='deployment', error_codes='5..|429')
    queries = [expr for _title, expr in generate.panel_queries(json.loads(generate.render(app)))]
    text = '\n'.join(queries)
    assert 'sample_app' not in text
    assert ('sum(increase(http_requests_total{job="$service", deployment="$canary", code=~"5..|429"}[$window])) / '
            'sum(increase(http_requests_total{job="$service", deployment="$canary"}[$window]))') in queries
    assert 'http_request_duration_seconds_bucket{job="$service", deployment="$baseline", le="$le"}' in text
    assert 'sum by (deployment) (rate(http_requests_total{job="$service"}[$window]))' in queries


def test_substitute():
    assert generate.substitute('a{s="$service", w="${window}"}[$window]') == 'a{s="sample", w="5s"}[5s]'
    with pytest.raises(KeyError, match='trak'):
        generate.substitute('$trak')
