# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Metric series as the judge reads them: ``(labels, [(timestamp, value), ...])``, plain Python.

The judge takes series in the shapes the metric clients return, so the ``analysis`` module can pass results
through untouched. :func:`normalize_series` accepts, for one series:

* a Prometheus range result entry: ``{'labels': {...}, 'samples': [[ts, value], ...]}`` (the
  ``prometheus_api`` shape), or the raw API shape ``{'metric': {...}, 'values': [[ts, "value"], ...]}``;
* a Prometheus instant result entry: ``{'labels': {...}, 'timestamp': ts, 'value': value}``;
* a CloudWatch ``MetricDataResults`` entry: ``{'timestamps': [...], 'datapoints': [...]}`` (the
  ``cloudwatch_metric_data`` shape) or ``{'Timestamps': [...], 'Values': [...]}`` (boto3);
* a plain list of ``(timestamp, value)`` pairs.

Timestamps are unix seconds (numbers, numeric strings, or RFC 3339 strings such as CloudWatch's). Values are
floats; Prometheus' strings ``"NaN"``, ``"+Inf"`` and ``"-Inf"`` become the corresponding floats, and it is up to
the caller what a non-finite value means. Samples are returned sorted by time; a repeated timestamp keeps the
last value given for it.
"""

import math

from ansible_collections.canary.release.plugins.module_utils.time_spec import TimeSpecError, parse_time


class MetricSeriesError(ValueError):
    """A series in a shape the judge does not understand."""


def _timestamp(value):
    if isinstance(value, bool):
        raise MetricSeriesError('invalid timestamp %r' % (value,))
    if isinstance(value, (int, float)):
        stamp = float(value)
    else:
        try:
            stamp = float(value)
        except (TypeError, ValueError):
            try:
                stamp = parse_time(value)
            except TimeSpecError as error:
                raise MetricSeriesError('invalid timestamp %r: %s' % (value, error))
    if math.isnan(stamp) or math.isinf(stamp):
        raise MetricSeriesError('invalid timestamp %r' % (value,))
    return stamp


def _value(value):
    if isinstance(value, bool):
        raise MetricSeriesError('invalid sample value %r' % (value,))
    try:
        return float(value)
    except (TypeError, ValueError):
        raise MetricSeriesError('invalid sample value %r' % (value,))


def _pairs(series):
    if isinstance(series, dict):
        if 'samples' in series or ('values' in series and 'timestamps' not in series and 'Timestamps' not in series):
            return series.get('samples') if 'samples' in series else series.get('values')
        if 'timestamps' in series or 'Timestamps' in series:
            stamps = series.get('timestamps', series.get('Timestamps')) or []
            values = series.get('datapoints', series.get('values', series.get('Values'))) or []
            if len(stamps) != len(values):
                raise MetricSeriesError('series has %d timestamps but %d values' % (len(stamps), len(values)))
            return list(zip(stamps, values))
        if 'timestamp' in series and 'value' in series:
            return [(series['timestamp'], series['value'])]
        raise MetricSeriesError('series has none of samples, values, timestamps/datapoints, timestamp/value: keys %s'
                                % sorted(series))
    if isinstance(series, (list, tuple)):
        return series
    raise MetricSeriesError('a series must be a dict or a list of (timestamp, value) pairs, got %s' % type(series).__name__)


def series_labels(series):
    """The labels of a series (``labels`` or Prometheus' ``metric``; CloudWatch's ``id``/``label`` as labels)."""
    if not isinstance(series, dict):
        return {}
    if isinstance(series.get('labels'), dict):
        return dict(series['labels'])
    if isinstance(series.get('metric'), dict):
        return dict(series['metric'])
    labels = {}
    for key in ('id', 'label', 'Id', 'Label'):
        if series.get(key) is not None:
            labels[key.lower()] = str(series[key])
    return labels


def normalize_series(series):
    """``(labels, samples)`` for one series, samples a time-sorted list of ``(float ts, float value)``."""
    raw = _pairs(series) or []
    points = {}
    for pair in raw:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise MetricSeriesError('a sample must be a (timestamp, value) pair, got %r' % (pair,))
        points[_timestamp(pair[0])] = _value(pair[1])
    return series_labels(series), sorted(points.items())


def normalize_series_list(series_list):
    """:func:`normalize_series` for each series of a list (``None`` is an empty list)."""
    if series_list is None:
        return []
    if isinstance(series_list, dict):
        if isinstance(series_list.get('series'), list):
            series_list = series_list['series']
        else:
            series_list = [series_list]
    if not isinstance(series_list, (list, tuple)):
        raise MetricSeriesError('expected a list of series, got %s' % type(series_list).__name__)
    if series_list and isinstance(series_list[0], (list, tuple)) and len(series_list[0]) == 2 \
            and not isinstance(series_list[0][0], (list, tuple, dict)):
        # A single bare list of (timestamp, value) pairs.
        series_list = [series_list]
    return [normalize_series(series) for series in series_list]
