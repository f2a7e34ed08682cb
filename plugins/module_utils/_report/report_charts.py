# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""PNG charts of a rollout report with matplotlib (optional: imported only here, only when charts are drawn).

Charts, all over the same time axis (UTC) with every decision of the rollout marked by a labelled vertical line:

* ``weight.png``: the canary's traffic share (percent) over time;
* ``errors.png``: one panel per ``errors`` metric, the error rate (percent) per window, canary vs baseline;
* ``latency.png``: one panel per ``latency`` metric, the share of requests slower than the bucket bound;
* ``guards.png``: one panel per ``threshold`` metric, the canary's values and the allowed range.

The bytes are deterministic: matplotlib's default style (not the user's matplotlibrc), the Agg renderer, and no
``Software`` entry in the PNG metadata (which would change with the matplotlib version); Agg writes no timestamp.
Without matplotlib :func:`render_charts` raises :class:`ChartsUnavailable`; the report has tables instead of charts.
"""

import datetime
import io
import textwrap

COLORS = {'canary': '#d62728', 'baseline': '#1f77b4', 'weight': '#2ca02c', 'guard': '#9467bd',
          'good': '#2ca02c', 'bad': '#d62728', 'neutral': '#7f7f7f'}
WIDTH = 10.0
PANEL_HEIGHT = 2.8
DPI = 100
PNG_METADATA = {'Software': None}
# Room left and right of the report's span, as a share of it, so decisions at its ends stay visible.
EDGE_PAD = 0.02
# The missing-series note inside a panel: characters per line, lines.
MISSING_WIDTH = 150
MISSING_LINES = 4


class ChartsUnavailable(Exception):
    """matplotlib cannot be imported."""


def _matplotlib():
    try:
        # pylint: disable=import-outside-toplevel
        import matplotlib.dates as mdates
        import matplotlib.style as mstyle
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ChartsUnavailable('matplotlib is not installed on the host the report runs on (%s): '
                                'the report has tables instead of charts' % error)
    return mdates, mstyle, FigureCanvasAgg, Figure


def _when(stamp):
    return datetime.datetime.fromtimestamp(stamp, tz=datetime.timezone.utc)


def _percent(value):
    return None if value is None else 100.0 * value


def _format_rate(totals):
    if totals['requests'] is None:
        return 'missing'
    return '%s (%d/%d)' % ('n/a' if totals['rate'] is None else '%.3g%%' % (100.0 * totals['rate']),
                           round(totals['errors']), round(totals['requests']))


class _Chart:
    """One figure of ``panels`` stacked panels sharing the report's time axis."""

    def __init__(self, libs, report, panels):
        self.mdates, _style, canvas_class, figure_class = libs
        self.report = report
        self.figure = figure_class(figsize=(WIDTH, PANEL_HEIGHT * panels + 0.4), dpi=DPI, layout='constrained')
        canvas_class(self.figure)
        axes = self.figure.subplots(panels, 1, sharex=True, squeeze=False)
        self.axes = [row[0] for row in axes]
        for ax in self.axes:
            pad = EDGE_PAD * (report['end'] - report['start'])
            ax.set_xlim(_when(report['start'] - pad), _when(report['end'] + pad))
            ax.grid(True, alpha=0.3)
            ax.xaxis.set_major_formatter(self.mdates.DateFormatter('%H:%M:%S', tz=datetime.timezone.utc))
        self.axes[-1].set_xlabel('time (UTC), %s to %s' % (report['start_rfc3339'], report['end_rfc3339']))

    def decisions(self, ax):
        for mark in self.report['decisions']:
            if not self.report['start'] <= mark['at'] <= self.report['end']:
                continue
            color = COLORS[mark['outcome']]
            ax.axvline(_when(mark['at']), color=color, linestyle='--', linewidth=1.2)
            ax.text(_when(mark['at']), 0.97, ' ' + mark['label'], transform=ax.get_xaxis_transform(), rotation=90,
                    va='top', ha='right', fontsize=8, color=color)

    def missing(self, ax, lines):
        if lines:
            wrapped = textwrap.wrap('missing: ' + '; '.join(lines), width=MISSING_WIDTH)
            if len(wrapped) > MISSING_LINES:
                wrapped = wrapped[:MISSING_LINES - 1] + ['... (see report.html)']
            ax.text(0.01, 0.03, '\n'.join(wrapped), transform=ax.transAxes, fontsize=7, color=COLORS['bad'],
                    va='bottom', ha='left')

    def png(self):
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format='png', dpi=DPI, metadata=PNG_METADATA)
        return buffer.getvalue()


