"""The load runner in this process (the Python loop) against a real HTTP server on 127.0.0.1."""

import json
import subprocess
import sys
import threading

from ansible_collections.canary.release.plugins.module_utils._loadtest.load_plan import build_load_plan
from ansible_collections.canary.release.plugins.module_utils._loadtest.load_runner import LoadRunner
from tests.support.recording_server import RecordingServer


def run_load(tmp_path, canary, baseline, duration, watch_pid=None, stop_after=None):
    plan = build_load_plan('web', [canary.url + '/c'], [baseline.url + '/b'], 10, duration, tool='python')
    path = str(tmp_path / 'status.json')
    runner = LoadRunner(plan, path, watch_pid=watch_pid)
    if stop_after is not None:
        threading.Timer(stop_after, runner.stop_event.set).start()
    reason = runner.run()
    with open(path, encoding='utf-8') as handle:
        return reason, json.load(handle)


def test_the_duration_ends_the_load_and_the_counts_are_what_the_servers_got(tmp_path):
    with RecordingServer(200) as canary, RecordingServer(503) as baseline:
        reason, status = run_load(tmp_path, canary, baseline, '1.5s')
        assert reason == 'duration' and status['ended'] == 'duration' and status['running'] is False
        canary_target, baseline_target = status['targets']
        assert canary_target['status'] == {'200': len(canary.requests)}
        assert baseline_target['status'] == {'503': len(baseline.requests)}
        assert 12 <= len(canary.requests) <= 16 and 12 <= len(baseline.requests) <= 16
        assert status['requests'] == len(canary.requests) + len(baseline.requests)


def test_a_stop_signal_ends_it_early(tmp_path):
    with RecordingServer(200) as canary, RecordingServer(200) as baseline:
        reason, status = run_load(tmp_path, canary, baseline, '60s', stop_after=1.0)
        assert reason == 'stopped' and status['seconds'] < 3.0


def test_it_ends_when_the_watched_process_ends(tmp_path):
    watched = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1)'])
    try:
        with RecordingServer(200) as canary, RecordingServer(200) as baseline:
            reason, status = run_load(tmp_path, canary, baseline, '60s', watch_pid=watched.pid)
            assert reason == 'play ended' and status['ended'] == 'play ended' and status['seconds'] < 4.0
    finally:
        watched.wait(10)


def test_an_unreachable_target_counts_transport_errors(tmp_path):
    with RecordingServer(200) as canary:
        plan = build_load_plan('web', [canary.url], ['http://127.0.0.1:9/'], 10, '1s', tool='python', timeout=1)
        path = str(tmp_path / 'status.json')
        LoadRunner(plan, path).run()
        with open(path, encoding='utf-8') as handle:
            baseline = json.load(handle)['targets'][1]
        assert baseline['requests'] == baseline['transport_errors'] >= 5 and baseline['status'] == {}
