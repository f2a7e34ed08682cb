# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The judge's restarts: where a restarted test begins, what it may decide, the reasons, the refusals."""

import json

import pytest

from ansible_collections.canary.release.plugins.module_utils._judge.judge import (
    JudgeError,
    judge,
    metric_windows,
    restart_window_ends,
)
from ansible_collections.canary.release.plugins.module_utils._judge.metric_definition import define_metric

T0 = 1700000000.0  # 2023-11-14T22:13:20Z
SCRAPE = 10.0
WINDOW = 30.0


def counters(scrapes, requests, errors_at, instance):
    """Cumulative request and error counters of one arm, one sample per scrape; ``errors_at(t)`` is the number of
    errors of the scrape that ends at ``t`` (deterministic, so the test does not hang on a seed)."""
    request_samples, error_samples, total, failed = [], [], 0.0, 0.0
    for index in range(scrapes + 1):
        stamp = T0 + index * SCRAPE
        if index:
            total += requests
            failed += errors_at(stamp)
        request_samples.append([stamp, str(total)])
        error_samples.append([stamp, str(failed)])
    labels = {'instance': instance}
    return {'requests': [{'labels': labels, 'samples': request_samples}],
            'errors': [{'labels': labels, 'samples': error_samples}]}


def errors_metric(canary_errors_at, scrapes=360, **extra):
    """Canary 40 requests a scrape with ``canary_errors_at(t)`` errors; baseline 360 with 4 (1.1 %)."""
    metric = {'name': 'errors', 'kind': 'errors', 'canary': counters(scrapes, 40.0, canary_errors_at, 'c1'),
              'baseline': counters(scrapes, 360.0, lambda stamp: 4.0, 'b1')}
    metric.update(extra)
    return metric


def good(stamp):
    return 0.0


def regression_after(onset):
    """No canary error until ``onset`` (seconds after T0), then 4 in 40 (10 %, nine times the baseline)."""
    return lambda stamp: 4.0 if stamp > T0 + onset else 0.0


def run(metrics, now_offset, **options):
    options.setdefault('window', WINDOW)
    result = judge(metrics, T0, T0 + now_offset, **options)
    json.dumps(result, allow_nan=False)
    return result


@pytest.mark.parametrize('restart, end', [
    (T0 + 30.0, T0 + 60.0),            # on a boundary: that window
    (T0 + 30.001, T0 + 90.0),          # just after one: the next
    (T0 + 59.999, T0 + 90.0),
    (T0 + 0.001, T0 + 60.0),
    (T0 + 0.1 + 0.2 + 29.7, T0 + 60.0),  # 30.000000000000004 after T0 in floats: still the boundary
])
def test_a_restart_begins_with_the_first_window_that_starts_at_or_after_it(restart, end):
    assert restart_window_ends([restart], T0, WINDOW) == [end]


def test_restart_ends_are_window_ends_of_the_data():
    start, window = T0 + 0.123, 15.0
    restarts = [start + 45.0, start + 100.0, start + 105.0]  # the last two begin with the same window
    ends = restart_window_ends(restarts, start, window)
    definition = define_metric({'name': 'errors', 'kind': 'errors'}, 0, set())
    metric = errors_metric(good, scrapes=30)
    data = metric_windows(definition, metric['canary'], metric['baseline'], start, T0 + 300.0, window)
    window_ends = set(cell.end for cell in data.windows)
    assert ends == [start + 60.0, start + 120.0, start + 120.0] and set(ends) <= window_ends


@pytest.mark.parametrize('restarts, message', [
    ([T0], r'restarts\[0\] \(2023-11-14T22:13:20Z\) must be after start_time \(2023-11-14T22:13:20Z\)'),
    ([T0 - 60], r'restarts\[0\] \(2023-11-14T22:12:20Z\) must be after start_time'),
    ([T0 + 60, T0 + 60], r'restarts\[1\] \(2023-11-14T22:14:20Z\) must be after restarts\[0\] .*increasing order'),
    ([T0 + 120, T0 + 60], r'restarts\[1\] .* must be after restarts\[0\]'),
    ([T0 + 60, 'soon'], r"restarts\[1\] must be a finite number, got 'soon'"),
    ([float('nan')], r'restarts\[0\] must be a finite number'),
    ([True], r'restarts\[0\] must be a finite number'),
    (T0 + 60, 'restarts must be a list of unix times'),
])
def test_bad_restarts_are_refused(restarts, message):
    with pytest.raises(JudgeError, match=message):
        run([errors_metric(good)], 600, restarts=restarts)


