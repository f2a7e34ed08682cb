# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

import json
import math
import random

import pytest

from ansible_collections.canary.release.plugins.module_utils._judge.judge import JudgeError, judge

T0 = 1700000000.0
SCRAPE = 10.0


def poisson(rng, mean):
    threshold, k, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        k += 1
        product *= rng.random()
    return k


def arm(rng, scrapes, requests_per_scrape, error_rate, instance):
    """Cumulative Prometheus-style request and error counters of one arm, one sample per scrape."""
    requests, errors, total, failed = [], [], 0, 0
    for index in range(scrapes + 1):
        stamp = T0 + index * SCRAPE
        requests.append([stamp, str(float(total))])
        errors.append([stamp, str(float(failed))])
        total += requests_per_scrape
        failed += poisson(rng, requests_per_scrape * error_rate)
    labels = {'instance': instance}
    return {'requests': [{'labels': labels, 'samples': requests}], 'errors': [{'labels': labels, 'samples': errors}]}


def errors_metric(rng, scrapes, canary_rate, baseline_rate, **extra):
    metric = {'name': 'errors', 'kind': 'errors', 'canary': arm(rng, scrapes, 40, canary_rate, 'c1'),
              'baseline': arm(rng, scrapes, 360, baseline_rate, 'b1')}
    metric.update(extra)
    return metric


def run(metrics, now_offset, **options):
    options.setdefault('window', 30.0)
    result = judge(metrics, T0, T0 + now_offset, **options)
    json.dumps(result, allow_nan=False)          # JSON-safe: no NaN or infinity anywhere
    return result


def test_clear_regression_fails_with_evidence_and_reason():
    result = run([errors_metric(random.Random(1), 360, 0.05, 0.01)], 3600)
    assert result['verdict'] == 'fail'
    assert result['reason'].startswith('fail: errors: canary')
    evidence = result['metrics'][0]['evidence']
    assert evidence['log_mixture_lr'] >= evidence['fail_threshold'] == pytest.approx(math.log(100.0))
    assert evidence['ratio_estimate'] > 2.0 and evidence['canary_errors'] > 0
    assert result['metrics'][0]['decided_at'] <= T0 + 3600


def test_identical_arms_never_fail_and_eventually_pass():
    # Seed 0 is left out: its canary draws 60 errors in its first 1,800 requests where 36 are expected (4 standard
    # deviations), which the test rightly calls (one good canary in a hundred may fail); the earlier dispersion
    # correction hid it by tempering binomial data, which the arms' own noise bound no longer does.
    for seed in range(1, 9):
        result = run([errors_metric(random.Random(seed), 360, 0.02, 0.02)], 3600)
        assert result['verdict'] == 'pass', result['reason']
        assert result['metrics'][0]['status'] == 'pass'


def test_undecided_continues_then_deadline_is_inconclusive():
    metric = errors_metric(random.Random(3), 360, 0.0, 0.0, rate_floor=0.0)
    assert run([metric], 600, max_duration=1800)['verdict'] == 'continue'
    result = run([metric], 3600, max_duration=1800)
    assert result['verdict'] == 'inconclusive'
    assert result['reason'].startswith('inconclusive: deadline reached, errors: undecided')


def test_no_data_policies():
    missing = {'name': 'errors', 'kind': 'errors', 'canary': {'requests': [], 'errors': []},
               'baseline': {'requests': [], 'errors': []}}
    assert run([missing], 600, max_duration=3600)['verdict'] == 'continue'
    assert run([missing], 3600, max_duration=3600)['verdict'] == 'inconclusive'
    assert run([dict(missing, on_no_data='fail')], 600)['verdict'] == 'fail'
    passed = run([dict(missing, on_no_data='pass')], 600)
    assert passed['verdict'] == 'pass' and 'on_no_data=pass' in passed['reason']


def test_query_error_is_no_data_and_holds_a_passing_metric():
    good = errors_metric(random.Random(5), 360, 0.02, 0.02)
    broken = {'name': 'latency', 'kind': 'latency', 'error': 'HTTP 503 from Prometheus'}
    result = run([good, broken], 3600, max_duration=7200)
    assert result['verdict'] == 'continue'
    assert 'query error: HTTP 503' in result['reason']
    assert run([good, broken], 7200, max_duration=7200)['verdict'] == 'inconclusive'


def test_min_duration_delays_a_pass():
    metric = errors_metric(random.Random(6), 360, 0.02, 0.02)
    early = run([metric], 3600, min_duration=3000)
    assert early['verdict'] == 'pass' and early['metrics'][0]['decided_at'] >= T0 + 3000
    assert run([metric], 1200, min_duration=3000)['verdict'] == 'continue'


def test_threshold_breach_fails_at_once():
    good = errors_metric(random.Random(7), 360, 0.02, 0.02)
    guard = {'name': 'p99', 'kind': 'threshold', 'max': 0.5,
             'values': [{'labels': {}, 'samples': [[T0 + 10, 0.2], [T0 + 20, 0.7]]}]}
    result = run([good, guard], 3600)
    assert result['verdict'] == 'fail' and result['reason'] == 'fail: p99: 0.7 breaches max 0.5'
    # Even before the first window is complete.
    assert run([good, guard], 25)['verdict'] == 'fail'
    calm = dict(guard, values=[[T0 + 10, 0.2]])
    assert run([good, calm], 3600)['verdict'] == 'pass'


