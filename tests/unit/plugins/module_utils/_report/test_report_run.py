# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A whole report from a record and the canned Prometheus API of tests/support/prometheus_stub.py (real HTTP):
times, totals, missing series, invalid options; then the rendered files and writing them."""

import importlib
import importlib.abc
import json
import os
import re
import sys

import pytest

from ansible_collections.canary.release.plugins.module_utils._sources.prometheus_api import PrometheusClient
from ansible_collections.canary.release.plugins.module_utils._report.report_files import ReportFilesError, write_files
from ansible_collections.canary.release.plugins.module_utils._report.report_run import (
    ReportError,
    build_report,
    render_report,
    report_json,
    summary,
)
from ansible_collections.canary.release.plugins.module_utils.time_spec import format_rfc3339
from tests.support.prometheus_stub import PrometheusStub

T0 = 1700000000.0
TRACKS = {'canary_track': 'track="canary"', 'baseline_track': 'track="stable"'}
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def stamp(offset):
    return format_rfc3339(T0 + offset)


def counter(rate, until=300.0, every=5.0, offset=0.0):
    return [{'labels': {'instance': 'a'},
             'samples': [(T0 + index * every, offset + rate * every * index) for index in range(int(until / every) + 1)]}]


def record(**extra):
    document = {'schema': 1, 'service': 'web', 'version': '2', 'previous_version': '1', 'status': 'rolled_back',
                'reason': 'fail: http_errors', 'started_at': stamp(0), 'updated_at': stamp(240),
                'finished_at': stamp(240), 'events': [],
                'steps': [{'index': 0, 'weight': 10.0, 'verdict': 'fail', 'reason': 'errors', 'started_at': stamp(5),
                           'at': stamp(235)}]}
    document.update(extra)
    return document


ERRORS = {'name': 'http_errors', 'kind': 'errors', 'requests': 'req_total{${track}}', 'errors': 'err_total{${track}}',
          'on_no_data': 'fail', 'max_ratio': 3.0}
SLOW = {'name': 'slow', 'kind': 'latency', 'count': 'dur_count{${track}}', 'bucket': 'dur_bucket{${track}}', 'le': 0.5}
GUARD = {'name': 'p99', 'kind': 'threshold', 'query': 'p99{${track}}', 'max': 0.5}


@pytest.fixture
def prometheus():
    answers = {
        'req_total{track="canary"}': counter(10),
        'err_total{track="canary"}': counter(0.5),
        'req_total{track="stable"}': counter(40, offset=500),
        'err_total{track="stable"}': counter(0.4),
        'dur_count{track="canary"}': counter(10),
        'dur_bucket{track="canary"}': (400, 'bad_data', 'parse error <at> char 3'),
        'dur_count{track="stable"}': [],
        'dur_bucket{track="stable"}': [],
        'p99{track="canary"}': [{'labels': {'track': 'canary'}, 'samples': [(T0 + 60, 0.2), (T0 + 120, 0.9)]}],
    }
    server = PrometheusStub(answers)
    yield server
    server.stop()


def options(url, **extra):
    result = dict(record=record(), metrics=[ERRORS, SLOW, GUARD], url=url, **TRACKS)
    result.update(extra)
    return result


def client_factory(url):
    return lambda: PrometheusClient(url, timeout=5)


def test_totals_span_window_and_missing_series(prometheus):
    report, warnings = build_report(options(prometheus.url), prometheus_client=client_factory(prometheus.url),
                                    now=T0 + 1000)
    assert (report['start'], report['end'], report['window']) == (T0, T0 + 240, 5.0)   # record's start and finish
    errors, slow, guard = report['metrics']
    # The counters grew 10/s and 0.5/s for 240 s (the stub answers every 5 s step from the start): exact totals.
    assert errors['totals']['canary'] == {'requests': 2400.0, 'errors': 120.0, 'rate': 0.05}
    assert errors['totals']['baseline'] == {'requests': 9600.0, 'errors': 96.0, 'rate': 0.01}
    assert errors['ratio'] == pytest.approx(5.0) and errors['missing'] == []
    assert len(errors['windows']) == 48
    assert slow['totals']['canary']['requests'] is None and slow['totals']['baseline']['requests'] is None
    assert slow['missing'][0].startswith("slow: canary bucket: Prometheus at %s returned bad_data" % prometheus.url)
    assert slow['missing'][1] == 'slow: baseline count: no series'
    points = guard['series'][0]['points']                    # every 5 s step from the first sample to the end
    assert guard['series'][0]['labels'] == {'track': 'canary'} and len(points) == 37
    assert points[0] == [T0 + 60, 0.2] and points[11] == [T0 + 115, 0.2] and points[12] == [T0 + 120, 0.9]
    assert report['missing'] == slow['missing']
    assert any('the report misses series' in warning for warning in warnings)
    assert report['api_calls'] == {'prometheus': 9, 'cloudwatch': 0} and report['step'] == 5.0
    assert [mark['label'] for mark in report['decisions']] == ['step 0 10%: fail', 'rolled back']
    brief = summary(report)
    assert brief['metrics'][0]['canary'] == errors['totals']['canary'] and brief['metrics'][2]['samples'] == 37
    assert brief['decisions'][1] == {'time': stamp(240), 'label': 'rolled back', 'reason': 'fail: http_errors',
                                     'by': '-'}


def test_explicit_times_and_window(prometheus):
    report, _warnings = build_report(options(prometheus.url, start_time=T0 + 60, end_time=stamp(120), window='30s'),
                                     prometheus_client=client_factory(prometheus.url))
    assert (report['start'], report['end'], report['window']) == (T0 + 60, T0 + 120, 30.0)
    assert report['metrics'][0]['totals']['canary']['requests'] == 600.0


def test_an_unfinished_rollout_ends_now_and_without_metrics_needs_no_server():
    report, warnings = build_report({'record': record(status='paused', finished_at=None), 'metrics': []}, now=T0 + 100)
    assert report['end'] == T0 + 100 and report['metrics'] == [] and warnings == []
    assert report['weight'] == [[T0, 0.0], [T0 + 5, 10.0], [T0 + 100, 10.0]]


@pytest.mark.parametrize('changes, message', [
    ({'record': 'not a record'}, 'record must be the rollout record'),
    ({'record': record(service=None)}, 'record has no service'),
    ({'record': record(started_at=None)}, 'the record has no started_at: set start_time'),
    ({'end_time': T0 - 10}, 'the report ends'),
    ({'start_time': 'yesterday'}, "start_time: invalid time 'yesterday'"),
    ({'window': 'often'}, 'window: invalid duration'),
    ({'window': 0.01}, 'window 0.01s cuts the report (240s) into more than 10000 windows'),
    ({'metrics': [dict(ERRORS, kind='ratio')]}, 'kind must be one of errors, latency, threshold'),
    ({'canary_track': None}, 'canary_track is not set'),
    ({'url': None}, 'no Prometheus connection is configured'),
])
def test_invalid_options_are_clear_errors(changes, message):
    settings = options('http://127.0.0.1:9')
    settings.update(changes)
    factory = None if settings.get('url') is None else client_factory(settings['url'])
    with pytest.raises(ReportError, match=re.escape(message)):
        build_report(settings, prometheus_client=factory, now=T0 + 1000)


def test_rendered_files_are_deterministic_and_written_only_when_they_change(prometheus, tmp_path):
    first, _warnings = build_report(options(prometheus.url), prometheus_client=client_factory(prometheus.url))
    files, note = render_report(first)
    assert note is None
    assert [name for name, _data in files] == ['report.json', 'report.html', 'weight.png', 'errors.png',
                                               'latency.png', 'guards.png']
    assert all(data.startswith(PNG_SIGNATURE) for name, data in files if name.endswith('.png'))
    assert json.loads(files[0][1])['metrics'][0]['totals']['canary']['requests'] == 2400.0
    second, _warnings = build_report(options(prometheus.url), prometheus_client=client_factory(prometheus.url))
    assert render_report(second)[0] == files                                  # same data, same bytes

    dest = tmp_path / 'reports' / 'web-2'
    checked = write_files(str(dest), files, check_mode=True)
    assert [item['changed'] for item in checked] == [True] * 6 and not dest.exists()
    written = write_files(str(dest), files)
    assert sorted(os.listdir(dest)) == sorted(name for name, _data in files)
    assert [item['size'] for item in written] == [len(data) for _name, data in files]
    assert not any(item['changed'] for item in write_files(str(dest), files))
    changed = [(name, data + b' ' if name == 'report.html' else data) for name, data in files]
    assert [item['name'] for item in write_files(str(dest), changed) if item['changed']] == ['report.html']
    assert report_json(first) == files[0][1]


class NoMatplotlib(importlib.abc.MetaPathFinder):
    """An import hook that makes matplotlib (and everything below it) impossible to import, as on a host without it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == 'matplotlib' or fullname.startswith('matplotlib.'):
            raise ModuleNotFoundError('No module named %r (blocked by the test)' % fullname, name=fullname)
        return None


