"""How many windows the judge needs to fail a bad canary against a baseline with no errors at all (issue 19).

    python bench/judge_sim/clean_baseline.py [--runs 1000]     # plain Python, about a minute

A canary serving 10 req/s fails 5 % of its requests; the baseline serves 3x as many and fails none. Prometheus-style
15-s windows and CloudWatch-style 60-s periods, the judge's core (``sequential_counts.evaluate_counts``) at product
defaults (dispersion correction on), and the same data without the correction for reference. Requests per window
are Poisson, errors binomial; each run's windows until the decision (or 40 windows). Writes
bench/results/judge_clean_baseline.json.
"""

import argparse
import math
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _core_path import ensure_collection_importable  # noqa: E402

ensure_collection_importable()

from ansible_collections.canary.release.plugins.module_utils._judge import sequential_counts as core  # noqa: E402
from bench.results_file import write_results  # noqa: E402

CANARY_RATE = 10.0      # requests per second
BASELINE_FACTOR = 3.0
CANARY_ERRORS = 0.05
MAX_WINDOWS = 40


def poisson(rng, mean):
    """Knuth's method in pieces of at most 500 (exp(-mean) stays representable)."""
    total = 0
    while mean > 0:
        part = min(mean, 500.0)
        threshold, count, product = math.exp(-part), 0, rng.random()
        while product > threshold:
            count += 1
            product *= rng.random()
        total += count
        mean -= part
    return total


def windows_to_fail(rng, seconds, dispersion):
    cells = []
    for index in range(MAX_WINDOWS):
        canary = poisson(rng, CANARY_RATE * seconds)
        baseline = poisson(rng, CANARY_RATE * BASELINE_FACTOR * seconds)
        errors = sum(1 for _request in range(canary) if rng.random() < CANARY_ERRORS)
        cells.append(core.CountWindow(seconds * (index + 1), float(canary), float(errors), float(baseline), 0.0))
        result = core.evaluate_counts(cells, core.CountsDesign(dispersion=dispersion))
        if result.decision is not None:
            return index + 1 if result.decision == 'fail' else -(index + 1)
    return None


def summarize(outcomes):
    failed = sorted(value for value in outcomes if value is not None and value > 0)
    ordered = sorted(failed)
    return {
        'runs': len(outcomes),
        'failed': len(failed),
        'passed': sum(1 for value in outcomes if value is not None and value < 0),
        'undecided': sum(1 for value in outcomes if value is None),
        'median_windows': statistics.median(ordered) if ordered else None,
        'p90_windows': ordered[int(math.ceil(0.9 * len(ordered))) - 1] if ordered else None,
        'max_windows': ordered[-1] if ordered else None,
        'within_3_windows': sum(1 for value in ordered if value <= 3) / float(len(outcomes)),
        'within_4_windows': sum(1 for value in ordered if value <= 4) / float(len(outcomes)),
        'histogram': dict((str(count), ordered.count(count)) for count in sorted(set(ordered))),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--runs', type=int, default=1000)
    parser.add_argument('--seed', type=int, default=20261206)
    args = parser.parse_args(argv)
    started = time.time()
    cases = {}
    for label, seconds in (('prometheus_15s', 15.0), ('cloudwatch_60s', 60.0)):
        for dispersion in (True, False):
            rng = random.Random('%d-%s' % (args.seed, label))
            outcomes = [windows_to_fail(rng, seconds, dispersion) for _run in range(args.runs)]
            key = '%s%s' % (label, '' if dispersion else '_no_dispersion')
            cases[key] = dict(summarize(outcomes), window_seconds=seconds, dispersion=dispersion)
            print('%-30s median %s windows, p90 %s, max %s; within 3 windows %.1f %%, within 4 %.1f %%; '
                  'failed %d of %d' % (key, cases[key]['median_windows'], cases[key]['p90_windows'],
                                       cases[key]['max_windows'], 100 * cases[key]['within_3_windows'],
                                       100 * cases[key]['within_4_windows'], cases[key]['failed'], args.runs))
    path = write_results('judge_clean_baseline', {
        'benchmark': 'judge_clean_baseline',
        'command': 'python bench/judge_sim/clean_baseline.py --runs %d --seed %d' % (args.runs, args.seed),
        'scenario': {'canary_requests_per_second': CANARY_RATE, 'baseline_factor': BASELINE_FACTOR,
                     'canary_error_rate': CANARY_ERRORS, 'baseline_error_rate': 0.0, 'max_windows': MAX_WINDOWS},
        'design': {'alpha': core.DEFAULT_ALPHA, 'beta': core.DEFAULT_BETA, 'max_ratio': core.DEFAULT_MAX_RATIO,
                   'rate_floor': core.DEFAULT_RATE_FLOOR, 'dispersion_confidence': core.DISPERSION_CONFIDENCE,
                   'overdispersion_confidence': core.OVERDISPERSION_CONFIDENCE},
        'runtime_seconds': round(time.time() - started, 1),
        'cases': cases,
    })
    print('wrote %s' % path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
