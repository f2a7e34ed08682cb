# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.canary.release.plugins.module_utils._judge.counter_windows import CountWindow
from ansible_collections.canary.release.plugins.module_utils._judge.sequential_counts import (
    CLEAN_BASELINE_KAPPA,
    NORMAL_NODES,
    NORMAL_WEIGHTS,
    OVERDISPERSION_Z,
    CountsDesign,
    CountsTestError,
    arm_noise_bound,
    arms_kappa,
    arms_kappa_conservative,
    arms_kappa_equal_windows,
    canary_rate_upper_bound,
    evaluate_counts,
    kappa_upper_bound,
    overdispersed,
    log_sum_exp,
    restart_log_weights,
    rate_bound_log_e,
)


# Reference formulas of the module docstring, written out independently of the running sums of the test.
def wald_boundaries(alpha, beta):
    """Wald's SPRT boundaries on the log-likelihood ratio: ``(ln((1-beta)/alpha), ln(beta/(1-alpha)))``."""
    for value in (alpha, beta):
        if not 0.0 < value < 1.0:
            raise CountsTestError('must be strictly between 0 and 1, got %r' % (value,))
    return math.log((1.0 - beta) / alpha), math.log(beta / (1.0 - alpha))


def window_log_lr(ratio, canary_requests, canary_errors, baseline_requests, baseline_errors):
    """Log-likelihood ratio of ``p_c/p_b = ratio`` against 1 from one window (0 when it carries no evidence)."""
    if canary_requests <= 0 or baseline_requests <= 0:
        return 0.0
    errors = canary_errors + baseline_errors
    if errors <= 0:
        return 0.0
    theta0 = canary_requests / (canary_requests + baseline_requests)
    return canary_errors * math.log(ratio) - errors * math.log1p((ratio - 1.0) * theta0)


def mantel_haenszel_ratio(windows):
    """Mantel-Haenszel estimate of ``p_c/p_b`` over windows (None when undefined)."""
    numerator = denominator = 0.0
    for window in windows:
        total = window.canary_requests + window.baseline_requests
        if window.canary_requests <= 0 or window.baseline_requests <= 0:
            continue
        numerator += window.canary_errors * window.baseline_requests / total
        denominator += window.baseline_errors * window.canary_requests / total
    return numerator / denominator if denominator > 0 else None


def poisson(rng, mean):
    """Poisson variate (inversion; means here are small)."""
    threshold, k, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        k += 1
        product *= rng.random()
    return k


def simulate(rng, windows, canary_requests, baseline_requests, baseline_rate, ratio):
    cells = []
    for index in range(windows):
        canary_errors = poisson(rng, canary_requests * baseline_rate * ratio)
        baseline_errors = poisson(rng, baseline_requests * baseline_rate)
        cells.append(CountWindow(float(index + 1), float(canary_requests), float(canary_errors),
                                 float(baseline_requests), float(baseline_errors)))
    return cells


def test_wald_boundaries_closed_form():
    upper, lower = wald_boundaries(0.01, 0.01)
    assert upper == pytest.approx(math.log(99.0))
    assert lower == pytest.approx(-math.log(99.0))
    upper, lower = wald_boundaries(0.05, 0.2)
    assert upper == pytest.approx(math.log(0.8 / 0.05)) and lower == pytest.approx(math.log(0.2 / 0.95))
    with pytest.raises(CountsTestError):
        wald_boundaries(0.0, 0.1)


def test_design_thresholds():
    design = CountsDesign()
    assert design.fail_threshold == pytest.approx(math.log(100.0))      # Ville: ln(1/alpha)
    assert design.pass_threshold == pytest.approx(math.log(0.008))      # ln(beta - beta/5)
    assert design.rate_bound_threshold == pytest.approx(math.log(500.0))
    assert sum(math.exp(w) for _r, _l, w in design.mixture) == pytest.approx(1.0)
    assert [r for r, _l, _w in design.mixture] == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert CountsDesign(rate_floor=0.0).pass_threshold == pytest.approx(math.log(0.01))
    assert CountsDesign(rate_floor=0.0).rate_bound_threshold is None
    for bad in ({'alpha': 1.0}, {'beta': 0}, {'max_ratio': 1.0}, {'rate_floor': -0.1}, {'alpha': True}):
        with pytest.raises(CountsTestError):
            CountsDesign(**bad)