@pytest.fixture
def no_matplotlib(monkeypatch):
    for name in list(sys.modules):
        if name == 'matplotlib' or name.startswith('matplotlib.'):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, 'meta_path', [NoMatplotlib()] + sys.meta_path)
    with pytest.raises(ImportError):
        importlib.import_module('matplotlib.figure')


def table_rows(page, heading):
    """The rows (lists of cell texts) of the first table after the ``<h3>`` heading that starts with ``heading``."""
    section = page.split('<h3>' + heading, 1)[1].split('</table>', 1)[0]
    return [[re.sub('<[^>]+>', '', cell) for cell in re.findall(r'<td[^>]*>(.*?)</td>', row)]
            for row in re.findall(r'<tr>(.*?)</tr>', section) if '<td' in row]


def test_without_matplotlib_the_report_has_tables_instead_of_charts_and_says_so(prometheus, no_matplotlib):
    report, _warnings = build_report(options(prometheus.url), prometheus_client=client_factory(prometheus.url))
    files, note = render_report(report)
    assert [name for name, _data in files] == ['report.json', 'report.html']
    page = files[1][1].decode()
    assert 'matplotlib is not installed' in note and 'tables instead of charts' in note
    assert '<h2>Charts (as tables)</h2>' in page and 'matplotlib is not installed' in page and '<img' not in page
    assert table_rows(page, 'Canary traffic share') == [[stamp(0), '0 %'], [stamp(5), '10 %'], [stamp(240), '0 %']]
    errors = table_rows(page, 'http_errors:')
    assert len(errors) == 48                                                   # 240 s in 5 s windows
    assert all(row[1:3] == ['5 % (2.5 / 50)', '1 % (2 / 200)'] for row in errors)
    decided = [(row[0], row[3]) for row in errors if row[3] != '-']
    assert decided == [(stamp(235), 'step 0 10%: fail'), (stamp(240), 'rolled back')]
    assert {tuple(row[1:3]) for row in table_rows(page, 'slow:')} == {('missing', 'missing')}
    guard = dict((row[0], row[1:]) for row in table_rows(page, 'p99:'))       # max 0.5; 0.2 from 60 s, 0.9 from 120 s
    assert min(guard) == stamp(60) and guard[stamp(60)] == ['0.2', '0.2', 'no', '-']
    assert guard[stamp(115)] == ['0.2', '0.2', 'no', '-'] and guard[stamp(120)] == ['0.9', '0.9', 'yes', '-']
    assert guard[stamp(240)][2:] == ['yes', 'rolled back']
    assert json.loads(files[0][1]) == json.loads(report_json(report))          # the data file is the same either way


def test_dest_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / 'file'
    target.write_text('x')
    with pytest.raises(ReportFilesError, match='is not a directory'):
        write_files(str(target), [('report.json', b'{}')])
