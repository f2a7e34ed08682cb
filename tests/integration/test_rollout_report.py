"""canary.release.rollout_report through real ansible-playbook runs, against a real Prometheus and a moto server.

Prometheus holds known data: the test writes 11 minutes of synthetic scrapes (5 s apart, ending about 9 minutes
ago) as OpenMetrics and turns them into TSDB blocks with ``promtool tsdb create-blocks-from openmetrics`` in the data
directory of a Prometheus it then starts (tests/support/prometheus.py), so the totals are known exactly: the canary
(one instance, restarted at +30 s: a counter reset) serves 10 requests per scrape, without errors until +200 s and
with 2 errors per scrape after; two baseline instances serve 20 each with one error every 10th scrape; traffic stops
at +400 s. The rollout record says: 5 % at +30 s, 25 % at +150 s, step 1 failed at +405 s, rolled back at +420 s.

The CloudWatch variant puts per-minute sums into the moto server and reports a promoted rollout from them.
"""

import datetime
import json
import os
import subprocess
import time

import boto3
import pytest

from tests.support.moto import REGION, MotoServer, aws_env
from tests.support.playbook import run_playbook
from tests.support.prometheus import LOCAL_ENV, PrometheusServer

pytestmark = pytest.mark.integration

PROMTOOL = '/usr/bin/promtool'
SCRAPE = 5
FIRST, LAST, STOP = -60, 600, 400          # scrapes from t0 + FIRST to t0 + LAST; traffic until t0 + STOP
RESTART = 30
FAIL_AFTER = 200
FINISH = 420
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
TRACKS = {'canary_track': 'track="canary"', 'baseline_track': 'track="baseline"'}
METRICS = [
    {'name': 'http_errors', 'kind': 'errors', 'requests': 'report_requests_total{${track}}',
     'errors': 'report_errors_total{${track}}', 'on_no_data': 'fail'},
    {'name': 'slow_requests', 'kind': 'latency', 'count': 'report_duration_seconds_count{${track}}',
     'bucket': 'report_duration_seconds_bucket{${track}}', 'le': 0.25},
    {'name': 'broken', 'kind': 'errors', 'requests': 'report_requests_total{${track}}',
     'errors': 'report_errors_total{${track}'},
    {'name': 'p99', 'kind': 'threshold', 'query': 'report_p99_seconds{${track}}', 'max': 0.5},
]


def stamp(seconds):
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def per_scrape(track, offset):
    """(requests, errors, slow) served in the scrape interval ending at t0 + offset by one instance."""
    if offset <= 0 or offset > STOP:
        return 0, 0, 0
    if track == 'canary':
        return 10, 2 if offset > FAIL_AFTER else 0, 1
    return 20, 1 if offset % (10 * SCRAPE) == 0 else 0, 1


def backfill(t0):
    """OpenMetrics text of the scenario and the totals fed per track: {track: [requests, errors, slow]}."""
    fed = {'canary': [0, 0, 0], 'baseline': [0, 0, 0]}
    families = {'report_requests': [], 'report_errors': [], 'report_duration_seconds': [], 'report_p99_seconds': []}
    for track, instance in (('canary', 'c1'), ('baseline', 'b1'), ('baseline', 'b2')):
        labels = 'instance="%s",track="%s"' % (instance, track)
        requests, errors, slow = (100, 3, 1) if track == 'baseline' else (50, 1, 2)
        for offset in range(FIRST, LAST + 1, SCRAPE):
            if track == 'canary' and offset == RESTART:
                requests = errors = slow = 0                  # the new version starts counting from 0
            served = per_scrape(track, offset)
            requests, errors, slow = requests + served[0], errors + served[1], slow + served[2]
            fed[track] = [total + increment for total, increment in zip(fed[track], served)]
            at = t0 + offset
            families['report_requests'].append('report_requests_total{%s} %d %d' % (labels, requests, at))
            families['report_errors'].append('report_errors_total{%s} %d %d' % (labels, errors, at))
            histogram = families['report_duration_seconds']
            for bound, count in (('0.25', requests - slow), ('+Inf', requests)):
                histogram.append('report_duration_seconds_bucket{%s,le="%s"} %d %d' % (labels, bound, count, at))
            histogram.append('report_duration_seconds_count{%s} %d %d' % (labels, requests, at))
            histogram.append('report_duration_seconds_sum{%s} %r %d' % (labels, requests * 0.1, at))
            if track == 'canary':
                families['report_p99_seconds'].append(
                    'report_p99_seconds{%s} %s %d' % (labels, '0.9' if offset > FAIL_AFTER else '0.2', at))
    kinds = {'report_requests': 'counter', 'report_errors': 'counter', 'report_duration_seconds': 'histogram',
             'report_p99_seconds': 'gauge'}
    lines = []
    for family, samples in families.items():
        lines.append('# TYPE %s %s' % (family, kinds[family]))
        lines.extend(samples)
    return '\n'.join(lines + ['# EOF']) + '\n', fed