def test_window_log_lr_hand_computed():
    # theta0 = 100 / 1000 = 0.1; llr = 3 ln 2 - 10 ln(1 + 0.1) = 2.0794415 - 0.9531018
    assert window_log_lr(2.0, 100, 3, 900, 7) == pytest.approx(1.1263397, abs=1e-7)
    assert window_log_lr(2.0, 100, 0, 900, 0) == 0.0          # no error: no evidence
    assert window_log_lr(2.0, 0, 0, 900, 5) == 0.0            # canary served nothing
    assert window_log_lr(2.0, 100, 2, 0, 0) == 0.0            # baseline served nothing


def test_log_sum_exp():
    assert log_sum_exp([0.0, 0.0]) == pytest.approx(math.log(2.0))
    assert log_sum_exp([1000.0, 1000.0]) == pytest.approx(1000.0 + math.log(2.0))


def test_fail_at_closed_form_window():
    # One canary error per window, theta0 = 1/2: L(rho) grows by ln(2 rho / (1 + rho)) per window.
    design = CountsDesign(dispersion=False)
    cells = [CountWindow(float(t), 100.0, 1.0, 100.0, 0.0) for t in range(1, 50)]
    expected = None
    for t in range(1, 50):
        log_m = log_sum_exp([w + t * math.log(2.0 * r / (1.0 + r)) for r, _l, w in design.mixture])
        if log_m >= math.log(100.0):
            expected = t
            break
    result = evaluate_counts(cells, design)
    assert result.decision == 'fail' and result.route == 'ratio'
    assert result.decided_at == float(expected) == 9.0
    assert result.evidence['e_value'] >= 100.0


def test_pass_at_closed_form_window():
    # One baseline error per window, theta0 = 1/2: L(2) falls by ln 1.5 per window; ln(0.008)/ln(1/1.5) = 11.9.
    cells = [CountWindow(float(t), 100.0, 0.0, 100.0, 1.0) for t in range(1, 30)]
    result = evaluate_counts(cells, CountsDesign(dispersion=False))
    assert result.decision == 'pass' and result.route == 'ratio' and result.decided_at == 12.0
    assert result.evidence['log_lr'] == pytest.approx(-12 * math.log(1.5))
    # min_end holds the pass back, it does not change the evidence.
    later = evaluate_counts(cells, CountsDesign(dispersion=False), min_end=20.0)
    assert later.decision == 'pass' and later.decided_at == 20.0


def test_rate_route_passes_without_any_error():
    design = CountsDesign()
    cells = [CountWindow(float(t), 1000.0, 0.0, 1000.0, 0.0) for t in range(1, 200)]
    result = evaluate_counts(cells, design)
    assert result.decision == 'pass' and result.route == 'rate_bound'
    # ln E = floor * N + ln b - ln(b + N), b = 10 / floor; first N (multiple of 1000) where it reaches ln(500).
    scale = 10.0 / design.rate_floor
    first = next(n for n in range(1000, 200000, 1000)
                 if design.rate_floor * n + math.log(scale) - math.log(scale + n) >= math.log(500.0))
    assert result.evidence["canary_requests"] == first == 68000
    assert result.evidence['canary_rate_upper'] < design.rate_floor
    assert evaluate_counts(cells, CountsDesign(rate_floor=0.0)).decision is None


def test_rate_upper_bound_agrees_with_route():
    threshold = CountsDesign().rate_bound_threshold
    for errors, requests in ((0, 70000), (2, 90000), (5, 1000)):
        bound = canary_rate_upper_bound(errors, requests, 1e-4, threshold)
        passes = errors < 1e-4 * requests and rate_bound_log_e(errors, requests, 1e-4) >= threshold
        assert (bound < 1e-4) == passes
        assert bound >= errors / requests
    assert canary_rate_upper_bound(0, 0, 1e-4, threshold) is None


