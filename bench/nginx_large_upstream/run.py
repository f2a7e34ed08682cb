"""Time for the nginx_weights core to update a 10,000-server upstream.

The file holds one upstream of SERVERS servers (100 canary, the rest stable) among comments and other
directives. Each round asks ``set_upstream_weights`` for a new canary share, so it reads the file, parses it,
computes weights, edits every server line, verifies the result by re-parsing, and writes the file atomically
(validate and reload commands are ``true``: this measures our code, not nginx). Target: ≤ 1 s per update.

Run from the repository root: ``.venv/bin/python -m bench.nginx_large_upstream.run``.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_traffic import set_upstream_weights

from bench.results_file import write_results

TARGET_SECONDS = 1.0
PERCENTS = (5, 25, 50, 100, 0, 1)


def address(index):
    return '10.%d.%d.%d:8080' % (index // 65536, (index // 256) % 256, index % 256)


def large_config(servers, canaries):
    lines = ['# generated for the large-upstream benchmark\n', 'upstream other { server 127.0.0.1:9; }\n',
             'upstream app {\n', '    zone app 1m;\n', '    keepalive 64;\n']
    for index in range(servers):
        extra = ' max_fails=3 fail_timeout=10s' if index % 3 == 0 else ''
        comment = '  # rack %d' % (index // 40) if index % 40 == 0 else ''
        lines.append('    server %s%s;%s\n' % (address(index), extra, comment))
    lines.append('}\n')
    return ''.join(lines), [address(index) for index in range(canaries)]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--servers', type=int, default=10000)
    parser.add_argument('--canaries', type=int, default=100)
    parser.add_argument('--rounds', type=int, default=3, help='rounds over all percents')
    arguments = parser.parse_args()
    text, canary = large_config(arguments.servers, arguments.canaries)
    seconds = []
    with tempfile.TemporaryDirectory(prefix='canary-large-upstream-') as workdir:
        path = os.path.join(workdir, 'upstream.conf')
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write(text)
        for _round in range(arguments.rounds):
            for percent in PERCENTS:
                started = time.perf_counter()
                result = set_upstream_weights(path, 'app', canary=canary, canary_percent=percent,
                                              validate_command='true', reload_command='true')
                seconds.append(time.perf_counter() - started)
                if not result['changed']:
                    sys.exit('round did not change the file (percent %s)' % percent)
        size = os.path.getsize(path)
    results = {
        'benchmark': 'nginx_large_upstream',
        'servers': arguments.servers,
        'canary_servers': arguments.canaries,
        'file_bytes': size,
        'updates': len(seconds),
        'seconds_median': round(statistics.median(seconds), 4),
        'seconds_max': round(max(seconds), 4),
        'target_seconds': TARGET_SECONDS,
        'within_target': max(seconds) <= TARGET_SECONDS,
    }
    path = write_results('nginx_large_upstream', results)
    print('%d-server upstream: update median %.3f s, max %.3f s over %d updates (target %.1f s)'
          % (arguments.servers, results['seconds_median'], results['seconds_max'], len(seconds), TARGET_SECONDS))
    print('results: %s' % path)
    return 0 if results['within_target'] else 1


if __name__ == '__main__':
    sys.exit(main())
