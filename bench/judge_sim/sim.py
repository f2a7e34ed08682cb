"""Simulation of one scenario: per-window counts for many runs, every method fed the same data (NumPy).

Data model per 15-second window and run: requests per arm ~ Poisson(traffic * share * window); errors per arm
~ Binomial(requests, rate), with the canary rate ``ratio * base_rate`` (``base_rate`` before ``onset``), times a
shared burst factor (both arms), times independent per-arm mean-one log-normal factors (overdispersion).
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

import comparators
from vector_judge import VectorJudge, core

WINDOW = 15.0
MINUTE = 4  # windows per minute
KAYENTA_MINUTES = 60
ALPHA = 0.01
BETA = 0.01
MAX_RATIO = 2.0

# Tests a watched release runs at most: one per step of the default plan (5 -> 25 -> 50 -> 100 %).
WATCHED_TESTS = 4

METHODS = ('judge', 'judge_watched', 'judge_no_dispersion', 'sprt_two_sample', 'sprt_known_baseline', 'fixed_sample',
           'flagger_typical', 'flagger_tuned', 'kayenta')


@dataclass
class Scenario:
    name: str
    group: str
    traffic: float
    share: float
    base_rate: float
    ratio: float
    onset: float = 0.0
    burst_every: float = 0.0       # mean seconds between shared bursts (0: none)
    burst_length: float = 120.0
    burst_factor: float = 10.0
    dispersion: float = 0.0        # log-sd of the per-arm, per-window rate factor
    share_steps: tuple = ()        # ((start_seconds, share), ...) after the initial share
    horizon: float = 86400.0
    min_duration: float = 0.0     # no pass (judge and SPRTs) in windows ending before this
    note: str = ''
    extra: dict = field(default_factory=dict)

    def share_at(self, seconds):
        share = self.share
        for start, value in self.share_steps:
            if seconds >= start:
                share = value
        return share


class Outcome:
    """Per-run outcome of one method: decision (0 none, 1 pass, 2 fail), stop window, canary requests/errors."""

    def __init__(self, runs, windows):
        self.log_mixture = np.zeros(runs)
        self.log_lr_untempered = np.zeros(runs)
        self.phi = np.ones(runs)
        self.decision = np.zeros(runs, dtype=np.int8)
        self.stop = np.full(runs, windows, dtype=np.int64)
        self.requests = np.zeros(runs)
        self.errors = np.zeros(runs)
        self.done = np.zeros(runs, dtype=bool)
        # Window ends at which a restarted test began (judge_watched), per run.
        self.restarts = [[] for _run in range(runs)]

    def finish(self, rows, decision, window, requests, errors):
        rows = rows[~self.done[rows]] if len(rows) else rows
        if not len(rows):
            return
        self.decision[rows] = decision
        self.stop[rows] = window
        self.requests[rows] = requests[rows]
        self.errors[rows] = errors[rows]
        self.done[rows] = True


def draw_window(rng, scenario, seconds, alive, burst_left):
    """One window's counts ``(n_c, x_c, n_b, x_b)`` for the runs ``alive`` (the window starting at ``seconds``);
    ``burst_left`` (windows of a shared burst still to come, per run) is updated in place."""
    share = scenario.share_at(seconds)
    size = len(alive)
    n_c = rng.poisson(scenario.traffic * share * WINDOW, size).astype(np.float64)
    n_b = rng.poisson(scenario.traffic * (1.0 - share) * WINDOW, size).astype(np.float64)
    rate_b = np.full(size, scenario.base_rate)
    ratio = scenario.ratio if seconds >= scenario.onset else 1.0
    rate_c = rate_b * ratio
    if scenario.burst_every > 0:
        starts = rng.random(size) < WINDOW / scenario.burst_every
        left = burst_left[alive]
        left = np.where((left <= 0) & starts, scenario.burst_length / WINDOW, left)
        factor = np.where(left > 0, scenario.burst_factor, 1.0)
        burst_left[alive] = left - 1
        rate_b, rate_c = rate_b * factor, rate_c * factor
    if scenario.dispersion > 0:
        sigma = scenario.dispersion
        rate_b = rate_b * np.exp(rng.normal(-sigma * sigma / 2.0, sigma, size))
        rate_c = rate_c * np.exp(rng.normal(-sigma * sigma / 2.0, sigma, size))
    x_c = rng.binomial(n_c.astype(np.int64), np.minimum(rate_c, 1.0)).astype(np.float64)
    x_b = rng.binomial(n_b.astype(np.int64), np.minimum(rate_b, 1.0)).astype(np.float64)
    return n_c, x_c, n_b, x_b


def simulate(scenario, runs, seed, verify_runs=0, design_overrides=None):
    rng = np.random.default_rng(seed)
    windows = int(round(scenario.horizon / WINDOW))
    design = core.CountsDesign(alpha=ALPHA, beta=BETA, max_ratio=MAX_RATIO, dispersion=True,
                               **(design_overrides or {}))
    design_raw = core.CountsDesign(alpha=ALPHA, beta=BETA, max_ratio=MAX_RATIO, dispersion=False,
                                   **(design_overrides or {}))
    judge = VectorJudge(runs, design, restarts=WATCHED_TESTS - 1)
    judge_raw = VectorJudge(runs, design_raw)
    upper, lower = comparators.wald(ALPHA, BETA)
    log_ratio = math.log(MAX_RATIO)
    p0 = scenario.base_rate
    p1 = min(MAX_RATIO * p0, 1.0 - 1e-12)
    known_success, known_failure = math.log(p1 / p0), math.log((1.0 - p1) / (1.0 - p0))
    fixed_k = comparators.fixed_sample_errors(scenario.share, MAX_RATIO, ALPHA, BETA)
    tuned = comparators.tune_flagger(scenario.traffic, scenario.share, scenario.base_rate, MAX_RATIO, ALPHA, BETA,
                                     scenario.horizon)
    outcomes = dict((method, Outcome(runs, windows)) for method in METHODS)
    if tuned is None:
        outcomes['flagger_tuned'].done[:] = True  # infeasible: reported as n/a
    # Per-run state of the comparators.
    sprt2 = np.zeros(runs)
    sprt_known = np.zeros(runs)
    cum = dict((key, np.zeros(runs)) for key in ('n_c', 'x_c', 'n_b', 'x_b'))
    minute = dict((key, np.zeros(runs)) for key in ('n_c', 'x_c', 'n_b', 'x_b'))
    typical = {'fail': np.zeros(runs, dtype=np.int64), 'ok': np.zeros(runs, dtype=np.int64)}
    tuned_state = {'fail': np.zeros(runs, dtype=np.int64), 'ok': np.zeros(runs, dtype=np.int64),
                   'n': np.zeros(runs), 'x': np.zeros(runs)}
    kayenta_c = np.full((runs, KAYENTA_MINUTES), np.nan)
    kayenta_b = np.full((runs, KAYENTA_MINUTES), np.nan)
    burst_left = np.zeros(runs)
    recorded = [] if verify_runs else None
    alive = np.arange(runs)
    started = time.time()
    for window in range(windows):
        if not len(alive):
            break
        seconds = window * WINDOW
        n_c, x_c, n_b, x_b = draw_window(rng, scenario, seconds, alive, burst_left)
        if recorded is not None:
            keep = alive < verify_runs
            recorded.append((alive[keep], n_c[keep], x_c[keep], n_b[keep], x_b[keep]))
        for key, value in (('n_c', n_c), ('x_c', x_c), ('n_b', n_b), ('x_b', x_b)):
            cum[key][alive] += value
            minute[key][alive] += value
        stop_window = window + 1
        may_pass = stop_window * WINDOW >= scenario.min_duration
        # The judge: its first decision ('judge'), and the release's tests restarted after each pass until the
        # last of WATCHED_TESTS passes or any fails ('judge_watched'); the same test without the dispersion correction.
        for name, engine in (('judge_watched', judge), ('judge_no_dispersion', judge_raw)):
            outcome = outcomes[name]
            active = ~outcome.done[alive]
            if not active.any():
                continue
            rows = alive[active]
            log_mix, fail, pass_ratio, pass_rate = engine.update(rows, n_c[active], x_c[active], n_b[active],
                                                                 x_b[active])
            passed = ~fail & (pass_ratio | pass_rate) if may_pass else np.zeros(len(rows), dtype=bool)
            targets = [outcome]
            if name == 'judge_watched':
                first = outcomes['judge']
                targets.append(first)
            for target in targets:
                open_rows = ~target.done[rows]
                target.log_mixture[rows[open_rows]] = log_mix[open_rows]
                target.log_lr_untempered[rows[open_rows]] = engine.current_sums(rows[open_rows])[0]
                target.phi[rows[open_rows]] = engine.phi[rows[open_rows]]
            for target in targets:
                target.finish(rows[fail], 2, stop_window, cum['n_c'], cum['x_c'])
            if name == 'judge_watched':
                outcomes['judge'].finish(rows[passed], 1, stop_window, cum['n_c'], cum['x_c'])
                last = engine.started[rows] >= WATCHED_TESTS - 1
                outcome.finish(rows[passed & last], 1, stop_window, cum['n_c'], cum['x_c'])
                again = rows[passed & ~last]
                engine.restart(again)
                for row in again[again < len(outcome.restarts)].tolist():
                    outcome.restarts[row].append((stop_window + 1) * WINDOW)
            else:
                outcome.finish(rows[passed], 1, stop_window, cum['n_c'], cum['x_c'])
        # Two-sample SPRT (Wald, simple alternative).
        errors = x_c + x_b
        with np.errstate(divide='ignore', invalid='ignore'):
            theta0 = n_c / (n_c + n_b)
            step = x_c * log_ratio - errors * np.log1p((MAX_RATIO - 1.0) * theta0)
        valid = (n_c > 0) & (n_b > 0) & (errors > 0)
        sprt2[alive] += np.where(valid, step, 0.0)
        outcomes['sprt_two_sample'].finish(alive[sprt2[alive] >= upper], 2, stop_window, cum['n_c'], cum['x_c'])
        if may_pass:
            outcomes['sprt_two_sample'].finish(alive[sprt2[alive] <= lower], 1, stop_window, cum['n_c'], cum['x_c'])
        # Known-baseline SPRT (canary only).
        sprt_known[alive] += x_c * known_success + (n_c - x_c) * known_failure
        outcomes['sprt_known_baseline'].finish(alive[sprt_known[alive] >= upper], 2, stop_window, cum['n_c'],
                                               cum['x_c'])
        if may_pass:
            outcomes['sprt_known_baseline'].finish(alive[sprt_known[alive] <= lower], 1, stop_window, cum['n_c'],
                                                   cum['x_c'])
        # Exact fixed-sample conditional test after K errors.
        if fixed_k is not None:
            outcome = outcomes['fixed_sample']
            total_errors = cum['x_c'][alive] + cum['x_b'][alive]
            reached = alive[(total_errors >= fixed_k) & ~outcome.done[alive]]
            if len(reached):
                k = cum['x_c'][reached] + cum['x_b'][reached]
                pooled = cum['n_c'][reached] / (cum['n_c'][reached] + cum['n_b'][reached])
                p_value = stats.binom.sf(cum['x_c'][reached] - 1, k, pooled)
                outcome.finish(reached[p_value <= ALPHA], 2, stop_window, cum['n_c'], cum['x_c'])
                outcome.finish(reached[p_value > ALPHA], 1, stop_window, cum['n_c'], cum['x_c'])
        if stop_window % MINUTE == 0:
            minute_index = stop_window // MINUTE - 1
            mn_c, mx_c, mn_b, mx_b = (minute[key][alive] for key in ('n_c', 'x_c', 'n_b', 'x_b'))
            # Flagger typical: 1-minute check, success >= 99 %, no data fails, 5 failures / 10 successes.
            outcome = outcomes['flagger_typical']
            with np.errstate(divide='ignore', invalid='ignore'):
                failed = (mn_c <= 0) | (mx_c / mn_c > 0.01)
            typical['fail'][alive] += failed
            typical['ok'][alive] += ~failed
            outcome.finish(alive[typical['fail'][alive] >= 5], 2, stop_window, cum['n_c'], cum['x_c'])
            outcome.finish(alive[typical['ok'][alive] >= 10], 1, stop_window, cum['n_c'], cum['x_c'])
            # Flagger tuned.
            if tuned is not None:
                tuned_state['n'][alive] += mn_c
                tuned_state['x'][alive] += mx_c
                if (minute_index + 1) % tuned['interval_minutes'] == 0:
                    tn, tx = tuned_state['n'][alive], tuned_state['x'][alive]
                    has = tn > 0
                    with np.errstate(divide='ignore', invalid='ignore'):
                        failed = has & (tx / np.where(has, tn, 1.0) > tuned['limit'] + 1e-15)
                    tuned_state['fail'][alive] += failed
                    tuned_state['ok'][alive] += has & ~failed
                    tuned_state['n'][alive] = 0.0
                    tuned_state['x'][alive] = 0.0
                    outcome = outcomes['flagger_tuned']
                    outcome.finish(alive[tuned_state['fail'][alive] >= tuned['failures']], 2, stop_window,
                                   cum['n_c'], cum['x_c'])
                    outcome.finish(alive[tuned_state['ok'][alive] >= tuned['successes']], 1, stop_window,
                                   cum['n_c'], cum['x_c'])
            # Kayenta: 1-minute points for 60 minutes, then one Mann-Whitney test.
            if minute_index < KAYENTA_MINUTES:
                with np.errstate(divide='ignore', invalid='ignore'):
                    kayenta_c[alive, minute_index] = np.where(mn_c > 0, mx_c / mn_c, np.nan)
                    kayenta_b[alive, minute_index] = np.where(mn_b > 0, mx_b / mn_b, np.nan)
                if minute_index == KAYENTA_MINUTES - 1:
                    p_value = comparators.mann_whitney_greater(kayenta_c[alive], kayenta_b[alive])
                    outcomes['kayenta'].finish(alive[p_value < 0.01], 2, stop_window, cum['n_c'], cum['x_c'])
                    outcomes['kayenta'].finish(alive[p_value >= 0.01], 1, stop_window, cum['n_c'], cum['x_c'])
            for key in minute:
                minute[key][alive] = 0.0
        all_done = np.ones(len(alive), dtype=bool)
        for outcome in outcomes.values():
            all_done &= outcome.done[alive]
        alive = alive[~all_done]
    # Undecided runs stop at the horizon with what they saw.
    for outcome in outcomes.values():
        rest = np.nonzero(~outcome.done)[0]
        outcome.requests[rest] = cum['n_c'][rest]
        outcome.errors[rest] = cum['x_c'][rest]
    info = {'seconds': time.time() - started, 'windows': windows, 'fixed_sample_errors': fixed_k,
            'flagger_tuned': tuned}
    data = None
    if recorded is not None:
        data = _per_run_windows(recorded, verify_runs)
    return outcomes, info, data, (design, design_raw)


def _per_run_windows(recorded, verify_runs):
    per_run = [[] for _run in range(verify_runs)]
    for window, (rows, n_c, x_c, n_b, x_b) in enumerate(recorded):
        for row, a, b, c, d in zip(rows.tolist(), n_c.tolist(), x_c.tolist(), n_b.tolist(), x_b.tolist()):
            per_run[row].append((float((window + 1) * WINDOW), a, b, c, d))
    return per_run