def test_identical_arms_do_not_fail_and_eventually_pass():
    rng = random.Random(7)
    for _repeat in range(5):
        cells = simulate(rng, 400, 50, 450, 0.02, 1.0)
        result = evaluate_counts(cells, CountsDesign())
        assert result.decision == 'pass'


def test_clear_regression_fails():
    rng = random.Random(11)
    for _repeat in range(5):
        result = evaluate_counts(simulate(rng, 400, 50, 450, 0.02, 4.0), CountsDesign())
        assert result.decision == 'fail'
        assert result.evidence['ratio_estimate'] > 2.0


def test_evidence_kept_across_weight_changes():
    cells = [CountWindow(1.0, 50.0, 2.0, 950.0, 10.0), CountWindow(2.0, 200.0, 3.0, 800.0, 7.0),
             CountWindow(3.0, 500.0, 9.0, 500.0, 5.0)]
    result = evaluate_counts(cells, CountsDesign(dispersion=False))
    expected = sum(window_log_lr(2.0, c.canary_requests, c.canary_errors, c.baseline_requests, c.baseline_errors)
                   for c in cells)
    assert result.evidence['log_lr'] == pytest.approx(expected)
    assert result.evidence['canary_requests'] == 750.0 and result.evidence['baseline_errors'] == 22.0


def test_strata_of_one_window_are_one_look_and_input_order_does_not_matter():
    cells = [CountWindow(1.0, 10.0, 1.0, 90.0, 1.0, 'a'), CountWindow(1.0, 50.0, 0.0, 50.0, 2.0, 'b'),
             CountWindow(2.0, 10.0, 0.0, 90.0, 3.0, 'a')]
    forward = evaluate_counts(cells)
    backward = evaluate_counts(list(reversed(cells)))
    assert forward.evidence == backward.evidence
    assert forward.evidence['windows'] == 2 and forward.evidence['informative_windows'] == 3
    assert forward.evidence['ratio_estimate'] == pytest.approx(mantel_haenszel_ratio(cells))
    assert mantel_haenszel_ratio(cells) == pytest.approx((1 * 90 / 100.0) / (1 * 10 / 100.0 + 2 * 50 / 100.0
                                                                             + 3 * 10 / 100.0))


def test_dispersion_factor_tempers_overdispersed_windows():
    # Windows that swing between "all errors from the canary" and "none": far more than binomial noise.
    cells = [CountWindow(float(t), 100.0, 20.0 if t % 2 else 0.0, 100.0, 0.0 if t % 2 else 20.0)
             for t in range(1, 9)]
    tempered = evaluate_counts(cells, CountsDesign())
    raw = evaluate_counts(cells, CountsDesign(dispersion=False))
    assert tempered.evidence['dispersion_factor'] > 5.0
    assert raw.evidence['dispersion_factor'] == 1.0
    assert tempered.evidence['log_lr'] == pytest.approx(tempered.evidence['log_lr_untempered']
                                                        / tempered.evidence['dispersion_factor'])
    assert raw.decision == 'fail' and tempered.decision is None


