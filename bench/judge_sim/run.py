"""Simulation benchmark of the canary judge against the usual alternatives (see README.md).

    python bench/judge_sim/run.py --runs 10000 --out bench/results/judge_sim.json --plot bench/results/judge_sim.png

Every scenario is simulated once; all methods see the same data. The judge is the core's own test, run through
a NumPy mirror (vector_judge.py) that is checked bit-for-bit against ``sequential_counts.evaluate_counts`` on the
first ``--verify-runs`` runs of every scenario (decision, deciding window, log mixture LR, raw log LR and
dispersion factor must be identical floats).
"""

import argparse
import json
import math
import os
import platform
import sys
import time

# NumPy's AVX-512 log/exp differ from the C library's in the last bit; without them the mirror is bit for bit.
os.environ.setdefault('NPY_DISABLE_CPU_FEATURES', 'X86_V4,AVX512_ICL,AVX512_SPR')

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sim  # noqa: E402
from sim import METHODS, Scenario, simulate  # noqa: E402
from vector_judge import core  # noqa: E402

HOUR = 3600.0


def scenarios(horizon):
    """The scenario grid (name, group, parameters)."""
    found = []

    def add(group, name, **kwargs):
        kwargs.setdefault('horizon', horizon)
        found.append(Scenario(name=name, group=group, **kwargs))

    for traffic in (0.1, 1.0, 10.0, 100.0):
        for share in (0.05, 0.5):
            for base in (0.001, 0.01):
                for ratio in (1.0, 1.25, 1.5, 2.0, 5.0, 10.0):
                    add('grid', 'grid t=%g s=%g%% p=%g%% r=%g' % (traffic, share * 100, base * 100, ratio),
                        traffic=traffic, share=share, base_rate=base, ratio=ratio)
    # Latency: log-normal latencies (log-sd 0.5), threshold T at the baseline's p99 (slow fraction 1 %); the canary
    # is slower by a factor 1 + shift, so its slow fraction is P(L > T / (1 + shift)).
    z99 = stats.norm.isf(0.01)
    for shift in (0.05, 0.10, 0.25):
        slow = float(stats.norm.sf(z99 - math.log(1.0 + shift) / 0.5))
        for traffic in (10.0, 100.0):
            for share in (0.05, 0.5):
                add('latency', 'latency +%d%% t=%g s=%g%% (slow %.2f%% vs 1%%)' % (shift * 100, traffic, share * 100,
                                                                                   slow * 100),
                    traffic=traffic, share=share, base_rate=0.01, ratio=slow / 0.01, extra={'shift': shift})
    for traffic in (10.0, 100.0):
        for share in (0.05, 0.5):
            for ratio in (1.0, 2.0):
                add('bursts', 'bursts x10 2min/20min t=%g s=%g%% r=%g' % (traffic, share * 100, ratio),
                    traffic=traffic, share=share, base_rate=0.01, ratio=ratio, burst_every=1200.0)
                for sigma in (0.5, 1.0):
                    add('dispersion', 'per-arm noise sd=%g t=%g s=%g%% r=%g' % (sigma, traffic, share * 100, ratio),
                        traffic=traffic, share=share, base_rate=0.01, ratio=ratio, dispersion=sigma)
            for ratio in (2.0, 5.0):
                add('onset', 'onset 10min, min_duration 20min t=%g s=%g%% r=%g' % (traffic, share * 100, ratio),
                    traffic=traffic, share=share, base_rate=0.01, ratio=ratio, onset=600.0, min_duration=1200.0)
        for ratio in (1.0, 2.0):
            add('steps', 'weight 5->20->50%% t=%g r=%g' % (traffic, ratio), traffic=traffic, share=0.05,
                base_rate=0.01, ratio=ratio, share_steps=((600.0, 0.2), (1200.0, 0.5)))
    return found