def rolled_back_record(t0):
    return {
        'schema': 1, 'service': 'web', 'version': '2', 'previous_version': '1', 'status': 'rolled_back',
        'run_id': 'test', 'reason': 'fail: http_errors: canary 20% vs baseline 0.5%', 'started_at': stamp(t0),
        'updated_at': stamp(t0 + FINISH), 'finished_at': stamp(t0 + FINISH), 'step': 1, 'weight': 25.0,
        'steps': [
            {'index': 0, 'weight': 5.0, 'verdict': 'pass', 'reason': None, 'started_at': stamp(t0 + 30),
             'at': stamp(t0 + 150)},
            {'index': 1, 'weight': 25.0, 'verdict': 'fail', 'reason': 'http_errors <worse>', 'started_at': stamp(t0 + 150),
             'at': stamp(t0 + 405)},
        ],
        'events': [{'at': stamp(t0), 'message': 'web 2: began'}], 'events_dropped': 0,
    }


@pytest.fixture(scope='module')
def prometheus(tmp_path_factory):
    """A Prometheus whose data directory holds the scenario; yields (server, t0, fed totals)."""
    workdir = tmp_path_factory.mktemp('prometheus-report')
    t0 = int(time.time() // 60 * 60) - 20 * 60
    text, fed = backfill(t0)
    source = workdir / 'backfill.om'
    source.write_text(text, encoding='utf-8')
    data = workdir / 'data'
    data.mkdir()
    subprocess.run([PROMTOOL, 'tsdb', 'create-blocks-from', 'openmetrics', str(source), str(data)],
                   check=True, capture_output=True, timeout=60)
    server = PrometheusServer(workdir).start()
    try:
        yield server, t0, fed
    finally:
        server.stop()


def report_task(name, arguments, **task):
    return dict({'name': name, 'canary.release.rollout_report': arguments, 'register': 'result'}, **task)


def test_prometheus_report_files_totals_and_idempotence(prometheus, tmp_path):
    server, t0, fed = prometheus
    dest = tmp_path / 'reports' / 'web-2'
    arguments = dict(record=rolled_back_record(t0), metrics=METRICS, url=server.url, dest=str(dest), **TRACKS)
    invalid = str(tmp_path / 'invalid')
    run = run_playbook(tasks=[
        report_task('check mode first', arguments, check_mode=True),
        report_task('check mode only', dict(arguments, dest=str(tmp_path / 'check-only')), check_mode=True),
        report_task('report', arguments),
        report_task('report again', arguments),
        report_task('invalid metric', dict(arguments, dest=invalid, metrics=[dict(METRICS[0], kind='ratio')]),
                    ignore_errors=True),
        report_task('unreadable end', dict(arguments, dest=invalid, end_time='soon'), ignore_errors=True),
    ], extra_env=LOCAL_ENV, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    checked = run.result('check mode first')
    assert checked['changed'] is True and all(item['changed'] for item in checked['files'])
    assert run.result('check mode only')['changed'] is True and not (tmp_path / 'check-only').exists()
    report = run.result('report')
    assert report['changed'] is True and report['charts'] is True
    names = ['report.json', 'report.html', 'weight.png', 'errors.png', 'latency.png', 'guards.png']
    assert [item['name'] for item in report['files']] == names
    assert report['paths']['html'] == str(dest / 'report.html') and report['dest'] == str(dest)
    again = run.result('report again')
    assert again['changed'] is False and not any(item['changed'] for item in again['files'])
    assert again['summary'] == report['summary']
    for name in ('invalid metric', 'unreadable end'):
        assert run.result(name)['failed'] is True
    assert 'kind must be one of' in run.result('invalid metric')['msg']
    assert "end_time: invalid time 'soon'" in run.result('unreadable end')['msg']
    assert not (tmp_path / 'invalid').exists()

    for name in ('weight.png', 'errors.png', 'latency.png', 'guards.png'):
        data = (dest / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10000, name

    document = json.loads((dest / 'report.json').read_text())
    assert (document['start'], document['end'], document['window']) == (t0, t0 + FINISH, 5.0)
    errors, slow, broken, guard = document['metrics']
    for track, arm in (('canary', 'canary'), ('baseline', 'baseline')):
        assert errors['totals'][arm]['requests'] == fed[track][0]
        assert errors['totals'][arm]['errors'] == fed[track][1]
        assert slow['totals'][arm]['requests'] == fed[track][0] and slow['totals'][arm]['errors'] == fed[track][2]
    assert fed['canary'][:2] == [800, 80] and fed['baseline'][:2] == [3200, 16]
    assert errors['missing'] == [] and slow['missing'] == []
    assert [line.split(': ')[1] for line in broken['missing']] == ['canary errors', 'baseline errors']
    assert 'returned bad_data' in broken['missing'][0]
    assert broken['totals']['canary']['requests'] is None
    assert max(point[1] for series in guard['series'] for point in series['points']) == 0.9
    windows = errors['windows']
    spike = [row['canary']['rate'] for row in windows if FAIL_AFTER < row['end'] - t0 <= STOP]
    assert spike and set(spike) == {0.2}
    assert all(row['canary']['rate'] == 0 for row in windows if 0 < row['end'] - t0 <= FAIL_AFTER)
    assert document['weight'][:3] == [[t0, 0.0], [t0 + 30, 5.0], [t0 + 150, 25.0]] and document['weight'][-1][1] == 0.0
    assert [mark['label'] for mark in document['decisions']] == ['step 0 5%: pass', 'step 1 25%: fail', 'rolled back']
    assert document['record']['version'] == '2'

    summary = report['summary']
    assert summary['metrics'][0]['canary'] == {'requests': 800.0, 'errors': 80.0, 'rate': 0.1}
    assert summary['metrics'][0]['ratio'] == pytest.approx(20.0)
    assert summary['missing'] == broken['missing']
    assert any('the report misses series' in warning for warning in report.get('warnings', []))

    page = (dest / 'report.html').read_text()
    assert 'http_errors &lt;worse&gt;' in page and '<worse>' not in page
    for label in ('step 0 5%: pass', 'step 1 25%: fail', 'rolled back'):
        assert label in page
    for name in ('weight.png', 'errors.png', 'latency.png', 'guards.png'):
        assert '<img src="%s"' % name in page
    assert sorted(os.listdir(dest)) == sorted(names)


@pytest.fixture(scope='module')
def moto():
    server = MotoServer()
    server.start()
    yield server
    server.stop()


def test_cloudwatch_report(moto, tmp_path):
    client = boto3.client('cloudwatch', endpoint_url=moto.endpoint_url, region_name=REGION,
                          aws_access_key_id='testing', aws_secret_access_key='testing')
    start = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0) - datetime.timedelta(minutes=30)
    points = []
    for minute in range(10):
        at = start + datetime.timedelta(minutes=minute)
        for group, requests, errors in (('report/canary', 600, 30), ('report/stable', 5400, 54)):
            dimensions = [{'Name': 'TargetGroup', 'Value': group}]
            points += [
                {'MetricName': 'RequestCount', 'Dimensions': dimensions, 'Timestamp': at, 'Value': float(requests)},
                {'MetricName': 'HTTPCode_Target_5XX_Count', 'Dimensions': dimensions, 'Timestamp': at,
                 'Value': float(errors)},
            ]
    for offset in range(0, len(points), 20):
        client.put_metric_data(Namespace='Canary/Report', MetricData=points[offset:offset + 20])

    # moto's backend is shared by every MotoServer of the pytest process, and its GetMetricData ignores the
    # namespace when a query has dimensions: target group names no other test uses keep the data apart.
    def query(name):
        return {'namespace': 'Canary/Report', 'metric_name': name, 'dimensions': {'TargetGroup': '${track}'}}

    t0 = start.timestamp()
    record = dict(rolled_back_record(t0), status='promoted', reason=None, finished_at=stamp(t0 + 600),
                  updated_at=stamp(t0 + 600))
    metric = {'name': 'alb_5xx', 'kind': 'errors', 'provider': 'cloudwatch', 'period': 60,
              'requests': query('RequestCount'), 'errors': query('HTTPCode_Target_5XX_Count')}
    dest = tmp_path / 'cloudwatch'
    moto.clear()
    arguments = dict(record=record, metrics=[metric], dest=str(dest), region=REGION, endpoint_url=moto.endpoint_url,
                     canary_track='report/canary', baseline_track='report/stable')
    run = run_playbook(tasks=[report_task('report', arguments)], extra_env=aws_env(), timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = run.result('report')
    summary = result['summary']['metrics'][0]
    assert summary['canary'] == {'requests': 6000.0, 'errors': 300.0, 'rate': 0.05}
    assert summary['baseline'] == {'requests': 54000.0, 'errors': 540.0, 'rate': 0.01}
    assert result['summary']['window'] == 60.0 and result['summary']['status'] == 'promoted'
    assert [mark['label'] for mark in result['summary']['decisions']] == ['step 0 5%: pass', 'step 1 25%: fail',
                                                                          'promoted']
    assert len(moto.requests('GetMetricData')) == 1
    document = json.loads((dest / 'report.json').read_text())
    assert document['weight'][-1] == [t0 + 600, 25.0]              # promoted: the last weight holds
    assert (dest / 'errors.png').read_bytes().startswith(PNG_SIGNATURE)