def test_a_regression_after_a_pass_is_caught_by_the_restarted_test():
    metric = errors_metric(regression_after(1800))
    # without a restart the pass of the first half stands: the first decision is final
    unwatched = run([metric], 3600)
    assert unwatched['verdict'] == 'pass' and unwatched['metrics'][0]['decided_at'] < T0 + 1800
    watched = run([metric], 3600, restarts=[T0 + 1800])
    assert watched['verdict'] == 'fail', watched['reason']
    entry = watched['metrics'][0]
    assert T0 + 1800 < entry['decided_at'] < T0 + 2400
    assert entry['evidence']['restarts'] == 1
    # the totals since start_time favour the canary; the reason shows the restarted test's own numbers too
    assert ('; summed over the test from start_time and 1 restarted; on data since 2023-11-14T22:43:20Z '
            '(restart 1): canary 12/120, log mixture LR ' in entry['reason'])
    # a later restart (a step after the fail) changes nothing: the fail came first, through restart 1
    later = run([metric], 3600, restarts=[T0 + 1800, T0 + 3000])
    assert later['verdict'] == 'fail' and later['metrics'][0]['decided_at'] == entry['decided_at']
    assert later['metrics'][0]['reason'] == entry['reason']


def test_a_pass_is_judged_on_the_data_since_the_latest_restart():
    metric = errors_metric(good)
    result = run([metric], 3600, restarts=[T0 + 600, T0 + 1800])
    assert result['verdict'] == 'pass', result['reason']
    entry = result['metrics'][0]
    assert entry['decided_at'] > T0 + 1800
    assert '; judged on data since 2023-11-14T22:43:20Z (restart 2): log LR of ratio 2' in entry['reason']
    assert result['reason'] == 'pass: ' + entry['reason']
    evidence = entry['evidence']
    assert evidence['restarts'] == 2
    assert evidence['current_canary_requests'] < evidence['canary_requests']
    assert result['restarts'] == [T0 + 600, T0 + 1800] and result['test_start'] == T0 + 1800
    plain = run([metric], 3600)
    assert plain['restarts'] == [] and plain['test_start'] == T0 and 'judged on data since' not in plain['reason']


def test_the_rate_bound_pass_counts_the_canary_requests_since_the_restart():
    metric = {'name': 'errors', 'kind': 'errors', 'rate_floor': 0.05,
              'canary': counters(360, 40.0, good, 'c1'), 'baseline': counters(360, 360.0, good, 'b1')}
    assert run([metric], 3600)['metrics'][0]['decided_at'] == T0 + 60
    result = run([metric], 3600, restarts=[T0 + 1800])
    entry = result['metrics'][0]
    assert result['verdict'] == 'pass' and entry['decided_at'] == T0 + 1860
    assert entry['evidence']['route'] == 'rate_bound' and entry['evidence']['current_canary_requests'] == 240
    assert ('; judged on data since 2023-11-14T22:43:20Z (restart 1): canary 0/240, canary rate upper bound'
            in entry['reason'])


def test_nothing_passes_before_the_restarted_test_has_a_window():
    metric = errors_metric(good)
    # the restart at T0 + 1805 begins with the window (T0 + 1830, T0 + 1860]
    early = run([metric], 1855, restarts=[T0 + 1805])
    assert early['verdict'] == 'continue'
    assert 'no pass before the first window since restart 1 is complete (2023-11-14T22:44:20Z)' in early['reason']
    assert early['metrics'][0]['evidence']['restarts'] == 0
    later = run([metric], 3600, restarts=[T0 + 1805])
    assert later['verdict'] == 'pass' and later['metrics'][0]['decided_at'] >= T0 + 1860
    assert 'judged on data since 2023-11-14T22:43:50Z (restart 1)' in later['reason']
    # a restart after now (a clock a little ahead) only waits; after the deadline it leaves the step inconclusive
    assert run([metric], 1200, restarts=[T0 + 1260])['verdict'] == 'continue'
    late = run([metric], 3600, restarts=[T0 + 1900], max_duration=1800)
    assert late['verdict'] == 'inconclusive'
    assert late['reason'].startswith('inconclusive: deadline reached, errors: undecided')
    assert 'no pass before the first window since restart 1' in late['reason']


def test_min_duration_counts_from_the_start_and_guards_are_not_restarted():
    metric = errors_metric(good)
    result = run([metric], 3600, restarts=[T0 + 300], min_duration=1500)
    assert result['verdict'] == 'pass' and result['metrics'][0]['decided_at'] == T0 + 1500
    guard = {'name': 'p99', 'kind': 'threshold', 'max': 0.5, 'values': [[T0 + 10, 0.7], [T0 + 2000, 0.2]]}
    breached = run([metric, guard], 3600, restarts=[T0 + 1800])
    assert breached['verdict'] == 'fail' and breached['reason'] == 'fail: p99: 0.7 breaches max 0.5'
