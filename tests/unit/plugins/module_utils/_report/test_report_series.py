# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The report's series: weight from the record, decisions, and per-window counts of both arms (known answers)."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._report.report_series import (
    ReportError,
    auto_window,
    decisions,
    record_steps,
    value_series,
    weight_timeline,
    window_grid,
    window_table,
)
from ansible_collections.canary.release.plugins.module_utils._judge.judge import judge
from ansible_collections.canary.release.plugins.module_utils._judge.metric_definition import define_metric
from ansible_collections.canary.release.plugins.module_utils.time_spec import format_rfc3339

T0 = 1700000000.0


def stamp(offset):
    return format_rfc3339(T0 + offset)


def record(status='running', finished=None, steps=(), **extra):
    document = {'schema': 1, 'service': 'web', 'version': '2', 'previous_version': '1', 'status': status,
                'reason': None, 'started_at': stamp(0), 'updated_at': stamp(500),
                'finished_at': None if finished is None else stamp(finished), 'steps': list(steps), 'events': []}
    document.update(extra)
    return document


def step(index, weight, started=None, at=None, verdict=None, reason=None):
    entry = {'index': index, 'weight': weight, 'verdict': verdict, 'reason': reason, 'at': stamp(at)}
    if started is not None:
        entry['started_at'] = stamp(started)
    return entry


STEPS = [step(0, 5.0, started=10, at=100, verdict='pass'), step(1, 25.0, started=110, at=200, verdict='pass'),
         step(2, 50.0, at=250, verdict='fail', reason='canary 5% vs 1%')]


def test_weight_uses_started_at_else_at_and_drops_to_zero_on_rollback():
    timeline = weight_timeline(record('rolled_back', finished=260, steps=STEPS), T0, T0 + 300)
    assert timeline == [[T0, 0.0], [T0 + 10, 5.0], [T0 + 110, 25.0], [T0 + 250, 50.0], [T0 + 260, 0.0],
                        [T0 + 300, 0.0]]


def test_weight_of_a_promoted_rollout_keeps_its_last_weight_and_starts_with_the_weight_in_effect():
    steps = [step(0, 5.0, started=10, at=20, verdict='pass'), step(1, 100.0, started=50, at=90, verdict='pass')]
    timeline = weight_timeline(record('promoted', finished=95, steps=steps), T0 + 30, T0 + 95)
    assert timeline == [[T0 + 30, 5.0], [T0 + 50, 100.0], [T0 + 95, 100.0]]


def test_weight_before_any_step_is_zero():
    assert weight_timeline(record(), T0, T0 + 60) == [[T0, 0.0], [T0 + 60, 0.0]]


def test_decisions_are_verdicts_and_the_finish_in_time_order():
    steps = STEPS + [step(3, 75.0, at=255, verdict='continue')]
    marks = decisions(record('rolled_back', finished=260, steps=steps, reason='fail: errors'))
    assert [(mark['at'] - T0, mark['label'], mark['outcome']) for mark in marks] == [
        (100, 'step 0 5%: pass', 'good'), (200, 'step 1 25%: pass', 'good'), (250, 'step 2 50%: fail', 'bad'),
        (260, 'rolled back', 'bad')]
    assert marks[2]['reason'] == 'canary 5% vs 1%' and marks[3]['reason'] == 'fail: errors'


def test_a_paused_rollout_is_marked_at_its_last_update():
    marks = decisions(record('paused', steps=[step(0, 5.0, at=100, verdict='inconclusive')]))
    assert [(mark['label'], mark['outcome'], mark['at'] - T0) for mark in marks] == [
        ('step 0 5%: inconclusive', 'neutral', 100), ('paused', 'neutral', 500)]


def test_invalid_steps_are_refused_with_the_position():
    with pytest.raises(ReportError, match=r'record.steps\[0\].at: invalid time'):
        record_steps(record(steps=[{'index': 0, 'weight': 5, 'at': 'yesterday'}]))
    with pytest.raises(ReportError, match=r'record.steps\[0\] has neither started_at nor at'):
        record_steps(record(steps=[{'index': 0, 'weight': 5}]))
    with pytest.raises(ReportError, match='weight must be a percent'):
        record_steps(record(steps=[step(0, 150.0, at=5)]))


