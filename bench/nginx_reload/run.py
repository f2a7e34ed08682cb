"""Failed requests while nginx_weights changes weights under load.

A real nginx fronts 1 canary and 9 stable backends. ``hey`` sends a bounded, rate-limited load (about
RATE req/s for at most DURATION seconds) while the core the module uses (``set_upstream_weights``: edit,
nginx -t, graceful reload) changes the canary share CHANGES times, cycling 5 → 25 → 50 → 100 → 0 %.
Target: 0 failed requests (any non-200 answer or transport error counts as failed).

Run from the repository root: ``.venv/bin/python -m bench.nginx_reload.run``.
"""

import argparse
import re
import shutil
import subprocess
import sys
import time

from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_traffic import set_upstream_weights

from bench.results_file import nginx_version, write_results
from tests.support.nginx import NginxServer

CYCLE = (5, 25, 50, 100, 0)
HEY_CONNECTIONS = 10


def parse_hey(output):
    """Status code counts, error lines and total requests from hey's text report."""
    statuses = dict((int(code), int(count)) for code, count in re.findall(r'\[(\d{3})\]\s+(\d+) responses', output))
    errors_section = output.split('Error distribution:', 1)[1] if 'Error distribution:' in output else ''
    errors = dict((text.strip(), int(count)) for count, text in re.findall(r'\[(\d+)\]\s+(.+)', errors_section))
    rate = re.search(r'Requests/sec:\s+([\d.]+)', output)
    return statuses, errors, float(rate.group(1)) if rate else None


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--changes', type=int, default=50)
    parser.add_argument('--rate', type=int, default=1000, help='total requests per second')
    parser.add_argument('--interval', type=float, default=0.4, help='seconds between weight changes')
    arguments = parser.parse_args()
    hey = shutil.which('hey')
    if not hey:
        sys.exit('hey is not installed (Debian package hey)')

    duration = int(arguments.changes * arguments.interval + 6)
    backends = ['canary-1'] + ['stable-%d' % index for index in range(1, 10)]
    change_seconds = []
    with NginxServer(backends, worker_processes=2) as nginx:
        upstream = nginx.upstream_block('app', [(name, '') for name in backends], directives=['keepalive 16;'])
        nginx.start({'upstream.conf': upstream, 'site.conf': nginx.default_site('app')})
        load = subprocess.Popen(
            [hey, '-z', '%ds' % duration, '-c', str(HEY_CONNECTIONS), '-q', str(arguments.rate // HEY_CONNECTIONS),
             '-t', '5', nginx.url + '/'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(2)
            for index in range(arguments.changes):
                percent = CYCLE[index % len(CYCLE)]
                started = time.monotonic()
                set_upstream_weights(nginx.path('upstream.conf'), 'app', canary=[nginx.addresses['canary-1']],
                                     canary_percent=percent, validate_command=nginx.validate_command,
                                     reload_command=nginx.reload_command)
                change_seconds.append(time.monotonic() - started)
                time.sleep(arguments.interval)
            output = load.communicate(timeout=duration + 30)[0]
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
        error_log = nginx.error_log_text()
    statuses, errors, rate = parse_hey(output)
    total = sum(statuses.values()) + sum(errors.values())
    failed = total - statuses.get(200, 0)
    change_seconds.sort()
    results = {
        'benchmark': 'nginx_reload',
        'setup': '1 canary vs 9 stable backends, nginx worker_processes 2, hey -c %d rate-limited' % HEY_CONNECTIONS,
        'nginx': nginx_version(nginx.nginx),
        'weight_changes': arguments.changes,
        'target_rate_per_second': arguments.rate,
        'observed_rate_per_second': rate,
        'load_seconds': duration,
        'requests': total,
        'status_counts': dict((str(code), count) for code, count in statuses.items()),
        'transport_errors': errors,
        'failed_requests': failed,
        'weight_change_seconds_median': round(change_seconds[len(change_seconds) // 2], 4),
        'weight_change_seconds_max': round(change_seconds[-1], 4),
        'nginx_error_log_alerts': len(re.findall(r'\[(?:alert|emerg|crit)\]', error_log)),
    }
    path = write_results('nginx_reload', results)
    print('%d weight changes under %.0f req/s: %d requests, %d failed; a change takes %.3f s (median), %.3f s (max)'
          % (arguments.changes, rate or 0, total, failed, results['weight_change_seconds_median'],
             results['weight_change_seconds_max']))
    print('results: %s' % path)
    return 0 if failed == 0 and total > 0 else 1


if __name__ == '__main__':
    sys.exit(main())
