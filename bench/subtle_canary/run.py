"""A subtle canary end to end: is a canary at 2.5x the fleet's error rate ever promoted at the product's defaults?

The local stack (examples/local: 3 stable + 1 baseline instance of the sample app at 1 % errors, 1 canary, NGINX,
Prometheus scraping every second) takes ``RATE`` req/s of hey load for the whole run. Each trial releases a new
version whose canary fails 2.5 % of its requests (2.5x the fleet: worse than the judge's design effect,
``analysis_max_ratio`` 2, but only just) with the real ``playbooks/canary_release.yml`` at the product's defaults:
the default ``rollout_steps`` (5 -> 25 -> 50 -> 100 %), ``rollout_pause`` (60 s), ``rollout_require_pass`` and the
analysis role's judge defaults (alpha, beta, max_ratio, rate_floor, dispersion correction on). Only what the
local stack needs differs (see ``STACK_SETTINGS`` and bench/subtle_canary/README.md): URLs and tracks (canary vs the
rest of the fleet), the error metric's definition, and the time scale (1 s polls of 2 s windows, a 5 min deadline).

Per trial, from the rollout record: the outcome (promoted, rolled back, held for a person), the step and weight at
which the deciding verdict came, the seconds from the first step's start to it, that verdict and its reason; from
the canary's side (its own /metrics and the NGINX upstream, every 50 ms): its requests and failed requests. A held
release is rolled back with playbooks/rollback.yml before the next trial; after a promotion the stable and baseline
instances get the fleet's 1 % version back. Target (issue 19): 0 promoted in at least 10 trials.

Run from the repository root, on a quiet machine: ``nice .venv/bin/python -m bench.subtle_canary.run [--trials 10]``.
"""

import argparse
import os
import sys
import time

from bench.blast_radius.harness import (Bench, Inventory, judge_metrics, record_time, roll_back, stack_variables,
                                        step_verdicts, summarize, watched_release)

RATE = 200
FLEET_ERROR_RATE = 0.01
CANARY_ERROR_RATE = 0.025
FLEET_VERSION = '1'
# Upper bound of one trial for the load's duration: the 5 min deadline, the deploy, a rollback and the pauses.
TRIAL_SECONDS = 420
OUTCOMES = {'promoted': 'promoted', 'rolled_back': 'rolled_back', 'paused': 'held'}

# What differs from the product's defaults (besides the stack's URLs, NGINX and deploy settings from
# harness.stack_variables), and why. Nothing else is set: not rollout_steps, rollout_pause, rollout_require_pass,
# analysis_dispersion, alpha, beta, max_ratio, rate_floor.
STACK_SETTINGS = {
    # the canary (track="canary", the default) against the rest of the fleet, not the one baseline instance alone
    'analysis_baseline_track': 'track=~"stable|baseline"',
    # Prometheus scrapes every second: poll every second (default 10 s) and judge 2 s windows (default 15 s), as the
    # other end-to-end benches do
    'analysis_interval': 1,
    'analysis_window': 2,
}


def settings(stack, state_dir):
    """The role variables of every trial: the stack's, the canary's error rate, the error metric, STACK_SETTINGS."""
    variables = stack_variables(stack, state_dir)  # also analysis_max_duration 5m (default 30m), rollout_report false
    variables.update(STACK_SETTINGS)
    variables.update({
        'local_stack_app_options': {'error_rate': CANARY_ERROR_RATE},
        # the sample app's error metric only: the latency metric has no slow request on either arm, so it could
        # never pass and would hold every release whatever the errors say - 0 promoted would prove nothing
        'analysis_metrics': judge_metrics(),
    })
    return variables


def deciding_step(record):
    """The record's step entry whose verdict decided the release: the last judged step with a verdict (the one that
    failed or was held, or the last before promotion: by default a 100 % step is not judged); None without one."""
    judged = [entry for entry in record.get('steps') or [] if entry.get('verdict') and (entry.get('weight') or 0) < 100]
    return judged[-1] if judged else None


def _number(value):
    return '-' if value is None else '%g' % value


def describe(result):
    """``rolled_back at step 1 (25 %) 71 s after the first step, verdict fail (...); canary failed 30 of 1504``."""
    line = '%s at step %s (%s %%) %s s after the first step, verdict %s (%s)' % (
        result['outcome'], result['step'], _number(result['weight']), _number(result['decision_seconds']),
        result['verdict'], result['verdict_reason'])
    return line + '; canary failed %s of %s requests' % (result.get('failed_requests'), result.get('canary_requests'))


