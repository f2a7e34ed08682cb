"""NumPy re-implementation of ``sequential_counts.evaluate_counts`` for many runs at once (one stratum).

It performs, for every run, the same floating-point operations in the same order as the plain-Python core, so
its statistics are bit-for-bit identical to the core's (``verify.py`` checks this on a sample of runs of every
scenario and the benchmark refuses to report a scenario where it is not). Only the per-window update is
vectorised across runs; windows are processed one after the other, exactly like the core.
"""

import math

import numpy as np

from _core_path import ensure_collection_importable

ensure_collection_importable()

from ansible_collections.canary.release.plugins.module_utils._judge import sequential_counts as core  # noqa: E402


def _upper_bound(residual, information, spread, cap):
    """core.kappa_upper_bound for arrays, same operations in the same order."""
    with np.errstate(divide='ignore', invalid='ignore'):
        z_squared = core.DISPERSION_Z * core.DISPERSION_Z
        quadratic = information * information - z_squared * spread[2]
        linear = residual * information + z_squared * spread[1]
        constant = residual * residual - z_squared * spread[0]
        solvable = (information > 0) & (quadratic > 0)
        root = (linear + np.sqrt(np.maximum(linear * linear - quadratic * constant, 0.0))) \
            / np.where(solvable, quadratic, 1.0)
        return np.where(solvable, np.minimum(cap, np.maximum(0.0, root)), cap)


