# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

import pytest

from ansible_collections.canary.release.plugins.module_utils._judge.counter_windows import (
    CountWindow,
    CounterWindowError,
    count_windows,
    counter_increments,
    window_count,
    window_index,
)
from ansible_collections.canary.release.plugins.module_utils._judge.latency_counts import (
    LatencyCountsError,
    bucket_series,
    parse_le,
    slow_windows,
)
from ansible_collections.canary.release.plugins.module_utils._sources.metric_series import (
    MetricSeriesError,
    normalize_series,
    normalize_series_list,
)

T0 = 1700000000.0


def series(values, start=T0, step=10.0, labels=None):
    """A Prometheus-client-shaped series with one sample every ``step`` seconds from ``start``."""
    return {'labels': labels or {}, 'samples': [[start + i * step, float(v)] for i, v in enumerate(values)]}


def test_window_grid_is_right_closed():
    assert window_count(T0, T0 + 60, 30) == 2
    assert window_count(T0, T0 + 59.9, 30) == 1
    assert window_count(T0, T0, 30) == 0
    assert window_index(T0 + 30, T0, 30) == 0          # the end of window 0 belongs to it
    assert window_index(T0 + 30.001, T0, 30) == 1
    assert window_index(T0, T0, 30) == -1              # a sample at start closes nothing
    with pytest.raises(CounterWindowError):
        window_count(T0, T0 + 60, 0)


def test_increments_with_reset_and_gap():
    samples = [(0.0, 10.0), (10.0, 15.0), (20.0, 3.0), (30.0, 4.0), (100.0, 9.0)]
    increments, notes = counter_increments(samples, max_gap=30.0)
    # 10->15: +5; 15->3 is a reset: +3 (counted since the restart); 3->4: +1; 30->100 spans 70 s > 30: dropped.
    assert increments == [(0.0, 10.0, 5.0), (10.0, 20.0, 3.0), (20.0, 30.0, 1.0)]
    assert notes == {'resets': 1, 'dropped_gaps': 1}


def test_increments_born_at_zero_and_non_finite_samples():
    increments, _notes = counter_increments([(5.0, 2.0), (6.0, float('nan')), (7.0, 3.0)], born_at_zero=True)
    assert increments == [(5.0, 5.0, 2.0), (5.0, 7.0, 1.0)]


def test_count_windows_aligns_both_arms():
    # Scrapes every 10 s, windows of 30 s: each window holds three increments per counter.
    canary = series([0, 10, 20, 30, 40, 50, 60])
    canary_errors = series([0, 0, 1, 1, 1, 2, 2])
    baseline = series([0, 90, 180, 270, 360, 450, 540])
    baseline_errors = series([0, 1, 1, 2, 3, 3, 4])
    result = count_windows([canary], [canary_errors], [baseline], [baseline_errors], T0, T0 + 60, 30)
    assert result.window_count == 2
    assert result.windows == [
        CountWindow(T0 + 30, 30.0, 1.0, 270.0, 2.0),
        CountWindow(T0 + 60, 30.0, 1.0, 270.0, 2.0),
    ]
    # Only complete windows: at T0+50 the second window is not there yet.
    assert len(count_windows([canary], [canary_errors], [baseline], [baseline_errors], T0, T0 + 50, 30).windows) == 1


def test_counter_reset_counts_the_new_value():
    canary = series([100, 110, 5, 15])        # restart between the 2nd and 3rd scrape: +10, +5, +10
    errors = series([7, 7, 1, 1])
    other = series([0, 10, 20, 30])
    result = count_windows([canary], [errors], [other], [series([0, 0, 0, 0])], T0, T0 + 30, 30)
    assert result.windows == [CountWindow(T0 + 30, 25.0, 1.0, 30.0, 0.0)]
    assert result.notes['canary']['requests']['resets'] == 1


def test_missed_scrape_spills_into_next_window_and_long_gap_is_dropped():
    # Samples at 0, 10, 20, (30 missing), 40, 50, 60 -> the 20->40 increase is observed at 40: window 1.
    stamps = [0, 10, 20, 40, 50, 60]
    canary = {'labels': {}, 'samples': [[T0 + s, float(s)] for s in stamps]}
    zero = {'labels': {}, 'samples': [[T0 + s, 0.0] for s in stamps]}
    result = count_windows([canary], [zero], [canary], [zero], T0, T0 + 60, 30)
    assert [w.canary_requests for w in result.windows] == [20.0, 40.0]
    # An outage longer than max_gap: the increase across it is dropped, not attributed to one window.
    stamps = [0, 10, 20, 200, 210]
    canary = {'labels': {}, 'samples': [[T0 + s, float(s)] for s in stamps]}
    zero = {'labels': {}, 'samples': [[T0 + s, 0.0] for s in stamps]}
    result = count_windows([canary], [zero], [canary], [zero], T0, T0 + 240, 30)
    assert [(w.end - T0, w.canary_requests) for w in result.windows] == [(30.0, 20.0), (210.0, 10.0)]
    assert result.notes['canary']['requests']['dropped_gaps'] == 1


def test_error_series_born_during_analysis_counts_from_zero():
    requests = series([0, 100, 200, 300, 400, 500, 600])
    # A code="500" series appears at the 4th scrape with value 2: two errors since the previous scrape.
    late_errors = series([2, 2, 3], start=T0 + 30)
    # A series that existed before the analysis started: its first value is history, not an increase.
    old_errors = series([50, 50, 50, 50, 50, 50, 51])
    result = count_windows([requests], [late_errors, old_errors], [requests], [series([0] * 7)], T0, T0 + 60, 30)
    assert [w.canary_errors for w in result.windows] == [2.0, 2.0]
    assert result.notes['canary']['errors']['born_series'] == 1


