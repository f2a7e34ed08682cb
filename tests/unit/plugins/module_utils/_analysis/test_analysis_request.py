# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Request building of the analysis module: placeholders, per-arm queries, validation, deduplication, step."""

import pytest

from ansible.template import Templar, trust_as_template
from ansible.parsing.dataloader import DataLoader

from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_request import (
    AnalysisRequestError,
    build_plan,
    placeholders,
    prometheus_step,
    substitute,
)

TRACKS = {'canary_track': 'track="canary"', 'baseline_track': 'track="stable"'}


def errors_metric(**extra):
    metric = {'name': 'http_errors', 'kind': 'errors',
              'requests': 'http_requests_total{job="web", ${track}}',
              'errors': 'http_requests_total{job="web", ${track}, code=~"5.."}'}
    metric.update(extra)
    return metric


def queries_by_arm(plan, metric_index=0):
    entry = plan.metrics[metric_index]
    found = {}
    for binding in entry.bindings:
        source = plan.prometheus if binding.provider == 'prometheus' else plan.cloudwatch
        found[(binding.arm, binding.role)] = source[binding.key]
    return found


def test_placeholder_is_substituted_per_arm():
    plan = build_plan([errors_metric()], **TRACKS)
    assert queries_by_arm(plan) == {
        ('canary', 'requests'): 'http_requests_total{job="web", track="canary"}',
        ('canary', 'errors'): 'http_requests_total{job="web", track="canary", code=~"5.."}',
        ('baseline', 'requests'): 'http_requests_total{job="web", track="stable"}',
        ('baseline', 'errors'): 'http_requests_total{job="web", track="stable", code=~"5.."}',
    }
    assert list(plan.prometheus) == ['m0_canary_requests', 'm0_canary_errors', 'm0_baseline_requests',
                                     'm0_baseline_errors']
    assert plan.cloudwatch == {} and plan.providers == {'prometheus'}


def test_placeholder_survives_ansible_templating():
    """What the module receives after Ansible rendered the task: {{ }} is rendered, ${track} is left alone."""
    templar = Templar(loader=DataLoader(), variables={'job': 'web'})
    rendered = templar.template(trust_as_template('http_requests_total{job="{{ job }}", ${track}, code=~"5.."}'))
    assert rendered == 'http_requests_total{job="web", ${track}, code=~"5.."}'
    assert placeholders(rendered) == {'track'}
    assert substitute(rendered, 'track="canary"') == 'http_requests_total{job="web", track="canary", code=~"5.."}'


def test_substitute_reaches_strings_inside_dicts_and_lists():
    value = {'dimensions': {'TargetGroup': '${track}', 'LoadBalancer': 'app/web/1'}, 'list': ['a-${track}'], 'n': 60}
    assert substitute(value, 'tg/canary/1') == {'dimensions': {'TargetGroup': 'tg/canary/1', 'LoadBalancer': 'app/web/1'},
                                                'list': ['a-tg/canary/1'], 'n': 60}
    assert placeholders(value) == {'track'}


def test_per_arm_queries_override_templates():
    metric = errors_metric(canary={'requests': 'canary_requests_total', 'errors': None},
                           baseline={'errors': 'stable_errors_total{${track}}'})
    found = queries_by_arm(build_plan([metric], **TRACKS))
    assert found[('canary', 'requests')] == 'canary_requests_total'
    assert found[('canary', 'errors')] == 'http_requests_total{job="web", track="canary", code=~"5.."}'
    assert found[('baseline', 'requests')] == 'http_requests_total{job="web", track="stable"}'
    assert found[('baseline', 'errors')] == 'stable_errors_total{track="stable"}'


def test_explicit_arms_need_no_track():
    metric = {'name': 'e', 'kind': 'errors',
              'canary': {'requests': 'a_total{job="canary"}', 'errors': 'b_total{job="canary"}'},
              'baseline': {'requests': 'a_total{job="web"}', 'errors': 'b_total{job="web"}'}}
    found = queries_by_arm(build_plan([metric]))
    assert found[('baseline', 'errors')] == 'b_total{job="web"}'


