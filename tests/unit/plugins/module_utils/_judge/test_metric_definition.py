# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The metric schema is checked in one place: the judge, the analysis plan and the module option agree."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_request import (
    AnalysisRequestError,
    build_plan,
)
from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_run import run_analysis
from ansible_collections.canary.release.plugins.module_utils._judge.judge import JudgeError, JudgeMetric, judge, judge_design
from ansible_collections.canary.release.plugins.module_utils._judge.metric_definition import (
    MetricDefinition,
    MetricDefinitionError,
    define_metric,
)

T0 = 1700000000.0
QUERIES = {'requests': 'r{${track}}', 'errors': 'e{${track}}'}
TRACKS = {'canary_track': 'track="canary"', 'baseline_track': 'track="stable"'}


def test_defaults_and_options():
    definition = define_metric({'name': 'http_errors', 'kind': 'errors'})
    assert definition == MetricDefinition(name='http_errors', kind='errors')
    assert definition.on_no_data == 'hold' and definition.cumulative and definition.options() == {}
    latency = define_metric({'name': 'slow', 'kind': 'latency', 'le': '0.5', 'max_ratio': 3, 'dispersion': False})
    assert latency.le == 0.5 and latency.options() == {'le': 0.5, 'max_ratio': 3.0, 'dispersion': False}
    assert latency.overrides() == {'max_ratio': 3.0, 'dispersion': False}


@pytest.mark.parametrize('bad, message', [
    ({'max_ratio': 1.0}, 'max_ratio must be a number > 1 (and < 1e6), got 1.0'),
    ({'max_ratio': 1e7}, 'max_ratio must be a number > 1 (and < 1e6), got 10000000.0'),
    ({'rate_floor': 1.0}, 'rate_floor must be a number in [0, 1), got 1.0'),
    ({'rate_floor': -0.1}, 'rate_floor must be a number in [0, 1), got -0.1'),
    ({'on_no_data': 'maybe'}, 'on_no_data must be one of hold, fail, pass'),
    ({'kind': 'nope'}, 'kind must be one of errors, latency, threshold'),
    ({'min': 1.0}, 'min and max are for threshold metrics'),
    ({'le': 0.5}, 'le is for latency metrics'),
])
def test_one_rule_one_message_for_the_judge_and_the_analysis(bad, message):
    metric = dict({'name': 'http_errors', 'kind': 'errors'}, **bad)
    with pytest.raises(MetricDefinitionError) as defined:
        define_metric(metric)
    with pytest.raises(JudgeError) as judged:
        judge([metric], T0, T0 + 60)
    with pytest.raises(AnalysisRequestError) as planned:
        build_plan([dict(metric, **QUERIES)], **TRACKS)
    expected = "metric 'http_errors': " + message
    assert str(defined.value).startswith(expected)
    assert str(judged.value).startswith(expected)
    assert str(planned.value).startswith(expected)


@pytest.mark.parametrize('name, value, message', [
    ('max_ratio', 1.0, 'max_ratio must be a number > 1 (and < 1e6), got 1.0'),
    ('rate_floor', 1.0, 'rate_floor must be a number in [0, 1), got 1.0'),
])
def test_the_module_option_and_the_metric_override_share_the_rule(name, value, message):
    with pytest.raises(JudgeError, match=message.replace('(', r'\(').replace(')', r'\)').replace('[', r'\[')):
        judge_design(**{name: value})
    options = dict({'metrics': [dict({'name': 'm', 'kind': 'errors'}, **QUERIES)], 'start_time': T0}, **TRACKS)
    options[name] = value
    with pytest.raises(AnalysisRequestError) as raised:
        run_analysis(options, now=T0 + 60)
    assert str(raised.value) == message


def test_threshold_bounds():
    assert define_metric({'name': 'p99', 'kind': 'threshold', 'max': 1}).options() == {'max': 1.0}
    with pytest.raises(MetricDefinitionError, match='needs min, max or both'):
        define_metric({'name': 'p99', 'kind': 'threshold'})
    with pytest.raises(MetricDefinitionError, match='min 2.0 is above max 1.0'):
        define_metric({'name': 'p99', 'kind': 'threshold', 'min': 2, 'max': 1})


def test_names_are_required_and_unique():
    names = set()
    define_metric({'name': 'a', 'kind': 'errors'}, 0, names)
    with pytest.raises(MetricDefinitionError, match="metric 'a': the name is used twice"):
        define_metric({'name': 'a', 'kind': 'errors'}, 1, names)
    with pytest.raises(MetricDefinitionError, match='metric #2 needs a name'):
        define_metric({'kind': 'errors'}, 2, names)


def test_the_judge_does_not_check_a_planned_metric_again():
    definition = build_plan([dict({'name': 'm', 'kind': 'errors', 'max_ratio': 3.0}, **QUERIES)], **TRACKS).metrics[0]
    # The dict says something else: the judge reads the definition the plan made.
    metric = JudgeMetric(definition.definition, {'name': 'm', 'kind': 'errors', 'max_ratio': 'not checked again',
                                                 'error': 'timeout'})
    result = judge([metric], T0, T0 + 60, window=15.0)
    assert result['metrics'][0]['status'] == 'no_data'
