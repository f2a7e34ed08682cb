"""A quiet canary end to end: with load generation, is a bad canary rolled back and a good one promoted in minutes?

The local stack (examples/local: 3 stable + 1 baseline + 1 canary instance of the sample app at 1 % errors, NGINX,
Prometheus scraping every second) gets only ``ORGANIC_RATE`` req/s of organic load through NGINX - a quiet service.
Each trial releases a new version with the real ``playbooks/canary_release.yml``: a 5x bad one (5 % errors) or a
good one (1 %), the preset ``canary_10_1m`` (10 % for at least a minute, judged, then 100 % and the promotion),
at the product's judge defaults (alpha, beta, max_ratio, rate_floor, dispersion correction on), the canary against
the rest of the fleet. Two configurations:

* ``load``: the analysis role's load generation (``analysis_load_canary_urls`` / ``analysis_load_baseline_urls``:
  every instance of the canary and of the fleet it is compared with, ``LOAD_RATE`` req/s each) while the step is
  judged;
* ``none``: organic traffic only - what happens without it.

Per trial: the outcome, the playbook's seconds, the deciding verdict and its reason, the synthetic requests the role
reported, and from the canary's side its requests and failed requests. A held release is rolled back with
playbooks/rollback.yml before the next trial; after a promotion the fleet gets its 1 % version back. Target (issue
16): with load generation, a 5x canary rolled back and a good one promoted in under 3 minutes each.

Run from the repository root: ``nice .venv/bin/python -m bench.quiet_canary.run [--trials 3] [--without 1]``.
"""

import argparse
import os
import re
import sys

from bench.blast_radius.harness import (Bench, Inventory, judge_metrics, roll_back, stack_variables, step_verdicts,
                                        summarize, watched_release)

ORGANIC_RATE = 0.2
LOAD_RATE = 50
FLEET_ERROR_RATE = 0.01
ERROR_RATES = {'bad': 0.05, 'good': FLEET_ERROR_RATE}
FLEET_VERSION = '1'
DEADLINE = '3m'
TRIAL_SECONDS = 300
# the analysis role's line when it stops the load ("not running" when the load ended at its duration first)
LOAD_LINE = re.compile(r'load sample: (?:stopped|not running), requests sent: baseline (\d+), canary (\d+)')


def settings(stack, state_dir, with_load):
    variables = stack_variables(stack, state_dir)
    variables.update({
        'rollout_preset': 'canary_10_1m',
        'analysis_metrics': judge_metrics(),
        # the canary against the rest of the fleet (3 stable + 1 baseline instance), as the other end-to-end benches
        'analysis_baseline_track': 'track=~"stable|baseline"',
        # Prometheus scrapes every second: poll every second and judge 2 s windows, as the other end-to-end benches
        'analysis_interval': 1,
        'analysis_window': 2,
        # without load the judge has nearly nothing to decide on: hold for a person after 3 minutes
        'analysis_max_duration': DEADLINE,
    })
    if with_load:
        instances = stack.instances
        variables.update({
            'analysis_load_canary_urls': [instances[name].url + '/' for name in stack.names('canary')],
            'analysis_load_baseline_urls': [instances[name].url + '/'
                                            for name in stack.names('stable') + stack.names('baseline')],
            'analysis_load_rate': LOAD_RATE,
        })
    return variables


def synthetic_requests(log_path):
    """``{'canary': n, 'baseline': m}`` summed over the role's "load ...: stopped" lines in a playbook log."""
    sent = {'canary': 0, 'baseline': 0}
    with open(log_path, encoding='utf-8') as handle:
        for baseline, canary in LOAD_LINE.findall(handle.read()):
            sent['baseline'] += int(baseline)
            sent['canary'] += int(canary)
    return sent


