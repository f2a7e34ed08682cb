# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The queries of one canary analysis: per-arm queries from templates, deduplicated, plain Python.

A metric of the ``analysis`` module names its queries once, as templates, or per arm::

    {'name': 'http_errors', 'kind': 'errors', 'provider': 'prometheus',
     'requests': 'http_requests_total{job="web", ${track}}',
     'errors': 'http_requests_total{job="web", ${track}, code=~"5.."}'}

``${track}`` is replaced by ``canary_track`` for the canary's queries and by ``baseline_track`` for the
baseline's (for example ``track="canary"`` and ``track="stable"``, or two target group dimension values). The
syntax survives Ansible, which renders ``{{ }}`` and ``{% %}`` before the module runs, and clashes with neither
PromQL (which has no ``$``) nor CloudWatch. Any other ``${...}`` is an error, so a typo is not sent as a query.
A query given per arm (``canary: {requests: ...}``, ``baseline: {...}``) wins over the template; a template
without ``${track}`` would read the same data for both arms and is refused.

Query roles per kind: ``errors``: ``requests`` and ``errors``; ``latency``: ``count`` and ``bucket``; ``threshold``:
``query`` (the canary's only: a guard watches the canary). A Prometheus query is a PromQL string; a CloudWatch
query is a dict in the metric form of :mod:`cloudwatch_metric_data` (``namespace``, ``metric_name``,
``dimensions``, ``stat`` (default ``Sum``), ``unit``, ``account_id``, ``label``) or its ``expression`` form;
``period`` is set once per metric. Identical queries are sent once, whichever metrics use them.

:func:`build_plan` validates the metrics and returns an :class:`AnalysisPlan`; :func:`prometheus_step` chooses
the range-query step. Invalid input raises :class:`AnalysisRequestError` with a message naming the metric.
"""

import json
import re
from dataclasses import dataclass, field

from ansible_collections.canary.release.plugins.module_utils._sources.cloudwatch_metric_data import (
    CloudWatchQueryError,
    build_metric_data_query,
)
from ansible_collections.canary.release.plugins.module_utils._judge.metric_definition import (
    DEFAULT_NO_DATA,
    KINDS,
    NO_DATA_POLICIES,
    MetricDefinitionError,
    define_metric,
)

PLACEHOLDER_NAME = 'track'
PLACEHOLDER = '${%s}' % PLACEHOLDER_NAME
_PLACEHOLDER_RE = re.compile(r'\$\{([^}]*)\}')

PROVIDERS = ('prometheus', 'cloudwatch')
ARMS = ('canary', 'baseline')
ROLES = {'errors': ('requests', 'errors'), 'latency': ('count', 'bucket'), 'threshold': ('query',)}
ALL_ROLES = ('requests', 'errors', 'count', 'bucket', 'query')

CLOUDWATCH_QUERY_KEYS = ('namespace', 'metric_name', 'dimensions', 'stat', 'unit', 'account_id', 'label', 'expression')
CLOUDWATCH_METRIC_KEYS = ('namespace', 'metric_name', 'dimensions', 'stat', 'unit')
DEFAULT_STAT = 'Sum'
DEFAULT_PERIOD = 60

# Prometheus refuses range queries of more than 11,000 points per series.
MAX_RANGE_POINTS = 11000
# Default range-query step: the largest divisor of the window (in whole milliseconds) not above this.
DEFAULT_MAX_STEP = 15.0


class AnalysisRequestError(ValueError):
    """Invalid metric description (unknown kind, missing query, bad placeholder, ...): nothing was sent."""


@dataclass
class Binding:
    """One series list a metric needs: ``arm`` (``canary``/``baseline``), ``role`` and the key of its fetch."""

    metric: str
    arm: str
    role: str
    provider: str
    key: str


@dataclass
class MetricPlan:
    """A validated metric: its :class:`~.metric_definition.MetricDefinition` (what the judge needs besides the
    data), its provider and where its data comes from (``bindings``)."""

    definition: object
    provider: str
    bindings: list = field(default_factory=list)

    @property
    def name(self):
        return self.definition.name

    @property
    def kind(self):
        return self.definition.kind

    @property
    def on_no_data(self):
        return self.definition.on_no_data

    @property
    def options(self):
        """The judge options the metric sets (see :meth:`~.metric_definition.MetricDefinition.options`)."""
        return self.definition.options()


@dataclass
class AnalysisPlan:
    """All metrics, the unique Prometheus queries (key -> PromQL) and CloudWatch queries (key -> query dict).

    A CloudWatch query dict is ready for :func:`~.cloudwatch_metric_data.get_metric_data` (its ``id`` is the key).
    """

    metrics: list = field(default_factory=list)
    prometheus: dict = field(default_factory=dict)
    cloudwatch: dict = field(default_factory=dict)

    @property
    def providers(self):
        return set(metric.provider for metric in self.metrics)

    def bindings(self):
        return [binding for metric in self.metrics for binding in metric.bindings]


def metric_argument_spec():
    """The module argument spec of one entry of ``metrics``, documented by the ``canary.release.analysis_metrics``
    doc fragment; every module reading these metric definitions uses it."""
    arm = dict((role, dict(type='raw')) for role in ALL_ROLES)
    baseline = dict((role, dict(type='raw')) for role in ALL_ROLES if role != 'query')
    metric = dict(
        name=dict(type='str', required=True),
        kind=dict(type='str', required=True, choices=list(KINDS)),
        provider=dict(type='str', default='prometheus', choices=list(PROVIDERS)),
        on_no_data=dict(type='str', default=DEFAULT_NO_DATA, choices=list(NO_DATA_POLICIES)),
        le=dict(type='float'),
        min=dict(type='float'),
        max=dict(type='float'),
        canary=dict(type='dict', options=arm),
        baseline=dict(type='dict', options=baseline),
        canary_track=dict(type='str'),
        baseline_track=dict(type='str'),
        max_ratio=dict(type='float'),
        rate_floor=dict(type='float'),
        dispersion=dict(type='bool'),
        period=dict(type='int'),
        stratum_label=dict(type='str'),
    )
    metric.update((role, dict(type='raw')) for role in ALL_ROLES)
    return metric


def period_warnings(plan, window):
    """Warnings for CloudWatch metrics whose period does not divide ``window`` (seconds)."""
    warnings = []
    for entry in plan.metrics:
        period = entry.options.get('period')
        if period and (window < period or abs(window / period - round(window / period)) > 1e-9):
            warnings.append('metric %r: window (%gs) is not a multiple of its period (%ds); some windows hold no '
                            'period and others two' % (entry.name, window, period))
    return warnings


def placeholders(value):
    """The placeholder names (``track`` for ``${track}``) in ``value`` (strings inside dicts and lists too)."""
    if isinstance(value, str):
        return set(_PLACEHOLDER_RE.findall(value))
    if isinstance(value, dict):
        found = set()
        for key, item in value.items():
            found |= placeholders(key) | placeholders(item)
        return found
    if isinstance(value, (list, tuple)):
        found = set()
        for item in value:
            found |= placeholders(item)
        return found
    return set()


def substitute(value, track):
    """``value`` with every ``${track}`` replaced by ``track`` (strings inside dicts and lists too)."""
    if isinstance(value, str):
        return value.replace(PLACEHOLDER, track)
    if isinstance(value, dict):
        return dict((substitute(key, track), substitute(item, track)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [substitute(item, track) for item in value]
    return value


def _check_placeholders(value, where):
    unknown = sorted(placeholders(value) - {PLACEHOLDER_NAME})
    if unknown:
        raise AnalysisRequestError('%s: unknown placeholder %s; the only placeholder is %s'
                                   % (where, ', '.join('${%s}' % name for name in unknown), PLACEHOLDER))


def _present(value):
    return value is not None and value != '' and value != {}


def _arm_query(metric, arm, role, tracks, where):
    """The query of ``role`` for ``arm``: the arm's own, else the template with ``${track}`` substituted."""
    own = (metric.get(arm) or {}).get(role)
    template = metric.get(role)
    other = 'baseline' if arm == 'canary' else 'canary'
    if _present(own):
        source, query = '%s.%s' % (arm, role), own
    elif _present(template):
        source, query = role, template
    else:
        raise AnalysisRequestError('%s: no %s query for the %s: give %s (a template with %s) or %s.%s'
                                   % (where, role, arm, role, PLACEHOLDER, arm, role))
    _check_placeholders(query, '%s: %s' % (where, source))
    if source == role and not _present((metric.get(other) or {}).get(role)) \
            and PLACEHOLDER_NAME not in placeholders(template):
        raise AnalysisRequestError(
            '%s: the %s query has no %s placeholder, so canary and baseline would read the same series; '
            'put %s where the selectors of the two arms differ, or give canary.%s and baseline.%s'
            % (where, role, PLACEHOLDER, PLACEHOLDER, role, role))
    if PLACEHOLDER_NAME in placeholders(query):
        track = tracks[arm]
        if track is None:
            raise AnalysisRequestError('%s: the %s query uses %s but %s_track is not set (set it on the module or '
                                       'on the metric)' % (where, source, PLACEHOLDER, arm))
        query = substitute(query, track)
    return query


def _cloudwatch_query(query, period, where):
    """The get_metric_data query dict (without id) of a CloudWatch query given by the user."""
    if not isinstance(query, dict):
        raise AnalysisRequestError('%s: a CloudWatch query is a dict (namespace, metric_name, dimensions, stat, ...), '
                                   'got %r' % (where, query))
    for key in ('id', 'period', 'return_data'):
        if key in query and query[key] is not None:
            hint = 'set period on the metric' if key == 'period' else 'the module sets it'
            raise AnalysisRequestError('%s: %s is not allowed in a query (%s)' % (where, key, hint))
    present = dict((key, value) for key, value in query.items() if value is not None)
    unknown = sorted(set(present) - set(CLOUDWATCH_QUERY_KEYS))
    if unknown:
        raise AnalysisRequestError('%s: unknown keys %s in a CloudWatch query (known: %s)'
                                   % (where, ', '.join(unknown), ', '.join(CLOUDWATCH_QUERY_KEYS)))
    if 'expression' not in present:
        present.setdefault('stat', DEFAULT_STAT)
    present['period'] = period
    try:
        build_metric_data_query(present, default_id='check')
    except CloudWatchQueryError as error:
        raise AnalysisRequestError('%s: %s' % (where, error))
    return present


def _prometheus_query(query, where):
    if not isinstance(query, str) or not query.strip():
        raise AnalysisRequestError('%s: a Prometheus query is a non-empty PromQL string, got %r' % (where, query))
    return query.strip()


def _source_fields(metric, index):
    """The provider and what it means for the judge's fields: a CloudWatch metric has a whole ``period``
    (default :data:`DEFAULT_PERIOD`) of per-period sums (``cumulative`` False, but for a threshold metric's
    values); ``stratum_label`` needs Prometheus labels. Returns ``(provider, fields for define_metric)``."""
    if not isinstance(metric, dict):
        raise AnalysisRequestError('metric #%d must be a dict, got %r' % (index, metric))
    where = 'metric %r' % (metric.get('name'),)
    provider = metric.get('provider') or 'prometheus'
    if provider not in PROVIDERS:
        raise AnalysisRequestError('%s: provider must be one of %s, got %r' % (where, ', '.join(PROVIDERS), provider))
    fields = dict((key, metric.get(key)) for key in ('name', 'kind', 'on_no_data', 'le', 'min', 'max', 'max_ratio',
                                                     'rate_floor', 'dispersion', 'stratum_label'))
    if provider == 'cloudwatch':
        period = metric.get('period')
        period = DEFAULT_PERIOD if period is None else period
        if isinstance(period, bool) or not isinstance(period, int) or period <= 0:
            raise AnalysisRequestError('%s: period must be a whole number of seconds > 0, got %r' % (where, period))
        fields['period'] = period
        if metric.get('kind') != 'threshold':
            fields['cumulative'] = False
        if metric.get('stratum_label') is not None:
            raise AnalysisRequestError('%s: stratum_label is for Prometheus errors and latency metrics' % where)
    elif metric.get('period') is not None:
        raise AnalysisRequestError('%s: period is for CloudWatch metrics (Prometheus counters need none)' % where)
    return provider, fields


def _check_roles(metric, kind, where):
    for role in ALL_ROLES:
        if role not in ROLES[kind] and (_present(metric.get(role)) or any(
                _present((metric.get(arm) or {}).get(role)) for arm in ARMS)):
            raise AnalysisRequestError('%s: a %s metric takes %s, not %s' % (where, kind, ' and '.join(ROLES[kind]), role))
    for arm in ARMS:
        if metric.get(arm) is not None and not isinstance(metric.get(arm), dict):
            raise AnalysisRequestError('%s: %s must be a dict of queries by role, got %r' % (where, arm, metric.get(arm)))


def define(metric, index, names):
    """``(MetricDefinition, provider)`` of one entry of ``metrics``: the judge's schema
    (:func:`~.metric_definition.define_metric`) plus what depends on the provider; :class:`AnalysisRequestError`."""
    provider, fields = _source_fields(metric, index)
    try:
        definition = define_metric(fields, index, names)
    except MetricDefinitionError as error:
        raise AnalysisRequestError(str(error))
    _check_roles(metric, definition.kind, 'metric %r' % definition.name)
    return definition, provider


def _dedupe_key(provider, query):
    if provider == 'prometheus':
        return query
    return json.dumps(query, sort_keys=True)


def build_plan(metrics, canary_track=None, baseline_track=None):
    """Validate ``metrics`` (the module's list of dicts) and return the :class:`AnalysisPlan`.

    ``canary_track``/``baseline_track`` replace ``${track}``; a metric may set its own.
    """
    if not isinstance(metrics, (list, tuple)) or not metrics:
        raise AnalysisRequestError('metrics must be a non-empty list')
    plan = AnalysisPlan()
    names = set()
    seen = {}
    for index, metric in enumerate(metrics):
        definition, provider = define(metric, index, names)
        name, kind, where = definition.name, definition.kind, 'metric %r' % definition.name
        tracks = {
            'canary': metric.get('canary_track') if metric.get('canary_track') is not None else canary_track,
            'baseline': metric.get('baseline_track') if metric.get('baseline_track') is not None else baseline_track,
        }
        if kind == 'threshold' and _present((metric.get('baseline') or {}).get('query')):
            raise AnalysisRequestError('%s: a threshold metric watches the canary only; give query or canary.query, '
                                       'not baseline.query' % where)
        entry = MetricPlan(definition=definition, provider=provider)
        arms = ('canary',) if kind == 'threshold' else ARMS
        for arm in arms:
            for role in ROLES[kind]:
                if kind == 'threshold':
                    query = _threshold_query(metric, tracks, where)
                else:
                    query = _arm_query(metric, arm, role, tracks, where)
                label = '%s: %s %s query' % (where, arm, role)
                if provider == 'prometheus':
                    query = _prometheus_query(query, label)
                else:
                    query = _cloudwatch_query(query, definition.period, label)
                dedupe = (provider, _dedupe_key(provider, query))
                if dedupe not in seen:
                    key = 'm%d_%s_%s' % (index, arm, role)
                    seen[dedupe] = key
                    if provider == 'prometheus':
                        plan.prometheus[key] = query
                    else:
                        plan.cloudwatch[key] = dict(query, id=key)
                entry.bindings.append(Binding(metric=name, arm=arm, role=role, provider=provider, key=seen[dedupe]))
        keys = dict(((binding.arm, binding.role), binding.key) for binding in entry.bindings)
        for role in ROLES[kind]:
            if kind != 'threshold' and keys[('canary', role)] == keys[('baseline', role)]:
                raise AnalysisRequestError('%s: the canary and baseline %s queries are the same (%s); the arms must '
                                           'read different series' % (where, role, _shown(plan, keys[('canary', role)])))
        plan.metrics.append(entry)
    return plan


def _shown(plan, key):
    return plan.prometheus[key] if key in plan.prometheus else json.dumps(plan.cloudwatch[key], sort_keys=True)


def _threshold_query(metric, tracks, where):
    own = (metric.get('canary') or {}).get('query')
    query = own if _present(own) else metric.get('query')
    if not _present(query):
        raise AnalysisRequestError('%s: a threshold metric needs query (or canary.query)' % where)
    _check_placeholders(query, where)
    if PLACEHOLDER_NAME in placeholders(query):
        if tracks['canary'] is None:
            raise AnalysisRequestError('%s: the query uses %s but canary_track is not set' % (where, PLACEHOLDER))
        query = substitute(query, tracks['canary'])
    return query


def _milliseconds(seconds, name):
    value = int(round(seconds * 1000.0))
    if value <= 0 or abs(value - seconds * 1000.0) > 1e-6 * max(1.0, seconds * 1000.0):
        raise AnalysisRequestError('%s must be a positive whole number of milliseconds, got %r' % (name, seconds))
    return value


def _divisors(number):
    """The divisors of a positive integer, ascending."""
    small, large = [], []
    candidate = 1
    while candidate * candidate <= number:
        if number % candidate == 0:
            small.append(candidate)
            if candidate * candidate != number:
                large.append(number // candidate)
        candidate += 1
    return small + large[::-1]


def prometheus_step(window, start, end, step=None, max_step=DEFAULT_MAX_STEP, max_points=MAX_RANGE_POINTS):
    """The step (seconds) of the range queries: a divisor of ``window`` so samples fall on window boundaries.

    Evaluated at ``start + k*step``, a range query returns each counter's last sample at or before that time, so
    the judge's differences over a window are exactly the counter increase the window saw. Default: the largest
    divisor of the window (in whole milliseconds) not above ``max_step`` seconds, so a counter reset inside a
    window loses at most one step of increase; it is made coarser (still a divisor) when the range would exceed
    ``max_points``. An explicit ``step`` must divide the window.
    """
    window_ms = _milliseconds(window, 'window')
    span = max(0.0, end - start)
    if step is not None:
        step_ms = _milliseconds(step, 'step')
        if window_ms % step_ms:
            raise AnalysisRequestError('step %gs must divide window %gs (so samples fall on window boundaries)'
                                       % (step, window))
        if span / (step_ms / 1000.0) + 1 > max_points:
            raise AnalysisRequestError('step %gs gives more than %d points over %gs; raise step or window'
                                       % (step, max_points, span))
        return step_ms / 1000.0
    divisors = _divisors(window_ms)
    base = max(step_ms for step_ms in divisors if step_ms <= max(max_step * 1000.0, 1.0))
    for step_ms in divisors:
        if step_ms >= base and span / (step_ms / 1000.0) + 1 <= max_points:
            return step_ms / 1000.0
    raise AnalysisRequestError('the analysis spans %gs, more than %d windows of %gs; raise window'
                               % (span, max_points, window))