def test_a_template_without_placeholder_may_serve_one_arm():
    metric = errors_metric(requests='http_requests_total{job="web"}', canary={'requests': 'canary_requests_total'})
    found = queries_by_arm(build_plan([metric], **TRACKS))
    assert found[('canary', 'requests')] == 'canary_requests_total'
    assert found[('baseline', 'requests')] == 'http_requests_total{job="web"}'


def test_metric_tracks_override_module_tracks():
    plan = build_plan([errors_metric(canary_track='version="2.0"')], **TRACKS)
    found = queries_by_arm(plan)
    assert found[('canary', 'requests')] == 'http_requests_total{job="web", version="2.0"}'
    assert found[('baseline', 'requests')] == 'http_requests_total{job="web", track="stable"}'


@pytest.mark.parametrize('metric, tracks, message', [
    (errors_metric(requests='http_requests_total{job="web"}'), TRACKS,
     "metric 'http_errors': the requests query has no ${track} placeholder, so canary and baseline would read the same"),
    (errors_metric(errors='x{${trak}}'), TRACKS, 'unknown placeholder ${trak}; the only placeholder is ${track}'),
    (errors_metric(), {'canary_track': 'a="b"'}, 'the requests query uses ${track} but baseline_track is not set'),
    (errors_metric(errors=None), TRACKS, 'no errors query for the canary: give errors (a template with ${track}) or '
                                         'canary.errors'),
    (errors_metric(kind='latency'), TRACKS, 'a latency metric takes count and bucket, not requests'),
    (errors_metric(kind='nope'), TRACKS, 'kind must be one of errors, latency, threshold'),
    (errors_metric(provider='graphite'), TRACKS, 'provider must be one of prometheus, cloudwatch'),
    (errors_metric(on_no_data='maybe'), TRACKS, 'on_no_data must be one of hold, fail, pass'),
    (errors_metric(requests=''), TRACKS, 'no requests query for the canary'),
    (errors_metric(requests=42, canary={'requests': 42}), TRACKS, 'a Prometheus query is a non-empty PromQL string'),
    (errors_metric(max_ratio=1.0), TRACKS, "metric 'http_errors': max_ratio must be a number > 1 (and < 1e6), got 1.0"),
    (errors_metric(max_ratio=1e7), TRACKS, 'max_ratio must be a number > 1 (and < 1e6)'),
    (errors_metric(rate_floor=1.5), TRACKS, 'rate_floor must be a number in [0, 1), got 1.5'),
    (errors_metric(stratum_label='zone', provider='cloudwatch'), TRACKS, 'stratum_label is for Prometheus'),
    (errors_metric(min=1.0), TRACKS, 'min and max are for threshold metrics'),
    (errors_metric(le=0.5), TRACKS, 'le is for latency metrics'),
    (errors_metric(period=60), TRACKS, 'period is for CloudWatch metrics'),
    ({'name': 'p99', 'kind': 'threshold', 'query': 'x{${track}}'}, TRACKS, 'a threshold metric needs min, max or both'),
    ({'name': 'p99', 'kind': 'threshold', 'query': 'x', 'min': 2.0, 'max': 1.0}, TRACKS, 'min 2.0 is above max 1.0'),
    ({'name': 'p99', 'kind': 'threshold', 'max': 1.0}, TRACKS, 'a threshold metric needs query (or canary.query)'),
    ({'name': 'p99', 'kind': 'threshold', 'query': 'x', 'max': 1.0, 'baseline': {'query': 'y'}}, TRACKS,
     'a threshold metric watches the canary only'),
    ({'name': 'p99', 'kind': 'threshold', 'query': 'x{${track}}', 'max': 1.0}, {}, 'canary_track is not set'),
    ({'kind': 'errors'}, TRACKS, 'metric #0 needs a name'),
    (errors_metric(), {'canary_track': 'a="b"', 'baseline_track': 'a="b"'},
     'the canary and baseline requests queries are the same (http_requests_total{job="web", a="b"})'),
])
def test_invalid_metrics_are_refused_with_a_clear_message(metric, tracks, message):
    with pytest.raises(AnalysisRequestError) as raised:
        build_plan([metric], **tracks)
    assert message in str(raised.value)


