# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The metric schema of the judge, defined once: vocabularies, defaults and :func:`define_metric`.

Every metric the judge sees is checked here, and only here: by the ``analysis`` and ``rollout_report`` modules
(through :func:`~.analysis_request.build_plan`, which adds what is about sources and queries) and by direct
callers of :func:`~.judge.judge`. :func:`define_metric` turns a metric dict (the keys of the ``metrics`` option,
``canary.release.analysis_metrics`` doc fragment) into a frozen :class:`MetricDefinition`; the judge, the
windowing (:func:`~.judge.metric_windows`) and the report all read that object, so they cannot disagree.

Keys read here: ``name`` (required, unique), ``kind``, ``on_no_data``, ``le`` (latency bucket bound), ``min`` and
``max`` (threshold bounds), the overrides of the module-wide design ``max_ratio``, ``rate_floor`` and
``dispersion`` (same rules as the module options: :func:`~.sequential_counts.check_max_ratio`,
:func:`~.sequential_counts.check_rate_floor`), and the windowing options ``period``, ``cumulative``, ``max_gap``
and ``stratum_label``.
"""

import math
from dataclasses import dataclass

from ansible_collections.canary.release.plugins.module_utils._judge.latency_counts import LatencyCountsError, parse_le
from ansible_collections.canary.release.plugins.module_utils._judge.sequential_counts import (
    CountsTestError,
    check_max_ratio,
    check_rate_floor,
)
from ansible_collections.canary.release.plugins.module_utils._judge.threshold_guard import ThresholdGuardError, check_bounds

VERDICTS = ('pass', 'fail', 'continue', 'inconclusive')
KINDS = ('errors', 'latency', 'threshold')
TEST_KINDS = ('errors', 'latency')
NO_DATA_POLICIES = ('hold', 'fail', 'pass')
DEFAULT_NO_DATA = 'hold'
# Default window without CloudWatch metrics: a common scrape interval. Short windows decide sooner (decisions are
# taken at window ends) and hold fewer errors each, which keeps the overdispersion correction cheap: in the judge's
# benchmark set-up a 10x regression at 50 canary req/s fails after ~2,450 canary requests with 15 s windows against
# ~9,000 with 60 s windows (docs/analysis.md).
DEFAULT_WINDOW = 15.0
# Options a metric may set to override the module-wide value given to the judge.
JUDGE_OVERRIDES = ('max_ratio', 'rate_floor', 'dispersion')


class MetricDefinitionError(ValueError):
    """An invalid metric; the message names it (``metric 'http_errors': ...``)."""


def number(value, name, minimum=None, above=None):
    """``value`` as a float (None stays None): a finite number, ``>= minimum`` and ``> above`` when given.

    Raises :class:`ValueError` naming ``name``; the one number check of the metric schema.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError('%s must be a finite number, got %r' % (name, value))
    if minimum is not None and value < minimum:
        raise ValueError('%s must be >= %s, got %r' % (name, minimum, value))
    if above is not None and value <= above:
        raise ValueError('%s must be > %s, got %r' % (name, above, value))
    return float(value)


@dataclass(frozen=True)
class MetricDefinition:
    """A validated metric: what the judge, its windowing and the report need besides the data.

    ``max_ratio``, ``rate_floor`` and ``dispersion`` are None when the metric does not override the module-wide
    design. ``le`` is the latency bucket bound (None: the bucket query selects one bucket), ``min``/``max`` the
    bounds of a threshold metric, ``period`` the length of a per-period sum (``cumulative`` False) or None.
    """

    name: str
    kind: str
    on_no_data: str = DEFAULT_NO_DATA
    le: object = None
    min: object = None
    max: object = None
    max_ratio: object = None
    rate_floor: object = None
    dispersion: object = None
    period: object = None
    cumulative: bool = True
    max_gap: object = None
    stratum_label: object = None

    @property
    def is_test(self):
        return self.kind in TEST_KINDS

    def options(self):
        """The options this metric sets (not its defaults), by their schema names: ``{'le': 0.5, 'max': 1.0}``."""
        options = {}
        for key in ('le', 'min', 'max', 'max_ratio', 'rate_floor', 'dispersion', 'stratum_label', 'period',
                    'max_gap'):
            value = getattr(self, key)
            if value is not None:
                options[key] = value
        if not self.cumulative:
            options['cumulative'] = False
        return options

    def overrides(self):
        """The module-wide design options this metric overrides."""
        return dict((key, getattr(self, key)) for key in JUDGE_OVERRIDES if getattr(self, key) is not None)