def test_auto_window_and_grid():
    assert auto_window(T0, T0 + 300) == 5.0           # 60 windows
    assert auto_window(T0, T0 + 3600) == 30.0         # 3600 / 120 = 30
    assert auto_window(T0, T0 + 3601) == 60.0
    assert auto_window(T0, T0 + 300, minimum=60) == 60.0
    assert auto_window(T0, T0 + 86400 * 200) == 144000.0  # beyond a day: a multiple of the minimum
    assert window_grid(T0, T0 + 60, 10) == 6 and window_grid(T0, T0 + 61, 10) == 7 and window_grid(T0, T0 + 1, 10) == 1


def counter(rate, every=5.0, until=60.0, start=T0, offset=0.0, reset_at=None):
    """Samples of a counter growing by ``rate`` per second, every ``every`` seconds (optionally reset to 0)."""
    samples, value, at = [], offset, start
    while at <= start + until + 1e-9:
        if reset_at is not None and abs(at - (start + reset_at)) < 1e-9:
            value = 0.0
        samples.append((at, value))
        value += rate * every
        at += every
    return [{'labels': {'instance': 'a'}, 'samples': samples}]


ERRORS = define_metric({'name': 'errors', 'kind': 'errors'})


def test_error_windows_have_known_counts_rates_and_totals():
    canary = {'requests': counter(10), 'errors': counter(1)}
    baseline = {'requests': counter(40, offset=1000), 'errors': counter(0.4, offset=10)}
    result = window_table(ERRORS, canary, baseline, T0, T0 + 55, 20)
    rows = result['windows']
    assert [(row['start'] - T0, row['end'] - T0, row['partial']) for row in rows] == [
        (0, 20, False), (20, 40, False), (40, 55, True)]
    assert [row['canary']['requests'] for row in rows] == [200.0, 200.0, 150.0]
    assert [row['canary']['errors'] for row in rows] == [20.0, 20.0, 15.0]
    assert [row['baseline']['requests'] for row in rows] == [800.0, 800.0, 600.0]
    assert rows[0]['canary']['rate'] == pytest.approx(0.1) and rows[0]['baseline']['rate'] == pytest.approx(0.01)
    assert result['totals']['canary'] == {'requests': 550.0, 'errors': 55.0, 'rate': pytest.approx(0.1)}
    assert result['totals']['baseline']['requests'] == 2200.0
    assert result['totals']['baseline']['errors'] == pytest.approx(22.0)
    assert result['ratio'] == pytest.approx(10.0)


def test_a_counter_reset_counts_the_value_after_it_and_a_silent_window_has_no_rate():
    canary = {'requests': counter(10, until=30, reset_at=15), 'errors': counter(0, until=30)}
    baseline = {'requests': counter(10), 'errors': counter(1)}
    result = window_table(ERRORS, canary, baseline, T0, T0 + 60, 20)
    # 0 -> 50 -> 100 | reset: 0 -> 50 -> 100 -> 150 over 30 s, then nothing: 100 + 0 (reset, counted as 0) + 150.
    assert [row['canary']['requests'] for row in result['windows']] == [150.0, 100.0, 0.0]
    assert result['windows'][2]['canary']['rate'] is None
    assert result['totals']['canary']['requests'] == 250.0
    assert result['notes']['canary']['requests']['resets'] == 1


def test_a_missing_arm_has_no_values():
    canary = {'requests': counter(10), 'errors': counter(1)}
    result = window_table(ERRORS, canary, {}, T0, T0 + 60, 20, missing_arms=('baseline',))
    assert result['totals']['baseline'] == {'requests': None, 'errors': None, 'rate': None}
    assert all(row['baseline']['requests'] is None for row in result['windows'])
    assert result['totals']['canary']['requests'] == 600.0 and result['ratio'] is None


def histogram(rate, slow, every=5.0, until=60.0):
    """``_count`` and ``_bucket`` series (le 0.5 and +Inf) with a share ``slow`` of requests above 0.5 s."""
    count, buckets = [], {'0.5': [], '+Inf': []}
    for index in range(int(until / every) + 1):
        at = T0 + index * every
        total = rate * every * index
        count.append((at, total))
        buckets['0.5'].append((at, total * (1 - slow)))
        buckets['+Inf'].append((at, total))
    return ([{'labels': {'instance': 'a'}, 'samples': count}],
            [{'labels': {'instance': 'a', 'le': le}, 'samples': samples} for le, samples in buckets.items()])