def test_names_must_be_unique_and_metrics_non_empty():
    with pytest.raises(AnalysisRequestError, match='the name is used twice'):
        build_plan([errors_metric(), errors_metric()], **TRACKS)
    with pytest.raises(AnalysisRequestError, match='metrics must be a non-empty list'):
        build_plan([], **TRACKS)


def test_identical_queries_are_sent_once():
    latency = {'name': 'slow', 'kind': 'latency', 'count': 'h_count{${track}}', 'bucket': 'h_bucket{${track}, le="0.5"}'}
    shared = errors_metric(name='same_requests', errors='other_errors_total{${track}}')
    plan = build_plan([errors_metric(), shared, latency], **TRACKS)
    assert len(plan.prometheus) == 4 + 2 + 4
    keys = dict(((binding.metric, binding.arm, binding.role), binding.key) for binding in plan.bindings())
    assert keys[('same_requests', 'canary', 'requests')] == keys[('http_errors', 'canary', 'requests')] == 'm0_canary_requests'
    assert keys[('same_requests', 'canary', 'errors')] == 'm1_canary_errors'


def test_threshold_metric_reads_the_canary_only():
    metric = {'name': 'p99', 'kind': 'threshold', 'query': 'p99{${track}}', 'max': 0.5, 'on_no_data': 'fail'}
    plan = build_plan([metric], **TRACKS)
    assert plan.prometheus == {'m0_canary_query': 'p99{track="canary"}'}
    entry = plan.metrics[0]
    assert (entry.kind, entry.on_no_data, entry.options) == ('threshold', 'fail', {'max': 0.5})


def test_judge_options_of_a_metric():
    latency = {'name': 'slow', 'kind': 'latency', 'count': 'h_count{${track}}', 'bucket': 'h_bucket{${track}}',
               'le': 0.25, 'max_ratio': 1.5, 'rate_floor': 0.0, 'dispersion': False, 'stratum_label': 'zone'}
    entry = build_plan([latency], **TRACKS).metrics[0]
    assert entry.options == {'le': 0.25, 'max_ratio': 1.5, 'rate_floor': 0.0, 'dispersion': False,
                             'stratum_label': 'zone'}


def cloudwatch_metric(**extra):
    dimensions = {'LoadBalancer': 'app/web/1', 'TargetGroup': '${track}'}
    metric = {'name': 'alb_5xx', 'kind': 'errors', 'provider': 'cloudwatch',
              'requests': {'namespace': 'AWS/ApplicationELB', 'metric_name': 'RequestCount', 'dimensions': dimensions},
              'errors': {'namespace': 'AWS/ApplicationELB', 'metric_name': 'HTTPCode_Target_5XX_Count',
                         'dimensions': dimensions, 'unit': None}}
    metric.update(extra)
    return metric


def test_cloudwatch_queries_get_ids_period_and_sum():
    plan = build_plan([cloudwatch_metric()], canary_track='tg/canary/1', baseline_track='tg/stable/2')
    assert plan.prometheus == {} and plan.providers == {'cloudwatch'}
    assert plan.cloudwatch['m0_canary_requests'] == {
        'id': 'm0_canary_requests', 'namespace': 'AWS/ApplicationELB', 'metric_name': 'RequestCount',
        'dimensions': {'LoadBalancer': 'app/web/1', 'TargetGroup': 'tg/canary/1'}, 'stat': 'Sum', 'period': 60}
    assert plan.cloudwatch['m0_baseline_errors']['dimensions']['TargetGroup'] == 'tg/stable/2'
    assert plan.metrics[0].options == {'period': 60, 'cumulative': False}


