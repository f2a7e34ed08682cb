"""Healthy releases end to end: time to promotion, the verdicts it rests on, and false rollbacks over many runs.

The local stack (examples/local: 3 stable + 1 baseline + 1 canary instance of the sample app, all at 1 % errors,
NGINX, Prometheus scraping every second) takes ``RATE`` req/s of hey load for the whole run. Each run releases a new
version that behaves exactly like the old one (1 % errors, same latency) with the real
``playbooks/canary_release.yml`` at the product's defaults - among them promotion on evidence
(``rollout_require_pass``, not overridden): steps 10 -> 25 -> 50 -> 100 %, each of at least STEP_SECONDS, judged at
every step but the last by our judge (errors and latency metrics, canary vs the rest of the fleet, 2 s windows
polled every second), a judged step done only on the judge's pass; then the stable hosts are promoted in one batch
and the canary and baseline get the new version. A run that ends in anything but ``promoted`` is a false rollback,
or a false hold (the judge undecided at its deadline; the run is then rolled back with playbooks/rollback.yml so that
the next one starts from 100 % stable).

Per run, from the rollout record: every step's verdict, its reason and the seconds from the step's start to its
verdict (whole seconds), and the time to promotion (the playbook's wall time, and the record's start to finish).

Run from the repository root, on a quiet machine: ``nice .venv/bin/python -m bench.good_release.run [--runs 20]``.
"""

import argparse
import os
import sys
import tempfile
import time

from bench.blast_radius.harness import (Inventory, load_average, read_record, record_time, roll_back, run_release,
                                        stack_variables, step_verdicts, summarize)
from bench.results_file import write_results
from examples.local.stack import LocalStack, analysis_metrics

RATE = 200
ERROR_RATE = 0.01
# Every version serves 1 % of its requests slowly (300 ms, over the latency metric's 0.1 s): a latency metric with no slow
# request on either arm could only pass after about 7 / rate_floor = 68,000 clean canary requests (issue 19).
SLOW_RATE = 0.01
STEPS = (10, 25, 50, 100)
STEP_SECONDS = 8
JUDGED = tuple(index for index, weight in enumerate(STEPS) if weight < 100)  # 100 % has no analysis by default
EVIDENCE = ('pass', 'approved')  # what a judged step may rest on when a pass is required


def recorded_seconds(record):
    """From the record's start to its finish (whole seconds); None when it has not finished."""
    begun, finished = record_time(record.get('started_at')), record_time(record.get('finished_at'))
    return finished - begun if None not in (begun, finished) else None


def describe(steps):
    """``10 % pass after 41 s, 25 % pass after 8 s, ...``: a run's steps in one line."""
    parts = []
    for step in steps:
        timing = '' if step['seconds_to_verdict'] is None else ' after %d s' % step['seconds_to_verdict']
        parts.append('%g %% %s%s' % (step['weight'], step['verdict'], timing))
    return ', '.join(parts) or 'no step recorded'


def release(inventory, state_dir, workdir, number):
    """Run ``number``: one release, then - when it was left held - its rollback. Returns the run's entry."""
    version = str(101 + number)
    returncode, seconds = run_release(inventory, version, os.path.join(workdir, 'ansible-%s.log' % version),
                                      extra_args=['-e', 'promote_serial=3'])
    record = read_record(state_dir) or {}
    entry = {'run': number + 1, 'version': version, 'returncode': returncode, 'status': record.get('status'),
             'reason': record.get('reason'), 'steps': step_verdicts(record), 'playbook_seconds': round(seconds, 1),
             'recorded_seconds': recorded_seconds(record)}
    entry['on_evidence'] = all(step['verdict'] in EVIDENCE for step in entry['steps'] if step['step'] in JUDGED)
    print('run %2d: %s after %.0f s (%s)' % (number + 1, entry['status'], seconds, describe(entry['steps'])))
    if entry['status'] not in ('promoted', 'rolled_back'):
        returned, dummy = roll_back(inventory, os.path.join(workdir, 'rollback-%s.log' % version),
                                    'bench.good_release: run %d ended %s' % (number + 1, entry['status']))
        entry['rolled_back_after'] = returned
        print('        rolled back by hand (playbooks/rollback.yml exited %s) before the next run' % returned)
    sys.stdout.flush()
    return entry


