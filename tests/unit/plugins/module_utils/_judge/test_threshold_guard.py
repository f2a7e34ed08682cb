# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

import pytest

from ansible_collections.canary.release.plugins.module_utils._judge.threshold_guard import (
    ThresholdGuardError,
    check_threshold,
)

T0 = 1700000000.0


def test_within_bounds_is_ok_and_bounds_are_inclusive():
    result = check_threshold([[T0, 0.5], [T0 + 10, 0.9], [T0 + 20, 0.1]], min_value=0.1, max_value=0.9)
    assert result.status == 'ok'
    assert result.samples == 3 and result.last_value == 0.1 and result.first_at == T0


def test_first_breach_in_time_order_fails():
    a = {'labels': {'instance': 'a'}, 'samples': [[T0 + 20, 5.0], [T0 + 30, 0.0]]}
    b = {'labels': {'instance': 'b'}, 'samples': [[T0 + 10, 0.95], [T0 + 40, 3.0]]}
    result = check_threshold([a, b], max_value=0.9)
    assert result.status == 'fail'
    assert result.breached_at == T0 + 10 and result.breach_value == 0.95 and result.breach_labels == {'instance': 'b'}
    assert check_threshold([a, b], min_value=0.5).breached_at == T0 + 30


def test_nan_is_missing_and_infinity_breaches():
    assert check_threshold([[T0, float('nan')]], max_value=1.0).status == 'no_data'
    assert check_threshold([[T0, '+Inf']], max_value=1.0).status == 'fail'
    assert check_threshold([[T0, '-Inf']], min_value=0.0).status == 'fail'


def test_time_range_and_no_data():
    samples = [[T0 - 10, 100.0], [T0 + 10, 0.5], [T0 + 100, 100.0]]
    assert check_threshold(samples, max_value=1.0, start=T0, end=T0 + 50).status == 'ok'
    assert check_threshold([], max_value=1.0).status == 'no_data'
    assert check_threshold(None, max_value=1.0).status == 'no_data'


def test_invalid_bounds():
    with pytest.raises(ThresholdGuardError):
        check_threshold([[T0, 1.0]])
    with pytest.raises(ThresholdGuardError):
        check_threshold([[T0, 1.0]], min_value=2.0, max_value=1.0)
    with pytest.raises(ThresholdGuardError):
        check_threshold([[T0, 1.0]], max_value='high')
