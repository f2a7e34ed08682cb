"""Writing benchmark results: one JSON document per benchmark under bench/results, with the machine it ran on."""

import datetime
import json
import os
import platform
import subprocess

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


def nginx_version(nginx):
    completed = subprocess.run([nginx, '-v'], capture_output=True, text=True, check=False)
    return (completed.stderr or completed.stdout).strip()


def write_results(name, results):
    """Write ``results`` (a dict) with a ``machine`` section to bench/results/<name>.json; return the path."""
    document = dict(results)
    document['machine'] = {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'cpus': os.cpu_count(),
        'python': platform.python_version(),
        'platform': platform.platform(),
    }
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, name + '.json')
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write('\n')
    return path
