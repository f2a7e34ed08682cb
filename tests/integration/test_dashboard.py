"""Every query of the Grafana dashboard (dashboards/canary_release.json) against a real Prometheus holding a release.

The local stack (examples/local) runs real sample app instances (one stable, one baseline, one canary), a real NGINX
and a real Prometheus on 127.0.0.1. A short release is played on it (dashboards/sample_release.py): version 2, worse
than the baseline, goes to the canary, and the real NGINX upstream moves 5 -> 25 -> 50 -> 100 % under bounded load.
The release's own ``canary_release_*`` series, whose writer is built elsewhere, are served in the textfile format from
this process on 127.0.0.1 and scraped by the same Prometheus. Each panel query, with the template variables set to
the demo's values, must return data and neither an error nor a warning, and each query variable must offer
the demo's value. About 40 s.
"""

import json
import math
import re
import urllib.parse
import urllib.request

import pytest

from dashboards import generate
from dashboards.sample_release import released_stack
from examples.local.stack import find_nginx, find_prometheus

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(find_nginx() is None or find_prometheus() is None,
                                 reason='nginx and prometheus are needed')]

with open(generate.OUTPUT, encoding='utf-8') as _handle:
    MODEL = json.load(_handle)
QUERIES = generate.panel_queries(MODEL)
VARIABLES = [(variable['name'], variable['query']) for variable in MODEL['templating']['list'] if variable['type'] == 'query']
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def api(stack, path, **params):
    url = '%s/api/v1/%s?%s' % (stack.prometheus_url, path, urllib.parse.urlencode(params))
    with OPENER.open(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('dashboard') / 'stack')
    with released_stack(workdir, generate.DEMO_VALUES['service'], generate.DEMO_VALUES['version']) as found:
        yield found


@pytest.mark.parametrize('title, expr', QUERIES, ids=['%d %s' % (index, title) for index, (title, _e) in enumerate(QUERIES)])
def test_panel_query_returns_data(release, title, expr):
    stack, (start, end), _load = release
    answer = api(stack, 'query_range', query=generate.substitute(expr), start='%.3f' % start, end='%.3f' % (end + 2),
                 step='1')
    assert answer['status'] == 'success' and not answer.get('warnings'), (title, answer)
    values = [float(value) for series in answer['data']['result'] for _at, value in series['values']]
    assert [value for value in values if not math.isnan(value)], (title, generate.substitute(expr), answer)


@pytest.mark.parametrize('name, query', VARIABLES, ids=[name for name, _query in VARIABLES])
def test_variable_offers_the_demo_value(release, name, query):
    """Grafana's ``label_values(selector, label)`` is the label values API with ``match[]=selector``."""
    stack = release[0]
    selector, label = re.fullmatch(r'label_values\((.+), (\w+)\)', query).groups()
    answer = api(stack, 'label/%s/values' % label, **{'match[]': generate.substitute(selector)})
    assert answer['status'] == 'success' and generate.DEMO_VALUES[name] in answer['data'], answer


def last(stack, expr, at, **values):
    answer = api(stack, 'query', query=generate.substitute(expr, dict(generate.DEMO_VALUES, **values)), time='%.3f' % at)
    assert answer['status'] == 'success', answer
    return answer['data']['result']


def test_panels_show_the_release(release):
    stack, (start, end), load = release
    assert load["requests"] > 0.5 * 60 * 4.0 * 6, load
    found = dict((title, expr) for title, expr in QUERIES)
    at = end + 1
    assert [float(s['value'][1]) for s in last(stack, found['Canary weight'], at)] == [100.0]
    assert [float(s['value'][1]) for s in last(stack, found['Step'], at)] == [3.0]
    assert [s['metric']['verdict'] for s in last(stack, found['Latest verdict'], at)] == ['pass']
    assert [s['metric']['outcome'] for s in last(stack, found['Outcome'], at)] == ['promoted']
    assert start < float(last(stack, found['Last change'], at)[0]['value'][1]) / 1000 <= end
    # Over the whole release (one window), the worse canary shows worse than the baseline on both comparisons.
    window = '%ds' % math.ceil(end - start + 2)
    for title in ('Error rate per $window window, canary vs baseline',
                  'Requests slower than $le s per $window window, canary vs baseline'):
        canary, baseline = [float(last(stack, expr, at, window=window)[0]['value'][1])
                            for panel, expr in QUERIES if panel == title]
        # the baseline's own rate may be 0 in a short sample (a CI run saw 0 errors of its requests): the comparison
        # is what the panel is for
        assert canary > baseline >= 0, (title, canary, baseline)
    tracks = sorted(s['metric']['track'] for s in last(stack, found['Requests per second per track'], at, window=window))
    assert tracks == ['baseline', 'canary', 'stable']
