#!/usr/bin/env python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The canary release Grafana dashboard as code, built with Grafana's ``grafana-foundation-sdk``.

Run from the repository root; it writes ``dashboards/canary_release.json`` (``--check`` only compares)::

    python dashboards/generate.py [--requests-metric NAME] [--duration-metric NAME] [--output FILE]

The release's own state comes from the ``canary_release_*`` metrics (weight, step, verdict, outcome, last change),
labelled ``service`` and ``version``. The canary-vs-baseline panels read the service's own metrics, by default the
demo's sample app (``sample_app_requests_total`` with ``code`` and ``track`` labels, the histogram
``sample_app_request_duration_seconds``): :class:`AppMetrics` names them, see docs/dashboard.md.
"""

import argparse
import dataclasses
import json
import os
import re
import sys

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (DashboardCursorSync, DataSourceRef, ValueMap, ValueMappingResult,
                                                     VariableOption, VariableRefresh, VariableSort)

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, 'canary_release.json')
UID = 'canary-release'
DATASOURCE = DataSourceRef(type_val='prometheus', uid='${datasource}')
RELEASE = 'service="$service", version=~"$version"'
VERDICTS = ('pass', 'fail', 'continue', 'inconclusive', 'watched')
OUTCOMES = ('running', 'held', 'promoted', 'rolled_back', 'aborted')
STATE_COLORS = {'pass': 'green', 'fail': 'red', 'continue': 'blue', 'inconclusive': 'orange', 'watched': 'purple',
                'running': 'blue', 'held': 'orange', 'promoted': 'green', 'rolled_back': 'red', 'aborted': 'dark-red'}
WINDOWS = ('5s', '10s', '30s', '1m', '2m', '5m')
# What the template variables are on the demo stack (examples/local): the integration test and the preview PNG
# substitute these into every panel's query.
DEMO_VALUES = {'datasource': 'prometheus', 'service': 'sample', 'version': '2', 'canary': 'canary',
               'baseline': 'baseline', 'window': '5s', 'le': '0.1'}


@dataclasses.dataclass
class AppMetrics:
    """The service's own metrics: a request counter with a status code label, a latency histogram, and the labels
    that tell the service and the track (canary, baseline or stable) apart. Defaults: the demo's sample app."""
    requests: str = 'sample_app_requests_total'
    duration: str = 'sample_app_request_duration_seconds'
    service_label: str = 'service'
    track_label: str = 'track'
    code_label: str = 'code'
    error_codes: str = '5..'
    default_window: str = '1m'
    default_le: str = '0.1'

    def selector(self, *extra):
        return ', '.join(('%s="$service"' % self.service_label,) + extra)

    def track(self, variable):
        return '%s="$%s"' % (self.track_label, variable)

    def error_rate(self, variable):
        errors = '%s=~"%s"' % (self.code_label, self.error_codes)
        return ('sum(increase(%s{%s}[$window])) / sum(increase(%s{%s}[$window]))'
                % (self.requests, self.selector(self.track(variable), errors), self.requests,
                   self.selector(self.track(variable))))

    def slow_share(self, variable):
        return ('1 - sum(increase(%s_bucket{%s}[$window])) / sum(increase(%s_count{%s}[$window]))'
                % (self.duration, self.selector(self.track(variable), 'le="$le"'), self.duration,
                   self.selector(self.track(variable))))

    def request_rate(self):
        return 'sum by (%s) (rate(%s{%s}[$window]))' % (self.track_label, self.requests, self.selector())


def query(expr, legend, ref_id='A'):
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).range()


def state_query(metric, label):
    """The series of ``metric`` that is 1 now, one per ``label`` value: which verdict/outcome holds."""
    return query('max by (%s) (%s{%s}) == 1' % (label, metric, RELEASE), '{{%s}}' % label)


def option(value):
    return VariableOption(selected=True, text=value, value=value)


def variables(app):
    release = 'canary_release_step'
    return [
        dashboard.DatasourceVariable('datasource').label('Prometheus').type('prometheus'),
        dashboard.QueryVariable('service').label('service').datasource(DATASOURCE)
        .query('label_values(%s, service)' % release).refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC),
        dashboard.QueryVariable('version').label('version').datasource(DATASOURCE)
        .query('label_values(%s{service="$service"}, version)' % release)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_DESC)
        .include_all(True).all_value('.*'),
        dashboard.QueryVariable('canary').label('canary track').datasource(DATASOURCE)
        .query('label_values(%s{%s}, %s)' % (app.requests, app.selector(), app.track_label))
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).current(option(DEMO_VALUES['canary'])),
        dashboard.QueryVariable('baseline').label('baseline track').datasource(DATASOURCE)
        .query('label_values(%s{%s}, %s)' % (app.requests, app.selector(), app.track_label))
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).current(option(DEMO_VALUES['baseline'])),
        dashboard.IntervalVariable('window').label('window').values(','.join(WINDOWS))
        .current(option(app.default_window)),
        dashboard.QueryVariable('le').label('slow above (s)').datasource(DATASOURCE)
        .query('label_values(%s_bucket{%s}, le)' % (app.duration, app.selector()))
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.NUMERICAL_ASC)
        .current(option(app.default_le)),
    ]


