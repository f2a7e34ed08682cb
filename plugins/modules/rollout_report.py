#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: rollout_report
short_description: Write the report of a canary rollout - JSON, an HTML page and PNG charts
version_added: 0.1.0
description:
  - Writes into O(dest) the report of one rollout, from its record (O(record), as M(canary.release.rollout_state)
    returns it) and the canary's and the baseline's metrics over the rollout's time span, read from Prometheus
    and/or CloudWatch with the metric definitions of M(canary.release.analysis).
  - "Files: C(report.json) (the record, every window of every metric, the decisions, the queries), C(report.html)
    (one self-contained page referencing the charts as relative files) and, with matplotlib, C(weight.png) (the
    canary's traffic share), C(errors.png) (error rate per window, canary vs baseline, one panel per C(errors)
    metric), C(latency.png) (share of requests slower than the bucket bound, per C(latency) metric) and
    C(guards.png) (the canary's values of C(threshold) metrics). Every chart marks the decisions - step verdicts,
    promotion, rollback, pause - with labelled lines."
  - The weight over time comes from the record. A step's weight applies from its C(started_at) (else its C(at))
    to the next step. The weight is 0 before the first step and from C(finished_at) of a rollout that was rolled
    back or aborted.
  - Counts are raw counter differences per window, exactly as the judge of M(canary.release.analysis) takes them
    (counter resets and new series handled, nothing extrapolated). Unlike the judge, the last incomplete window is
    kept, so the totals cover the whole span. The judge's options of a metric (O(metrics[].on_no_data),
    O(metrics[].max_ratio), O(metrics[].min), ...) are accepted, so the same list can be passed, and only
    O(metrics[].min) and O(metrics[].max) are used (drawn on the guard chart).
  - A failed query (Prometheus down, invalid PromQL, an AWS error) or a traffic query without series does not
    fail the task. The report lists the metric's arm under C(missing) in RV(summary) and says so on the page and in a
    warning. Invalid options (an unreadable record or time, an invalid metric) fail the task and write nothing.
  - Without matplotlib on the host the module runs on, the report has tables of the charts' data instead of charts, says so, and the module warns.
  - Only files whose bytes change are written, each replaced atomically. The same data gives the same bytes (the
    charts too), so a re-run reports C(changed=false).
author:
  - canary.release maintainers (@canary-release)