class VectorJudge:
    """State of the judge's test for ``runs`` runs; ``update`` adds one window to the runs given by ``index``.

    ``restart`` starts a new test for some runs (core ``evaluate_counts(..., restarts=...)``), up to ``restarts``.
    """

    def __init__(self, runs, design, lgamma_max=200000, restarts=0):
        self.design = design
        self.mixture = design.mixture
        # components[j]: test j's log likelihood ratios per mixture point (0: from the first window).
        self.components = np.zeros((restarts + 1, len(self.mixture), runs))
        self.started = np.zeros(runs, dtype=np.int64)
        self.current_requests = np.zeros(runs)
        self.current_errors = np.zeros(runs)
        # The core's weights, per number of restarts started: ([ln w_0..ln w_J], ln reserve).
        self.restart_weights = [core.restart_log_weights(count) for count in range(restarts + 1)]
        self.mh_numerator = np.zeros(runs)
        self.mh_denominator = np.zeros(runs)
        self.residual = np.zeros(runs)
        self.information = np.zeros(runs)
        self.spread = np.zeros((3, runs))
        self.kappa = np.ones(runs)
        self.phi = np.ones(runs)
        self.squared_errors = np.zeros(runs)
        self.errors = np.zeros(runs)
        self.canary_requests = np.zeros(runs)
        self.canary_errors = np.zeros(runs)
        self.baseline_requests = np.zeros(runs)
        self.baseline_errors = np.zeros(runs)
        self.arm_residual = np.zeros(runs)
        self.arm_information = np.zeros(runs)
        self.arm_spread = np.zeros((3, runs))
        self.arm_empirical = np.zeros((3, runs))
        self.arm_excess = np.zeros((2, runs))
        self.arm_null_spread = np.zeros((2, runs))
        self.conditional_kappa = np.ones(runs)
        self.arm_kappa = np.ones(runs)
        self.log_weights = [log_weight for _ratio, _log_ratio, log_weight in self.mixture]
        self.fail_threshold = design.fail_threshold
        self.pass_threshold = design.pass_threshold
        self.rate_floor = design.rate_floor
        if design.rate_floor > 0:
            self.rate_threshold = design.rate_bound_threshold
            self.rate_scale = core.RATE_PRIOR_SCALE / design.rate_floor
            self.log_rate = math.log(design.rate_floor)
            self.log_scale = math.log(self.rate_scale)
            # math.lgamma of integers, so the rate route uses the core's own lgamma values.
            self.lgamma = np.array([math.lgamma(1.0 + value) for value in range(lgamma_max)])

    @staticmethod
    def _log_sum_exp(values):
        """core.log_sum_exp of arrays (same order)."""
        top = values[0]
        for value in values[1:]:
            top = np.maximum(top, value)
        total_exp = np.zeros(len(top))
        for value in values:
            total_exp = total_exp + np.exp(value - top)
        return top + np.log(total_exp)

    def _add_arm(self, index, arm, requests, errors, requests_before, errors_before):
        """core._State._add_arm for the runs ``index``."""
        with np.errstate(divide='ignore', invalid='ignore'):
            rate = errors_before / requests_before
            mean = requests * rate
            variance = mean * (1.0 - rate) * (1.0 + requests / requests_before)
            use = (requests > 0) & (errors_before > 0) & (requests_before > 0) & (variance > 0)
            deviation = errors - mean
            excess = deviation * deviation - variance
            self.arm_residual[index] += np.where(use, excess, 0.0)
            self.arm_excess[arm, index] += np.where(use, excess, 0.0)
            self.arm_information[index] += np.where(use, mean * mean, 0.0)
            empirical = self.arm_empirical[:, index]
            empirical[0] = empirical[0] + np.where(use, excess * excess, 0.0)
            empirical[1] = empirical[1] - np.where(use, excess * (mean * mean), 0.0)
            empirical[2] = empirical[2] + np.where(use, (mean * mean) * (mean * mean), 0.0)
            self.arm_empirical[:, index] = empirical
            spread = variance * (2.0 * variance + 1.0 - 6.0 * rate * (1.0 - rate))
            multiplier = mean * mean / variance
            spreads = self.arm_spread[:, index]
            spreads[0] = spreads[0] + np.where(use, spread, 0.0)
            self.arm_null_spread[arm, index] += np.where(use, spread, 0.0)
            spreads[1] = spreads[1] + np.where(use, spread * multiplier, 0.0)
            spreads[2] = spreads[2] + np.where(use, spread * multiplier * multiplier, 0.0)
            self.arm_spread[:, index] = spreads

    def restart(self, index):
        """Start a new test for the runs ``index`` from their next window on."""
        self.started[index] += 1
        self.current_requests[index] = 0.0
        self.current_errors[index] = 0.0

    def current_sums(self, index):
        """The current test's log likelihood ratios, shape (mixture points, len(index))."""
        return self.components[self.started[index], :, index].T

    def update(self, index, n_c, x_c, n_b, x_b):
        """Add one window for runs ``index``; returns (log_mixture, fail, pass_ratio, pass_rate) arrays."""
        mixture = self.mixture
        pseudo = core.CENTRING_PSEUDO_COUNT
        centring = (self.mh_numerator[index] + pseudo) / (self.mh_denominator[index] + pseudo)
        informed = (self.mh_numerator[index] > 0) & (self.mh_denominator[index] > 0)
        self._add_arm(index, 0, n_c, x_c, self.canary_requests[index], self.canary_errors[index])
        self._add_arm(index, 1, n_b, x_b, self.baseline_requests[index], self.baseline_errors[index])
        self.canary_requests[index] += n_c
        self.canary_errors[index] += x_c
        self.baseline_requests[index] += n_b
        self.baseline_errors[index] += x_b
        self.current_requests[index] += n_c
        self.current_errors[index] += x_c
        started = self.started[index]
        # Only the tests some of these runs have started (the others are all zero and stay so).
        live = int(started.max()) + 1 if len(started) else 1
        errors = x_c + x_b
        valid = (n_c > 0) & (n_b > 0) & (errors > 0)
        with np.errstate(divide='ignore', invalid='ignore'):
            total = n_c + n_b
            theta0 = n_c / total
            components = self.components[:live, :, index]
            for row, (ratio, log_ratio, _log_weight) in enumerate(mixture):
                step = x_c * log_ratio - errors * np.log1p((ratio - 1.0) * theta0)
                for test in range(len(components)):
                    components[test, row] = components[test, row] + np.where(valid & (test <= started), step, 0.0)
            self.components[:live, :, index] = components
            squared = self.squared_errors[index] + np.where(valid, errors * errors, 0.0)
            count = self.errors[index] + np.where(valid, errors, 0.0)
            self.squared_errors[index] = squared
            self.errors[index] = count
            pair = valid & (errors >= 2.0) & informed
            share = centring * n_c / (centring * n_c + n_b)
            variance = share * (1.0 - share)
            deviation = x_c - errors * share
            residual = self.residual[index] + np.where(pair, deviation * deviation - errors * variance, 0.0)
            information = self.information[index] + np.where(pair, errors * (errors - 1.0) * variance, 0.0)
            self.residual[index] = residual
            self.information[index] = information
            binomial = errors * variance
            spread = binomial * (2.0 * binomial + 1.0 - 6.0 * variance)
            spreads = self.spread[:, index]
            spreads[0] = spreads[0] + np.where(pair, spread, 0.0)
            spreads[1] = spreads[1] + np.where(pair, spread * (errors - 1.0), 0.0)
            spreads[2] = spreads[2] + np.where(pair, spread * (errors - 1.0) * (errors - 1.0), 0.0)
            self.spread[:, index] = spreads
            self.mh_numerator[index] += np.where(valid, x_c * n_b / total, 0.0)
            self.mh_denominator[index] += np.where(valid, x_b * n_c / total, 0.0)
            bound = _upper_bound(residual, information, spreads, 1.0)
            conditional = np.where(information > 0, bound, self.conditional_kappa[index])
            self.conditional_kappa[index] = conditional
            # core.arm_noise_bound: the larger of the model-based and the sandwich bound.
            noise = np.maximum(
                _upper_bound(self.arm_residual[index], self.arm_information[index], self.arm_spread[:, index], np.inf),
                _upper_bound(self.arm_residual[index], self.arm_information[index], self.arm_empirical[:, index],
                             np.inf))
            big_c, big_b = self.canary_requests[index], self.baseline_requests[index]
            both = (big_c > 0) & (big_b > 0) & (self.arm_information[index] > 0) & np.isfinite(noise)
            share = np.where(both, big_c / (big_c + big_b), 0.5)
            # core.overdispersed, pooled or on either arm.
            overdispersed = (self.arm_residual[index] > core.OVERDISPERSION_Z * np.sqrt(self.arm_spread[0, index])) \
                | (self.arm_excess[0, index] > core.OVERDISPERSION_Z * np.sqrt(self.arm_null_spread[0, index])) \
                | (self.arm_excess[1, index] > core.OVERDISPERSION_Z * np.sqrt(self.arm_null_spread[1, index]))
            finite_noise = np.where(both, noise, 0.0)
            converted = np.where(overdispersed, core.arms_kappa_conservative(finite_noise, share),
                                 np.maximum(core.arms_kappa(finite_noise, share),
                                            core.arms_kappa_equal_windows(finite_noise, share, exp=np.exp,
                                                                          log1p=np.log1p, sqrt=np.sqrt)))
            arm = np.where(both, np.minimum(1.0, converted), self.arm_kappa[index])
            self.arm_kappa[index] = arm
            # core: at most CLEAN_BASELINE_KAPPA while the baseline has had no error.
            kappa = np.minimum(conditional, arm)
            kappa = np.where(self.baseline_errors[index] <= 0, np.minimum(kappa, core.CLEAN_BASELINE_KAPPA), kappa)
            self.kappa[index] = kappa
            if self.design.dispersion:
                phi = np.where(count > 0, 1.0 + kappa * (squared / np.where(count > 0, count, 1.0) - 1.0),
                               self.phi[index])
                self.phi[index] = phi
            else:
                phi = self.phi[index]
        # core._State.log_mixture: each started test's mixture, weighted, plus the reserve, summed in that order.
        terms = []
        for test in range(len(components)):
            sums = components[test]
            values = [self.log_weights[row] + np.where(sums[row] > 0, sums[row] / phi, sums[row])
                      for row in range(len(mixture))]
            terms.append(self._log_sum_exp(values))
        count = len(index)
        weighted = []
        reserve = np.zeros(count)
        for test in range(len(components)):
            weight = np.zeros(count)
            for started_count, (weights, rest) in enumerate(self.restart_weights):
                here = started == started_count
                if test < len(weights):
                    weight = np.where(here, weights[test], weight)
                if test == 0:
                    reserve = np.where(here, rest, reserve)
            weighted.append(weight + terms[test])
        top = reserve
        for test, value in enumerate(weighted):
            top = np.where(test <= started, np.maximum(top, value), top)
        total_exp = np.zeros(count)
        for test, value in enumerate(weighted):
            total_exp = total_exp + np.where(test <= started, np.exp(value - top), 0.0)
        total_exp = total_exp + np.exp(reserve - top)
        log_mixture = top + np.log(total_exp)
        fail = log_mixture >= self.fail_threshold
        current = components[started, 0, np.arange(count)]
        pass_ratio = current / phi <= self.pass_threshold
        if self.rate_floor > 0:
            big_n = self.current_requests[index]
            big_x = self.current_errors[index]
            with np.errstate(divide='ignore', invalid='ignore'):
                log_e = (self.rate_floor * big_n - big_x * self.log_rate + self.log_scale
                         + self.lgamma[np.minimum(big_x, len(self.lgamma) - 1).astype(np.int64)]
                         - (1.0 + big_x) * np.log(self.rate_scale + big_n))
            pass_rate = (big_n > 0) & (big_x < self.rate_floor * big_n) & (log_e >= self.rate_threshold)
        else:
            pass_rate = np.zeros(len(index), dtype=bool)
        return log_mixture, fail, pass_ratio, pass_rate
