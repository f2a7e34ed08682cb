"""Healthy releases end to end: time to promotion and false rollbacks over many runs, on the real local stack.

The local stack (examples/local: 3 stable + 1 baseline + 1 canary instance of the sample app, all at 1 % errors,
NGINX, Prometheus scraping every second) takes ``RATE`` req/s of hey load for the whole run. Each run releases a new
version that behaves exactly like the old one (1 % errors, same latency) with the real
``playbooks/canary_release.yml``: steps 10 -> 25 -> 50 -> 100 % of STEP_SECONDS each, judged at every step but the
last by our judge (errors and latency metrics, canary vs the rest of the fleet, 2 s windows polled every second,
product defaults otherwise), then the stable hosts are promoted in one batch and the canary and baseline get the
new version. A run that ends in anything but ``promoted`` is a false rollback (or a false hold).

Run from the repository root, on a quiet machine: ``nice .venv/bin/python -m bench.good_release.run [--runs 20]``.
"""

import argparse
import datetime
import os
import sys
import tempfile
import time

from bench.blast_radius.harness import Inventory, load_average, read_record, run_release, stack_variables, summarize
from bench.results_file import write_results
from examples.local.stack import LocalStack, analysis_metrics

RATE = 200
ERROR_RATE = 0.01
STEPS = (10, 25, 50, 100)
STEP_SECONDS = 8


def parse_time(text):
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ') if text else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--workdir', help='directory for the stack and logs (default: a new one in /tmp)')
    args = parser.parse_args()
    workdir = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix='bench-good-')
    state_dir = os.path.join(workdir, 'state')
    started = time.monotonic()
    runs = []
    load_before = load_average()
    with LocalStack(os.path.join(workdir, 'stack'), stable=3, canary=1, baseline=1, stable_version='100',
                    scrape_interval='1s', error_rate=ERROR_RATE) as stack:
        variables = stack_variables(stack, state_dir)
        variables.update({
            'rollout_steps': [{'weight': weight, 'pause': STEP_SECONDS if weight < 100 else 0} for weight in STEPS],
            'local_stack_app_options': {'error_rate': ERROR_RATE},
            'analysis_canary_track': 'track="canary"',
            'analysis_baseline_track': 'track=~"stable|baseline"',
            'analysis_metrics': analysis_metrics(),
            'analysis_window': 2,
            'analysis_interval': 1,
        })
        inventory = Inventory(stack, os.path.join(workdir, 'inventory'), variables)
        load = stack.load(rate=RATE, duration=300 * args.runs)  # an upper bound: stopped after the last run
        try:
            time.sleep(5)
            for number in range(args.runs):
                version = str(101 + number)
                returncode, seconds = run_release(inventory, version, os.path.join(workdir, 'ansible-%s.log' % version),
                                                  extra_args=['-e', 'promote_serial=3'])
                record = read_record(state_dir) or {}
                begun, finished = parse_time(record.get('started_at')), parse_time(record.get('finished_at'))
                verdicts = [step.get('verdict') for step in record.get('steps', [])]
                runs.append({'run': number + 1, 'version': version, 'returncode': returncode,
                             'status': record.get('status'), 'reason': record.get('reason'), 'verdicts': verdicts,
                             'playbook_seconds': round(seconds, 1),
                             'recorded_seconds': (finished - begun).total_seconds() if begun and finished else None})
                print('run %2d: %s after %.0f s (steps %s)' % (number + 1, record.get('status'), seconds,
                                                               ', '.join(str(verdict) for verdict in verdicts)))
                sys.stdout.flush()
                time.sleep(2)
        finally:
            load_result = load.stop()
    promoted = [entry for entry in runs if entry['status'] == 'promoted']
    results = {
        'benchmark': 'good_release',
        'setup': ('local stack: 3 stable + 1 baseline + 1 canary, every version at %g %% errors, hey %d req/s through '
                  'NGINX (1 worker), Prometheus 1 s scrape; real ansible-playbook playbooks/canary_release.yml per run: '
                  'steps %s %% of %d s each (the 100 %% step not judged), promotion in one batch of 3 (promote_serial=3)'
                  % (100 * ERROR_RATE, RATE, ' -> '.join(str(weight) for weight in STEPS), STEP_SECONDS)),
        'judge': 'errors + latency (le 0.1 s) metrics, canary vs stable+baseline, window 2 s, poll every 1 s, alpha 0.01 '
                 'split over the two metrics, max_ratio 2, dispersion on (product defaults)',
        'runs': runs,
        'promoted': len(promoted),
        'false_rollbacks': sum(1 for entry in runs if entry['status'] == 'rolled_back'),
        'other_outcomes': sum(1 for entry in runs if entry['status'] not in ('promoted', 'rolled_back')),
        'time_to_promotion_seconds': summarize([entry['playbook_seconds'] for entry in promoted]),
        'recorded_rollout_seconds': summarize([entry['recorded_seconds'] for entry in promoted]),
        'load': load_result,
        'seconds': round(time.monotonic() - started, 1),
        'load_average_1m': {'start': load_before, 'end': load_average()},
    }
    path = write_results('good_release', results)
    print('%d of %d promoted, %d false rollbacks, %d other; time to promotion %s'
          % (len(promoted), len(runs), results['false_rollbacks'], results['other_outcomes'],
             results['time_to_promotion_seconds']))
    print('results: %s' % path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
