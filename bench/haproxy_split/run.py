"""HAProxy through haproxy_weights' core: observed canary share, and failed requests while the weights change.

A real HAProxy (tests/support/haproxy.py, 2 threads) fronts 1 canary and 9 stable backends in one ``backend app``
(roundrobin). Two parts, both through the core the module runs (``set_backend_weights``: Runtime API, read-back,
and the configuration file kept in step and validated with ``haproxy -c``):

1. split: for each target percent the weights are set, then ``hey`` sends REQUESTS requests over CONNECTIONS
   keep-alive connections; HAProxy's per-backend request counters say which backend answered. Target: within 0.5
   points of the requested share, every request answered 200.
2. changes: ``hey`` sends a bounded, rate-limited load (about RATE req/s for at most the planned time) while the
   share changes CHANGES times, cycling 5 -> 25 -> 50 -> 100 -> 0 %; after each change the runtime weights (read
   independently) must equal the file's. Target: 0 failed requests (any non-200 answer or transport error), and no
   HAProxy reload (the worker PID stays).

Run from the repository root: ``.venv/bin/python -m bench.haproxy_split.run``.
"""

import argparse
import subprocess
import sys
import time

from ansible_collections.canary.release.plugins.module_utils._haproxy.haproxy_config import parse_backend
from ansible_collections.canary.release.plugins.module_utils._haproxy.haproxy_traffic import set_backend_weights

from bench.results_file import write_results
from examples.local.load import Load
from tests.support.haproxy import HaproxyServer

PERCENTS = (1, 5, 25, 50)
CYCLE = (5, 25, 50, 100, 0)
TOLERANCE_POINTS = 0.5


def set_share(haproxy, percent):
    started = time.monotonic()
    result = set_backend_weights('app', haproxy.admin_socket, path=haproxy.config, canary=['canary-1'],
                                 canary_percent=percent, validate_command=haproxy.validate_command)
    return result, time.monotonic() - started


def in_step(haproxy):
    with open(haproxy.config, encoding='utf-8') as handle:
        return parse_backend(handle.read(), 'app').weights() == haproxy.weights()


def split(haproxy, requests, connections):
    rows = []
    for percent in PERCENTS:
        result, dummy = set_share(haproxy, percent)
        started = time.monotonic()
        counts, statuses, errors = haproxy.count_with_hey(requests, connections=connections, timeout=600)
        seconds = time.monotonic() - started
        observed = 100.0 * counts['canary-1'] / max(1, sum(counts.values()))
        rows.append({
            'target_percent': percent,
            'weights': result['group_weights'],
            'effective_percent': result['canary_percent'],
            'requests': requests,
            'answered_200': statuses.get('200', 0),
            'transport_errors': errors,
            'canary_requests': counts['canary-1'],
            'observed_percent': round(observed, 3),
            'error_points': round(observed - percent, 3),
            'within_tolerance': abs(observed - percent) <= TOLERANCE_POINTS and statuses.get('200') == requests,
            'seconds': round(seconds, 2),
        })
        print('target %5.1f %%  weights canary %s stable %s  observed %6.3f %%  (%d requests, %.1f s)'
              % (percent, result['group_weights']['canary'], result['group_weights']['stable'], observed, requests,
                 seconds))
    return rows


def changes(haproxy, count, rate, interval):
    duration = count * (interval + 0.1) + 4
    workers = haproxy.worker_pids()
    change_seconds = []
    disagreements = 0
    load = Load(haproxy.url + '/', rate=rate, duration=duration, connections=10, tool='hey').start()
    try:
        time.sleep(1.5)
        for index in range(count):
            dummy, seconds = set_share(haproxy, CYCLE[index % len(CYCLE)])
            change_seconds.append(seconds)
            disagreements += 0 if in_step(haproxy) else 1
            time.sleep(interval)
        outcome = load.wait()
    finally:
        load.stop()
    change_seconds.sort()
    result = {
        'weight_changes': count,
        'target_rate_per_second': rate,
        'observed_rate_per_second': outcome['rate'],
        'load_seconds': outcome['seconds'],
        'requests': outcome['requests'],
        'status_counts': outcome['status'],
        'transport_errors': outcome['errors'],
        'failed_requests': outcome['failed'],
        'runtime_file_disagreements': disagreements,
        'reloaded': haproxy.worker_pids() != workers,
        'weight_change_seconds_median': round(change_seconds[len(change_seconds) // 2], 4),
        'weight_change_seconds_max': round(change_seconds[-1], 4),
    }
    print('%d weight changes under %.0f req/s: %d requests, %d failed; runtime and file disagreed %d times; a change '
          'takes %.3f s (median), %.3f s (max)' % (count, outcome['rate'], outcome['requests'], outcome['failed'],
                                                   disagreements, result['weight_change_seconds_median'],
                                                   result['weight_change_seconds_max']))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--requests', type=int, default=20000)
    parser.add_argument('--connections', type=int, default=8, help='concurrent keep-alive client connections')
    parser.add_argument('--changes', type=int, default=50)
    parser.add_argument('--rate', type=int, default=1000, help='total requests per second during the changes')
    parser.add_argument('--interval', type=float, default=0.4, help='seconds between weight changes')
    arguments = parser.parse_args()

    backends = ['canary-1'] + ['stable-%d' % index for index in range(1, 10)]
    with HaproxyServer(backends, threads=2) as haproxy:
        haproxy.start()
        rows = split(haproxy, arguments.requests, arguments.connections)
        under_load = changes(haproxy, arguments.changes, arguments.rate, arguments.interval)
        version = subprocess.run([haproxy.haproxy, '-v'], capture_output=True, text=True,
                                 check=False).stdout.splitlines()[0]
    ok = (all(row['within_tolerance'] for row in rows) and under_load['failed_requests'] == 0
          and under_load['requests'] > 0 and under_load['runtime_file_disagreements'] == 0
          and not under_load['reloaded'])
    path = write_results('haproxy_split', {
        'benchmark': 'haproxy_split',
        'setup': '1 canary vs 9 stable backends, one backend (balance roundrobin), haproxy nbthread 2; split: hey '
                 '-n %d -c %d, counted by HAProxy per-backend request counters; changes: hey -c 10 rate-limited'
                 % (arguments.requests, arguments.connections),
        'haproxy': version,
        'tolerance_points': TOLERANCE_POINTS,
        'rows': rows,
        'all_within_tolerance': all(row['within_tolerance'] for row in rows),
        'weight_changes_under_load': under_load,
        'ok': ok,
    })
    print('results: %s; ok: %s' % (path, ok))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
