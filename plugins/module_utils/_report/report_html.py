# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""``report.html`` of a rollout report: one self-contained page (inline CSS, no script, nothing fetched), plain Python.

The charts are referenced as relative files (``weight.png`` ...) written beside the page, so the directory can be
copied, archived or served as it is. Without charts (no matplotlib) the page shows their data as tables instead:
the weight's change points, and per metric one row per window with the decisions made in it. Every value that
comes from the record, the metric definitions or a server (versions, reasons, queries, error messages, labels) is
HTML-escaped; nothing in the page depends on the time it was rendered, so the same report renders to the same bytes.
"""

import json
from html import escape

from ansible_collections.canary.release.plugins.module_utils._report.report_series import window_grid
from ansible_collections.canary.release.plugins.module_utils.time_spec import format_rfc3339

STYLE = '''
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1040px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 0.85em; word-break: break-all; }
.status { display: inline-block; padding: 0.1em 0.6em; border-radius: 0.3em; color: #fff; background: #7f7f7f; }
.good { background: #2ca02c; } .bad { background: #d62728; }
.missing { color: #d62728; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
'''
STATUS_CLASS = {'promoted': 'good', 'rolled_back': 'bad', 'aborted': 'bad'}


def text(value):
    """``value`` as escaped HTML text (``-`` for None)."""
    if value is None:
        return '-'
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
    return escape(value, quote=True)


def number(value):
    if value is None:
        return '-'
    if float(value) == int(value):
        return '%d' % value
    return '%.6g' % value


def percent(value):
    return '-' if value is None else '%.3g %%' % (100.0 * value)


def _table(headers, rows, numeric=()):
    lines = ['<table>', '<tr>' + ''.join('<th>%s</th>' % text(header) for header in headers) + '</tr>']
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            css = ' class="num"' if index in numeric else ''
            cells.append('<td%s>%s</td>' % (css, cell))
        lines.append('<tr>' + ''.join(cells) + '</tr>')
    lines.append('</table>')
    return '\n'.join(lines)


def _overview(report):
    record = report['record']
    rows = [
        ('service', text(report['service'])),
        ('version', text(report['version'])),
        ('previous version', text(report['previous_version'])),
        ('status', '<span class="status %s">%s</span>' % (STATUS_CLASS.get(report['status'], ''), text(report['status']))),
        ('reason', text(report['reason'])),
        ('started', text(record.get('started_at'))),
        ('finished', text(record.get('finished_at'))),
        ('report covers', '%s to %s' % (text(report['start_rfc3339']), text(report['end_rfc3339']))),
        ('window', '%s s' % number(report['window'])),
        ('canary / baseline',
         '<code>%s</code> / <code>%s</code>' % (text(report['tracks']['canary']), text(report['tracks']['baseline']))),
    ]
    lines = ['<tr><th>%s</th><td>%s</td></tr>' % (text(name), value) for name, value in rows]
    return '\n'.join(['<table>'] + lines + ['</table>'])


def _arm(totals):
    if totals['requests'] is None:
        return '<span class="missing">missing</span>'
    return '%s (%s / %s)' % (percent(totals['rate']), number(totals['errors']), number(totals['requests']))


def _summary(report):
    rows = []
    for metric in report['metrics']:
        missing = '<br>'.join('<span class="missing">%s</span>' % text(line) for line in metric['missing'])
        if metric['kind'] == 'threshold':
            samples = sum(len(series['points']) for series in metric['series'])
            bounds = 'min %s, max %s' % (text(metric.get('min')), text(metric.get('max')))
            rows.append((text(metric['name']), 'threshold', '%d samples' % samples, bounds, '-', missing or '-'))
        else:
            rows.append((text(metric['name']), text(metric['kind']), _arm(metric['totals']['canary']),
                         _arm(metric['totals']['baseline']), '-' if metric['ratio'] is None else '%.3g' % metric['ratio'],
                         missing or '-'))
    if not rows:
        return '<p>No metrics were given: the report shows the weight and the decisions only.</p>'
    note = ('<p>Rate (errors / requests) over the whole report; for latency metrics the errors are the requests slower '
            'than the bucket bound.</p>')
    return note + _table(('metric', 'kind', 'canary', 'baseline', 'ratio', 'missing'), rows)


CAPTIONS = {'weight.png': 'Canary traffic share over time',
            'errors.png': 'Error rate per window, canary vs baseline',
            'latency.png': 'Share of slow requests per window, canary vs baseline',
            'guards.png': 'Guarded values of the canary and their allowed range'}
TABLES_NOTE = ('The charts\' data as tables instead: the canary weight where it changes, and per metric one row per '
               '%s s window (its end, UTC) with the decisions made in it. Install matplotlib on the host the report '
               'runs on to draw the charts.')


def _decided_in(report, start, end):
    """The labels of the decisions in ``(start, end]``, joined."""
    return ', '.join(mark['label'] for mark in report['decisions'] if start < mark['at'] <= end) or '-'


def _weight_table(report):
    rows, last = [], None
    for stamp, weight in report['weight']:
        if weight != last:
            rows.append((text(format_rfc3339(stamp)), '%s %%' % number(weight)))
            last = weight
    return _table(('from (UTC)', 'canary weight'), rows, numeric=(1,))


def _window_row(report, row, values):
    return (text(format_rfc3339(row['end'])) + (' (partial)' if row.get('partial') else ''),) + tuple(values) + (
        text(_decided_in(report, row['start'], row['end'])),)


def _rate_table(report, metric):
    rows = [_window_row(report, row, (_arm(row['canary']), _arm(row['baseline']))) for row in metric['windows']]
    what = 'error rate (errors / requests)' if metric['kind'] == 'errors' else 'slow share (slow / requests)'
    return _table(('window end', 'canary ' + what, 'baseline', 'decisions'), rows)


def _guard_table(report, metric):
    window, rows = report['window'], []
    for index in range(window_grid(report['start'], report['end'], window)):
        start = report['start'] + index * window
        end = min(start + window, report['end'])
        values = [value for series in metric['series'] for stamp, value in series['points'] if start < stamp <= end]
        if values:
            low, high = metric.get('min'), metric.get('max')
            outside = [value for value in values if (low is not None and value < low) or (high is not None and value > high)]
            rows.append(_window_row(report, {'start': start, 'end': end},
                                    (number(min(values)), number(max(values)), 'yes' if outside else 'no')))
    if not rows:
        return '<p class="missing">No sample of the canary in the report\'s span.</p>'
    return _table(('window end', 'lowest', 'highest', 'outside min/max', 'decisions'), rows, numeric=(1, 2))


def _chart_tables(report):
    parts = ['<p>%s</p>' % text(TABLES_NOTE % number(report['window'])),
             '<h3>%s</h3>' % text(CAPTIONS['weight.png']), _weight_table(report)]
    for metric in report['metrics']:
        if metric['kind'] == 'threshold':
            bounds = (number(metric.get('min')), number(metric.get('max')))
            heading = '%s: canary value (min %s, max %s)' % ((metric['name'],) + bounds)
            table = _guard_table(report, metric)
        else:
            heading = '%s: %s' % (metric['name'], CAPTIONS['errors.png' if metric['kind'] == 'errors' else 'latency.png'])
            table = _rate_table(report, metric)
        parts.extend(['<h3>%s</h3>' % text(heading), table])
    return '\n'.join(parts)


def _charts(report, charts, charts_note):
    if charts_note:
        return '<p class="missing">%s</p>\n%s' % (text(charts_note), _chart_tables(report))
    parts = []
    for name in charts:
        caption = CAPTIONS.get(name, name)
        parts.append('<figure><img src="%s" alt="%s"><figcaption>%s; dashed lines are the decisions.</figcaption></figure>'
                     % (text(name), text(caption), text(caption)))
    return '\n'.join(parts) or '<p>No charts.</p>'


def _decisions(report):
    if not report['decisions']:
        return '<p>No decision was recorded.</p>'
    rows = [(text(mark['time']), '<span class="status %s">%s</span>' % (mark['outcome'], text(mark['label'])),
             text(mark.get('by') or '-'), text(mark['reason'])) for mark in report['decisions']]
    return _table(('time (UTC)', 'decision', 'by', 'reason'), rows)


def _steps(report):
    if not report['steps']:
        return '<p>No step was recorded.</p>'
    rows = [(text(step['index']), '-' if step['weight'] is None else '%s %%' % number(step['weight']),
             text(step['started_rfc3339']), text(step['verdict']), text(step['at_rfc3339']), text(step['reason']))
            for step in report['steps']]
    return _table(('step', 'weight', 'started (UTC)', 'verdict', 'recorded (UTC)', 'reason'), rows, numeric=(0,))


def _events(report):
    events = report['record'].get('events') or []
    if not events:
        return '<p>No events.</p>'
    rows = [(text(event.get('at')), text(event.get('message'))) for event in events if isinstance(event, dict)]
    return _table(('time (UTC)', 'event'), rows)


def _queries(report):
    if not report['queries']:
        return '<p>No queries.</p>'
    rows = []
    for query in report['queries']:
        error = query['error']
        rows.append((text(query['metric']), text(query['arm']), text(query['role']), text(query['provider']),
                     '<code>%s</code>' % text(query['query']), text(query['series']),
                     '-' if error is None else '<span class="missing">%s</span>' % text(error)))
    return _table(('metric', 'arm', 'role', 'provider', 'query', 'series', 'error'), rows)


def render_html(report, charts=(), charts_note=None):
    """The page for ``report`` (from :func:`~.report_run.build_report`); ``charts`` are the PNG file names written
    beside it, ``charts_note`` why charts are missing (shown on the page)."""
    title = 'Rollout report: %s %s' % (report['service'], report['version'])
    missing = ''
    if report['missing']:
        missing = ('<h2>Missing series</h2>\n<ul>%s</ul>'
                   % ''.join('<li class="missing">%s</li>' % text(line) for line in report['missing']))
    sections = [
        '<!DOCTYPE html>',
        '<html lang="en">',
        '<head>',
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<title>%s</title>' % text(title),
        '<style>%s</style>' % STYLE,
        '</head>',
        '<body>',
        '<h1>%s</h1>' % text(title),
        _overview(report),
        '<h2>Summary</h2>',
        _summary(report),
        missing,
        '<h2>Charts</h2>' if not charts_note else '<h2>Charts (as tables)</h2>',
        _charts(report, charts, charts_note),
        '<h2>Decisions</h2>',
        _decisions(report),
        '<h2>Steps</h2>',
        _steps(report),
        '<h2>Events</h2>',
        _events(report),
        '<h2>Queries</h2>',
        _queries(report),
        '<p>Data: <a href="report.json">report.json</a> (every window of every metric, the record and the queries).</p>',
        '</body>',
        '</html>',
    ]
    return '\n'.join(section for section in sections if section) + '\n'