def trial(bench, stack, inventory, number):
    """Trial ``number``: one release of the 2.5x canary; then a held release is rolled back, a promoted one undone."""
    version = str(101 + number)
    result, record = watched_release(bench, stack, inventory, version, FLEET_ERROR_RATE)
    entry = deciding_step(record) or {}
    steps = record.get('steps') or [{}]
    started, decided = record_time(steps[0].get('started_at')), record_time(entry.get('at'))
    result.update({
        'trial': number + 1,
        'outcome': OUTCOMES.get(result['status'], 'other'),
        'step': entry.get('index'),
        'weight': entry.get('weight'),
        'verdict': entry.get('verdict'),
        'verdict_reason': entry.get('reason'),
        'decision_seconds': decided - started if None not in (started, decided) else None,
        'steps': step_verdicts(record),
    })
    print('trial %2d: %s' % (number + 1, describe(result)))
    if result['outcome'] in ('held', 'other'):
        returned, dummy = roll_back(inventory, os.path.join(bench.workdir, 'rollback-%s.log' % version),
                                    'bench.subtle_canary: trial %d ended %s' % (number + 1, result['status']))
        result['rolled_back_after'] = returned
        print('          rolled back by hand (playbooks/rollback.yml exited %s) before the next trial' % returned)
    elif result['outcome'] == 'promoted':
        for name in stack.names('stable') + stack.names('baseline'):
            stack.deploy(name, version=FLEET_VERSION, error_rate=FLEET_ERROR_RATE)
        result['fleet_restored'] = FLEET_VERSION
        print('          stable and baseline instances back at version %s (%g %% errors)'
              % (FLEET_VERSION, 100 * FLEET_ERROR_RATE))
    sys.stdout.flush()
    return result


def summary(trials):
    counts = dict((outcome, sum(1 for entry in trials if entry['outcome'] == outcome))
                  for outcome in ('promoted', 'rolled_back', 'held', 'other'))
    weights = {}
    for entry in trials:
        key = '%s at %s %%' % (entry['outcome'], _number(entry['weight']))
        weights[key] = weights.get(key, 0) + 1
    return dict(counts, trials=len(trials), target_met=counts['promoted'] == 0, ended_at=weights,
                decision_seconds=summarize([entry['decision_seconds'] for entry in trials]),
                rollback_decision_seconds=summarize([entry['decision_seconds'] for entry in trials
                                                     if entry['outcome'] == 'rolled_back']),
                canary_failed_requests=summarize([entry.get('failed_requests') for entry in trials]),
                canary_excess_failed_requests=summarize([entry.get('excess_failed_requests') for entry in trials]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--trials', type=int, default=10)
    parser.add_argument('--workdir', help='directory for the stack and logs (default: a new one in /tmp)')
    args = parser.parse_args()
    bench = Bench('subtle_canary', args.workdir)
    trials = []
    with bench.stack(FLEET_VERSION, FLEET_ERROR_RATE) as stack:
        inventory = Inventory(stack, os.path.join(bench.workdir, 'inventory'), settings(stack, bench.state_dir))
        with bench.load(stack, RATE, TRIAL_SECONDS * args.trials):
            for number in range(args.trials):
                trials.append(trial(bench, stack, inventory, number))
                time.sleep(3)
    found = summary(trials)
    path = bench.write({
        'benchmark': 'subtle_canary',
        'setup': ('local stack: 3 stable + 1 baseline at %g %% errors, 1 canary at %g %% errors (%gx), hey %d req/s '
                  'through NGINX (1 worker), Prometheus 1 s scrape; real ansible-playbook playbooks/canary_release.yml '
                  'per trial at the product defaults (rollout_steps 5 -> 25 -> 50 -> 100 %%, rollout_pause 60 s, '
                  'rollout_require_pass and analysis_dispersion not set)'
                  % (100 * FLEET_ERROR_RATE, 100 * CANARY_ERROR_RATE, CANARY_ERROR_RATE / FLEET_ERROR_RATE, RATE)),
        'differs_from_defaults': dict(STACK_SETTINGS, analysis_max_duration='5m', rollout_report=False,
                                      analysis_metrics='errors only (bench.blast_radius.harness.judge_metrics)'),
        'target': '0 promoted (issue 19): every trial rolled back or held',
        'trials': trials,
        'summary': found,
    })
    print('%d trials: %d promoted, %d rolled back, %d held, %d other (target: 0 promoted - %s); ended %s'
          % (found['trials'], found['promoted'], found['rolled_back'], found['held'], found['other'],
             'met' if found['target_met'] else 'MISSED', found['ended_at']))
    print('seconds from the first step to the deciding verdict %s; canary failed requests %s'
          % (found['decision_seconds'], found['canary_failed_requests']))
    print('results: %s' % path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
