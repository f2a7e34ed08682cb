"""Release metrics: the exact text, label escaping, parse round trip, merging and timestamps, the atomic file, the
Pushgateway request (against a real local HTTP server)."""

import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.canary.release.plugins.module_utils._observe import release_metrics as rm
from tests.support.recording_server import RecordingServer

STATE = {'service': 'web', 'version': '2.4.1', 'weight': 12.5, 'step': 1, 'verdict': 'pass', 'outcome': 'running',
         'timestamp': 1767225600.0}

EXPECTED = '''# HELP canary_release_canary_weight_percent The canary's share of the traffic now, in percent (0-100).
# TYPE canary_release_canary_weight_percent gauge
canary_release_canary_weight_percent{service="web",version="2.4.1"} 12.5
# HELP canary_release_step Index of the current step of the release (-1 before the first step).
# TYPE canary_release_step gauge
canary_release_step{service="web",version="2.4.1"} 1
# HELP canary_release_verdict The latest verdict of the release: 1 for that verdict only.
# TYPE canary_release_verdict gauge
canary_release_verdict{service="web",version="2.4.1",verdict="pass"} 1
# HELP canary_release_outcome Where the release stands: 1 for the current outcome only.
# TYPE canary_release_outcome gauge
canary_release_outcome{service="web",version="2.4.1",outcome="running"} 1
# HELP canary_release_last_change_timestamp_seconds Unix time of the last change of the release state.
# TYPE canary_release_last_change_timestamp_seconds gauge
canary_release_last_change_timestamp_seconds{service="web",version="2.4.1"} 1767225600
'''


def test_render_exact_text():
    assert rm.render(STATE) == EXPECTED


def test_render_without_verdict_keeps_help_and_type_and_writes_no_sample():
    text = rm.render(dict(STATE, verdict=None, step=-1, weight=0.0))
    assert '# TYPE canary_release_verdict gauge\n# HELP canary_release_outcome' in text
    assert 'canary_release_verdict{' not in text
    assert 'canary_release_step{service="web",version="2.4.1"} -1\n' in text
    assert 'canary_release_canary_weight_percent{service="web",version="2.4.1"} 0\n' in text


def test_label_values_are_escaped_per_the_exposition_format():
    assert rm.escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    text = rm.render(dict(STATE, service='we"b\\x\ny'))
    assert 'canary_release_step{service="we\\"b\\\\x\\ny",version="2.4.1"} 1\n' in text


def test_metric_names_and_labels_are_the_contract():
    names = [name for name, _help in rm.METRICS]
    assert names == ['canary_release_canary_weight_percent', 'canary_release_step', 'canary_release_verdict',
                     'canary_release_outcome', 'canary_release_last_change_timestamp_seconds']
    assert rm.VERDICTS == ('pass', 'fail', 'continue', 'inconclusive', 'watched')
    assert rm.OUTCOMES == ('running', 'held', 'promoted', 'rolled_back', 'aborted')


@settings(max_examples=200, deadline=None)
@given(service=st.text(min_size=1), version=st.text(min_size=1),
       weight=st.floats(min_value=0, max_value=100, allow_nan=False), step=st.integers(min_value=-1, max_value=50),
       verdict=st.sampled_from((None,) + rm.VERDICTS), outcome=st.sampled_from(rm.OUTCOMES))
def test_parse_reads_back_what_render_wrote(service, version, weight, step, verdict, outcome):
    state = {'service': service, 'version': version, 'weight': weight, 'step': step, 'verdict': verdict,
             'outcome': outcome, 'timestamp': 1767225600.0}
    parsed = rm.parse(rm.render(state))
    assert dict(parsed, verdict=parsed.get('verdict')) == state


def test_parse_of_nothing_and_of_two_services():
    assert rm.parse(None) is None
    assert rm.parse('# just a comment\n') is None
    two = rm.render(STATE) + rm.render(dict(STATE, service='api'))
    with pytest.raises(rm.MetricsError, match='more than one service'):
        rm.parse(two)


def test_update_keeps_values_not_given_and_moves_the_timestamp_only_on_change():
    first = rm.update(None, 'web', '2', {'weight': 5}, now=100.7)
    assert first == {'service': 'web', 'version': '2', 'weight': 5.0, 'step': -1, 'verdict': None,
                     'outcome': 'running', 'timestamp': 100.0}
    same = rm.update(first, 'web', '2', {'weight': 5.0}, now=200)
    assert same == first
    moved = rm.update(first, 'web', '2', {'step': 0, 'verdict': None}, now=300)
    assert moved == dict(first, step=0, timestamp=300.0)
    # another version starts afresh
    assert rm.update(moved, 'web', '3', {}, now=400) == dict(first, version='3', weight=0.0, timestamp=400.0)
    # no version given: the published one
    assert rm.update(moved, 'web', None, {'weight': 50}, now=500)['version'] == '2'