def test_samples_before_start_are_a_lookback_only():
    requests = series([0, 10, 20, 30, 40], start=T0 - 10)
    zero = series([0] * 5, start=T0 - 10)
    result = count_windows([requests], [zero], [requests], [zero], T0, T0 + 30, 30)
    # The increase from T0-10 to T0 is before the start; T0..T0+30 holds 30 requests.
    assert result.windows == [CountWindow(T0 + 30, 30.0, 0.0, 30.0, 0.0)]


def test_increase_straddling_the_start_is_dropped():
    # Scrapes at T0-5, T0+5, ..., T0+55: the increase T0-5 -> T0+5 was partly counted before the canary took
    # traffic (here the old version's 7 errors); it is dropped, not put in the first window nor split.
    requests = series([0, 10, 20, 30, 40, 50, 60], start=T0 - 5)
    errors = series([0, 7, 7, 8, 8, 8, 8], start=T0 - 5)
    zero = series([0] * 7, start=T0 - 5)
    result = count_windows([requests], [errors], [requests], [zero], T0, T0 + 60, 30)
    assert result.windows == [CountWindow(T0 + 30, 20.0, 1.0, 20.0, 0.0), CountWindow(T0 + 60, 30.0, 0.0, 30.0, 0.0)]
    assert result.notes['canary']['errors']['used_increments'] == 5


def test_strata_compare_like_with_like():
    a = series([0, 10, 20, 30], labels={'zone': 'a', 'instance': '1'})
    b = series([0, 20, 40, 60], labels={'zone': 'b', 'instance': '2'})
    b2 = series([0, 5, 10, 15], labels={'zone': 'b', 'instance': '3'})
    zero = series([0, 0, 0, 0])
    result = count_windows([a, b], [zero], [a, b, b2], [zero], T0, T0 + 30, 30, stratum_label='zone')
    by_stratum = dict((w.stratum, w) for w in result.windows)
    assert by_stratum['a'].canary_requests == 30.0 and by_stratum['a'].baseline_requests == 30.0
    assert by_stratum['b'].canary_requests == 60.0 and by_stratum['b'].baseline_requests == 75.0


def test_per_period_sums_cloudwatch_shape():
    stamps = ['2023-11-14T22:13:20Z', '2023-11-14T22:14:20Z']   # T0 and T0 + 60
    requests = {'id': 'requests', 'timestamps': stamps, 'datapoints': [600.0, 660.0]}
    errors = {'id': 'errors', 'timestamps': stamps[1:], 'datapoints': [3.0]}   # CloudWatch leaves out zero periods
    result = count_windows([requests], [errors], [requests], [], T0, T0 + 120, 60, cumulative=False)
    assert result.windows == [CountWindow(T0 + 60, 600.0, 0.0, 600.0, 0.0), CountWindow(T0 + 120, 660.0, 3.0, 660.0, 0.0)]


def test_errors_are_clamped_to_requests():
    result = count_windows([series([0, 1])], [series([0, 5])], [series([0, 1])], [series([0, 0])], T0, T0 + 10, 10)
    assert result.windows == [CountWindow(T0 + 10, 1.0, 1.0, 1.0, 0.0)]
    assert result.notes['clamped_windows'] == 1


def test_series_shapes():
    raw = {'metric': {'instance': 'x'}, 'values': [[T0, '1'], [T0 + 1, 'NaN'], [T0 + 2, '+Inf']]}
    labels, samples = normalize_series(raw)
    assert labels == {'instance': 'x'}
    assert samples[0] == (T0, 1.0) and samples[2] == (T0 + 2, float('inf'))
    assert normalize_series_list([[T0, 1.0], [T0 + 1, 2.0]]) == [({}, [(T0, 1.0), (T0 + 1, 2.0)])]
    assert normalize_series_list({'series': [series([1])]})[0][1] == [(T0, 1.0)]
    assert normalize_series({'labels': {}, 'timestamp': T0, 'value': 3})[1] == [(T0, 3.0)]
    with pytest.raises(MetricSeriesError):
        normalize_series({'foo': 1})
    with pytest.raises(MetricSeriesError):
        normalize_series({'timestamps': [T0], 'datapoints': []})


def test_latency_slow_counts_from_histogram_buckets():
    count_c = series([0, 100, 200], labels={'job': 'app'})
    buckets_c = [series([0, 50, 100], labels={'le': '0.1'}), series([0, 90, 170], labels={'le': '0.5'}),
                 series([0, 100, 200], labels={'le': '+Inf'})]
    count_b = series([0, 1000, 2000])
    buckets_b = [series([0, 950, 1920], labels={'le': '0.5'}), series([0, 1000, 2000], labels={'le': '+Inf'})]
    result = slow_windows([count_c], buckets_c, [count_b], buckets_b, T0, T0 + 20, 10, threshold=0.5)
    # slow = count increase - bucket{le=0.5} increase.
    assert result.windows == [CountWindow(T0 + 10, 100.0, 10.0, 1000.0, 50.0),
                              CountWindow(T0 + 20, 100.0, 20.0, 1000.0, 30.0)]
    assert parse_le('+Inf') == float('inf')
    assert len(bucket_series(buckets_c, '0.50')) == 1
    with pytest.raises(LatencyCountsError, match='bounds present'):
        bucket_series(buckets_c, 0.25)
