"""Designs of the comparison methods, computed before a scenario is simulated (SciPy).

* two-sample SPRT: the conditional-binomial SPRT of ``max_ratio`` vs 1 with Wald's boundaries (no mixture, no
  dispersion correction, no rate route): the yardstick for "requests to a decision".
* known-baseline SPRT: canary-only binomial SPRT of ``p_b`` vs ``max_ratio * p_b`` with the true ``p_b`` (an
  oracle; the optimum for those two hypotheses).
* exact fixed-sample test: the conditional binomial test after a fixed number ``K`` of errors (both arms),
  ``K`` the smallest for which a one-sided exact test at level alpha has power 1 - beta at ``max_ratio``.
* Flagger-style rule: a check per interval on the canary alone, "error rate above ``limit``" or "no data" is a
  failed check; roll back at ``failures`` failed checks, promote after ``successes`` good ones (typical:
  1-minute checks, success rate >= 99 %, threshold 5, promote after 10 good checks, as a stepWeight/maxWeight
  analysis does). The tuned rule knows the true baseline rate and traffic and picks interval, limit, failures
  and successes to meet alpha and power at ``max_ratio`` with the fewest expected canary requests
  (intervals without requests are skipped instead of failing).
* Kayenta-style: one-sided Mann-Whitney (canary greater, p < 0.01, i.e. Kayenta's default 98 % two-sided
  confidence) of the 1-minute error rates of canary vs baseline after a fixed 60 minutes (minutes without
  requests are left out; no data at all counts as a pass).
"""

import math

import numpy as np
from scipy import stats


def wald(alpha, beta):
    return math.log((1.0 - beta) / alpha), math.log(beta / (1.0 - alpha))


def fixed_sample_errors(theta0, ratio, alpha, beta, limit=200000):
    """Smallest K (total errors) at which the one-sided exact test at level alpha has power 1 - beta."""
    theta1 = ratio * theta0 / (ratio * theta0 + 1.0 - theta0)
    low, high = 1, 16

    def ok(k):
        critical = stats.binom.isf(alpha, k, theta0) + 1  # smallest c with P(X >= c) <= alpha
        while stats.binom.sf(critical - 2, k, theta0) <= alpha:
            critical -= 1
        return stats.binom.sf(critical - 1, k, theta1) >= 1.0 - beta
    while not ok(high):
        low, high = high, high * 2
        if high > limit:
            return None
    while high - low > 1:
        middle = (low + high) // 2
        if ok(middle):
            high = middle
        else:
            low = middle
    return high


def check_failure_probability(mean_requests, rate, limit):
    """P(error rate of an interval > limit | the interval has requests), requests ~ Poisson(mean)."""
    if mean_requests <= 0:
        return 0.0, 0.0
    spread = 10.0 * math.sqrt(mean_requests) + 10.0
    n = np.arange(max(1, int(mean_requests - spread)), int(mean_requests + spread) + 1)
    weights = stats.poisson.pmf(n, mean_requests)
    fail = stats.binom.sf(np.floor(limit * n + 1e-12), n, min(rate, 1.0))
    has_data = 1.0 - math.exp(-mean_requests)
    return float(np.sum(weights * fail) / has_data), has_data


def race_expected_checks(q, failures, successes):
    """E[number of informative checks] until `failures` failures or `successes` successes (q = P(failure))."""
    t = np.arange(0, failures + successes - 1)
    upper = stats.binom.cdf(np.minimum(t, failures - 1), t, q)
    lower = np.where(t - successes >= 0, stats.binom.cdf(t - successes, t, q), 0.0)
    return float(np.sum(upper - lower))


def tune_flagger(traffic, share, base_rate, ratio, alpha, beta, horizon, intervals=(1, 5, 15, 60),
                 limits=(0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0), max_failures=200):
    """The tuned Flagger-style rule (dict) or None when no setting meets alpha and power within the horizon."""
    best = None
    for minutes in intervals:
        mean_requests = traffic * share * 60.0 * minutes
        max_checks = int(horizon / (60.0 * minutes))
        if max_checks < 1:
            continue
        for factor in limits:
            limit = factor * base_rate
            q0, has_data = check_failure_probability(mean_requests, base_rate, limit)
            q1, _has_data = check_failure_probability(mean_requests, ratio * base_rate, limit)
            if not q1 > q0:
                continue
            # Informative checks must fit the horizon on average.
            budget = int(max_checks * has_data)
            if budget < 1:
                continue
            f = np.arange(1, min(max_failures, budget) + 1)[:, None]
            s = np.arange(1, budget + 1)[None, :]
            trials = f + s - 1
            valid = trials <= budget
            power = stats.binom.sf(f - 1, trials, q1)
            false = stats.binom.sf(f - 1, trials, q0)
            good = valid & (power >= 1.0 - beta) & (false <= alpha)
            for row in range(good.shape[0]):
                columns = np.nonzero(good[row])[0]
                if not len(columns):
                    continue
                failures, successes = int(f[row, 0]), int(s[0, columns[0]])
                checks0 = race_expected_checks(q0, failures, successes)
                checks1 = race_expected_checks(q1, failures, successes)
                cost = (checks0 + checks1) / has_data * mean_requests
                if best is None or cost < best['expected_requests_sum']:
                    best = {'interval_minutes': minutes, 'limit': limit, 'limit_factor': factor,
                            'failures': failures, 'successes': successes, 'q0': q0, 'q1': q1,
                            'false_rollback': float(false[row, columns[0]]), 'power': float(power[row, columns[0]]),
                            'expected_requests_sum': cost, 'skip_no_data': True}
    return best


def mann_whitney_greater(canary, baseline):
    """One-sided (canary greater) asymptotic Mann-Whitney p-values per row; rows may hold NaN (left out)."""
    result = np.ones(canary.shape[0])
    clean = ~(np.isnan(canary).any(axis=1) | np.isnan(baseline).any(axis=1))
    if clean.any():
        c, b = canary[clean], baseline[clean]
        constant = (np.ptp(np.concatenate([c, b], axis=1), axis=1) == 0)
        with np.errstate(all='ignore'):
            p = stats.mannwhitneyu(c, b, axis=1, alternative='greater', method='asymptotic').pvalue
        result[clean] = np.where(constant | np.isnan(p), 1.0, p)
    for row in np.nonzero(~clean)[0]:
        c = canary[row][~np.isnan(canary[row])]
        b = baseline[row][~np.isnan(baseline[row])]
        if len(c) and len(b) and np.ptp(np.concatenate([c, b])) > 0:
            result[row] = stats.mannwhitneyu(c, b, alternative='greater', method='asymptotic').pvalue
    return result