def test_kappa_upper_bound_closed_form():
    # No uncertainty: the moment estimate itself, clipped to [0, 1].
    assert kappa_upper_bound(3.0, 10.0, (5.0, 7.0, 11.0), 0.0) == pytest.approx(0.3)
    assert kappa_upper_bound(-3.0, 10.0, (5.0, 7.0, 11.0), 0.0) == 0.0
    assert kappa_upper_bound(30.0, 10.0, (5.0, 7.0, 11.0), 0.0) == 1.0
    # (k*I - R)**2 = z**2 * (s0 + 2*k*s1 + k**2*s2) with R = 0, I = 10, s = (2, 0, 0), z = 1: k = sqrt(2)/10.
    assert kappa_upper_bound(0.0, 10.0, (2.0, 0.0, 0.0), 1.0) == pytest.approx(math.sqrt(2.0) / 10.0)
    # General case against the root checked by substitution.
    residual, information, spread, z_value = 1.5, 20.0, (8.0, 30.0, 200.0), 0.75
    bound = kappa_upper_bound(residual, information, spread, z_value)
    assert bound > residual / information
    assert (bound * information - residual) ** 2 == pytest.approx(
        z_value ** 2 * (spread[0] + 2 * bound * spread[1] + bound ** 2 * spread[2]))
    # Too little information to bound it (z**2 * s2 >= I**2): the most conservative value.
    assert kappa_upper_bound(0.0, 1.0, (1.0, 1.0, 4.0), 0.75) == 1.0
    assert kappa_upper_bound(0.0, 0.0, (0.0, 0.0, 0.0), 0.75) == 1.0      # no information at all


def test_dispersion_bound_is_wider_with_fewer_windows():
    # The same per-window overdispersion pattern, 4 windows vs more: the bound used for the tempering is further
    # above the moment estimate with few windows and comes down towards it as windows accumulate.
    pattern = [(100.0, 12.0, 100.0, 4.0), (100.0, 4.0, 100.0, 12.0)]
    cells = [CountWindow(float(t + 1), *pattern[t % 2]) for t in range(40)]
    design = CountsDesign(max_ratio=2.0)
    few = evaluate_counts(cells[:4], design).evidence
    many = evaluate_counts(cells, design).evidence
    assert few['windows'] == 4 and many['windows'] > 10
    assert few['dispersion_kappa_split'] > few['dispersion_kappa_estimate'] > 0.0
    assert many['dispersion_kappa_split'] > many['dispersion_kappa_estimate'] > 0.0
    assert few['dispersion_kappa_split'] - few['dispersion_kappa_estimate'] \
        > 2.0 * (many['dispersion_kappa_split'] - many['dispersion_kappa_estimate'])


def test_windows_are_count_windows_with_valid_counts():
    with pytest.raises(CountsTestError):
        evaluate_counts([CountWindow(1.0, -1.0, 0.0, 10.0, 0.0)])
    with pytest.raises(CountsTestError, match='CountWindow'):
        evaluate_counts([(1.0, 100, 3, 900, 7)])
    assert evaluate_counts([]).decision is None


counts = st.integers(min_value=1, max_value=10 ** 6)
errors = st.integers(min_value=0, max_value=200)
ratios = st.floats(min_value=1.01, max_value=100.0)


@settings(max_examples=200, deadline=None)
@given(ratios, counts, counts, errors, errors, errors, errors)
def test_llr_additive_over_window_splits(ratio, n_c, n_b, x_c1, x_c2, x_b1, x_b2):
    # Two windows with the same canary share add up to the merged window.
    split = window_log_lr(ratio, n_c, x_c1, n_b, x_b1) + window_log_lr(ratio, 3 * n_c, x_c2, 3 * n_b, x_b2)
    merged = window_log_lr(ratio, 4 * n_c, x_c1 + x_c2, 4 * n_b, x_b1 + x_b2)
    assert split == pytest.approx(merged, rel=1e-9, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(ratios, counts, counts, errors, errors, st.floats(min_value=1e-3, max_value=1e3))
def test_llr_invariant_to_scaling_both_arms_requests(ratio, n_c, n_b, x_c, x_b, scale):
    assert window_log_lr(ratio, n_c * scale, x_c, n_b * scale, x_b) == pytest.approx(
        window_log_lr(ratio, n_c, x_c, n_b, x_b), rel=1e-9, abs=1e-9)
    if x_c == 0 and x_b == 0:
        assert window_log_lr(ratio, n_c * scale, 0, n_b, 0) == 0.0


@settings(max_examples=200, deadline=None)
@given(ratios, counts, counts, errors, errors)
def test_llr_symmetry_swapping_arms(ratio, n_c, n_b, x_c, x_b):
    # "canary is rho times the baseline" is "baseline is 1/rho times the canary".
    assert window_log_lr(ratio, n_c, x_c, n_b, x_b) == pytest.approx(
        window_log_lr(1.0 / ratio, n_b, x_b, n_c, x_c), rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(counts, errors, counts, errors), min_size=1, max_size=30))
