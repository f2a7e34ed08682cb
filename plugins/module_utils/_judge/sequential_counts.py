# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Always-valid sequential test of canary vs baseline counts (errors or slow requests), plain Python.

Question: is the canary's error rate ``p_c`` at least ``max_ratio`` (``rho1``) times the baseline's ``p_b``,
both observed over the same windows? The test looks after every window, may stop at any window, and keeps
its error guarantees however long it runs and however often it is looked at.

Per window (and stratum) with ``n_c``/``n_b`` requests and ``x_c``/``x_b`` errors, given the ``k = x_c + x_b``
errors of the window, each error came from the canary with probability ``theta = rho*n_c / (rho*n_c + n_b)``
(``rho = p_c/p_b``; exact for Poisson counts; for binomial counts with equal rates the law of ``x_c`` given ``k``
is hypergeometric, less spread than this binomial, so the fail side stays valid). Rates shared by both arms
(bursts, traffic peaks, a weight change) cancel, so evidence is never reset when the weight changes: every
window carries its own ``theta0 = n_c / (n_c + n_b)``. The window's log-likelihood ratio of ``rho`` against 1 is::

    llr(rho) = x_c * ln(rho) - k * ln(1 + (rho - 1) * theta0)

and ``L(rho)`` is its sum over windows. Windows where an arm served no request, or without errors, add 0.

Fail (roll back): ``ln M >= ln(1/alpha)``, where ``M = sum_j w_j exp(L(rho_j))`` mixes ratios
``rho_j = rho1 * 2**j``, ``j = 0..4``, weight 1/2 on ``rho1`` and 1/8 on each of the others. Under
``p_c <= p_b`` (and binomial or Poisson counts, see the dispersion factor below otherwise) every
``exp(L(rho_j))`` is a nonnegative supermartingale with mean <= 1, so is the mixture, and Ville's inequality gives
``P(ever fail) <= alpha`` at any number of looks, for any stopping rule and deadline.
This is why the threshold is ``ln(1/alpha)``, not Wald's ``ln((1-beta)/alpha)``: Wald's value only bounds the
false-fail rate by ``alpha/(1-beta)`` (from the same inequality) and relies on the pass boundary stopping the
test; the difference is 0.01 nat at alpha = beta = 0.01. Half the mass on ``rho1`` costs ``ln 2`` nats where
decisions are slowest (the design effect); the rest, one point per doubling up to 16x, makes large regressions
fail within a few canary errors instead of dozens.

Pass, route 1 (ratio): ``L(rho1) <= ln(beta_ratio)``. Under ``p_c >= rho1 * p_b``, ``exp(-L(rho1))`` is a
nonnegative supermartingale, so a canary that bad passes this way with probability <= ``beta_ratio``.

Pass, route 2 (rate bound, for rare errors): windows where neither arm errs carry no ratio evidence, so when
errors are rare route 1 may never move. The canary also passes when its own error rate is shown to be below
``rate_floor``: with ``X`` errors in ``N`` canary requests, ``X < rate_floor * N`` and ``ln E >=
ln(1/beta_rate)`` where ``E`` is the gamma-Poisson mixture e-value against ``p_c = rate_floor``
(:func:`rate_bound_log_e`), equivalently the always-valid upper bound :func:`canary_rate_upper_bound` on the
canary error rate is below ``rate_floor``. Under ``p_c >= rate_floor`` this happens with probability <=
``beta_rate``. ``beta_rate = beta / 5`` and ``beta_ratio = beta - beta_rate`` so that, by the union bound, a
canary with ``p_c >= max(rho1 * p_b, rate_floor)`` passes with probability <= ``beta``: this is the rule. With
no error at all, route 2 passes after about ``7 / rate_floor`` canary requests (68,000 at the default 1e-4).
``rate_floor = 0`` disables route 2 (then ``beta_ratio = beta``).

