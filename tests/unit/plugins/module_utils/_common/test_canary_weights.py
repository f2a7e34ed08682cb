"""Weight maths: known answers, and the optimum checked against brute force over every (wc, ws) pair."""

from fractions import Fraction
from math import gcd
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.canary.release.plugins.module_utils._common.canary_weights import (
    MAX_WEIGHT_LIMIT,
    WeightError,
    canary_share,
    effective_canary_percent,
    group_weights,
    percent_fraction,
)


@pytest.mark.parametrize('n_canary, n_stable, percent, weights', [
    (1, 9, 5, (9, 19)),      # the example: 9 / (9 + 9*19) = 5 %
    (1, 9, 10, (1, 1)),
    (1, 9, 50, (9, 1)),
    (1, 9, 25, (3, 1)),
    (1, 9, 1, (1, 11)),
    (2, 8, 20, (1, 1)),
    (3, 7, 30, (1, 1)),
    (1, 1, 50, (1, 1)),
    (1, 4, 12.5, (4, 7)),
    (10, 90, 5, (9, 19)),
])
def test_known_answers(n_canary, n_stable, percent, weights):
    result = group_weights(n_canary, n_stable, percent)
    assert (result.canary_weight, result.stable_weight) == weights
    assert result.exact
    assert result.effective_percent == pytest.approx(percent)


def test_closest_share_when_exact_is_impossible():
    # 0.1 % for 1 vs 9 needs ws = 111 * wc; with max_weight 100 the best is wc=1, ws=100: 1/901.
    result = group_weights(1, 9, 0.1, max_weight=100)
    assert (result.canary_weight, result.stable_weight, result.exact) == (1, 100, False)
    assert result.effective_percent == pytest.approx(100 / 901)
    # A larger max_weight reaches it exactly.
    assert (group_weights(1, 9, 0.1, max_weight=111).stable_weight, group_weights(1, 9, 0.1, 111).exact) == \
        (111, True)


def test_decimal_percent_is_read_as_written():
    # 33.3 % for 1 vs 1 is exactly 333/667; reading the float's binary value would not be exact.
    result = group_weights(1, 1, 33.3, max_weight=1000)
    assert (result.canary_weight, result.stable_weight, result.exact) == (333, 667, True)
    assert percent_fraction(33.3) == Fraction(333, 1000)


def test_zero_and_hundred_percent_use_down():
    zero = group_weights(1, 9, 0)
    assert (zero.canary_down, zero.stable_down, zero.canary_weight, zero.stable_weight) == (True, False, None, 1)
    assert zero.effective_percent == 0.0
    full = group_weights(2, 3, 100)
    assert (full.canary_down, full.stable_down, full.canary_weight, full.stable_weight) == (False, True, 1, None)
    assert full.effective_percent == 100.0
    # All servers are canary: 100 % is fine, nothing to take down.
    alone = group_weights(3, 0, 100)
    assert (alone.stable_down, alone.canary_weight) == (False, 1)


@pytest.mark.parametrize('args, message', [
    ((1, 9, -0.1), 'between 0 and 100'),
    ((1, 9, 100.5), 'between 0 and 100'),
    ((1, 9, float('nan')), 'finite'),
    ((1, 9, float('inf')), 'finite'),
    ((1, 9, True), 'number'),
    ((1, 9, 'abc'), 'number'),
    ((0, 9, 5), 'canary group is empty'),
    ((2, 0, 5), 'every server of the upstream is in the canary group'),
    ((2, 0, 0), 'no stable server'),
    ((1, 9, 5, 0), 'max_weight'),
    ((1, 9, 5, MAX_WEIGHT_LIMIT + 1), 'max_weight'),
    ((1, 9, 5, 2.0), 'max_weight'),
])
def test_errors(args, message):
    with pytest.raises(WeightError, match=message):
        group_weights(*args)


def brute_force(n_canary, n_stable, target, max_weight):
    """Every pair; the closest share, ties to the smallest wc + ws, then the smallest wc."""
    best = None
    for wc in range(1, max_weight + 1):
        for ws in range(1, max_weight + 1):
            key = (abs(canary_share(n_canary, wc, n_stable, ws) - target), wc + ws, wc)
            if best is None or key < best:
                best = key
    return best


@settings(max_examples=300, deadline=None)
@given(n_canary=st.integers(1, 12), n_stable=st.integers(1, 12), max_weight=st.integers(1, 24),
       percent=st.one_of(st.integers(1, 99), st.floats(0.01, 99.99).map(lambda x: round(x, 2)),
                         st.fractions(Fraction(1, 10000), Fraction(9999, 10000)).map(lambda f: float(f * 100))))
def test_optimal_against_brute_force(n_canary, n_stable, max_weight, percent):
    target = percent_fraction(percent)
    result = group_weights(n_canary, n_stable, percent, max_weight)
    wc, ws = result.canary_weight, result.stable_weight
    assert 1 <= wc <= max_weight and 1 <= ws <= max_weight
    error, total, first = brute_force(n_canary, n_stable, target, max_weight)
    share = canary_share(n_canary, wc, n_stable, ws)
    assert (abs(share - target), wc + ws, wc) == (error, total, first)
    assert result.exact == (share == target)
    assert result.effective_percent == float(share * 100)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 50), st.integers(1, 50), st.integers(1, 99))
def test_exact_answers_are_reduced(n_canary, n_stable, percent):
    result = group_weights(n_canary, n_stable, percent)
    if result.exact:
        # Every exact pair is a multiple of the reduced one; the smallest is the reduced one.
        assert gcd(result.canary_weight, result.stable_weight) == 1


def test_large_max_weight_is_fast():
    started = time.perf_counter()
    group_weights(7, 9993, 0.0137, max_weight=MAX_WEIGHT_LIMIT)
    assert time.perf_counter() - started < 0.5


def test_effective_percent_counts_up_primary_servers_only():
    servers = [
        {'address': 'c1', 'weight': 9, 'down': False, 'backup': False},
        {'address': 's1', 'weight': 19, 'down': False, 'backup': False},
        {'address': 's2', 'weight': 19, 'down': True, 'backup': False},
        {'address': 'b1', 'weight': 50, 'down': False, 'backup': True},
    ]
    assert effective_canary_percent(servers, ['c1']) == pytest.approx(100 * 9 / 28)
    assert effective_canary_percent(servers, []) == 0.0
    servers[0]['down'] = servers[1]['down'] = True
    assert effective_canary_percent(servers, ['c1']) is None