def trial(bench, stack, inventories, config, case, version):
    inventory = inventories[config][case]
    result, record = watched_release(bench, stack, inventory, version, FLEET_ERROR_RATE)
    steps = step_verdicts(record)
    judged = [entry for entry in steps if entry['verdict'] and (entry['weight'] or 0) < 100]
    result.update({'config': config, 'case': case, 'steps': steps, 'canary_error_rate': ERROR_RATES[case],
                   'verdict': judged[-1]['verdict'] if judged else None,
                   'verdict_reason': judged[-1]['reason'] if judged else None,
                   'synthetic_requests': synthetic_requests(os.path.join(bench.workdir, 'ansible-%s.log' % version))})
    print('%-4s %-4s %s: %s after %s s (verdict %s), synthetic %s, canary failed %s of %s' % (
        config, case, version, result['status'], result['playbook_seconds'], result['verdict'],
        result['synthetic_requests'], result.get('failed_requests'), result.get('canary_requests')))
    if result['status'] == 'promoted':
        for name in stack.names('stable') + stack.names('baseline'):
            stack.deploy(name, version=FLEET_VERSION, error_rate=FLEET_ERROR_RATE)
    elif result['status'] != 'rolled_back':
        result['rolled_back_after'], dummy = roll_back(
            inventory, os.path.join(bench.workdir, 'rollback-%s.log' % version),
            'bench.quiet_canary: %s %s ended %s' % (config, case, result['status']))
    sys.stdout.flush()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--trials', type=int, default=3, help='trials per case with load generation')
    parser.add_argument('--without', type=int, default=1, help='trials per case without it')
    parser.add_argument('--workdir', help='directory for the stack and logs (default: a new one in /tmp)')
    args = parser.parse_args()
    bench = Bench('quiet_canary', args.workdir)
    trials = []
    plan = [('load', case) for number in range(args.trials) for case in ('bad', 'good')] + \
        [('none', case) for number in range(args.without) for case in ('bad', 'good')]
    with bench.stack(FLEET_VERSION, FLEET_ERROR_RATE) as stack:
        inventories = dict((config, dict(
            (case, Inventory(stack, os.path.join(bench.workdir, 'inventory-%s-%s' % (config, case)), dict(
                settings(stack, bench.state_dir, config == 'load'),
                local_stack_app_options={'error_rate': ERROR_RATES[case]}))) for case in ERROR_RATES))
            for config in ('load', 'none'))
        with bench.load(stack, ORGANIC_RATE, TRIAL_SECONDS * len(plan)):
            for number, (config, case) in enumerate(plan):
                trials.append(trial(bench, stack, inventories, config, case, str(201 + number)))
    summary = {}
    for config in ('load', 'none'):
        for case in ERROR_RATES:
            mine = [entry for entry in trials if entry['config'] == config and entry['case'] == case]
            if not mine:
                continue
            outcomes = {}
            for entry in mine:
                outcomes[entry['status']] = outcomes.get(entry['status'], 0) + 1
            summary['%s_%s' % (config, case)] = {
                'trials': len(mine), 'outcomes': outcomes,
                'playbook_seconds': summarize([entry['playbook_seconds'] for entry in mine]),
                'canary_requests': summarize([entry.get('canary_requests') for entry in mine]),
                'canary_failed_requests': summarize([entry.get('failed_requests') for entry in mine]),
            }
    expected = {'bad': 'rolled_back', 'good': 'promoted'}
    met = all(entry['status'] == expected[entry['case']] and entry['playbook_seconds'] < 180
              for entry in trials if entry['config'] == 'load')
    results = {
        'benchmark': 'quiet_canary',
        'setup': ('local stack: 3 stable + 1 baseline + 1 canary at %g %% errors, %g req/s of organic load through '
                  'NGINX (hey), Prometheus 1 s scrape; real ansible-playbook playbooks/canary_release.yml per trial, '
                  'preset canary_10_1m, errors metric, canary vs stable+baseline, 2 s windows polled every '
                  'second, analysis_max_duration %s, judge defaults otherwise; bad = %g %% errors (5x), good = %g %%'
                  % (100 * FLEET_ERROR_RATE, ORGANIC_RATE, DEADLINE, 100 * ERROR_RATES['bad'],
                     100 * ERROR_RATES['good'])),
        'configurations': {'load': 'analysis_load_* on: %d req/s to each instance (1 canary, 3 stable, 1 baseline)'
                                   % LOAD_RATE,
                           'none': 'organic traffic only'},
        'target': 'with load generation: bad rolled back and good promoted, each in under 180 s of playbook time',
        'target_met': met,
        'trials': trials,
        'summary': summary,
    }
    path = bench.write(results)
    for name, entry in summary.items():
        print('%-10s %s; playbook seconds %s' % (name, entry['outcomes'], entry['playbook_seconds']))
    print('target met: %s; results: %s' % (met, path))
    return 0


if __name__ == '__main__':
    sys.exit(main())
