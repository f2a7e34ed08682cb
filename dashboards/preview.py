#!/usr/bin/env python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A screenshot-like PNG of the dashboard: plays the sample release on the local stack (dashboards/sample_release.py),
runs every panel's query from dashboards/canary_release.json with the demo's variable values, and draws the panels
in the dashboard's layout with matplotlib, in the rollout report's colours and deterministic PNG settings
(plugins/module_utils/_report/report_charts.py). About 40 s; run from the repository root::

    PYTHONPATH=.:tests/output/collections .venv/bin/python dashboards/preview.py [--output dashboards/canary_release.png]
"""

import argparse
import datetime
import io
import json
import math
import os
import re
import sys
import tempfile
import urllib.parse
import urllib.request

from ansible_collections.canary.release.plugins.module_utils._report import report_charts
from dashboards import generate
from dashboards.sample_release import released_stack

OUTPUT = os.path.join(generate.HERE, 'canary_release.png')
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
DPI = 72


def query_range(url, expr, start, end):
    params = urllib.parse.urlencode({'query': generate.substitute(expr), 'start': start, 'end': end, 'step': 1})
    with OPENER.open('%s/api/v1/query_range?%s' % (url, params), timeout=10) as response:
        return json.loads(response.read())['data']['result']


def series_points(series):
    when = datetime.datetime.fromtimestamp
    return ([when(float(at), tz=datetime.timezone.utc) for at, _v in series['values']],
            [float(value) for _at, value in series['values']])


def legend(target, series):
    """The legend Grafana shows: variables substituted, ``{{label}}`` replaced by the series' label value."""
    return re.sub(r'\{\{\s*(\w+)\s*\}\}', lambda match: series['metric'].get(match.group(1), ''),
                  generate.substitute(target['legendFormat']))


def draw_stat(ax, panel, results):
    value = '-'
    # the series with the latest sample holds now (a verdict or outcome series stops when another one takes over)
    for series in sorted(results[0], key=lambda found: float(found['values'][-1][0]))[-1:]:
        last_value = series['values'][-1][1]
        if panel['options'] and panel['options'].get('textMode') == 'name':
            value = series['metric'].get('verdict') or series['metric'].get('outcome')
        elif panel['fieldConfig']['defaults'].get('unit') == 'dateTimeFromNow':
            value = datetime.datetime.fromtimestamp(float(last_value) / 1000, tz=datetime.timezone.utc).strftime('%H:%M:%S')
        else:
            value = '%g%s' % (float(last_value), '%' if panel['fieldConfig']['defaults'].get('unit') == 'percent' else '')
    ax.text(0.5, 0.4, value, ha='center', va='center', fontsize=20, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_timeseries(ax, panel, results, mdates):
    right = None
    for target, found in zip(panel['targets'], results):
        for series in found:
            times, values = series_points(series)
            if panel['fieldConfig']['defaults'].get('unit') == 'percentunit':
                values = [100.0 * value for value in values]
            name = legend(target, series)
            color = dict(report_charts.COLORS, stable=report_charts.COLORS['neutral']).get(name.split()[0])
            if name == 'step':  # on the right axis, as the dashboard's override puts it
                right = ax.twinx()
                right.step(times, values, where='post', color=report_charts.COLORS['guard'], linewidth=1.5)
                right.set_ylabel('step', fontsize=8)
                right.set_ylim(-1.2, max(values) + 0.5)
                ax.plot([], [], color=report_charts.COLORS['guard'], label=name)
                continue
            ax.plot(times, values, label=name, color=color, linewidth=1.5,
                    drawstyle='steps-post' if 'step' in panel['title'] else 'default')
    unit = panel['fieldConfig']['defaults'].get('unit')
    ax.set_ylabel({'percent': '%', 'percentunit': '%', 'reqps': 'req/s'}.get(unit, ''), fontsize=8)
    ax.legend(loc='upper left', fontsize=7)
    ax.grid(True, alpha=0.3)
    ax.xaxis.set_major_formatter(mdates.DateFormatter('%H:%M:%S', tz=datetime.timezone.utc))


def draw_state(ax, panel, results):
    rows = sorted(set(legend(panel['targets'][0], series) for series in results[0]))
    for series in results[0]:
        times, _values = series_points(series)
        name = legend(panel['targets'][0], series)
        ax.plot(times, [rows.index(name)] * len(times), linewidth=10, solid_capstyle='butt',
                color=generate.STATE_COLORS[name].replace('-', ''))
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(-0.8, len(rows) - 0.2)
    ax.set_xticks([])


def render(url, start, end):
    mdates, mstyle, canvas_class, figure_class = report_charts._matplotlib()  # pylint: disable=protected-access
    with open(generate.OUTPUT, encoding='utf-8') as handle:
        everything = json.load(handle)['panels']
    panels = [panel for panel in everything if panel['type'] != 'row']
    # Grafana's grid: 24 columns, rows of panels at gridPos y (the row headers take one unit each).
    height = max(panel['gridPos']['y'] + panel['gridPos']['h'] for panel in everything)
    with mstyle.context('default'):
        figure = figure_class(figsize=(12, 0.36 * height), dpi=DPI)
        canvas_class(figure)
        for row in everything:
            if row['type'] == 'row':
                figure.text(0.01, 0.97 - 0.95 * (row['gridPos']['y'] + 0.5) / height, row['title'], fontsize=11,
                            fontweight='bold', va='center')
        for panel in panels:
            pos = panel['gridPos']
            left, width = 0.08 + 0.88 * pos['x'] / 24, 0.88 * pos['w'] / 24 - 0.06
            bottom = 0.97 - 0.95 * (pos['y'] + pos['h']) / height
            ax = figure.add_axes((left, bottom + 0.025, width, 0.95 * pos['h'] / height - 0.05))
            ax.set_title(generate.substitute(panel['title']), fontsize=9, loc='left')
            results = [query_range(url, target['expr'], start, end) for target in panel['targets']]
            {'stat': draw_stat, 'state-timeline': draw_state}.get(
                panel['type'], lambda a, p, r: draw_timeseries(a, p, r, mdates))(ax, panel, results)
        figure.suptitle('Canary release (service sample, version 2: canary vs baseline, window 5s)', fontsize=11)
        buffer = io.BytesIO()
        figure.savefig(buffer, format='png', dpi=DPI, metadata=report_charts.PNG_METADATA)
    return buffer.getvalue()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0])
    parser.add_argument('--output', default=OUTPUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='canary-dashboard-') as workdir:
        with released_stack(os.path.join(workdir, 'stack')) as (stack, (start, end), _load):
            png = render(stack.prometheus_url, math.floor(start), math.ceil(end) + 2)
    with open(args.output, 'wb') as handle:
        handle.write(png)
    print('wrote %s (%d bytes)' % (args.output, len(png)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
