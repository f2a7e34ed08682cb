"""Blast radius of a bad canary: our judge vs the same tool configured Flagger-style, on the real local stack.

The local stack (examples/local: 3 stable + 1 baseline instance of the sample app at 1 % errors, 1 canary, NGINX,
Prometheus scraping every second) takes ``RATE`` req/s of hey load for the whole run. Each trial releases a new
version whose canary fails 5x as often (5 % errors) with the real ``playbooks/canary_release.yml``: one step at
10 % that lasts up to STEP_SECONDS, judged either by

* ``judge``: our sequential judge (``analysis`` errors metric, canary vs the rest of the fleet, 2 s windows, polled
  every second, product defaults otherwise: alpha 0.01, max_ratio 2, dispersion correction on), or
* ``flagger``: the same analysis role with one threshold metric, Flagger's rule: the canary's error rate over the
  last 10 s checked every 10 s against 2 % (twice the fleet's rate, the judge's design effect), rolled back after
  5 failed checks.

Configurations alternate trial by trial under the same load. Measured from the canary's side (its own /metrics and
the NGINX upstream file, polled every 50 ms): seconds from the canary's first request to its share back at 0 %, and
the failed user requests it caused (its 500 answers; also net of the 1 % the stable fleet would have failed anyway).
Targets (issue 19): rollback after a median <= 10 s (design.md: 15 s); failed requests <= 0.25x the Flagger-style run.

Run from the repository root, on a quiet machine: ``nice .venv/bin/python -m bench.blast_radius.run [--trials 3]``.
"""

import argparse
import os
import sys
import time

from bench.blast_radius.harness import (Bench, Inventory, flagger_metrics, judge_metrics, stack_variables, summarize,
                                        watched_release)

RATE = 200
STABLE_ERROR_RATE = 0.01
CANARY_ERROR_RATE = 0.05
WEIGHT = 10
STEP_SECONDS = 90
FLAGGER_THRESHOLD = 0.02
FLAGGER_QUIET_SECONDS = 45


def configurations(stack, bench, dispersion_variant):
    common = stack_variables(stack, bench.state_dir)
    common.update({
        'rollout_steps': [{'weight': WEIGHT, 'pause': STEP_SECONDS}],
        'local_stack_app_options': {'error_rate': CANARY_ERROR_RATE},
        'analysis_canary_track': 'track="canary"',
        'analysis_baseline_track': 'track=~"stable|baseline"',
    })
    judge = dict(common, analysis_metrics=judge_metrics(), analysis_window=2, analysis_interval=1)
    flagger = dict(common, analysis_metrics=flagger_metrics(FLAGGER_THRESHOLD), analysis_window=10,
                   analysis_interval=10)
    found = {'judge': judge, 'flagger': flagger}
    if dispersion_variant:
        found['judge_no_dispersion'] = dict(judge, analysis_dispersion=False)
    return dict((name, Inventory(stack, os.path.join(bench.workdir, 'inventory-' + name), variables))
                for name, variables in found.items())


def trial(bench, stack, inventory, name, version):
    result, dummy = watched_release(bench, stack, inventory, version, STABLE_ERROR_RATE)
    result['config'] = name
    if 'canary_seconds' in result:
        result['rollback_seconds'] = result.pop('canary_seconds')
    return result


def restore_fleet(stack):
    """The stable and baseline instances back at version 1 with the fleet's error rate; their names."""
    names = [name for track in ('stable', 'baseline') for name in stack.names(track)]
    for name in names:
        stack.deploy(name, '1', error_rate=STABLE_ERROR_RATE)
    return names


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--trials', type=int, default=3, help='trials per configuration')
    parser.add_argument('--dispersion-variant', action='store_true',
                        help='also run the judge with analysis_dispersion: false')
    parser.add_argument('--workdir', help='directory for the stack and logs (default: a new one in /tmp)')
    args = parser.parse_args()
    bench = Bench('blast_radius', args.workdir)
    trials = []
    with bench.stack('1', STABLE_ERROR_RATE) as stack:
        inventories = configurations(stack, bench, args.dispersion_variant)
        # One bounded load for everything: at most 4 minutes per trial.
        with bench.load(stack, RATE, 240 * args.trials * len(inventories)):
            version = 100
            for number in range(args.trials):
                for name, inventory in inventories.items():
                    version += 1
                    if name == 'flagger':
                        # Flagger counts its own failed checks; the query counts breaches in the last 50 s, so the
                        # previous trial's bad canary must be out of that range before this canary starts.
                        time.sleep(FLAGGER_QUIET_SECONDS)
                    result = trial(bench, stack, inventory, name, str(version))
                    result['trial'] = number + 1
                    if result['status'] == 'promoted':
                        # the promotion gave the stable fleet the bad version: put the stable one back, or every
                        # later trial would compare a bad canary with a bad fleet
                        result['fleet_restored'] = restore_fleet(stack)
                    trials.append(result)
                    print('%-20s trial %d: %s, rollback %s s after the first canary request, %s failed requests '
                          '(%s beyond the fleet rate)' % (name, number + 1, result['status'],
                                                          result.get('rollback_seconds'), result.get('failed_requests'),
                                                          result.get('excess_failed_requests')))
                    sys.stdout.flush()
                    time.sleep(3)
    summary = {}
    for name in inventories:
        mine = [entry for entry in trials if entry['config'] == name]
        summary[name] = {
            'rolled_back': sum(1 for entry in mine if entry['status'] == 'rolled_back'),
            'trials': len(mine),
            'rollback_seconds': summarize([entry.get('rollback_seconds') for entry in mine]),
            'failed_requests': summarize([entry.get('failed_requests') for entry in mine]),
            'excess_failed_requests': summarize([entry.get('excess_failed_requests') for entry in mine]),
        }
    judge, flagger = summary['judge'], summary['flagger']
    ratio = None
    if judge['failed_requests'] and flagger['failed_requests'] and flagger['failed_requests']['mean']:
        ratio = round(judge['failed_requests']['mean'] / flagger['failed_requests']['mean'], 3)
    results = {
        'benchmark': 'blast_radius',
        'setup': ('local stack: 3 stable + 1 baseline at %g %% errors, 1 canary at %g %% errors (5x) given %d %% for up '
                  'to %d s, hey %d req/s through NGINX (1 worker), Prometheus 1 s scrape; real ansible-playbook '
                  'playbooks/canary_release.yml per trial, configurations alternating'
                  % (100 * STABLE_ERROR_RATE, 100 * CANARY_ERROR_RATE, WEIGHT, STEP_SECONDS, RATE)),
        'configurations': {
            'judge': 'errors metric, canary vs stable+baseline, window 2 s, poll every 1 s, alpha 0.01, max_ratio 2, '
                     'dispersion on (product defaults)',
            'judge_no_dispersion': 'as judge, analysis_dispersion false',
            'flagger': 'threshold: canary error rate over 10 s > %g, checked every 10 s, 5 failed checks'
                       % FLAGGER_THRESHOLD,
        },
        'targets': {'rollback_seconds_median': 10, 'failed_requests_ratio_to_flagger': 0.25},
        'trials': trials,
        'summary': summary,
        'failed_requests_ratio_judge_to_flagger': ratio,
    }
    path = bench.write(results)
    for name, entry in summary.items():
        print('%-20s %d/%d rolled back; rollback seconds %s; failed requests %s' % (
            name, entry['rolled_back'], entry['trials'], entry['rollback_seconds'], entry['failed_requests']))
    print('failed requests, judge / flagger-style: %s' % ratio)
    print('results: %s' % path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
