"""canary.release.loadtest with real processes and real HTTP servers on 127.0.0.1: both arms get the same bounded
load, it stops with the task, its time bound, or the play that started it (even a SIGKILLed one)."""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
import yaml

from examples.local.processes import is_alive
from tests.support.paths import BIN_DIR
from tests.support.playbook import playbook_env, run_playbook
from tests.support.prometheus import wait_until
from tests.support.recording_server import RecordingServer


@pytest.fixture
def arms():
    with RecordingServer(200) as canary, RecordingServer(500) as baseline:
        yield canary, baseline


def start_task(state_dir, canary, baseline, **options):
    args = {'name': 'web', 'canary_urls': [canary.url + '/c'], 'baseline_urls': [baseline.url + '/b'],
            'rate': 20, 'duration': '60s', 'state_dir': state_dir}
    args.update(options)
    return {'name': 'start', 'canary.release.loadtest': args, 'register': 'started'}


def status(state_dir):
    with open(os.path.join(state_dir, 'web.status.json'), encoding='utf-8') as handle:
        return json.load(handle)


@pytest.mark.parametrize('tool', ['python', 'hey'])
def test_both_arms_get_the_same_load_until_the_task_stops_it(arms, tmp_path, tool):
    if tool == 'hey' and not shutil.which('hey'):
        pytest.skip('hey is not installed')
    canary, baseline = arms
    state_dir = str(tmp_path)
    run = run_playbook([
        start_task(state_dir, canary, baseline, tool=tool, headers={'X-Load': 'synthetic'}),
        dict(start_task(state_dir, canary, baseline, tool=tool, headers={'X-Load': 'synthetic'}), name='again'),
        {'name': 'wait', 'ansible.builtin.pause': {'seconds': 4}},
        {'name': 'stop', 'canary.release.loadtest': {'name': 'web', 'state': 'stopped', 'state_dir': state_dir}},
        {'name': 'stop again', 'canary.release.loadtest': {'name': 'web', 'state': 'stopped',
                                                           'state_dir': state_dir}},
    ])
    assert run.returncode == 0, run.stdout + run.stderr
    started, again, stopped = run.result('start'), run.result('again'), run.result('stop')
    assert started['changed'] is True and started['state'] == 'running' and started['tool'] == tool
    assert again['changed'] is False and again['pid'] == started['pid']  # same options: the same load
    assert stopped['changed'] is True and stopped['ended'] == 'stopped' and not is_alive(started['pid'])
    assert run.result('stop again')['changed'] is False
    # what the load says it sent is what each arm received, the same load on both
    sent = dict((target['arm'], target) for target in stopped['targets'])
    assert sent['canary']['status'] == {'200': len(canary.requests)}
    assert sent['baseline']['status'] == {'500': len(baseline.requests)}
    seconds = stopped['seconds']
    for server in (canary, baseline):
        assert 20 * (seconds - 1.5) <= len(server.requests) <= 20 * seconds + 12, (len(server.requests), seconds)
        assert all(header.get('X-Load') == 'synthetic' for header in server.headers)
    assert abs(len(canary.requests) - len(baseline.requests)) <= 12
    assert 'synthetic' not in run.stdout  # headers are not logged


def test_the_load_ends_with_the_play_that_started_it_even_when_it_is_killed(arms, tmp_path):
    canary, baseline = arms
    state_dir = str(tmp_path / 'state')
    playbook = tmp_path / 'play.yml'
    playbook.write_text(yaml.safe_dump([{'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
                                         'tasks': [start_task(state_dir, canary, baseline, duration='5m',
                                                              tool='python'),
                                                   {'ansible.builtin.pause': {'seconds': 120}}]}]))
    process = subprocess.Popen([os.path.join(BIN_DIR, 'ansible-playbook'), '-i', 'localhost,', str(playbook)],
                               env=playbook_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: os.path.exists(os.path.join(state_dir, 'web.status.json')) and
                   status(state_dir)['requests'] >= 20, 60, message='the load to run')
        with open(os.path.join(state_dir, 'web.pid.json'), encoding='utf-8') as handle:
            record = json.load(handle)
        assert record['watch_pid'] == process.pid
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        killed_at = time.monotonic()
        wait_until(lambda: not is_alive(record['pid']), 5, message='the load to stop with the play')
        assert time.monotonic() - killed_at < 3.0
        assert status(state_dir)['ended'] == 'play ended' and status(state_dir)['running'] is False
        count = len(canary.requests) + len(baseline.requests)
        time.sleep(1.5)
        assert len(canary.requests) + len(baseline.requests) == count  # nothing sent after it ended
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_the_duration_bounds_the_load(arms, tmp_path):
    canary, baseline = arms
    state_dir = str(tmp_path)
    run = run_playbook([start_task(state_dir, canary, baseline, duration='2s', rate=10, tool='python'),
                        {'name': 'wait', 'ansible.builtin.pause': {'seconds': 4}},
                        {'name': 'query', 'canary.release.loadtest': {'name': 'web', 'state': 'query',
                                                                      'state_dir': state_dir}}])
    assert run.returncode == 0, run.stdout + run.stderr
    query = run.result('query')
    assert query['state'] == 'stopped' and query['ended'] == 'duration' and query['changed'] is False
    assert not is_alive(run.result('start')['pid'])
    assert 15 <= len(canary.requests) + len(baseline.requests) <= 2 * 10 * 2 + 4


BAD_INPUT = [
    ({'canary_urls': ['ftp://127.0.0.1/']}, "canary_urls: 'ftp://127.0.0.1/' is not an http:// or https:// URL"),
    ({'baseline_urls': []}, 'baseline_urls: give at least one URL'),
    ({'rate': 0}, 'rate: 0.0 must be above 0 and at most 1000'),
    ({'duration': '2y'}, 'duration:'),
    ({'name': '../escape'}, "name: '../escape' must be 1 to 128 letters"),
    ({'method': 'PATCH', 'tool': 'hey'}, 'tool: hey cannot send PATCH'),
]


def test_bad_input_fails_before_anything_starts_and_check_mode_starts_nothing(arms, tmp_path):
    """One play: every bad input fails its task (ignore_errors), then a valid start in check mode."""
    canary, baseline = arms
    state_dir = str(tmp_path / 'state')
    tasks = [dict(start_task(state_dir, canary, baseline, **options), name='bad %d' % index, ignore_errors=True)
             for index, (options, dummy) in enumerate(BAD_INPUT)]
    tasks.append(dict(start_task(state_dir, canary, baseline), name='check', check_mode=True))
    run = run_playbook(tasks)
    assert run.returncode == 0, run.stdout + run.stderr
    for index, (dummy, message) in enumerate(BAD_INPUT):
        result = run.result('bad %d' % index)
        assert result['failed'] is True and message in result['msg'], result['msg']
    check = run.result('check')
    assert check['changed'] is True and 'would start (check mode)' in check['message']
    assert not os.path.exists(state_dir)
    time.sleep(0.5)
    assert not canary.requests and not baseline.requests