def test_evidence_is_json_safe_and_thresholds_respected(rows):
    cells = [CountWindow(float(i + 1), float(a), float(min(b, a)), float(c), float(min(d, c)))
             for i, (a, b, c, d) in enumerate(rows)]
    result = evaluate_counts(cells)
    for value in result.evidence.values():
        assert value is None or isinstance(value, (int, float))
        assert not (isinstance(value, float) and (math.isnan(value) or math.isinf(value)))
    if result.decision == 'fail':
        assert result.evidence['log_mixture_lr'] >= result.evidence['fail_threshold']
    if result.decision == 'pass' and result.route == 'ratio':
        assert result.evidence['log_lr'] <= result.evidence['pass_threshold']


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 500), st.integers(0, 60), st.integers(1, 500), st.integers(0, 60)),
                min_size=1, max_size=25))
def test_dispersion_correction_never_fails_earlier_than_the_raw_test(rows):
    cells = [CountWindow(float(i + 1), float(a), float(min(b, a)), float(c), float(min(d, c)))
             for i, (a, b, c, d) in enumerate(rows)]
    tempered = evaluate_counts(cells, CountsDesign())
    if tempered.decision == 'fail':
        # Without passes, the raw test has failed by the same window.
        raw = evaluate_counts(cells, CountsDesign(dispersion=False), min_end=float('inf'))
        assert raw.decision == 'fail' and raw.decided_at <= tempered.decided_at


def clean_baseline_cells(rng, windows, canary_requests, baseline_requests, canary_rate, seconds=15.0):
    """A canary failing ``canary_rate`` of its requests against a baseline without a single error."""
    return [CountWindow(seconds * (index + 1), float(canary_requests),
                        float(sum(rng.random() < canary_rate for _request in range(canary_requests))),
                        float(baseline_requests), 0.0) for index in range(windows)]


def test_clean_baseline_is_judged_on_the_canary_own_noise():
    # 10 canary req/s failing 5 % against a baseline 3x its size with no error at all, 15-s windows. The split of
    # errors says nothing about noise (the baseline has none), so the arms' own windows bound it, and until they do,
    # the clean baseline's cap: the fail comes in the second window (30 s of data).
    cells = clean_baseline_cells(random.Random(3), 8, 150, 450, 0.05)
    result = evaluate_counts(cells, CountsDesign())
    evidence = result.evidence
    assert result.decision == 'fail' and result.decided_at == 30.0, evidence
    assert evidence['baseline_errors'] == 0 and evidence['dispersion_kappa_split'] == 1.0
    assert evidence['dispersion_kappa'] == min(evidence['dispersion_kappa_arms'], CLEAN_BASELINE_KAPPA)
    # Before any window informs a bound, a clean baseline caps kappa: the first window is tempered, and cannot fail.
    first = evaluate_counts(cells[:1], CountsDesign())
    assert first.decision is None and first.evidence['dispersion_kappa'] == CLEAN_BASELINE_KAPPA
    assert first.evidence['dispersion_factor'] == pytest.approx(1.0 + CLEAN_BASELINE_KAPPA
                                                                * (cells[0].canary_errors - 1.0))
    assert first.evidence['dispersion_factor'] > 2.0


def test_clean_baseline_cap_is_the_kappa_of_the_strongest_noise_measured():
    # Log-sd 1 per window (tau**2 = e - 1), converted for equal windows at a 25 % canary share.
    assert arms_kappa_equal_windows(math.e - 1.0, 0.25) == pytest.approx(CLEAN_BASELINE_KAPPA, abs=0.01)