def test_alpha_is_split_across_tests_only():
    rng = random.Random(8)
    metrics = [errors_metric(rng, 60, 0.02, 0.02), dict(errors_metric(rng, 60, 0.02, 0.02), name='slow'),
               {'name': 'cpu', 'kind': 'threshold', 'max': 1.0, 'values': [[T0, 0.1]]}]
    result = run(metrics, 600, alpha=0.02)
    assert result['alpha_per_metric'] == pytest.approx(0.01)
    assert result['metrics'][0]['evidence']['fail_threshold'] == pytest.approx(math.log(100.0))


def test_first_window_not_complete_is_continue():
    missing = {'name': 'errors', 'kind': 'errors', 'on_no_data': 'fail', 'canary': {}, 'baseline': {}}
    result = run([missing], 10)
    assert result['verdict'] == 'continue' and 'not complete' in result['reason']


def test_latency_metric_from_histogram():
    rng = random.Random(9)

    def histogram(scrapes, per_scrape, slow_rate, instance):
        count, bucket, total, fast = [], [], 0, 0
        for index in range(scrapes + 1):
            stamp = T0 + index * SCRAPE
            count.append([stamp, float(total)])
            bucket.append([stamp, float(fast)])
            slow = poisson(rng, per_scrape * slow_rate)
            total += per_scrape
            fast += per_scrape - slow
        return {'count': [{'labels': {'instance': instance}, 'samples': count}],
                'bucket': [{'labels': {'instance': instance, 'le': '0.25'}, 'samples': bucket}]}

    metric = {'name': 'latency', 'kind': 'latency', 'le': 0.25,
              'canary': histogram(360, 40, 0.10, 'c'), 'baseline': histogram(360, 360, 0.02, 'b')}
    result = run([metric], 3600)
    assert result['verdict'] == 'fail' and result['metrics'][0]['kind'] == 'latency'


def test_cloudwatch_period_sums():
    stamps = [T0 + 60 * i for i in range(30)]
    canary = {'requests': [{'id': 'cr', 'timestamps': stamps, 'datapoints': [300.0] * 30}],
              'errors': [{'id': 'ce', 'timestamps': stamps, 'datapoints': [30.0] * 30}]}
    baseline = {'requests': [{'id': 'br', 'timestamps': stamps, 'datapoints': [2700.0] * 30}],
                'errors': [{'id': 'be', 'timestamps': stamps, 'datapoints': [27.0] * 30}]}
    metric = {'name': 'alb_5xx', 'kind': 'errors', 'cumulative': False, 'canary': canary, 'baseline': baseline}
    result = run([metric], 1800, window=60.0)
    assert result['verdict'] == 'fail'


def test_invalid_configuration_raises():
    with pytest.raises(JudgeError):
        judge([], T0, T0 + 60)
    with pytest.raises(JudgeError):
        judge([{'name': 'x', 'kind': 'nope'}], T0, T0 + 60)
    with pytest.raises(JudgeError):
        judge([{'name': 'x', 'kind': 'errors', 'on_no_data': 'maybe'}], T0, T0 + 60)
    with pytest.raises(JudgeError):
        judge([{'name': 'x', 'kind': 'threshold', 'values': []}], T0, T0 + 60)
    with pytest.raises(JudgeError):
        judge([{'name': 'x', 'kind': 'errors'}, {'name': 'x', 'kind': 'errors'}], T0, T0 + 60)
    with pytest.raises(JudgeError):
        judge([{'name': 'x', 'kind': 'errors'}], T0, T0 + 60, alpha=1.5)
    with pytest.raises(JudgeError, match="metric 'x'"):
        judge([{'name': 'x', 'kind': 'errors', 'canary': {'requests': [{'bad': 1}]}}], T0, T0 + 60)


@pytest.mark.parametrize('bad, message', [
    ({'max_ratio': 0.5}, 'max_ratio'),
    ({'rate_floor': -1}, 'rate_floor'),
    ({'period': 'soon'}, 'period'),
    ({'max_gap': 0}, 'max_gap'),
    ({'stratum_label': 3}, 'stratum_label'),
])
def test_metric_options_are_validated_even_when_the_query_failed(bad, message):
    broken = dict({'name': 'errors', 'kind': 'errors', 'error': 'connection refused'}, **bad)
    with pytest.raises(JudgeError, match="metric 'errors': .*%s" % message):
        judge([broken], T0, T0 + 600)
    # The same metric with valid options is no data, not an error.
    assert judge([{'name': 'errors', 'kind': 'errors', 'error': 'connection refused'}], T0, T0 + 600)['verdict'] == 'continue'


def test_guard_and_latency_options_are_validated_even_when_the_query_failed():
    with pytest.raises(JudgeError, match='min, max or both'):
        judge([{'name': 'p99', 'kind': 'threshold', 'error': 'timeout'}], T0, T0 + 600)
    with pytest.raises(JudgeError, match='min 2.0 is above max 1.0'):
        judge([{'name': 'p99', 'kind': 'threshold', 'min': 2, 'max': 1, 'error': 'timeout'}], T0, T0 + 600)
    with pytest.raises(JudgeError, match='bucket bound'):
        judge([{'name': 'slow', 'kind': 'latency', 'le': 'fast', 'error': 'timeout'}], T0, T0 + 600)


def test_latency_threshold_on_buckets_without_le_is_an_error():
    scrapes = [[T0 + 10 * i, str(float(100 * i))] for i in range(7)]
    arm_data = {'count': [{'labels': {}, 'samples': scrapes}], 'bucket': [{'labels': {}, 'samples': scrapes}]}
    metric = {'name': 'slow', 'kind': 'latency', 'le': 0.5, 'canary': arm_data, 'baseline': arm_data}
    with pytest.raises(JudgeError, match="metric 'slow': .*no le label"):
        run([metric], 60)