def test_latency_windows_count_the_requests_above_the_bucket_bound():
    canary_count, canary_bucket = histogram(10, 0.2)
    baseline_count, baseline_bucket = histogram(20, 0.05)
    result = window_table(define_metric({'name': 'slow', 'kind': 'latency', 'le': 0.5}),
                          {'count': canary_count, 'bucket': canary_bucket},
                          {'count': baseline_count, 'bucket': baseline_bucket}, T0, T0 + 60, 30)
    assert [row['canary']['errors'] for row in result['windows']] == pytest.approx([60.0, 60.0])
    assert result['totals']['canary']['requests'] == 600.0
    assert result['totals']['canary']['rate'] == pytest.approx(0.2)
    assert result['totals']['baseline']['rate'] == pytest.approx(0.05)
    assert result['ratio'] == pytest.approx(4.0)


def test_cloudwatch_sums_per_period():
    stamps = [T0 + 60 * index for index in range(5)]
    canary = {'requests': [{'timestamps': stamps, 'datapoints': [600.0] * 5}],
              'errors': [{'timestamps': stamps, 'datapoints': [30.0] * 5}]}
    baseline = {'requests': [{'timestamps': stamps, 'datapoints': [5400.0] * 5}],
                'errors': [{'timestamps': stamps, 'datapoints': [54.0] * 5}]}
    result = window_table(define_metric({'name': 'alb', 'kind': 'errors', 'cumulative': False, 'period': 60}),
                          canary, baseline, T0, T0 + 300, 60)
    assert result['totals']['canary'] == {'requests': 3000.0, 'errors': 150.0, 'rate': pytest.approx(0.05)}
    assert result['totals']['baseline']['requests'] == 27000.0 and result['ratio'] == pytest.approx(5.0)


def test_value_series_keeps_finite_samples_in_the_span():
    series = [{'labels': {'track': 'canary'}, 'samples': [(T0 - 5, 1.0), (T0, 0.2), (T0 + 5, float('nan')), (T0 + 10, 0.9)]}]
    assert value_series(series, T0, T0 + 10) == [{'labels': {'track': 'canary'}, 'points': [[T0, 0.2], [T0 + 10, 0.9]]}]


def zone_counter(zone, rate, until=60.0, gap=None):
    """One instance's counter in ``zone``; with ``gap`` = (from, to) no scrape in between (an outage)."""
    series = counter(rate, until=until)
    samples = [(at, value) for at, value in series[0]['samples']
               if gap is None or not gap[0] < at - T0 < gap[1]]
    return {'labels': {'instance': zone + '-1', 'zone': zone}, 'samples': samples}


@pytest.mark.parametrize('options', [{}, {'stratum_label': 'zone'}, {'max_gap': 12.0}, {'stratum_label': 'zone', 'max_gap': 12.0}])
def test_the_report_counts_exactly_what_the_judge_counted(options):
    # Zone b exists on the canary only (a stratum the judge cannot compare), and zone a's canary misses 15 s of
    # scrapes: with max_gap 12 s that increase is dropped. The report's totals must be the judge's evidence totals.
    # The canary fails as often as its baseline (1 %), so the judge reads every window (a decision would stop
    # its evidence at the deciding window: a steady 10 % canary fails in the second 20 s window).
    canary = {'requests': [zone_counter('a', 10, gap=(20, 40)), zone_counter('b', 10)],
              'errors': [zone_counter('a', 0.1, gap=(20, 40)), zone_counter('b', 0.1)]}
    baseline = {'requests': [zone_counter('a', 40)], 'errors': [zone_counter('a', 0.4)]}
    metric = dict({'name': 'errors', 'kind': 'errors'}, **options)
    verdict = judge([dict(metric, canary=canary, baseline=baseline)], T0, T0 + 60, window=20.0)
    evidence = verdict['metrics'][0]['evidence']
    assert verdict['metrics'][0]['status'] == 'continue', verdict
    table = window_table(define_metric(metric), canary, baseline, T0, T0 + 60, 20)
    assert table['totals']['canary']['requests'] == evidence['canary_requests']
    assert table['totals']['canary']['errors'] == evidence['canary_errors']
    assert table['totals']['baseline']['requests'] == evidence['baseline_requests']
    assert table['notes'] == evidence['data_notes']
    if 'max_gap' in options:
        assert table['notes']['canary']['requests']['dropped_gaps'] == 1
