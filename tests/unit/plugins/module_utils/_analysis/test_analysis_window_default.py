# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_request import build_plan
from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_run import DEFAULT_WINDOW, default_window

PROMETHEUS = {'name': 'http_errors', 'kind': 'errors', 'requests': 'http_requests_total{${track}}',
              'errors': 'http_requests_total{${track}, code=~"5.."}'}


def cloudwatch(name, period=None):
    query = {'namespace': 'AWS/ApplicationELB', 'metric_name': 'RequestCount', 'dimensions': {'TargetGroup': '${track}'}}
    metric = {'name': name, 'kind': 'errors', 'provider': 'cloudwatch', 'requests': query,
              'errors': dict(query, metric_name='HTTPCode_Target_5XX_Count')}
    if period is not None:
        metric['period'] = period
    return metric


def test_default_window_is_15_s_with_prometheus_only():
    plan = build_plan([PROMETHEUS], canary_track='track="canary"', baseline_track='track="stable"')
    assert DEFAULT_WINDOW == 15.0 and default_window(plan) == 15.0


def test_default_window_is_the_largest_cloudwatch_period():
    plan = build_plan([PROMETHEUS, cloudwatch('alb')], canary_track='c', baseline_track='b')
    assert default_window(plan) == 60.0                       # CloudWatch's default period
    plan = build_plan([cloudwatch('alb', 60), cloudwatch('slow', 300)], canary_track='c', baseline_track='b')
    assert default_window(plan) == 300.0