Per-arm noise (overdispersion): when the arms' rates wobble independently from window to window more than
binomial noise allows, the per-window errors are overdispersed around ``k * theta`` and the raw likelihood ratio
would count noise as evidence. With ``dispersion`` on, the log-likelihood ratios above are divided by one factor
per look, ``phi = 1 + kappa * (k_bar - 1)`` (quasi-likelihood), on the side of the evidence they support only:
``L(rho_j)/phi`` when positive in the fail mixture, ``L(rho1)/phi`` when negative for the pass (so the tempered
statistics never decide earlier than the raw ones and Ville's bounds above still hold for binomial counts);
``k_bar = sum(k**2) / sum(k)`` over the informative windows so far, and ``kappa`` is the beta-binomial
intra-window correlation, in ``[0, 1]``.

``kappa`` is not its point estimate but an upper confidence bound (:func:`kappa_upper_bound`, one-sided 80 %).
The moment estimate is ``sum((x_c - k*t)**2 - k*t*(1-t)) / sum(k*(k-1)*t*(1-t))`` over windows with ``k >= 2``,
where ``t`` is the canary share of errors expected under the Mantel-Haenszel ratio of the *earlier* windows (a
predictable centring: a window's own data cannot hide its own noise, and a real constant regression is not
mistaken for noise once the centring has caught up with it). With few windows this estimate is noisy, and the
good canaries a tempered test fails are exactly the runs where it came out low: the canary's first windows
happened to be high, the centring followed them, and the noise looked small. (This is what let 1.3-3 % of good
canaries fail under strong per-arm noise with the point estimate.) The bound is wide with few windows and
tightens as ``1/sqrt(windows)``; when there is not enough information to bound ``kappa`` at all it is 1, so
``phi = k_bar`` and every window counts as if it held one error. The same bound tempers both sides, so strong
noise can neither fail a good canary nor pass a bad one on a few lucky windows.

Windows count towards ``kappa`` only once earlier windows have errors on both arms (before that the centring
is the pseudo count's ratio 1, and the first window of a large regression would be read as dispersion and
delay its fail by several windows). Windows with one error carry no
information on ``kappa`` (a single Bernoulli cannot be overdispersed) and are not tempered (``phi`` is 1 while
every window holds at most one error). One factor for all windows matters: dividing each window by its own
``1 + kappa*(k-1)`` would down-weight the windows where the baseline spiked, which are the windows that favour
the canary, and bias the test towards failing. The correction is a quasi-likelihood approximation, not an
exact bound under every kind of noise; ``bench/judge_sim`` measures it (false rollbacks <= 1 % in every
per-arm noise scenario, at log-sd up to 1 per 15-s window). Its price is speed where windows hold many errors
(tens per window): there a few windows cannot tell a constant regression from noise, so keep windows short
(the scrape interval) at high traffic.

The arms' own noise, a second bound on ``kappa``: the split of errors between the arms cannot say anything until
both arms have had errors, and a healthy baseline often has none. Each arm's own counts still show how much its
rate moves from window to window: a window's errors ``x`` against the arm's rate of the earlier windows ``r``
(``m = n*r``; binomial variance ``v = m*(1-r)*(1 + n/N)``, ``N`` the arm's earlier requests, the second term for
the error of ``r`` itself) have ``E[(x - m)**2 - v] = tau**2 * m**2`` when the arm's rate is multiplied by
mean-one factors of relative variance ``tau**2``. Both arms are assumed equally noisy (they run the same service on
the same kind of hosts), so their windows are pooled into one moment estimate of ``tau**2`` and its one-sided 80 %
upper bound (:func:`arm_noise_bound`: the larger of the model-based bound, :func:`kappa_upper_bound` uncapped with
``m**2/v`` in the place of ``k - 1``, and a sandwich bound from the windows' own scatter, which heavy-tailed noise
widens). That bound becomes a ``kappa`` for the canary's request share in one of two ways, decided by a test for
over-dispersion (:func:`overdispersed`, one-sided 95 %, on the pooled windows and on each arm alone):

- no evidence of over-dispersion: the exact conversion, the larger of :func:`arms_kappa` (the ``kappa`` that
  matches the quasi-likelihood's variance when windows with more errors are the noisier ones) and
  :func:`arms_kappa_equal_windows` (windows of equal error counts; larger at small canary shares, where a few
  windows under-represent the heavy ones in ``k_bar``). Both stay below 1 however large the bound: an arm whose
  few windows cannot rule out much noise still cannot fake more than a bounded share of evidence, so a canary
  failing 5 % against a clean baseline fails within about three windows instead of being counted as one error
  per window;
- over-dispersion shown: :func:`arms_kappa_conservative`, 1 or more at heavy noise, so the split's bound, which
  measures the noise where it matters, is in charge.

``kappa`` is the smaller of the two bounds (each 1 while it has no information). Shared noise (bursts on both
arms) makes each arm look over-dispersed but cancels in the split, so there too the split's bound is the one used.

A clean baseline: while the baseline has had no error at all, ``kappa`` is at most ``CLEAN_BASELINE_KAPPA`` (0.25).
Then the split cannot bound the noise (every error is the canary's), the baseline's own windows have nothing to
show, and two or three of the canary's windows leave the arms' bound wide or, in about one calm release in ten,
flag over-dispersion by chance (both make ``kappa`` 1: a window counts as one error, and a 5 % canary against a
clean baseline failed only after 4-8 windows in 15 % of runs). The cap is the ``kappa`` of per-arm noise of log-sd
1 per window (the strongest ``bench/judge_sim`` is measured under) at a 25 % canary share, converted for equal
windows: the judge assumes no stronger noise until the baseline's first error shows it something to compare. Such
a canary then fails within 3 windows in 999 of 1,000 runs (15-s windows; 60-s periods: all of them, within 2).
The price, measured under per-arm noise where a good baseline's first windows may hold no error: false rollbacks
0.90 % instead of 0.82 % in the worst scenario (log-sd 1, 100 req/s, 5 % share), at most 0.04 points more in four
others, the rest unchanged. From the baseline's first error on, the bounds above govern alone.

Restarted tests (watching after a pass): ``restarts`` starts a new test at given window ends (a release
restarts it at each later step). ``M_j``, test ``j``'s tempered mixture likelihood ratio, is 1 before its
start; ``E = sum_j w_j M_j`` plus the weight of the tests not started yet (:func:`restart_log_weights`, the
weights sum to 1) is then a nonnegative supermartingale with ``E_0 = 1`` under ``p_c <= p_b`` (restart times are
stopping times), so failing at ``ln E >= ln(1/alpha)`` keeps ``P(ever fail) <= alpha`` over the whole release
however many tests are restarted. Only the last test can pass, on its own windows, so a canary that passed a step
must pass again on the next step's data, and a regression that starts after a pass is judged on data the good
minutes do not outweigh. The price: the first test keeps ``1 - RESTART_SHARE`` of the weight (0.1 nats of
evidence), restarted tests 5 %, 2.5 %, ... of it (3.0, 3.7, ... nats more than a fresh test).

Decisions are read along the windows in time order: the first window where a boundary is crossed decides
(fail before pass in the same window; pass only in windows ending at or after ``min_end``). Re-running on more
data therefore never changes an earlier decision.
"""

import math
from dataclasses import dataclass
from statistics import NormalDist

from ansible_collections.canary.release.plugins.module_utils._judge.counter_windows import CountWindow

DEFAULT_ALPHA = 0.01
DEFAULT_BETA = 0.01
DEFAULT_MAX_RATIO = 2.0
DEFAULT_RATE_FLOOR = 1e-4

DESIGN_WEIGHT = 0.5
MIXTURE_DOUBLINGS = 4
RATE_BETA_SHARE = 0.2
# Gamma(shape 1, rate RATE_PRIOR_SCALE / rate_floor) prior on the canary rate for route 2: mean rate_floor / 10.
RATE_PRIOR_SCALE = 10.0
# Pseudo-count added to both sides of the Mantel-Haenszel ratio used to centre the dispersion estimate.
CENTRING_PSEUDO_COUNT = 0.5
# kappa is replaced by its one-sided 80 % upper confidence bound (see kappa_upper_bound): with few windows the moment
# estimate is noisy, and the runs where it happens to be low are those a tempered test would wrongly fail.
DISPERSION_CONFIDENCE = 0.8
DISPERSION_Z = NormalDist().inv_cdf(DISPERSION_CONFIDENCE)
# The arms' windows show over-dispersion when their excess squared deviations sum to more than this many binomial
# standard errors above 0 (one-sided 95 %); from then on their noise bound is converted conservatively.
OVERDISPERSION_CONFIDENCE = 0.95
OVERDISPERSION_Z = NormalDist().inv_cdf(OVERDISPERSION_CONFIDENCE)
# While the baseline has had no error at all, kappa is at most this (see the module docstring, "A clean baseline").
CLEAN_BASELINE_KAPPA = 0.25
# Share of alpha kept for the tests restarted at later steps (see restart_log_weights).
RESTART_SHARE = 0.1
# Above this the e-value is reported as None (it would overflow a float).
MAX_LOG_E_VALUE = 700.0


class CountsTestError(ValueError):
    """Invalid design parameters or window data."""


def _check_probability(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise CountsTestError('%s must be a number strictly between 0 and 1, got %r' % (name, value))


def check_max_ratio(value):
    """``value`` as a float when it is a valid design effect (above 1, below 1e6), else :class:`CountsTestError`.

    The one rule for ``max_ratio``, whether it is the module's option or a metric's override.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1.0 < value < 1e6:
        raise CountsTestError('max_ratio must be a number > 1 (and < 1e6), got %r' % (value,))
    return float(value)


def check_rate_floor(value):
    """``value`` as a float when it is a valid rate floor (in [0, 1)), else :class:`CountsTestError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise CountsTestError('rate_floor must be a number in [0, 1), got %r' % (value,))
    return float(value)


@dataclass(frozen=True)
class CountsDesign:
    """Parameters of the test; the thresholds and the mixture follow from them (see the module docstring)."""

    alpha: float = DEFAULT_ALPHA
    beta: float = DEFAULT_BETA
    max_ratio: float = DEFAULT_MAX_RATIO
    rate_floor: float = DEFAULT_RATE_FLOOR
    dispersion: bool = True

    def __post_init__(self):
        _check_probability('alpha', self.alpha)
        _check_probability('beta', self.beta)
        check_max_ratio(self.max_ratio)
        check_rate_floor(self.rate_floor)

    @property
    def beta_rate(self):
        """Share of beta spent on the rate-bound pass route (0 when it is disabled)."""
        return self.beta * RATE_BETA_SHARE if self.rate_floor > 0 else 0.0

    @property
    def beta_ratio(self):
        return self.beta - self.beta_rate

    @property
    def fail_threshold(self):
        """``ln(1/alpha)``: the log mixture likelihood ratio at which the canary fails."""
        return -math.log(self.alpha)

    @property
    def pass_threshold(self):
        """``ln(beta_ratio)``: the log likelihood ratio of ``max_ratio`` vs 1 at or below which the canary passes."""
        return math.log(self.beta_ratio)

    @property
    def rate_bound_threshold(self):
        """``ln(1/beta_rate)`` (None when route 2 is disabled)."""
        return -math.log(self.beta_rate) if self.rate_floor > 0 else None

    @property
    def mixture(self):
        """``((ratio, ln ratio, ln weight), ...)``, the design ratio first."""
        rest = (1.0 - DESIGN_WEIGHT) / MIXTURE_DOUBLINGS
        points = [(float(self.max_ratio), DESIGN_WEIGHT)]
        points.extend((self.max_ratio * 2.0 ** step, rest) for step in range(1, MIXTURE_DOUBLINGS + 1))
        return tuple((ratio, math.log(ratio), math.log(weight)) for ratio, weight in points)


def log_sum_exp(values):
    """``ln(sum(exp(v)))`` without overflow, summing in the given order."""
    top = max(values)
    if math.isinf(top):
        return top
    total = 0.0
    for value in values:
        total += math.exp(value - top)
    return top + math.log(total)


def _gamma_poisson_log_e(errors, requests, rate, scale):
    observed = rate * requests - errors * math.log(rate) + math.log(scale) + math.lgamma(1.0 + errors)
    return observed - (1.0 + errors) * math.log(scale + requests)


def rate_bound_log_e(errors, requests, rate):
    """Log of the gamma-Poisson mixture e-value against ``p_c = rate`` after ``errors`` in ``requests``.

    ``E = integral of (q/rate)**X * exp(-(q - rate)*N) over q ~ Gamma(1, b)``, ``b = RATE_PRIOR_SCALE / rate``,
    ``= exp(rate*N) * rate**-X * b * X! / (b + N)**(X+1)``. Under ``p_c = rate`` it is a nonnegative martingale
    (a supermartingale for Bernoulli requests, since ``1 + y <= exp(y)``). Evaluated at other rates ``q`` with the
    same prior, ``ln E(q)`` is convex in ``q``, so ``{q : ln E(q) < ln(1/delta)}`` is an interval holding the true
    rate at every look with probability >= ``1 - delta`` (Ville). Route 2 passes when ``X < rate * N`` and
    ``ln E(rate) >= ln(1/delta)``, i.e. when the whole interval lies below ``rate``: for a true
    ``p_c >= rate`` that needs ``E(p_c) >= 1/delta``, which happens with probability <= ``delta``.
    """
    if not rate > 0:
        raise CountsTestError('rate must be > 0, got %r' % (rate,))
    return _gamma_poisson_log_e(errors, requests, rate, RATE_PRIOR_SCALE / rate)


def canary_rate_upper_bound(errors, requests, rate_floor, log_threshold, iterations=100):
    """Always-valid upper confidence bound on the canary error rate (None without requests).

    The largest rate ``p`` not rejected by the same mixture (prior fixed by ``rate_floor``): the root above
    ``errors/requests`` of ``ln E(p) = log_threshold``. It holds at every look with probability
    ``1 - exp(-log_threshold)``, and it is below ``rate_floor`` exactly when route 2 passes.
    """
    if requests <= 0 or not rate_floor > 0:
        return None
    scale = RATE_PRIOR_SCALE / rate_floor
    low = max(errors / requests, 1e-300)
    high = max(2.0 * low, 1.0 / requests)
    while _gamma_poisson_log_e(errors, requests, high, scale) < log_threshold:
        high *= 2.0
        if high > 1e6:
            return None
    for _step in range(iterations):
        middle = (low + high) / 2.0
        if _gamma_poisson_log_e(errors, requests, middle, scale) < log_threshold:
            low = middle
        else:
            high = middle
    return high


def kappa_upper_bound(residual, information, spread, z_value, cap=1.0):
    """Upper confidence bound on the intra-window correlation ``kappa`` (1 without information), within ``[0, 1]``.

    ``R / I`` (``residual / information``) is the moment estimate. A window's squared deviation has, for binomial
    counts, variance ``s_w = k*v*(2*k*v + 1 - 6*v)`` (``v = t*(1-t)``, the fourth central moment minus the squared
    second), and about ``s_w * (1 + (k-1)*kappa)**2`` under dispersion ``kappa``; so the estimate's standard error
    is about ``sqrt(s0 + 2*kappa*s1 + kappa**2 * s2) / I`` with ``spread = (s0, s1, s2)`` the sums of ``s_w``,
    ``s_w*(k-1)`` and ``s_w*(k-1)**2``. The bound is the ``kappa`` of which the estimate is ``z_value`` standard
    errors below: the larger root of ``(kappa*I - R)**2 = z**2 * (s0 + 2*kappa*s1 + kappa**2 * s2)``; 1 when
    there is none (too few windows to bound it).
    """
    if not information > 0:
        return cap
    z_squared = z_value * z_value
    quadratic = information * information - z_squared * spread[2]
    if not quadratic > 0:
        return cap
    linear = residual * information + z_squared * spread[1]
    constant = residual * residual - z_squared * spread[0]
    root = (linear + math.sqrt(max(linear * linear - quadratic * constant, 0.0))) / quadratic
    return min(cap, max(0.0, root))


def overdispersed(excess, null_spread):
    """True when windows' excess squared deviations (summed) are above 0 by more than ``OVERDISPERSION_Z`` of their
    binomial standard errors (``null_spread``, the sum of their variances without over-dispersion)."""
    return excess > OVERDISPERSION_Z * math.sqrt(null_spread)


def arm_noise_bound(residual, information, spread, empirical, z_value):
    """Upper confidence bound on the arms' noise ``tau**2`` (``math.inf`` while there is too little to bound it).

    The larger of two bounds from :func:`kappa_upper_bound` (uncapped) on the same moment estimate ``R / I``:
    the model-based one (``spread``: a window's squared deviation has the binomial variance ``s_w`` times about
    ``(1 + tau**2 * m**2/v)**2``) and a sandwich one (``empirical``: the windows' own scatter around the
    candidate, ``sum((d_w - tau**2 * m_w**2)**2)`` with ``d_w`` a window's excess squared deviation, stored as
    ``(sum(d_w**2), -sum(d_w * m_w**2), sum(m_w**4))``). The model-based variance is that of a light-tailed
    noise; with heavy-tailed noise (a log-normal factor of log-sd 1 has a fourth moment 400 times its squared
    variance) the windows scatter much more than it says, and the sandwich widens the bound.
    """
    model = kappa_upper_bound(residual, information, spread, z_value, cap=math.inf)
    scatter = kappa_upper_bound(residual, information, empirical, z_value, cap=math.inf)
    return max(model, scatter)


def restart_log_weights(restarts):
    """``([ln w_0, ..., ln w_J], ln reserve)`` for the test and ``J = restarts`` restarted tests.

    The release's test (from the first window) weighs ``1 - RESTART_SHARE``; the ``j``-th restarted test
    ``RESTART_SHARE * 2**-j``; the tests not started yet (each still worth 1) hold the rest, ``RESTART_SHARE *
    2**-J``. The weights sum to 1 whatever the number of restarts, so the weighted sum is an e-process.
    """
    weights = [math.log(1.0 - RESTART_SHARE)]
    weights.extend(math.log(RESTART_SHARE * 0.5 ** step) for step in range(1, restarts + 1))
    return weights, math.log(RESTART_SHARE * 0.5 ** restarts)


def _normal_quadrature(step, half_width):
    """Nodes and weights of the trapezoid rule for ``E[f(Z)]``, ``Z`` standard normal, on ``[-half_width,
    half_width]``: for a smooth ``f`` the error falls like ``exp(-2*pi*d/step)`` (``d`` the distance of ``f``'s
    nearest complex singularity from the real axis); the tails beyond 8 hold less than 1e-15 of the mass."""
    count = int(round(half_width / step))
    nodes = tuple(step * index for index in range(-count, count + 1))
    scale = step / math.sqrt(2.0 * math.pi)
    return nodes, tuple(scale * math.exp(-0.5 * node * node) for node in nodes)


# E[f(Z)] for arms_kappa_equal_windows: 65 nodes, within about 1e-8 up to a log-ratio sd of 4.
NORMAL_NODES, NORMAL_WEIGHTS = _normal_quadrature(0.25, 8.0)


def arms_kappa_equal_windows(noise, share, exp=math.exp, log1p=math.log1p, sqrt=math.sqrt):
    """``Var(t) / (tb * (1 - tb))``, ``tb = E[t]``: the ``kappa`` of per-arm noise ``noise`` when every window holds
    the same number of errors, for log-normal factors (plain arithmetic: bench/judge_sim passes NumPy's ``exp``,
    ``log1p`` and ``sqrt`` to apply it to arrays).

    The factors' log ratio ``D`` is normal with variance ``2 * ln(1 + tau**2)``, and the canary's share of a
    window's errors is ``t(D) = share * e**D / (share * e**D + 1 - share)``; a 65-node quadrature over ``D``.
    ``noise`` must be finite and >= 0.
    """
    sigma = sqrt(2.0 * log1p(noise))
    odds = share / (1.0 - share)
    mean = 0.0
    second = 0.0
    for node, weight in zip(NORMAL_NODES, NORMAL_WEIGHTS):
        centred = (1.0 - 1.0 / (1.0 + odds * exp(sigma * node))) - share
        mean = mean + weight * centred
        second = second + weight * centred * centred
    average = share + mean
    return (second - mean * mean) / (average * (1.0 - average))


def arms_kappa(noise, share):
    """The intra-window correlation ``kappa`` that per-arm noise ``noise`` gives at canary request share ``share``
    (plain arithmetic: bench/judge_sim applies it to NumPy arrays).

    ``noise`` is ``tau**2``: each arm's rate is multiplied, window by window, by its own mean-one factor (``F_c``,
    ``F_b``, independent, relative variance ``tau**2``). A window with expected errors ``mu * lam``, ``lam =
    share*F_c + (1-share)*F_b``, sends each error to the canary with probability ``t = share*F_c / lam``, so
    ``lam * (t - share) = share*(1-share)*(F_c - F_b)`` and, over windows, ``E[(x_c - k*share)**2] - E[k]*v =
    E[k*(k-1)] * kappa * v`` (``v = share*(1-share)``) with::

        kappa = E[lam**2 * (t - share)**2] / (E[lam**2] * v)
              = 2 * tau**2 * v / (1 + tau**2 * (share**2 + (1-share)**2))

    This is the ``kappa`` the quasi-likelihood factor ``phi = 1 + kappa*(k_bar - 1)`` needs to match the variance
    of the canary's errors given the windows' errors (``k_bar - 1`` estimates ``E[k*(k-1)] / E[k]``): exact for any
    shape of the factors, not an upper value. ``noise`` must be finite and >= 0.
    """
    variance = share * (1.0 - share)
    return 2.0 * noise * variance / (1.0 + noise * (share * share + (1.0 - share) * (1.0 - share)))


def arms_kappa_conservative(noise, share):
    """An upper value of :func:`arms_kappa` for log-normal factors, used once the arms show over-dispersion.

    For log-normal factors the ratio of the two arms' factors has variance ``y * (y - 1)``, ``y = (1 +
    tau**2)**2``, and ``share * (1 - share)`` times that is above the intra-window correlation at every share (to
    first order in ``tau**2`` both are ``2 * tau**2 * share * (1 - share)``; at log-sd 1 it is 1 or more, so the
    split of errors, which measures the heavy-tailed noise directly, is the bound in charge).
    """
    spread = (1.0 + noise) * (1.0 + noise)
    return share * (1.0 - share) * spread * (spread - 1.0)


def _group_by_end(windows):
    for window in windows:
        if not isinstance(window, CountWindow):
            raise CountsTestError('a window must be a CountWindow, got %r' % (window,))
    cells = sorted(windows, key=lambda cell: (cell.end, cell.stratum))
    groups = []
    for cell in cells:
        for value in (cell.canary_requests, cell.canary_errors, cell.baseline_requests, cell.baseline_errors):
            if not math.isfinite(value) or value < 0:
                raise CountsTestError('window counts must be finite and >= 0: %r' % (cell,))
        if groups and groups[-1][0] == cell.end:
            groups[-1][1].append(cell)
        else:
            groups.append((cell.end, [cell]))
    return groups


@dataclass
class CountsResult:
    """Outcome of :func:`evaluate_counts`: ``decision`` is ``'fail'``, ``'pass'`` or None (undecided).

    ``route`` says which boundary decided (``'ratio'`` or ``'rate_bound'``); ``evidence`` holds the statistics at
    the deciding window, or at the last window when undecided (JSON-safe: no NaN or infinity).
    """

    decision: object = None
    route: object = None
    decided_at: object = None
    evidence: object = None


class _State:
    """Running sums of the test, updated window by window."""

    def __init__(self, design):
        self.design = design
        self.mixture = design.mixture
        # Log likelihood ratios per mixture point: one row per test, the release's first, then each restarted one.
        self.components = [[0.0] * len(self.mixture)]
        # Canary requests and errors since the latest restart (the rate-bound pass route of the current test).
        self.current_totals = [0.0, 0.0]
        self.mh_numerator = 0.0
        self.mh_denominator = 0.0
        self.residual = 0.0
        self.information = 0.0
        # sum(s_w), sum(s_w * (k-1)), sum(s_w * (k-1)**2), s_w the binomial variance of a window's squared deviation
        # (see kappa_upper_bound).
        self.spread = [0.0, 0.0, 0.0]
        self.kappa_estimate = None
        # Per-arm noise seen in each arm's own counts (see _add_arm): residual, information, spread, pooled over arms.
        self.arm_residual = 0.0
        self.arm_information = 0.0
        self.arm_spread = [0.0, 0.0, 0.0]
        # The same windows' empirical spread (see arm_noise_bound): sum(d**2), -sum(d * m**2), sum(m**4).
        self.arm_empirical = [0.0, 0.0, 0.0]
        self.arm_noise = math.inf
        self.arm_overdispersed = False
        # Each arm's own excess and its binomial spread (canary, baseline): the test for over-dispersion.
        self.arm_excess = [0.0, 0.0]
        self.arm_null_spread = [0.0, 0.0]
        self.arm_kappa = 1.0
        self.conditional_kappa = 1.0
        # Until a window informs it, nothing rules out any dispersion: kappa = 1 (phi = k_bar, 1 while k <= 1).
        self.kappa = 1.0
        self.phi = 1.0
        self.totals = [0.0, 0.0, 0.0, 0.0]
        self.windows = 0
        self.informative = 0
        self.squared_errors = 0.0
        self.errors = 0.0

    @property
    def sums(self):
        """The current (latest restarted) test's log likelihood ratios."""
        return self.components[-1]

    def restart(self):
        """Start a new test from the next window on; the earlier ones go on (their evidence still counts to fail)."""
        self.components.append([0.0] * len(self.mixture))
        self.current_totals = [0.0, 0.0]

    def add_window(self, cells):
        """Add one window's cells (the centring ratio comes from the earlier windows only), then update phi."""
        centring = (self.mh_numerator + CENTRING_PSEUDO_COUNT) / (self.mh_denominator + CENTRING_PSEUDO_COUNT)
        # A window informs kappa only once the centring rests on errors of both arms: before that it is the pseudo
        # count's ratio 1, and a real regression would be read as dispersion.
        informed = self.mh_numerator > 0 and self.mh_denominator > 0
        before = list(self.totals)
        self.windows += 1
        for cell in cells:
            n_c, x_c, n_b, x_b = cell.canary_requests, cell.canary_errors, cell.baseline_requests, cell.baseline_errors
            self._add_arm(0, n_c, x_c, before[0], before[1])
            self._add_arm(1, n_b, x_b, before[2], before[3])
            self.totals[0] += n_c
            self.totals[1] += x_c
            self.totals[2] += n_b
            self.totals[3] += x_b
            self.current_totals[0] += n_c
            self.current_totals[1] += x_c
            if n_c <= 0 or n_b <= 0:
                continue
            errors = x_c + x_b
            if errors <= 0:
                continue
            self.informative += 1
            total = n_c + n_b
            theta0 = n_c / total
            for index, (ratio, log_ratio, _log_weight) in enumerate(self.mixture):
                step = x_c * log_ratio - errors * math.log1p((ratio - 1.0) * theta0)
                for sums in self.components:
                    sums[index] += step
            self.squared_errors += errors * errors
            self.errors += errors
            if errors >= 2.0 and informed:
                share = centring * n_c / (centring * n_c + n_b)
                variance = share * (1.0 - share)
                deviation = x_c - errors * share
                self.residual += deviation * deviation - errors * variance
                self.information += errors * (errors - 1.0) * variance
                binomial = errors * variance
                spread = binomial * (2.0 * binomial + 1.0 - 6.0 * variance)
                self.spread[0] += spread
                self.spread[1] += spread * (errors - 1.0)
                self.spread[2] += spread * (errors - 1.0) * (errors - 1.0)
            self.mh_numerator += x_c * n_b / total
            self.mh_denominator += x_b * n_c / total
        if self.information > 0:
            self.kappa_estimate = self.residual / self.information
            self.conditional_kappa = kappa_upper_bound(self.residual, self.information, self.spread, DISPERSION_Z)
        if self.arm_information > 0:
            noise = arm_noise_bound(self.arm_residual, self.arm_information, self.arm_spread, self.arm_empirical,
                                    DISPERSION_Z)
            self.arm_noise = noise
            n_c, n_b = self.totals[0], self.totals[2]
            self.arm_overdispersed = overdispersed(self.arm_residual, self.arm_spread[0]) \
                or overdispersed(self.arm_excess[0], self.arm_null_spread[0]) \
                or overdispersed(self.arm_excess[1], self.arm_null_spread[1])
            if n_c > 0 and n_b > 0 and noise < math.inf:
                share = n_c / (n_c + n_b)
                if self.arm_overdispersed:
                    converted = arms_kappa_conservative(noise, share)
                else:
                    converted = max(arms_kappa(noise, share), arms_kappa_equal_windows(noise, share))
                self.arm_kappa = min(1.0, converted)
        self.kappa = min(self.conditional_kappa, self.arm_kappa)
        if self.totals[3] <= 0:
            self.kappa = min(self.kappa, CLEAN_BASELINE_KAPPA)

        if self.design.dispersion and self.errors > 0:
            self.phi = 1.0 + self.kappa * (self.squared_errors / self.errors - 1.0)

    def _add_arm(self, arm, requests, errors, requests_before, errors_before):
        """One arm's window against that arm's own rate of the earlier windows (no shared term cancels here)."""
        if requests <= 0 or errors_before <= 0 or requests_before <= 0:
            return
        rate = errors_before / requests_before
        mean = requests * rate
        variance = mean * (1.0 - rate) * (1.0 + requests / requests_before)
        if not variance > 0:
            return
        deviation = errors - mean
        excess = deviation * deviation - variance
        self.arm_residual += excess
        self.arm_excess[arm] += excess
        self.arm_information += mean * mean
        self.arm_empirical[0] += excess * excess
        self.arm_empirical[1] -= excess * (mean * mean)
        self.arm_empirical[2] += (mean * mean) * (mean * mean)
        spread = variance * (2.0 * variance + 1.0 - 6.0 * rate * (1.0 - rate))
        multiplier = mean * mean / variance
        self.arm_spread[0] += spread
        self.arm_null_spread[arm] += spread
        self.arm_spread[1] += spread * multiplier
        self.arm_spread[2] += spread * multiplier * multiplier

    def log_lr(self):
        """Tempered log-likelihood ratio of ``max_ratio`` vs 1."""
        return self.sums[0] / self.phi

    def _test_log_mixture(self, sums):
        # Only evidence for a ratio is tempered; against it stays as is, so the mixture never exceeds the
        # untempered one and Ville's bound holds exactly for binomial/Poisson counts whatever phi is.
        phi = self.phi
        return log_sum_exp([log_weight + (value / phi if value > 0 else value)
                            for (_r, _l, log_weight), value in zip(self.mixture, sums)])

    def log_mixture(self):
        """Log of the weighted sum of every test's mixture likelihood ratio (see restart_log_weights)."""
        weights, reserve = restart_log_weights(len(self.components) - 1)
        terms = [weight + self._test_log_mixture(sums) for weight, sums in zip(weights, self.components)]
        terms.append(reserve)
        return log_sum_exp(terms)

    def current_log_mixture(self):
        return self._test_log_mixture(self.sums)

    def log_rate_e(self):
        design = self.design
        requests, errors = self.current_totals
        if design.rate_floor <= 0 or requests <= 0:
            return None
        return rate_bound_log_e(errors, requests, design.rate_floor)

    def rate_route_passes(self):
        design = self.design
        requests, errors = self.current_totals
        log_e = self.log_rate_e()
        return log_e is not None and errors < design.rate_floor * requests and log_e >= design.rate_bound_threshold


def _finite_or_none(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _evidence(state, log_mixture):
    design = state.design
    n_c, x_c, n_b, x_b = state.totals
    current_n_c, current_x_c = state.current_totals
    log_rate_e = state.log_rate_e()
    return {
        'windows': state.windows,
        'informative_windows': state.informative,
        'canary_requests': n_c,
        'canary_errors': x_c,
        'baseline_requests': n_b,
        'baseline_errors': x_b,
        'canary_rate': x_c / n_c if n_c > 0 else None,
        'baseline_rate': x_b / n_b if n_b > 0 else None,
        'ratio_estimate': _finite_or_none(state.mh_numerator / state.mh_denominator)
        if state.mh_denominator > 0 else None,
        'max_ratio': design.max_ratio,
        'log_mixture_lr': _finite_or_none(log_mixture),
        'e_value': math.exp(log_mixture) if log_mixture <= MAX_LOG_E_VALUE else None,
        'fail_threshold': design.fail_threshold,
        'log_lr': _finite_or_none(state.log_lr()),
        'log_lr_untempered': _finite_or_none(state.sums[0]),
        'pass_threshold': design.pass_threshold,
        'dispersion_kappa': state.kappa,
        'dispersion_kappa_split': state.conditional_kappa,
        'dispersion_kappa_arms': state.arm_kappa,
        'dispersion_arm_noise': _finite_or_none(state.arm_noise),
        'dispersion_arms_overdispersed': state.arm_overdispersed,
        'dispersion_kappa_estimate': _finite_or_none(state.kappa_estimate),
        'dispersion_factor': state.phi,
        'rate_floor': design.rate_floor,
        'log_rate_bound_e': _finite_or_none(log_rate_e),
        'rate_bound_threshold': design.rate_bound_threshold,
        'canary_rate_upper': _finite_or_none(canary_rate_upper_bound(current_x_c, current_n_c, design.rate_floor,
                                                                     design.rate_bound_threshold))
        if design.rate_floor > 0 else None,
        'restarts': len(state.components) - 1,
        'current_canary_requests': current_n_c,
        'current_canary_errors': current_x_c,
        'current_log_mixture_lr': _finite_or_none(state.current_log_mixture()),
        'alpha': design.alpha,
        'beta': design.beta,
    }


def _check_restarts(restarts):
    ends = []
    for value in restarts or ():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CountsTestError('a restart must be a finite number (the end of its first window), got %r'
                                  % (value,))
        ends.append(float(value))
    if ends != sorted(ends):
        raise CountsTestError('restarts must be in increasing order, got %r' % (list(restarts),))
    return ends


def evaluate_counts(windows, design=None, min_end=None, restarts=()):
    """Run the test over ``windows`` (:class:`~.counter_windows.CountWindow`, any order) and return a :class:`CountsResult`.

    Windows with the same ``end`` (strata) form one look. Pass decisions are only taken in windows ending at or
    after ``min_end``. The caller leaves out windows after a deadline.

    ``restarts`` (increasing) starts a new test at each of these window ends: the windows ending at or after
    ``restarts[j]`` count in test ``j + 1`` as well. Every test's evidence counts to fail (one e-process, see
    :func:`restart_log_weights`); only the last test can pass, in its own windows. A release restarts the test at
    each later step, so a canary that passed a step is judged again on the next step's data and a regression that
    starts after a pass is not hidden by the evidence that passed it.
    """
    design = design or CountsDesign()
    ends = _check_restarts(restarts)
    state = _State(design)
    log_mixture = 0.0
    for end, cells in _group_by_end(windows):
        while len(state.components) <= len(ends) and end >= ends[len(state.components) - 1]:
            state.restart()
        state.add_window(cells)
        log_mixture = state.log_mixture()
        if log_mixture >= design.fail_threshold:
            return CountsResult('fail', 'ratio', end, _evidence(state, log_mixture))
        if len(state.components) <= len(ends) or (min_end is not None and end < min_end):
            continue
        if state.log_lr() <= design.pass_threshold:
            return CountsResult('pass', 'ratio', end, _evidence(state, log_mixture))
        if state.rate_route_passes():
            return CountsResult('pass', 'rate_bound', end, _evidence(state, log_mixture))
    return CountsResult(None, None, None, _evidence(state, log_mixture))