def release_stats():
    weight = stat.Panel().title('Canary weight').unit('percent').min(0).max(100).height(4).span(4) \
        .with_target(query('max(canary_release_canary_weight_percent{%s})' % RELEASE, 'weight'))
    step = stat.Panel().title('Step').decimals(0).height(4).span(4).no_value('-') \
        .description('-1 before the first step') \
        .with_target(query('max(canary_release_step{%s})' % RELEASE, 'step'))
    verdict = stat.Panel().title('Latest verdict').text_mode(common.BigValueTextMode.NAME).height(4).span(5) \
        .with_target(state_query('canary_release_verdict', 'verdict'))
    outcome = stat.Panel().title('Outcome').text_mode(common.BigValueTextMode.NAME).height(4).span(5) \
        .with_target(state_query('canary_release_outcome', 'outcome'))
    changed = stat.Panel().title('Last change').unit('dateTimeFromNow').height(4).span(6) \
        .with_target(query('max(canary_release_last_change_timestamp_seconds{%s}) * 1000' % RELEASE, 'changed'))
    return [weight, step, verdict, outcome, changed]


def state_timeline(title, metric, label, values):
    panel = statetimeline.Panel().title(title).height(6).span(12).show_value(common.VisibilityMode.NEVER) \
        .with_target(state_query(metric, label)).mappings([ValueMap({'1': ValueMappingResult(text='current')})])
    for name in values:
        panel = panel.override_by_name(name, [{'id': 'color', 'value': {'mode': 'fixed', 'fixedColor': STATE_COLORS[name]}}])
    return panel


def release_panels():
    weight = timeseries.Panel().title('Canary weight and step').height(8).span(24).unit('percent').min(0) \
        .draw_style(common.GraphDrawStyle.LINE).line_interpolation(common.LineInterpolation.STEP_AFTER) \
        .with_target(query('max(canary_release_canary_weight_percent{%s})' % RELEASE, 'weight (%)')) \
        .with_target(query('max(canary_release_step{%s})' % RELEASE, 'step', 'B')) \
        .override_by_name('step', [{'id': 'unit', 'value': 'none'},
                                   {'id': 'custom.axisPlacement', 'value': 'right'},
                                   {'id': 'min', 'value': -1}])
    return [weight,
            state_timeline('Verdicts', 'canary_release_verdict', 'verdict', VERDICTS),
            state_timeline('Outcome', 'canary_release_outcome', 'outcome', OUTCOMES)]


def comparison_panel(title, unit, expr_of):
    return timeseries.Panel().title(title).height(8).span(12).unit(unit).min(0) \
        .with_target(query(expr_of('canary'), 'canary ($canary)')) \
        .with_target(query(expr_of('baseline'), 'baseline ($baseline)', 'B')) \
        .override_by_name('canary ($canary)', [{'id': 'color', 'value': {'mode': 'fixed', 'fixedColor': 'red'}}]) \
        .override_by_name('baseline ($baseline)', [{'id': 'color', 'value': {'mode': 'fixed', 'fixedColor': 'blue'}}])


def traffic_panels(app):
    return [
        comparison_panel('Error rate per $window window, canary vs baseline', 'percentunit', app.error_rate),
        comparison_panel('Requests slower than $le s per $window window, canary vs baseline', 'percentunit',
                         app.slow_share),
        timeseries.Panel().title('Requests per second per track').height(8).span(24).unit('reqps').min(0)
        .with_target(query(app.request_rate(), '{{%s}}' % app.track_label)),
    ]


def build(app=None):
    """The dashboard model (``grafana_foundation_sdk.models.dashboard.Dashboard``)."""
    app = app or AppMetrics()
    board = dashboard.Dashboard('Canary release').uid(UID).tags(['canary.release', 'canary']) \
        .description('A canary release: the release state from canary_release_* metrics, and canary vs baseline '
                     'error rate, slow-request share and request rates. Generated by dashboards/generate.py.') \
        .refresh('10s').time('now-30m', 'now').timezone('browser').tooltip(DashboardCursorSync.CROSSHAIR) \
        .variables(variables(app))
    ids = iter(range(1, 100))
    for row, panels in (('Release', release_stats() + release_panels()), ('Canary vs baseline', traffic_panels(app))):
        board = board.with_row(dashboard.Row(row).id(next(ids)))
        for panel in panels:
            board = board.with_panel(panel.id(next(ids)).datasource(DATASOURCE))
    return board.build()


def render(app=None):
    """The dashboard as the committed JSON text."""
    return JSONEncoder(sort_keys=True, indent=2).encode(build(app)) + '\n'


def panel_queries(model):
    """``[(panel title, expr)]`` of every query of a dashboard JSON dict, in panel order."""
    found = []
    for panel in model['panels']:
        for target in panel.get('targets', []):
            found.append((panel['title'], target['expr']))
    return found


def substitute(text, values=None):
    """``text`` with ``$name`` and ``${name}`` replaced by ``values`` (default: the demo's); an unknown one raises."""
    values = DEMO_VALUES if values is None else values

    def one(match):
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError('no value for the template variable $%s' % name)
        return values[name]
    return re.sub(r'\$\{(\w+)\}|\$(\w+)', one, text)


def parse_args(argv):
    defaults = AppMetrics()
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
    for field in dataclasses.fields(AppMetrics):
        parser.add_argument('--' + field.name.replace('_', '-'), default=getattr(defaults, field.name))
    parser.add_argument('--output', default=OUTPUT)
    parser.add_argument('--check', action='store_true', help='exit 1 when the output file differs, write nothing')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    app = AppMetrics(**dict((field.name, getattr(args, field.name)) for field in dataclasses.fields(AppMetrics)))
    text = render(app)
    if args.check:
        with open(args.output, encoding='utf-8') as handle:
            same = handle.read() == text
        print('%s is %s' % (args.output, 'up to date' if same else 'out of date: run dashboards/generate.py'))
        return 0 if same else 1
    with open(args.output, 'w', encoding='utf-8') as handle:
        handle.write(text)
    print('wrote %s (%d panels)' % (args.output, len(json.loads(text)['panels'])))
    return 0


if __name__ == '__main__':
    sys.exit(main())