options:
  record:
    description:
      - The rollout record, for example RV(canary.release.rollout_state#module:record) of C(operation=read) or of
        the last operation of the run.
      - Uses C(service), C(version), C(previous_version), C(status), C(reason), C(started_at), C(finished_at),
        C(updated_at), C(steps) (C(index), C(weight), C(verdict), C(reason), C(started_at), C(at)) and C(events).
    type: dict
    required: true
  dest:
    description:
      - Directory of the report's files, created when missing. Files of other names in it are left alone.
      - One directory per release, for example C(reports/<service>-<version>).
    type: path
    required: true
  start_time:
    description:
      - Start of the report, as an RFC 3339 date-time, unix seconds or a relative time such as V(-1h).
      - Default the record's C(started_at).
    type: raw
  end_time:
    description:
      - End of the report, in the forms of O(start_time).
      - Default the record's C(finished_at), or now for an unfinished (running or paused) rollout.
    type: raw
  window:
    description:
      - Length of the windows the counts are summed over, in seconds or as a duration (V(30s), V(1m)). At least
        the scrape interval (Prometheus) and a multiple of every CloudWatch metric's period.
      - Default the smallest of 5 s, 10 s, 15 s, 20 s, 30 s, 1 m, 2 m, 5 m, ... that gives at most 120 windows
        (and is a multiple of the largest period of the CloudWatch metrics).
    type: raw
  url:
    description:
      - Base URL of the Prometheus HTTP API, for example V(http://localhost:9090).
      - Required when a metric uses O(metrics[].provider=prometheus), here or as O(connection.url).
    type: str
    required: false
  validate_certs:
    description:
      - Verify TLS certificates, of the Prometheus server and of the AWS API.
      - Set to V(false) only for self-signed test servers.
    type: bool
    default: true
extends_documentation_fragment:
  - canary.release.analysis_metrics
  - canary.release.prometheus
  - canary.release.metrics_connection
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Queries and renders everything, writes nothing, and says in RV(files) what would change.
  diff_mode:
    support: none
    description: The files are reports, some binary; RV(files) says which ones change.
notes:
  - Runs where it is executed - usually the controller (C(delegate_to) V(localhost)), where matplotlib is installed.
    O(dest) is on that host.
  - boto3 is only needed (and the AWS options only used) when a metric uses O(metrics[].provider=cloudwatch). Needs
    the C(cloudwatch:GetMetricData) permission for CloudWatch metrics.
seealso:
  - module: canary.release.analysis
  - module: canary.release.rollout_state
'''

EXAMPLES = r'''
- name: Read the rollout record
  canary.release.rollout_state:
    operation: read
    service: web
  register: rollout

- name: Write the rollout report next to the playbook
  canary.release.rollout_report:
    record: "{{ rollout.record }}"
    dest: "{{ playbook_dir }}/reports/web-{{ rollout.record.version }}"
    url: http://prometheus.example.com:9090
    canary_track: track="canary"
    baseline_track: track="stable"
    metrics:
      - name: http_errors
        kind: errors
        requests: http_requests_total{job="web", ${track}}
        errors: http_requests_total{job="web", ${track}, code=~"5.."}
      - name: slow_requests
        kind: latency
        count: http_request_duration_seconds_count{job="web", ${track}}
        bucket: http_request_duration_seconds_bucket{job="web", ${track}, le="0.5"}
  delegate_to: localhost
  register: report

- name: Say where the report is
  ansible.builtin.debug:
    msg: "{{ report.paths.html }}: {{ report.summary.decisions | map(attribute='label') | join(', ') }}"

- name: An ALB canary's report from CloudWatch
  canary.release.rollout_report:
    record: "{{ rollout.record }}"
    dest: /var/lib/canary-reports/web-{{ rollout.record.version }}
    region: eu-west-1
    canary_track: targetgroup/web-canary/0123456789abcdef
    baseline_track: targetgroup/web-stable/fedcba9876543210
    metrics:
      - name: alb_5xx
        kind: errors
        provider: cloudwatch
        period: 60
        requests:
          namespace: AWS/ApplicationELB
          metric_name: RequestCount
          dimensions: {LoadBalancer: app/web/0123456789abcdef, TargetGroup: "${track}"}
        errors:
          namespace: AWS/ApplicationELB
          metric_name: HTTPCode_Target_5XX_Count
          dimensions: {LoadBalancer: app/web/0123456789abcdef, TargetGroup: "${track}"}
  delegate_to: localhost
'''

RETURN = r'''
dest:
  description: The report directory, absolute.
  returned: success
  type: str
  sample: /home/ops/reports/web-1.4.0
paths:
  description:
    - Absolute path of each file of the report by kind - C(json), C(html), and the charts C(weight), C(errors),
      C(latency), C(guards) when drawn.
  returned: success
  type: dict
  sample: {json: /home/ops/reports/web-1.4.0/report.json, html: /home/ops/reports/web-1.4.0/report.html,
           weight: /home/ops/reports/web-1.4.0/weight.png, errors: /home/ops/reports/web-1.4.0/errors.png}
files:
  description: Per file - C(name), C(path), C(size) in bytes and C(changed) (written, or would be in check mode).
  returned: success
  type: list
  elements: dict
  sample: [{name: report.json, path: /home/ops/reports/web-1.4.0/report.json, size: 20480, changed: true}]
charts:
  description: Whether charts were drawn (false without matplotlib, then the page has tables instead).
  returned: success
  type: bool
  sample: true
summary:
  description:
    - C(service), C(version), C(status), the span (C(start), C(end), RFC 3339) and C(window) in seconds.
    - C(metrics) - per metric C(name), C(kind), the totals of each arm C(canary) and C(baseline) (C(requests),
      C(errors) - for latency metrics the slow requests - and C(rate), null when missing) and C(ratio) of the
      rates; C(samples) for threshold metrics; C(missing).
    - C(decisions) - C(time), C(label), C(reason) and C(by) (who decided - V(judge), C(person <name>) or
      C(engine <rule>); V(-) in records written before the audit trail) of each decision, in time order.
    - C(missing) - one line per missing series (failed query, or no series for an arm's traffic).
  returned: success
  type: dict
  sample:
    service: web
    version: 1.4.0
    status: rolled_back
    start: "2025-01-31T12:00:00Z"
    end: "2025-01-31T12:09:10Z"
    window: 5.0
    metrics:
      - name: http_errors
        kind: errors
        canary: {requests: 2335.0, errors: 124.0, rate: 0.0531}
        baseline: {requests: 19192.0, errors: 204.0, rate: 0.0106}
        ratio: 5.0
        missing: []
    decisions:
      - {time: "2025-01-31T12:02:00Z", label: "step 0 5%: pass", reason: null, by: judge}
      - {time: "2025-01-31T12:09:10Z", label: rolled back, reason: "fail: http_errors: canary 5.31% ...", by: judge}
    missing: []
'''

import os


from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_request import AnalysisRequestError, metric_argument_spec
from ansible_collections.canary.release.plugins.module_utils._common.json_safe import json_safe
from ansible_collections.canary.release.plugins.module_utils._analysis.metric_clients import client_factories, metrics_module
from ansible_collections.canary.release.plugins.module_utils._report.report_files import ReportFilesError, write_files
from ansible_collections.canary.release.plugins.module_utils._report.report_run import ReportError, build_report, render_report, summary

PATH_KEYS = {'report.json': 'json', 'report.html': 'html', 'weight.png': 'weight', 'errors.png': 'errors',
             'latency.png': 'latency', 'guards.png': 'guards'}


def argument_spec():
    spec = dict(
        record=dict(type='dict', required=True),
        metrics=dict(type='list', elements='dict', required=True, options=metric_argument_spec()),
        canary_track=dict(type='str'),
        baseline_track=dict(type='str'),
        dest=dict(type='path', required=True),
        start_time=dict(type='raw'),
        end_time=dict(type='raw'),
        window=dict(type='raw'),
    )
    return spec


def main():
    module = metrics_module(argument_spec())
    params = module.params
    prometheus_client, cloudwatch_call = client_factories(module)

    try:
        report, warnings = build_report(params, prometheus_client=prometheus_client, cloudwatch_call=cloudwatch_call)
        files, charts_note = render_report(report)
        written = write_files(params['dest'], files, check_mode=module.check_mode)
    except (ReportError, AnalysisRequestError, ReportFilesError) as error:
        module.fail_json(msg=str(error))
    for warning in warnings + ([charts_note] if charts_note else []):
        module.warn(warning)
    module.exit_json(
        changed=any(item['changed'] for item in written),
        dest=os.path.dirname(written[0]['path']),
        paths=dict((PATH_KEYS.get(item['name'], item['name']), item['path']) for item in written),
        files=written,
        charts=charts_note is None,
        summary=json_safe(summary(report)),
    )


if __name__ == '__main__':
    main()