def test_clean_baseline_cap_holds_until_the_baseline_first_error():
    canary = [(150.0, 9.0), (150.0, 2.0), (150.0, 11.0)]  # scattered enough to flag over-dispersion

    def judged(baseline_errors):
        cells = [CountWindow(15.0 * (index + 1), requests, errors, 450.0, float(baseline_errors[index]))
                 for index, (requests, errors) in enumerate(canary)]
        return evaluate_counts(cells, CountsDesign(), min_end=float('inf')).evidence

    clean = judged([0, 0, 0])
    assert clean['dispersion_arms_overdispersed'] is True and clean['dispersion_kappa_arms'] == 1.0
    assert clean['dispersion_kappa'] == CLEAN_BASELINE_KAPPA
    # One baseline error, and the bounds govern alone again: the flagged arms and an uninformed split give 1.
    once = judged([0, 0, 1])
    assert once['baseline_errors'] == 1 and once['dispersion_kappa'] == 1.0
    assert once['dispersion_factor'] > clean['dispersion_factor']


def size_biased_kappa(factors, share):
    """``E[lam**2 * (t - share)**2] / (E[lam**2] * share*(1-share))`` over independent arm factors drawn from the
    discrete law ``factors`` (``(value, probability), ...``), written out from the definition."""
    top = bottom = 0.0
    for canary, p_c in factors:
        for baseline, p_b in factors:
            lam = share * canary + (1.0 - share) * baseline
            t = share * canary / lam
            top += p_c * p_b * lam * lam * (t - share) ** 2
            bottom += p_c * p_b * lam * lam
    return top / (bottom * share * (1.0 - share))


@pytest.mark.parametrize('spread', [0.1, 0.5, 0.9])
@pytest.mark.parametrize('share', [0.05, 0.25, 0.5, 0.8])
def test_arms_kappa_is_the_size_biased_kappa_for_any_factor_law(spread, share):
    # Two-point factors 1 -/+ spread (mean 1, relative variance spread**2) and a skewed three-point law: the closed
    # form holds for any mean-one law with that variance, not only log-normal.
    two_point = ((1.0 - spread, 0.5), (1.0 + spread, 0.5))
    assert arms_kappa(spread * spread, share) == pytest.approx(size_biased_kappa(two_point, share), rel=1e-12)
    skewed = ((0.5, 0.5), (1.0, 0.3), (1.0 + 0.5 * 0.5 / 0.2, 0.2))
    variance = sum(p * (value - 1.0) ** 2 for value, p in skewed)
    assert sum(p * value for value, p in skewed) == pytest.approx(1.0)
    assert arms_kappa(variance, share) == pytest.approx(size_biased_kappa(skewed, share), rel=1e-12)


def test_arms_kappa_limits():
    assert arms_kappa(0.0, 0.3) == 0.0
    # First order 2 * tau**2 * share * (1 - share), like the conservative conversion.
    assert arms_kappa(1e-6, 0.3) == pytest.approx(2e-6 * 0.21, rel=1e-5)
    assert arms_kappa_conservative(1e-6, 0.3) == pytest.approx(2e-6 * 0.21, rel=1e-5)
    # Bounded however large the noise: 2*v/(share**2 + (1-share)**2), 1 at an even split.
    assert arms_kappa(1e12, 0.5) == pytest.approx(1.0, rel=1e-9)
    assert arms_kappa(1e12, 0.05) == pytest.approx(2 * 0.0475 / (0.0025 + 0.9025), rel=1e-9)
    for noise in (0.01, 0.3, 1.0, 10.0):
        assert arms_kappa(noise, 0.25) < arms_kappa_conservative(noise, 0.25)


def test_normal_quadrature_moments():
    assert sum(NORMAL_WEIGHTS) == pytest.approx(1.0, abs=1e-14)
    assert sum(w * x for w, x in zip(NORMAL_WEIGHTS, NORMAL_NODES)) == pytest.approx(0.0, abs=1e-14)
    assert sum(w * x * x for w, x in zip(NORMAL_WEIGHTS, NORMAL_NODES)) == pytest.approx(1.0, abs=1e-12)
    assert sum(w * x ** 4 for w, x in zip(NORMAL_WEIGHTS, NORMAL_NODES)) == pytest.approx(3.0, abs=1e-10)