def test_cloudwatch_period_stat_and_threshold():
    guard = {'name': 'cpu', 'kind': 'threshold', 'provider': 'cloudwatch', 'period': 300, 'max': 80.0,
             'query': {'namespace': 'AWS/EC2', 'metric_name': 'CPUUtilization', 'stat': 'Maximum',
                       'dimensions': {'AutoScalingGroupName': '${track}'}}}
    plan = build_plan([cloudwatch_metric(period=30), guard], canary_track='web-canary', baseline_track='web')
    assert plan.cloudwatch['m0_canary_errors']['period'] == 30
    assert plan.cloudwatch['m1_canary_query'] == {
        'id': 'm1_canary_query', 'namespace': 'AWS/EC2', 'metric_name': 'CPUUtilization', 'stat': 'Maximum',
        'dimensions': {'AutoScalingGroupName': 'web-canary'}, 'period': 300}
    assert plan.metrics[1].options == {'max': 80.0, 'period': 300}


@pytest.mark.parametrize('extra, message', [
    ({'requests': 'RequestCount ${track}'}, 'a CloudWatch query is a dict'),
    ({'period': 45}, 'period 45 is not allowed'),
    ({'period': 0}, 'period must be a whole number of seconds > 0'),
    ({'requests': {'namespace': 'N', 'metric_name': 'M', 'dimensions': {'T': '${track}'}, 'period': 60}},
     'period is not allowed in a query (set period on the metric)'),
    ({'requests': {'namespace': 'N', 'metric_name': 'M', 'dimensions': {'T': '${track}'}, 'id': 'x'}}, 'id is not allowed in a query'),
    ({'requests': {'namespace': 'N', 'metric_name': 'M', 'dimensions': {'T': '${track}'}, 'unit': 'Parsecs'}}, "unknown unit 'Parsecs'"),
    ({'requests': {'namespace': 'N', 'metric_name': 'M', 'dimensions': {'T': '${track}'}, 'colour': 'red'}}, 'unknown keys colour'),
    ({'stratum_label': 'zone'}, 'stratum_label is for Prometheus errors and latency metrics'),
])
def test_invalid_cloudwatch_metrics(extra, message):
    with pytest.raises(AnalysisRequestError) as raised:
        build_plan([cloudwatch_metric(**extra)], canary_track='a', baseline_track='b')
    assert message in str(raised.value)


@pytest.mark.parametrize('window, expected', [(60, 15.0), (10, 10.0), (45, 15.0), (7, 7.0), (100, 12.5),
                                              (1, 1.0), (0.5, 0.5), (90, 15.0), (61, 12.2)])
def test_default_step_divides_the_window(window, expected):
    assert prometheus_step(window, 0.0, 3600.0) == expected


def test_step_is_coarser_when_the_range_is_long_and_explicit_steps_are_checked():
    assert prometheus_step(60, 0.0, 86400.0 * 2) == 20.0        # 15 s would be 11,521 points
    assert prometheus_step(60, 0.0, 3600.0, step=5) == 5.0
    with pytest.raises(AnalysisRequestError, match='step 7s must divide window 60s'):
        prometheus_step(60, 0.0, 3600.0, step=7)
    with pytest.raises(AnalysisRequestError, match='more than 11000 points'):
        prometheus_step(60, 0.0, 86400.0, step=1)
    with pytest.raises(AnalysisRequestError, match='more than 11000 windows'):
        prometheus_step(60, 0.0, 86400.0 * 8)
    with pytest.raises(AnalysisRequestError, match='whole number of milliseconds'):
        prometheus_step(0.0001, 0.0, 10.0)