def step_summary(runs):
    """Per step of the plan: how often each verdict was given and the seconds from the step's start to it."""
    summary = []
    for index, weight in enumerate(STEPS):
        given = [step for entry in runs for step in entry['steps'] if step['step'] == index]
        verdicts = {}
        for step in given:
            verdicts[str(step['verdict'])] = verdicts.get(str(step['verdict']), 0) + 1
        summary.append({'step': index, 'weight': weight, 'judged': index in JUDGED, 'verdicts': verdicts,
                        'seconds_to_verdict': summarize([step['seconds_to_verdict'] for step in given])})
    return summary


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
                    scrape_interval='1s', error_rate=ERROR_RATE, slow_rate=SLOW_RATE) as stack:
        variables = stack_variables(stack, state_dir)
        variables.update({
            'rollout_steps': [{'weight': weight, 'pause': STEP_SECONDS if weight < 100 else 0} for weight in STEPS],
            'local_stack_app_options': {'error_rate': ERROR_RATE, 'slow_rate': SLOW_RATE},
            'analysis_canary_track': 'track="canary"',
            'analysis_baseline_track': 'track=~"stable|baseline"',
            'analysis_metrics': analysis_metrics(),
            'analysis_window': 2,
            'analysis_interval': 1,
        })
        inventory = Inventory(stack, os.path.join(workdir, 'inventory'), variables)
        load = stack.load(rate=RATE, duration=600 * args.runs)  # an upper bound: stopped after the last run
        try:
            time.sleep(5)
            for number in range(args.runs):
                runs.append(release(inventory, state_dir, workdir, number))
                time.sleep(2)
        finally:
            load_result = load.stop()
    promoted = [entry for entry in runs if entry['status'] == 'promoted']
    results = {
        'benchmark': 'good_release',
        'setup': ('local stack: 3 stable + 1 baseline + 1 canary, every version at %g %% errors and %g %% slow '
                  'requests (300 ms), hey %d req/s through '
                  'NGINX (1 worker), Prometheus 1 s scrape; real ansible-playbook playbooks/canary_release.yml per run '
                  'at the product defaults, promotion on evidence included (rollout_require_pass not overridden): '
                  'steps %s %% of at least %d s each, a judged step done on the judge\'s pass (the 100 %% step not '
                  'judged), analysis_max_duration 5m, promotion in one batch of 3 (promote_serial=3)'
                  % (100 * ERROR_RATE, 100 * SLOW_RATE, RATE, ' -> '.join(str(weight) for weight in STEPS),
                     STEP_SECONDS)),
        'judge': 'errors + latency (le 0.1 s) metrics, canary vs stable+baseline, window 2 s, poll every 1 s, alpha 0.01 '
                 'split over the two metrics, max_ratio 2, dispersion on (product defaults)',
        'runs': runs,
        'promoted': len(promoted),
        'promoted_on_evidence': sum(1 for entry in promoted if entry['on_evidence']),
        'false_rollbacks': sum(1 for entry in runs if entry['status'] == 'rolled_back'),
        'other_outcomes': sum(1 for entry in runs if entry['status'] not in ('promoted', 'rolled_back')),
        'steps': step_summary(runs),
        'time_to_promotion_seconds': summarize([entry['playbook_seconds'] for entry in promoted]),
        'recorded_rollout_seconds': summarize([entry['recorded_seconds'] for entry in promoted]),
        'load': load_result,
        'seconds': round(time.monotonic() - started, 1),
        'load_average_1m': {'start': load_before, 'end': load_average()},
    }
    path = write_results('good_release', results)
    print('%d of %d promoted (%d on the judge\'s pass at every judged step), %d false rollbacks, %d other; '
          'time to promotion %s' % (len(promoted), len(runs), results['promoted_on_evidence'],
                                    results['false_rollbacks'], results['other_outcomes'],
                                    results['time_to_promotion_seconds']))
    for step in results['steps']:
        print('step %d at %d %%%s: verdicts %s, seconds from its start to its verdict %s'
              % (step['step'], step['weight'], '' if step['judged'] else ' (not judged)', step['verdicts'],
                 step['seconds_to_verdict']))
    print('results: %s' % path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