@pytest.mark.parametrize('noise', [0.05, 0.284, 1.718, 10.0])
@pytest.mark.parametrize('share', [0.05, 0.25, 0.5])
def test_arms_kappa_equal_windows_against_a_fine_riemann_sum(noise, share):
    # Var(t)/(tb*(1-tb)) with t the canary share of errors under log-normal factors: a plain midpoint sum over the
    # log ratio D ~ N(0, 2*ln(1 + noise)) on 40,001 points, independent of the module's quadrature.
    sd = math.sqrt(2.0 * math.log1p(noise))
    points, low, high = 40001, -12.0, 12.0
    step = (high - low) / points
    first = second = mass = 0.0
    for index in range(points):
        z = low + (index + 0.5) * step
        density = math.exp(-0.5 * z * z) * step / math.sqrt(2.0 * math.pi)
        t = share * math.exp(sd * z) / (share * math.exp(sd * z) + 1.0 - share)
        mass += density
        first += density * t
        second += density * t * t
    mean = first / mass
    expected = (second / mass - mean * mean) / (mean * (1.0 - mean))
    assert arms_kappa_equal_windows(noise, share) == pytest.approx(expected, rel=1e-7)


def test_arms_kappa_equal_windows_is_larger_at_small_shares_and_smaller_at_even_ones():
    # Why the judge takes the larger of the two exact conversions: at a 5 % share the size-biased kappa says
    # little however noisy the arms, while windows of equal counts still carry the canary's own wobble.
    assert arms_kappa_equal_windows(1.718, 0.05) > 2.0 * arms_kappa(1.718, 0.05)
    assert arms_kappa_equal_windows(1.718, 0.5) < arms_kappa(1.718, 0.5)
    assert arms_kappa_equal_windows(1e-6, 0.3) == pytest.approx(arms_kappa(1e-6, 0.3), rel=1e-4)


def test_overdispersed_is_a_one_sided_z_test():
    assert OVERDISPERSION_Z == pytest.approx(1.6448536, rel=1e-6)
    assert overdispersed(1.65 * 2.0, 4.0)
    assert not overdispersed(1.64 * 2.0, 4.0)
    assert not overdispersed(-5.0, 4.0)


def test_arm_noise_bound_widens_with_scatter_never_narrows():
    residual, information, spread = 2.0, 10.0, (4.0, 6.0, 9.0)
    model = kappa_upper_bound(residual, information, spread, 0.84, cap=math.inf)
    # Calm scatter: the model-based bound stands.
    assert arm_noise_bound(residual, information, spread, (0.1, -0.1, 1.0), 0.84) == model
    # One window far out (heavy tails): the sandwich bound is the larger one.
    wide = arm_noise_bound(residual, information, spread, (400.0, -60.0, 30.0), 0.84)
    assert wide > model
    assert wide == kappa_upper_bound(residual, information, (400.0, -60.0, 30.0), 0.84, cap=math.inf)


def test_arm_noise_estimate_unbiased_for_binomial_windows():
    # The window's binomial variance counts the error of the earlier windows' rate (1 + n/N): without it a calm arm
    # looks over-dispersed in its first windows. Over many clean-baseline releases the excess averages about 0.
    rng = random.Random(8)
    flagged = 0
    for _release in range(200):
        cells = clean_baseline_cells(rng, 3, 150, 450, 0.05)
        flagged += evaluate_counts(cells, CountsDesign()).evidence['dispersion_arms_overdispersed']
    # A one-sided 95 % test: about 5 % of calm releases are flagged (with v = m*(1-r) alone it was about 25 %).
    assert flagged <= 20


