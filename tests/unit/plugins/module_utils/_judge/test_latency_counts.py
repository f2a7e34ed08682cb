# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

import pytest

from ansible_collections.canary.release.plugins.module_utils._judge.counter_windows import CountWindow
from ansible_collections.canary.release.plugins.module_utils._judge.latency_counts import (
    LatencyCountsError,
    bucket_series,
    single_bucket,
    slow_windows,
)

T0 = 1700000000.0


def series(values, labels=None, start=T0, step=10.0):
    return {'labels': labels or {}, 'samples': [[start + i * step, float(v)] for i, v in enumerate(values)]}


COUNT_C = [series([0, 100, 200])]
COUNT_B = [series([0, 1000, 2000])]
BUCKETS_C = [series([0, 50, 100], {'le': '0.1'}), series([0, 90, 170], {'le': '0.5'}),
             series([0, 100, 200], {'le': '+Inf'})]
BUCKETS_B = [series([0, 950, 1920], {'le': '0.5'}), series([0, 1000, 2000], {'le': '+Inf'})]


def test_threshold_with_buckets_without_le_is_an_error_not_no_data():
    stripped = [series([0, 90, 170])]          # the query already selected le="0.5" and dropped the label
    with pytest.raises(LatencyCountsError, match='has no le label'):
        bucket_series(stripped, 0.5)
    with pytest.raises(LatencyCountsError, match='has no le label'):
        slow_windows(COUNT_C, stripped, COUNT_B, BUCKETS_B, T0, T0 + 20, 10, threshold=0.5)
    # A bucket series mixed with something that is not a bucket is just as doubtful.
    with pytest.raises(LatencyCountsError, match='has no le label'):
        bucket_series(BUCKETS_C + [series([0, 1, 2], {'job': 'app'})], 0.5)


def test_no_bucket_series_is_no_data():
    assert bucket_series([], 0.5) == []
    # Without bucket series every request would count as slow; the arm has no data instead.
    result = slow_windows(COUNT_C, [], COUNT_B, BUCKETS_B, T0, T0 + 20, 10, threshold=0.5)
    assert [(window.canary_requests, window.baseline_requests) for window in result.windows] == [(0.0, 1000.0),
                                                                                                 (0.0, 1000.0)]
    assert result.notes['canary']['bucket']['series'] == 0


def test_several_bounds_without_threshold_is_an_error_not_a_sum():
    with pytest.raises(LatencyCountsError, match='hold 3 bounds'):
        slow_windows(COUNT_C, BUCKETS_C, COUNT_B, BUCKETS_B, T0, T0 + 20, 10)
    with pytest.raises(LatencyCountsError, match='hold 2 bounds'):
        single_bucket(BUCKETS_B)


def test_one_bucket_without_threshold_is_used_as_given():
    one_c = [series([0, 90, 170], {'le': '0.5'})]
    one_b = [series([0, 950, 1920])]          # le already dropped by the query
    assert single_bucket(one_c) is one_c
    result = slow_windows(COUNT_C, one_c, COUNT_B, one_b, T0, T0 + 20, 10)
    assert result.windows == [CountWindow(T0 + 10, 100.0, 10.0, 1000.0, 50.0),
                              CountWindow(T0 + 20, 100.0, 20.0, 1000.0, 30.0)]


def test_threshold_selects_the_bucket_per_arm():
    result = slow_windows(COUNT_C, BUCKETS_C, COUNT_B, BUCKETS_B, T0, T0 + 20, 10, threshold='0.50')
    assert result.windows == [CountWindow(T0 + 10, 100.0, 10.0, 1000.0, 50.0),
                              CountWindow(T0 + 20, 100.0, 20.0, 1000.0, 30.0)]
    with pytest.raises(LatencyCountsError, match='bounds present'):
        slow_windows(COUNT_C, BUCKETS_C, COUNT_B, BUCKETS_B, T0, T0 + 20, 10, threshold=0.25)