@pytest.mark.parametrize('values, message', [
    ({'weight': 101}, 'from 0 to 100'),
    ({'weight': -0.1}, 'from 0 to 100'),
    ({'step': -2}, 'step must be'),
    ({'verdict': 'approved'}, 'unknown verdict'),
    ({'outcome': 'promoting'}, 'unknown outcome'),
])
def test_update_refuses_values_out_of_the_contract(values, message):
    with pytest.raises(rm.MetricsError, match=message):
        rm.update(None, 'web', '2', values, now=1)


def test_update_refuses_another_service_and_an_unknown_version():
    with pytest.raises(rm.MetricsError, match="holds service 'api'"):
        rm.update(dict(STATE, service='api'), 'web', '2', {}, now=1)
    with pytest.raises(rm.MetricsError, match='version label'):
        rm.update(None, 'web', None, {}, now=1)


def record(status, step, weight, verdicts):
    return {'service': 'web', 'version': 2, 'status': status, 'step': step, 'weight': weight,
            'steps': [{'index': index, 'weight': 10, 'verdict': verdict} for index, verdict in enumerate(verdicts)]}


def test_from_record_running_and_held():
    assert rm.from_record(record('running', None, None, []), 'running') == {
        'version': '2', 'step': -1, 'outcome': 'running'}
    assert rm.from_record(record('running', 1, 25, ['pass', None]), 'running') == {
        'version': '2', 'step': 1, 'weight': 25, 'verdict': 'pass', 'outcome': 'running'}
    # a person's approval counts as pass; a step awaiting approval publishes nothing of its own
    assert rm.from_record(record('paused', 2, 50, ['inconclusive', 'approved', 'awaiting_approval']), None) == {
        'version': '2', 'step': 2, 'weight': 50, 'verdict': 'pass', 'outcome': 'held'}


def test_from_record_finished_drained_or_unknown_weight():
    values = rm.from_record(record('rolled_back', 1, 25, ['pass', 'fail']), 'rolled_back')
    assert values == {'version': '2', 'step': 1, 'weight': 0, 'verdict': 'fail', 'outcome': 'rolled_back'}
    assert 'weight' not in rm.from_record(record('aborted', 1, 25, ['pass']), None)
    assert rm.from_record(record('promoted', 3, 100, ['pass'] * 4), 'already_promoted')['outcome'] == 'promoted'
    assert rm.from_record(record('running', 3, 100, ['pass'] * 4), 'promoting')['outcome'] == 'running'
    assert rm.from_record(record('rejected', 0, 5, ['rejected']), None)['verdict'] == 'fail'
    with pytest.raises(rm.MetricsError, match='unknown outcome'):
        rm.from_record(None, 'exploded')


def test_publish_textfile_is_atomic_and_readable_by_the_exporter(tmp_path):
    path = str(tmp_path / 'canary_release_web.prom')
    rm.publish_textfile(path, rm.render(STATE))
    assert rm.read_textfile(path) == (EXPECTED, STATE)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    before = os.stat(path).st_ino
    rm.publish_textfile(path, rm.render(dict(STATE, weight=50)))
    assert os.stat(path).st_ino != before  # replaced by rename, not rewritten in place
    assert sorted(os.listdir(str(tmp_path))) == ['canary_release_web.prom']  # no temporary file left behind
    assert rm.remove_textfile(path) is True
    assert rm.remove_textfile(path) is False
    assert rm.read_textfile(path) == (None, None)


def test_publish_textfile_refuses_a_name_the_collector_ignores(tmp_path):
    with pytest.raises(rm.MetricsError, match='.prom'):
        rm.publish_textfile(str(tmp_path / 'metrics.txt'), EXPECTED)


def test_pushgateway_group_url():
    assert rm.pushgateway_group_url('http://pg:9091/', 'web') == 'http://pg:9091/metrics/job/canary_release/service/web'
    assert rm.pushgateway_group_url('http://pg:9091', 'a b') == 'http://pg:9091/metrics/job/canary_release/service/a%20b'
    assert rm.pushgateway_group_url('http://pg', 'a/b') == 'http://pg/metrics/job/canary_release/service@base64/YS9i'


def test_push_sends_the_text_with_a_bearer_token_and_deletes():
    with RecordingServer(200) as server:
        assert rm.push(server.url, 'web', EXPECTED, token='s3cret') == 200
        assert rm.push(server.url, 'web', None, username='ops', password='pw') == 200
    (method, path, body), (deleted, delete_path, _body) = server.requests
    assert (method, path, body) == ('PUT', '/metrics/job/canary_release/service/web', EXPECTED.encode('utf-8'))
    assert server.headers[0].get('Authorization') == 'Bearer s3cret'
    assert server.headers[0].get('Content-Type') == rm.TEXT_CONTENT_TYPE
    assert (deleted, delete_path) == ('DELETE', '/metrics/job/canary_release/service/web')
    assert server.headers[1].get('Authorization') == 'Basic b3BzOnB3'


def test_push_reports_a_refusal_without_the_token():
    with RecordingServer(400) as server:
        with pytest.raises(rm.MetricsError, match='HTTP 400') as caught:
            rm.push(server.url, 'web', EXPECTED, token='s3cret')
    assert 's3cret' not in str(caught.value)