def test_noisy_arms_hand_the_judgement_to_the_split():
    # Each arm's rate wobbles by log-sd 1 from window to window: the test for over-dispersion sees it and the arms'
    # bound is converted conservatively (1 at this noise), so the split's own bound tempers the evidence.
    rng = random.Random(4)
    cells = []
    for index in range(12):
        canary_rate = 0.01 * math.exp(rng.gauss(-0.5, 1.0))
        baseline_rate = 0.01 * math.exp(rng.gauss(-0.5, 1.0))
        cells.append(CountWindow(float(index + 1), 750.0, float(sum(rng.random() < canary_rate for _r in range(750))),
                                 750.0, float(sum(rng.random() < baseline_rate for _r in range(750)))))
    evidence = evaluate_counts(cells, CountsDesign(rate_floor=0.0), min_end=float('inf')).evidence
    assert evidence['dispersion_arms_overdispersed'] is True
    assert evidence['dispersion_kappa_arms'] == 1.0
    assert evidence['dispersion_kappa'] == evidence['dispersion_kappa_split']


def test_shared_noise_leaves_the_split_bound_in_charge():
    # Both arms' rates jump together (shared bursts, x10 every other window): each arm alone looks very noisy,
    # but the split of errors between the arms stays binomial, so the split's bound is the one used.
    rng = random.Random(11)
    cells = []
    for index in range(30):
        rate = 0.05 if index % 2 else 0.005
        cells.append(CountWindow(float(index + 1), 400.0, float(sum(rng.random() < rate for _r in range(400))),
                                 400.0, float(sum(rng.random() < rate for _r in range(400)))))
    evidence = evaluate_counts(cells, CountsDesign(rate_floor=0.0)).evidence
    assert evidence['dispersion_arms_overdispersed'] is True
    assert evidence['dispersion_kappa_arms'] == 1.0 > evidence['dispersion_kappa_split']
    assert evidence['dispersion_kappa'] == evidence['dispersion_kappa_split']


def test_restart_weights_sum_to_one():
    for restarts in range(6):
        weights, reserve = restart_log_weights(restarts)
        assert len(weights) == restarts + 1
        assert math.fsum(math.exp(value) for value in weights + [reserve]) == pytest.approx(1.0, abs=1e-12)
    assert restart_log_weights(0) == ([math.log(0.9)], math.log(0.1))


def test_restarted_test_catches_a_regression_after_a_pass():
    # 40 windows of a healthy canary (both arms 2 %), then it turns 4x worse. Read as one test, the good windows
    # passed it long before; restarted at window 41 (where a release's next step begins), the new test fails.
    rng = random.Random(5)
    cells = []
    for index in range(80):
        canary_rate = 0.02 if index < 40 else 0.08
        cells.append(CountWindow(float(index + 1), 500.0,
                                 float(sum(rng.random() < canary_rate for _r in range(500))), 1500.0,
                                 float(sum(rng.random() < 0.02 for _r in range(1500)))))
    one_test = evaluate_counts(cells, CountsDesign())
    assert one_test.decision == 'pass' and one_test.decided_at <= 40.0
    watched = evaluate_counts(cells, CountsDesign(), restarts=[41.0])
    assert watched.decision == 'fail' and watched.decided_at >= 41.0
    assert watched.evidence['restarts'] == 1
    # Still healthy after the restart: the restarted test passes on its own windows only, after the restart.
    healthy = [CountWindow(cell.end, cell.canary_requests, cell.baseline_errors / 3.0, cell.baseline_requests,
                           cell.baseline_errors) for cell in cells]
    again = evaluate_counts(healthy, CountsDesign(), restarts=[41.0])
    assert again.decision == 'pass' and again.decided_at > 41.0
    assert again.evidence['current_canary_requests'] == 500.0 * (again.decided_at - 40.0)


def test_restarts_are_checked():
    cells = [CountWindow(1.0, 100.0, 1.0, 100.0, 1.0)]
    with pytest.raises(CountsTestError, match='increasing'):
        evaluate_counts(cells, restarts=[5.0, 3.0])
    with pytest.raises(CountsTestError, match='finite number'):
        evaluate_counts(cells, restarts=[float('nan')])
    with pytest.raises(CountsTestError, match='finite number'):
        evaluate_counts(cells, restarts=['soon'])