def clopper_pearson(successes, trials, confidence=0.95):
    if trials == 0:
        return None, None
    tail = (1.0 - confidence) / 2.0
    low = 0.0 if successes == 0 else float(stats.beta.ppf(tail, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(stats.beta.ppf(1.0 - tail, successes + 1, trials - successes))
    return low, high


def summarize(outcome, runs, horizon_windows):
    fails = int(np.sum(outcome.decision == 2))
    passes = int(np.sum(outcome.decision == 1))
    low, high = clopper_pearson(fails, runs)
    decided = outcome.decision > 0
    return {
        'fail': fails / runs, 'fail_ci95': [low, high], 'pass': passes / runs, 'undecided': 1.0 - (fails + passes) / runs,
        'mean_canary_requests': float(np.mean(outcome.requests)),
        'mean_canary_requests_decided': float(np.mean(outcome.requests[decided])) if decided.any() else None,
        'mean_canary_errors': float(np.mean(outcome.errors)),
        'median_minutes': float(np.median(outcome.stop) * sim.WINDOW / 60.0),
        'mean_minutes': float(np.mean(outcome.stop) * sim.WINDOW / 60.0),
    }


def verify(scenario, outcomes, data, designs):
    """Feed the recorded windows of the first runs to the plain-Python core; count mismatches."""
    checked = mismatches = 0
    examples = []
    for name, design in (('judge', designs[0]), ('judge_watched', designs[0]), ('judge_no_dispersion', designs[1])):
        outcome = outcomes[name]
        for run, windows in enumerate(data):
            cells = [core.CountWindow(end, a, b, c, d) for end, a, b, c, d in windows]
            stop = int(outcome.stop[run])
            result = core.evaluate_counts(cells[:stop], design, min_end=scenario.min_duration or None,
                                          restarts=outcome.restarts[run])
            expected = {0: None, 1: 'pass', 2: 'fail'}[int(outcome.decision[run])]
            checked += 1
            same = result.decision == expected
            if expected is not None:
                same = same and result.decided_at == stop * sim.WINDOW
            evidence = result.evidence
            same = same and evidence['log_mixture_lr'] == float(outcome.log_mixture[run]) \
                and evidence['log_lr_untempered'] == float(outcome.log_lr_untempered[run]) \
                and evidence['dispersion_factor'] == float(outcome.phi[run])
            if not same:
                mismatches += 1
                if len(examples) < 3:
                    examples.append({'method': name, 'run': run, 'core': [result.decision, result.decided_at,
                                                                          evidence['log_mixture_lr']],
                                     'vector': [expected, stop * sim.WINDOW, float(outcome.log_mixture[run])]})
    return {'checked': checked, 'mismatches': mismatches, 'examples': examples}


def versions():
    import matplotlib
    import scipy
    return {'python': platform.python_version(), 'numpy': np.__version__, 'scipy': scipy.__version__,
            'matplotlib': matplotlib.__version__}


def targets(results):
    """Evaluate the design targets over the scenario results."""
    rows = []
    for item in results:
        sc = item['scenario']
        judge = item['methods']['judge']
        watched = item['methods']['judge_watched']
        two = item['methods']['sprt_two_sample']
        tuned = item['methods'].get('flagger_tuned')
        row = {'name': sc['name'], 'group': sc['group'], 'ratio': sc['ratio']}
        if sc['ratio'] == 1.0:
            row['false_rollback'] = judge['fail']
            row['false_rollback_ci95_high'] = judge['fail_ci95'][1]
            row['false_rollback_ok'] = judge['fail'] <= 0.01 and judge['fail_ci95'][1] <= 0.015
            # The release's view: the test restarted after each pass, up to sim.WATCHED_TESTS tests.
            row['false_rollback_watched'] = watched['fail']
            row['false_rollback_watched_ci95_high'] = watched['fail_ci95'][1]
            row['false_rollback_watched_ok'] = watched['fail'] <= 0.01 and watched['fail_ci95'][1] <= 0.015
        if sc['ratio'] == 2.0:
            row['power'] = judge['fail']
            row['power_ok'] = judge['fail'] >= 0.99
        if sc['group'] == 'onset':
            # A regression that starts after 10 minutes: caught by the first test or by a test restarted after a pass.
            row['power_watched'] = watched['fail']
            row['power_watched_ok'] = watched['fail'] >= 0.99
        if sc['ratio'] in (1.0, 2.0):
            row['requests_vs_two_sample_sprt'] = judge['mean_canary_requests'] / two['mean_canary_requests'] \
                if two['mean_canary_requests'] > 0 else None
            row['requests_vs_tuned_flagger'] = judge['mean_canary_requests'] / tuned['mean_canary_requests'] \
                if tuned and tuned['mean_canary_requests'] > 0 else None
            # A ratio only means something when the horizon did not cut the runs short.
            row['horizon_binding'] = max(judge['undecided'], two['undecided']) > 0.01
        rows.append(row)
    return rows


def merge(paths, out, plot, argv=None):
    """One result file from runs over parts of the grid: scenarios in grid order, each with its own ``runs``."""
    parts = []
    for path in paths:
        with open(path) as handle:
            parts.append(json.load(handle))
    order = dict((scenario.name, place) for place, scenario in enumerate(scenarios(parts[0]['horizon_hours'] * HOUR)))
    chosen = {}
    for part in parts:
        for item in part['scenarios']:
            name = item['scenario']['name']
            # A scenario run more than once: the run with more runs counts.
            if name not in chosen or part['runs_per_scenario'] > chosen[name]['runs']:
                chosen[name] = dict(item, runs=part['runs_per_scenario'])
    results = sorted(chosen.values(), key=lambda item: order[item['scenario']['name']])
    counts = sorted(set(part['runs_per_scenario'] for part in parts), reverse=True)
    output = dict(parts[0])
    output.update({
        'command': ' '.join(['python', 'bench/judge_sim/run.py'] + (argv if argv is not None else sys.argv[1:])),
        'commands': [part['command'] for part in parts],
        'runs_per_scenario': counts[0],
        'runs_note': ', '.join('%d runs: %d scenarios' % (count, sum(1 for item in results if item['runs'] == count))
                               for count in counts),
        'runtime_seconds': round(sum(part['runtime_seconds'] for part in parts), 1),
        'verification': {'checked': sum(item['verification']['checked'] for item in results),
                         'mismatches': sum(item['verification']['mismatches'] for item in results)},
        'targets': targets(results),
        'scenarios': results,
    })
    with open(out, 'w') as handle:
        json.dump(output, handle, indent=1, default=float)
        handle.write('\n')
    if plot:
        import report
        report.plot(output, plot)
    print('merged %d scenarios (%s) into %s' % (len(results), output['runs_note'], out))
    return 0 if output['verification']['mismatches'] == 0 else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--runs', type=int, default=10000)
    parser.add_argument('--out', default='bench/results/judge_sim.json')
    parser.add_argument('--plot', default='bench/results/judge_sim.png')
    parser.add_argument('--verify-runs', type=int, default=20)
    parser.add_argument('--seed', type=int, default=20250501)
    parser.add_argument('--horizon-hours', type=float, default=24.0)
    parser.add_argument('--only', default='', help='comma-separated substrings of scenario names or groups')
    parser.add_argument('--exact', action='store_true',
                        help="--only's parts are whole scenario names ('grid t=1 s=50%% p=1%% r=1' without r=1.25, r=10)")
    parser.add_argument('--merge', nargs='+', metavar='JSON',
                        help='merge the results of runs over parts of the grid (e.g. with different --runs) into --out')
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out, args.plot, argv)
    everything = scenarios(args.horizon_hours * HOUR)
    # A scenario's seed follows from its place in the whole grid, so a run with --only reproduces the full run's
    # figures for the scenarios it selects.
    grid = list(enumerate(everything))
    if args.only:
        wanted = [part.lstrip() for part in args.only.split(',') if part.strip()]  # a trailing space is kept: 'grid t=1 '
        if args.exact:
            grid = [(place, sc) for place, sc in grid if sc.name in wanted]
        else:
            grid = [(place, sc) for place, sc in grid if any(part in sc.name or part == sc.group for part in wanted)]
    started = time.time()
    results = []
    verified = {'checked': 0, 'mismatches': 0}
    for number, (place, scenario) in enumerate(grid):
        seed = args.seed + 7919 * place
        outcomes, info, data, designs = simulate(scenario, args.runs, seed, verify_runs=args.verify_runs)
        check = verify(scenario, outcomes, data, designs) if args.verify_runs else {'checked': 0, 'mismatches': 0}
        verified['checked'] += check['checked']
        verified['mismatches'] += check['mismatches']
        windows = int(round(scenario.horizon / sim.WINDOW))
        methods = {}
        for method in METHODS:
            if method == 'flagger_tuned' and info['flagger_tuned'] is None:
                methods[method] = None
                continue
            methods[method] = summarize(outcomes[method], args.runs, windows)
        sc = dict((key, value) for key, value in vars(scenario).items())
        results.append({'scenario': sc, 'seed': seed, 'seconds': round(info['seconds'], 2),
                        'fixed_sample_errors': info['fixed_sample_errors'], 'flagger_tuned': info['flagger_tuned'],
                        'verification': check, 'methods': methods})
        judge = methods['judge']
        print('[%3d/%d %6.0fs] %-58s judge fail %.4f pass %.4f N %8.0f | sprt2 N %8.0f | verify %d/%d'
              % (number + 1, len(grid), time.time() - started, scenario.name, judge['fail'], judge['pass'],
                 judge['mean_canary_requests'], methods['sprt_two_sample']['mean_canary_requests'],
                 check['checked'] - check['mismatches'], check['checked']), flush=True)
    output = {
        'benchmark': 'judge_sim',
        'command': ' '.join(['python', 'bench/judge_sim/run.py'] + (argv if argv is not None else sys.argv[1:])),
        'runs_per_scenario': args.runs,
        'window_seconds': sim.WINDOW,
        'horizon_hours': args.horizon_hours,
        'alpha': sim.ALPHA, 'beta': sim.BETA, 'max_ratio': sim.MAX_RATIO,
        'judge_design': {'rate_floor': core.DEFAULT_RATE_FLOOR, 'mixture': core.CountsDesign().mixture,
                         'fail_threshold': core.CountsDesign().fail_threshold,
                         'pass_threshold': core.CountsDesign().pass_threshold,
                         'dispersion_confidence': core.DISPERSION_CONFIDENCE,
                         'restart_share': core.RESTART_SHARE, 'watched_tests': sim.WATCHED_TESTS},
        'versions': versions(),
        'runtime_seconds': round(time.time() - started, 1),
        'verification': verified,
        'targets': targets(results),
        'scenarios': results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as handle:
        json.dump(output, handle, indent=1, default=float)
        handle.write('\n')
    if args.plot:
        import report
        report.plot(output, args.plot)
    print('verification: %d runs checked against the core, %d mismatches'
          % (verified['checked'], verified['mismatches']))
    print('runtime %.0fs; wrote %s' % (time.time() - started, args.out))
    return 0 if verified['mismatches'] == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