def _header(metric, index, names):
    if not isinstance(metric, dict):
        raise MetricDefinitionError('metric #%d must be a dict, got %r' % (index, metric))
    name = metric.get('name')
    if not isinstance(name, str) or not name.strip():
        raise MetricDefinitionError('metric #%d needs a name' % index)
    where = 'metric %r' % name
    if names is not None:
        if name in names:
            raise MetricDefinitionError('%s: the name is used twice' % where)
        names.add(name)
    kind = metric.get('kind')
    if kind not in KINDS:
        raise MetricDefinitionError('%s: kind must be one of %s, got %r' % (where, ', '.join(KINDS), kind))
    policy = metric.get('on_no_data')
    policy = DEFAULT_NO_DATA if policy is None else policy
    if policy not in NO_DATA_POLICIES:
        raise MetricDefinitionError('%s: on_no_data must be one of %s, got %r'
                                    % (where, ', '.join(NO_DATA_POLICIES), policy))
    return name, where, kind, policy


def _fields(metric, kind):
    fields = {}
    if kind == 'threshold':
        fields['min'], fields['max'] = check_bounds(metric.get('min'), metric.get('max'))
    elif metric.get('min') is not None or metric.get('max') is not None:
        raise ValueError('min and max are for threshold metrics')
    if metric.get('le') is not None:
        if kind != 'latency':
            raise ValueError('le is for latency metrics')
        fields['le'] = parse_le(metric['le'])
    if metric.get('max_ratio') is not None:
        fields['max_ratio'] = check_max_ratio(metric['max_ratio'])
    if metric.get('rate_floor') is not None:
        fields['rate_floor'] = check_rate_floor(metric['rate_floor'])
    if metric.get('dispersion') is not None:
        if not isinstance(metric['dispersion'], bool):
            raise ValueError('dispersion must be true or false, got %r' % (metric['dispersion'],))
        fields['dispersion'] = metric['dispersion']
    for key in ('period', 'max_gap'):
        if metric.get(key) is not None:
            number(metric[key], key, above=0.0)
            fields[key] = metric[key]
    if metric.get('cumulative') is not None:
        if not isinstance(metric['cumulative'], bool):
            raise ValueError('cumulative must be true or false, got %r' % (metric['cumulative'],))
        fields['cumulative'] = metric['cumulative']
    label = metric.get('stratum_label')
    if label is not None:
        if not isinstance(label, str) or not label:
            raise ValueError('stratum_label must be a label name, got %r' % (label,))
        if kind == 'threshold':
            raise ValueError('stratum_label is for errors and latency metrics')
        fields['stratum_label'] = label
    return fields


def define_metric(metric, index=0, names=None):
    """The :class:`MetricDefinition` of ``metric`` (a dict), or :class:`MetricDefinitionError` naming the metric.

    ``index`` is the metric's position (for a metric without a name); ``names``, when given, is the set of the
    names seen so far, so a name used twice is refused.
    """
    name, where, kind, policy = _header(metric, index, names)
    try:
        fields = _fields(metric, kind)
    except (ValueError, CountsTestError, LatencyCountsError, ThresholdGuardError) as error:
        raise MetricDefinitionError('%s: %s' % (where, error))
    return MetricDefinition(name=name, kind=kind, on_no_data=policy, **fields)
