"""How much data a bad canary's verdict needs at bench/blast_radius's rates, for the judge and for the best tests there are.

    python bench/judge_sim/blast_radius_limit.py [--runs 1000]     # plain Python, about a minute

bench/blast_radius measures the time from a bad canary's first request to its weight 0, end to end. That time is
the data the verdict needs plus a short tail (scrape, poll, recording the verdict, rewriting the upstream: about
2.2 s in the committed run, from the canary's requests at the verdict and at weight 0). This script measures the
first part alone, on simulated windows at the bench's rates: 200 req/s, the canary 10 % of them at 5 % errors, the
rest of the fleet at 1 %, windows of 2 s (the bench's ``analysis_window``) and of 1 s (the 1 s scrape's finest),
Poisson requests, binomial errors; every method sees the same windows and decides at a window's end.

- ``judge``: the core's test at product defaults (``sequential_counts.evaluate_counts``, dispersion correction on);
- ``judge_no_dispersion``: the same without the dispersion correction;
- ``conditional_true_ratio``: the judge's likelihood ratio (canary errors given each window's errors) at the true
  ratio 5 alone, against ``ln(1/alpha)``: the fastest test of this kind, if the ratio were known in advance;
- ``known_baseline_sprt``: Wald's SPRT of the canary's own errors, 5 % against a baseline rate known exactly (1 %),
  against ``ln(1/alpha)``: the physical limit issue 19 names (it knows both rates, and is blind to shared bursts).

Writes bench/results/judge_blast_radius_limit.json.
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
from clean_baseline import poisson  # noqa: E402

TOTAL_RATE = 200.0      # requests per second through NGINX (bench/blast_radius)
CANARY_SHARE = 0.10
CANARY_ERRORS = 0.05
FLEET_ERRORS = 0.01
STEP_SECONDS = 90.0     # the bench's one step; a run undecided by then is not counted as decided
METHODS = ('judge', 'judge_no_dispersion', 'conditional_true_ratio', 'known_baseline_sprt')


def binomial(rng, trials, probability):
    return sum(1 for _request in range(trials) if rng.random() < probability)


def windows(rng, seconds):
    """The step's windows: ``CountWindow`` per window, canary vs the rest of the fleet."""
    cells = []
    for index in range(int(STEP_SECONDS / seconds)):
        canary = poisson(rng, TOTAL_RATE * CANARY_SHARE * seconds)
        fleet = poisson(rng, TOTAL_RATE * (1.0 - CANARY_SHARE) * seconds)
        cells.append(core.CountWindow(seconds * (index + 1), float(canary), float(binomial(rng, canary, CANARY_ERRORS)),
                                      float(fleet), float(binomial(rng, fleet, FLEET_ERRORS))))
    return cells


def judge_seconds(cells, dispersion):
    # Decisions are read in time order, so one pass over the whole step gives the first deciding window.
    result = core.evaluate_counts(cells, core.CountsDesign(dispersion=dispersion))
    return result.decided_at if result.decision == 'fail' else None


def first_crossing(cells, step):
    """End of the first window where the running sum of ``step(cell)`` reaches ``ln(1/alpha)``."""
    total, threshold = 0.0, -math.log(core.DEFAULT_ALPHA)
    for cell in cells:
        total += step(cell)
        if total >= threshold:
            return cell.end
    return None


def conditional_step(cell):
    ratio = CANARY_ERRORS / FLEET_ERRORS
    errors = cell.canary_errors + cell.baseline_errors
    if cell.canary_requests <= 0 or cell.baseline_requests <= 0 or errors <= 0:
        return 0.0
    share = cell.canary_requests / (cell.canary_requests + cell.baseline_requests)
    return cell.canary_errors * math.log(ratio) - errors * math.log1p((ratio - 1.0) * share)


def known_baseline_step(cell):
    return cell.canary_errors * math.log(CANARY_ERRORS / FLEET_ERRORS) \
        + (cell.canary_requests - cell.canary_errors) * math.log((1.0 - CANARY_ERRORS) / (1.0 - FLEET_ERRORS))


def seconds_to_fail(cells):
    return {
        'judge': judge_seconds(cells, True),
        'judge_no_dispersion': judge_seconds(cells, False),
        'conditional_true_ratio': first_crossing(cells, conditional_step),
        'known_baseline_sprt': first_crossing(cells, known_baseline_step),
    }


def quantile(ordered, share):
    return ordered[max(0, int(math.ceil(share * len(ordered))) - 1)]


def summarize(values, runs):
    decided = sorted(value for value in values if value is not None)
    summary = {'runs': runs, 'failed': len(decided)}
    if decided:
        summary.update({'median_seconds': statistics.median(decided), 'p25_seconds': quantile(decided, 0.25),
                        'p75_seconds': quantile(decided, 0.75), 'p90_seconds': quantile(decided, 0.9),
                        'mean_seconds': round(statistics.mean(decided), 2),
                        'median_canary_requests': round(statistics.median(decided) * TOTAL_RATE * CANARY_SHARE)})
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--runs', type=int, default=1000)
    parser.add_argument('--seed', type=int, default=20261207)
    args = parser.parse_args(argv)
    started = time.time()
    cases = {}
    for seconds in (2.0, 1.0):
        rng = random.Random('%d-%g' % (args.seed, seconds))
        outcomes = [seconds_to_fail(windows(rng, seconds)) for _run in range(args.runs)]
        key = 'windows_%gs' % seconds
        cases[key] = {method: summarize([outcome[method] for outcome in outcomes], args.runs) for method in METHODS}
        for method in METHODS:
            row = cases[key][method]
            print('%-11s %-24s failed %4d of %d; seconds of data to the verdict: median %s (p25 %s, p75 %s, p90 %s)'
                  % (key, method, row['failed'], args.runs, row.get('median_seconds'), row.get('p25_seconds'),
                     row.get('p75_seconds'), row.get('p90_seconds')))
    path = write_results('judge_blast_radius_limit', {
        'benchmark': 'judge_blast_radius_limit',
        'command': 'python bench/judge_sim/blast_radius_limit.py --runs %d --seed %d' % (args.runs, args.seed),
        'scenario': {'requests_per_second': TOTAL_RATE, 'canary_share': CANARY_SHARE,
                     'canary_error_rate': CANARY_ERRORS, 'fleet_error_rate': FLEET_ERRORS,
                     'step_seconds': STEP_SECONDS},
        'design': {'alpha': core.DEFAULT_ALPHA, 'beta': core.DEFAULT_BETA, 'max_ratio': core.DEFAULT_MAX_RATIO},
        'runtime_seconds': round(time.time() - started, 1),
        'cases': cases,
    })
    print('wrote %s' % path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