def _weight_chart(libs, report):
    chart = _Chart(libs, report, 1)
    ax = chart.axes[0]
    times = [_when(point[0]) for point in report['weight']]
    weights = [point[1] for point in report['weight']]
    ax.step(times, weights, where='post', color=COLORS['weight'], linewidth=2, label='canary weight')
    ax.fill_between(times, weights, step='post', color=COLORS['weight'], alpha=0.15)
    ax.set_ylim(-2, 105)
    ax.set_ylabel('canary traffic (%)')
    ax.set_title('%s %s: canary weight (%s)' % (report['service'], report['version'], report['status']), fontsize=10)
    chart.decisions(ax)
    return chart.png()


def _rate_chart(libs, report, metrics, what):
    chart = _Chart(libs, report, len(metrics))
    for ax, metric in zip(chart.axes, metrics):
        for arm in ('canary', 'baseline'):
            points = [(_when(row['end']), _percent(row[arm]['rate'])) for row in metric['windows']
                      if row[arm]['rate'] is not None]
            if points:
                ax.plot([point[0] for point in points], [point[1] for point in points], color=COLORS[arm],
                        marker='o', markersize=3, linewidth=1.5, label='%s %s' % (arm, _format_rate(metric['totals'][arm])))
        label = what
        if what == 'slow':
            bound = metric.get('threshold')
            label = 'slow requests' if bound is None else 'requests slower than %gs' % bound
        ax.set_ylabel('%s (%%)' % label)
        ax.margins(y=0.12)
        ax.set_ylim(bottom=0)
        ax.set_title('%s: %s (%%) per %gs window, canary vs baseline' % (metric['name'], label, report['window']),
                     fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc='upper left', fontsize=8)
        chart.decisions(ax)
        chart.missing(ax, metric['missing'])
    return chart.png()


def _guard_chart(libs, report, metrics):
    chart = _Chart(libs, report, len(metrics))
    for ax, metric in zip(chart.axes, metrics):
        for series in metric['series']:
            name = ', '.join('%s=%s' % item for item in sorted(series['labels'].items())) or 'canary'
            ax.plot([_when(point[0]) for point in series['points']], [point[1] for point in series['points']],
                    color=COLORS['guard'], linewidth=1.5, label=name[:80])
        for bound in ('min', 'max'):
            if metric.get(bound) is not None:
                ax.axhline(metric[bound], color=COLORS['bad'], linestyle=':', linewidth=1.2, label=bound)
        ax.set_title('%s: canary value and allowed range' % metric['name'], fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc='upper left', fontsize=8)
        chart.decisions(ax)
        chart.missing(ax, metric['missing'])
    return chart.png()


def chart_names(report):
    """The chart files the report has, in order: weight.png always, the others when it has such metrics."""
    kinds = set(metric['kind'] for metric in report['metrics'])
    names = ['weight.png']
    names += [name for kind, name in (('errors', 'errors.png'), ('latency', 'latency.png'), ('threshold', 'guards.png'))
              if kind in kinds]
    return names


def render_charts(report):
    """``[(file name, PNG bytes)]`` of the report's charts; raises :class:`ChartsUnavailable` without matplotlib."""
    libs = _matplotlib()
    with libs[1].context('default'):
        charts = [('weight.png', _weight_chart(libs, report))]
        for kind, name, what in (('errors', 'errors.png', 'error rate'), ('latency', 'latency.png', 'slow')):
            metrics = [metric for metric in report['metrics'] if metric['kind'] == kind]
            if metrics:
                charts.append((name, _rate_chart(libs, report, metrics, what)))
        guards = [metric for metric in report['metrics'] if metric['kind'] == 'threshold']
        if guards:
            charts.append(('guards.png', _guard_chart(libs, report, guards)))
    return charts
