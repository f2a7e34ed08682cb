"""Observed canary share through a real nginx versus the share nginx_weights asked for.

1 canary and 9 stable backends behind one upstream; for each target percent the weights are set by the same
core the module uses (``set_upstream_weights``, with nginx -t and a graceful reload), then REQUESTS requests
go through nginx and the answering backends are counted. Target: within 0.5 points of the requested share.

Run from the repository root: ``.venv/bin/python -m bench.nginx_split.run``.
"""

import argparse
import collections
import concurrent.futures
import sys
import time

from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_traffic import set_upstream_weights

from bench.results_file import nginx_version, write_results
from tests.support.nginx import NginxServer

PERCENTS = (1, 5, 25, 50)
TOLERANCE_POINTS = 0.5


def count_concurrently(nginx, requests, connections):
    """Answering backends of ``requests`` GETs sent over ``connections`` concurrent keep-alive connections."""
    shares = [requests // connections + (1 if index < requests % connections else 0) for index in range(connections)]
    total = collections.Counter()
    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        for counts in pool.map(lambda share: nginx.count_backends(share, timeout=300), shares):
            total.update(counts)
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--requests', type=int, default=20000)
    parser.add_argument('--connections', type=int, default=8, help='concurrent keep-alive client connections')
    arguments = parser.parse_args()

    backends = ['canary-1'] + ['stable-%d' % index for index in range(1, 10)]
    rows = []
    with NginxServer(backends, worker_processes=2) as nginx:
        upstream = nginx.upstream_block('app', [(name, '') for name in backends], directives=['keepalive 16;'])
        nginx.start({'upstream.conf': upstream, 'site.conf': nginx.default_site('app')})
        for percent in PERCENTS:
            old_workers = nginx.worker_pids()
            result = set_upstream_weights(nginx.path('upstream.conf'), 'app', canary=[nginx.addresses['canary-1']],
                                          canary_percent=percent, validate_command=nginx.validate_command,
                                          reload_command=nginx.reload_command)
            nginx.wait_for_workers(old_workers)
            started = time.monotonic()
            counts = count_concurrently(nginx, arguments.requests, arguments.connections)
            seconds = time.monotonic() - started
            answered = sum(value for key, value in counts.items() if not key.startswith(('status', 'connection')))
            observed = 100.0 * counts['canary-1'] / arguments.requests
            rows.append({
                'target_percent': percent,
                'weights': result['weights'],
                'effective_percent': result['canary_percent'],
                'requests': arguments.requests,
                'answered': answered,
                'canary_requests': counts['canary-1'],
                'observed_percent': round(observed, 3),
                'error_points': round(observed - percent, 3),
                'within_tolerance': abs(observed - percent) <= TOLERANCE_POINTS and answered == arguments.requests,
                'seconds': round(seconds, 2),
            })
            print('target %5.1f %%  weights canary %s stable %s  observed %6.3f %%  (%d requests, %.1f s)'
                  % (percent, result['weights']['canary'], result['weights']['stable'], observed,
                     arguments.requests, seconds))
    ok = all(row['within_tolerance'] for row in rows)
    path = write_results('nginx_split', {
        'benchmark': 'nginx_split',
        'setup': '1 canary vs 9 stable backends, one upstream, nginx worker_processes 2, %d concurrent keep-alive '
                 'client connections' % arguments.connections,
        'nginx': nginx_version(nginx.nginx),
        'tolerance_points': TOLERANCE_POINTS,
        'rows': rows,
        'all_within_tolerance': ok,
    })
    print('results: %s; all within %.1f points: %s' % (path, TOLERANCE_POINTS, ok))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
