# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment:
    # The metric definitions of canary.release.analysis, shared by every module that reads the same metrics
    # (argument spec: analysis_request.metric_argument_spec()).
    DOCUMENTATION = r'''
options:
  metrics:
    description:
      - What to compare. Each metric names its queries once, as templates in which C(${track}) stands for the
        arm's selector (O(canary_track) or O(baseline_track)), or separately per arm under O(metrics[].canary)
        and O(metrics[].baseline).
      - C(${track}) is left alone by Ansible's templating (which only renders C({{ }}) and C({% %})) and by
        PromQL, which has no C($). Any other C(${...}) is an error.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the metric in the result and in the reason. Unique.
        type: str
        required: true
      kind:
        description:
          - V(errors) compares the error rates. Needs O(metrics[].requests) and O(metrics[].errors) (counters).
          - V(latency) compares the share of slow requests from a histogram. Needs O(metrics[].count) and
            O(metrics[].bucket). A request is slow when it took longer than the bucket's bound.
          - V(threshold) is a guard. The samples of O(metrics[].query) for the canary must stay within
            O(metrics[].min) and O(metrics[].max). One breach fails the canary at once.
        type: str
        required: true
        choices: [errors, latency, threshold]
      provider:
        description:
          - Where the metric is read. Prometheus queries are PromQL strings. CloudWatch queries are dicts with
            C(namespace), C(metric_name), C(dimensions), C(stat) (default C(Sum)), C(unit), C(account_id), C(label)
            or a single-series C(expression).
        type: str
        choices: [prometheus, cloudwatch]
        default: prometheus
      on_no_data:
        description:
          - What no data means for this metric (no series, no window where both arms served requests, or a
            failed query).
          - V(hold) waits. The verdict stays V(continue), then turns V(inconclusive) at the deadline. It never
            passes silently.
          - V(fail) fails the canary. V(pass) counts the metric as passed; use it only for optional metrics.
        type: str
        choices: [hold, fail, pass]
        default: hold
      requests:
        description:
          - C(errors) metrics. All requests, as a template with C(${track}).
          - Prometheus. A counter selector returning one series per instance (and code, ...), for example
            C(http_requests_total{job="web", ${track}}). Do not aggregate it with C(sum()) and do not use
            C(rate()) or C(increase()). The judge takes raw differences per series, which handles each
            instance's counter resets, and sums them.
          - CloudWatch. A metric with C(stat=Sum), for example the ALB's C(RequestCount) of a target group.
        type: raw
      errors:
        description:
          - C(errors) metrics. The failed requests, in the same form as O(metrics[].requests), for example
            C(http_requests_total{job="web", ${track}, code=~"5.."}).
        type: raw
      count:
        description:
          - C(latency) metrics. The histogram's request count, for example
            C(http_request_duration_seconds_count{job="web", ${track}}). Per-instance series, as for
            O(metrics[].requests).
          - CloudWatch. For example C(TargetResponseTime) with C(stat=SampleCount).
        type: raw
      bucket:
        description:
          - C(latency) metrics. The histogram bucket of the requests that were fast enough, for example
            C(http_request_duration_seconds_bucket{job="web", ${track}, le="0.5"}). If the query returns several
            buckets, set O(metrics[].le) to choose one.
          - CloudWatch. The count of fast requests, for example C(TargetResponseTime) with C(stat="TC(:0.5)").
        type: raw
      le:
        description:
          - C(latency) metrics on Prometheus. The bucket bound, in seconds, above which a request is slow, when
            O(metrics[].bucket) returns several buckets. It must be one of the histogram's bounds.
        type: float
      query:
        description:
          - C(threshold) metrics. The scalar query to guard, evaluated for the canary.
          - C(${track}) is replaced by the canary's selector.
          - For example C(histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{${track}}[1m])))).
        type: raw
      min:
        description: C(threshold) metrics. Lowest allowed value (inclusive).
        type: float
      max:
        description: C(threshold) metrics. Highest allowed value (inclusive).
        type: float
      canary:
        description:
          - Queries for the canary only, overriding the templates of the same role. Keys are the roles
            (O(metrics[].requests), O(metrics[].errors), O(metrics[].count), O(metrics[].bucket),
            O(metrics[].query)).
        type: dict
        suboptions:
          requests:
            description: The canary's requests query.
            type: raw
          errors:
            description: The canary's errors query.
            type: raw
          count:
            description: The canary's histogram count query.
            type: raw
          bucket:
            description: The canary's histogram bucket query.
            type: raw
          query:
            description: The canary's threshold query.
            type: raw
      baseline:
        description:
          - Queries for the baseline only, overriding the templates of the same role (threshold metrics have
            none).
        type: dict
        suboptions:
          requests:
            description: The baseline's requests query.
            type: raw
          errors:
            description: The baseline's errors query.
            type: raw
          count:
            description: The baseline's histogram count query.
            type: raw
          bucket:
            description: The baseline's histogram bucket query.
            type: raw
      canary_track:
        description: This metric's value of C(${track}) for the canary, overriding O(canary_track).
        type: str
      baseline_track:
        description: This metric's value of C(${track}) for the baseline, overriding O(baseline_track).
        type: str
      max_ratio:
        description:
          - This metric's design effect, overriding the module option C(max_ratio) of M(canary.release.analysis).
        type: float
      rate_floor:
        description:
          - This metric's rate floor, overriding the module option C(rate_floor) of M(canary.release.analysis).
        type: float
      dispersion:
        description:
          - Whether this metric corrects for per-arm overdispersion, overriding the module option C(dispersion) of M(canary.release.analysis).
        type: bool
      period:
        description:
          - CloudWatch metrics. The period in seconds of the per-period sums (V(60), or V(1), V(5), V(10), V(20),
            V(30) for high-resolution metrics, or a multiple of 60). The module sets it on every query of the
            metric. O(window) should be a multiple of it.
          - Default V(60) for CloudWatch metrics. Not used with Prometheus.
        type: int
      stratum_label:
        description:
          - Prometheus C(errors) and C(latency) metrics. Compare canary and baseline per value of this label (for
            example C(zone)) instead of in total. A value seen on one arm only is not compared.
        type: str
  canary_track:
    description:
      - The value of C(${track}) in the canary's queries, for example V(track="canary") in PromQL, or a
        target group dimension value such as V(targetgroup/web-canary/0123456789abcdef) in CloudWatch.
    type: str
  baseline_track:
    description:
      - The value of C(${track}) in the baseline's queries, for example V(track="stable").
    type: str
'''
