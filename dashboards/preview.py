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
    return target['legendFormat'].replace('$canary', 'canary').replace('$baseline', 'baseline').replace(
        '{{', '%(').replace('}}', ')s') % dict(series['metric'], **{'track': series['metric'].get('track', '')})


def draw_stat(ax, panel, results):
    value = '-'
    for series in results[0]:
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
    for target, found in zip(panel['targets'], results):
        for series in found:
            times, values = series_points(series)
            if panel['fieldConfig']['defaults'].get('unit') == 'percentunit':
                values = [100.0 * value for value in values]
            name = legend(target, series)
            color = report_charts.COLORS.get(name.split()[0])
            ax.plot(times, values, label=name, color=color, linewidth=1.5,
                    drawstyle='steps-post' if 'step' in panel['title'] else 'default')
    ax.legend(loc='upper left', fontsize=7)
    ax.grid(True, alpha=0.3)
    ax.xaxis.set_major_formatter(mdates.DateFormatter('%H:%M:%S', tz=datetime.timezone.utc))


def draw_state(ax, panel, results):
    rows = sorted(set(legend(panel['targets'][0], series) for series in results[0]))
    for series in results[0]:
        times, _values = series_points(series)
        name = legend(panel['targets'][0], series)
        ax.plot(times, [rows.index(name)] * len(times), linewidth=10, solid_capstyle='butt',
                color=report_charts.COLORS['bad' if name in ('fail', 'rolled_back', 'aborted') else 'good'])
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(-0.8, len(rows) - 0.2)
    ax.set_xticks([])


def render(url, start, end):
    mdates, mstyle, canvas_class, figure_class = report_charts._matplotlib()  # pylint: disable=protected-access
    with open(generate.OUTPUT, encoding='utf-8') as handle:
        panels = [panel for panel in json.load(handle)['panels'] if panel['type'] != 'row']
    with mstyle.context('default'):
        figure = figure_class(figsize=(12, 11), dpi=DPI, layout='constrained')
        canvas_class(figure)
        grid = figure.add_gridspec(sum(panel['gridPos']['h'] for panel in panels if panel['gridPos']['x'] == 0), 24)
        top = 0
        for panel in panels:
            pos = panel['gridPos']
            if pos['x'] == 0 and panel is not panels[0]:
                top += previous_height
            previous_height = pos['h']
            ax = figure.add_subplot(grid[top:top + pos['h'], pos['x']:pos['x'] + pos['w']])
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
