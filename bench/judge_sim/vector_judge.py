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


class VectorJudge:
    """State of the judge's test for ``runs`` runs; ``update`` adds one window to the runs given by ``index``."""

    def __init__(self, runs, design, lgamma_max=200000):
        self.design = design
        self.mixture = design.mixture
        self.sums = np.zeros((len(self.mixture), runs))
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

    def update(self, index, n_c, x_c, n_b, x_b):
        """Add one window for runs ``index``; returns (log_mixture, fail, pass_ratio, pass_rate) arrays."""
        mixture = self.mixture
        pseudo = core.CENTRING_PSEUDO_COUNT
        centring = (self.mh_numerator[index] + pseudo) / (self.mh_denominator[index] + pseudo)
        informed = (self.mh_numerator[index] > 0) & (self.mh_denominator[index] > 0)
        self.canary_requests[index] += n_c
        self.canary_errors[index] += x_c
        errors = x_c + x_b
        valid = (n_c > 0) & (n_b > 0) & (errors > 0)
        with np.errstate(divide='ignore', invalid='ignore'):
            total = n_c + n_b
            theta0 = n_c / total
            sums = self.sums[:, index]
            for row, (ratio, log_ratio, _log_weight) in enumerate(mixture):
                step = x_c * log_ratio - errors * np.log1p((ratio - 1.0) * theta0)
                sums[row] = sums[row] + np.where(valid, step, 0.0)
            self.sums[:, index] = sums
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
            positive = information > 0
            # core.kappa_upper_bound, same operations in the same order.
            z_squared = core.DISPERSION_Z * core.DISPERSION_Z
            quadratic = information * information - z_squared * spreads[2]
            linear = residual * information + z_squared * spreads[1]
            constant = residual * residual - z_squared * spreads[0]
            solvable = quadratic > 0
            root = (linear + np.sqrt(np.maximum(linear * linear - quadratic * constant, 0.0))) \
                / np.where(solvable, quadratic, 1.0)
            bound = np.where(solvable, np.minimum(1.0, np.maximum(0.0, root)), 1.0)
            kappa = np.where(positive, bound, self.kappa[index])
            self.kappa[index] = kappa
            if self.design.dispersion:
                phi = np.where(count > 0, 1.0 + kappa * (squared / np.where(count > 0, count, 1.0) - 1.0),
                               self.phi[index])
                self.phi[index] = phi
            else:
                phi = self.phi[index]
        values = [self.log_weights[row] + np.where(sums[row] > 0, sums[row] / phi, sums[row])
                  for row in range(len(mixture))]
        top = values[0]
        for value in values[1:]:
            top = np.maximum(top, value)
        total_exp = np.zeros(len(index))
        for value in values:
            total_exp = total_exp + np.exp(value - top)
        log_mixture = top + np.log(total_exp)
        fail = log_mixture >= self.fail_threshold
        pass_ratio = sums[0] / phi <= self.pass_threshold
        if self.rate_floor > 0:
            big_n = self.canary_requests[index]
            big_x = self.canary_errors[index]
            with np.errstate(divide='ignore', invalid='ignore'):
                log_e = (self.rate_floor * big_n - big_x * self.log_rate + self.log_scale
                         + self.lgamma[np.minimum(big_x, len(self.lgamma) - 1).astype(np.int64)]
                         - (1.0 + big_x) * np.log(self.rate_scale + big_n))
            pass_rate = (big_n > 0) & (big_x < self.rate_floor * big_n) & (log_e >= self.rate_threshold)
        else:
            pass_rate = np.zeros(len(index), dtype=bool)
        return log_mixture, fail, pass_ratio, pass_rate
