#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: analysis
short_description: Judge a canary against its baseline with an always-valid sequential test
version_added: 0.1.0
description:
  - Reads the canary's and the baseline's metrics from Prometheus and/or CloudWatch, from O(start_time) (the moment
    the canary started taking traffic) to O(end_time) (default now), and returns a verdict,
    V(pass), V(fail), V(continue) (not decided yet, poll again) or V(inconclusive) (the deadline O(max_duration) was
    reached undecided, or a metric still had no data).
  - C(errors) and C(latency) metrics compare canary and baseline over the same time windows with a sequential
    likelihood-ratio test that stays valid however often it is polled; it decides as soon as the data allows.
    C(threshold) metrics are guards on one query (min/max), failing at once on a breach.
  - Stateless. Every call re-reads everything since O(start_time); nothing is stored between calls, so a crashed
    controller loses nothing. Poll it with O(wait) (polls every O(interval) seconds inside the task until a
    decision), or with C(until)/C(retries)/C(delay), see the examples.
  - Per call, one Prometheus range query per distinct query (four for an C(errors) or C(latency) metric, one for a
    C(threshold) metric) and one CloudWatch C(GetMetricData) call for all CloudWatch metrics together.
  - A query the source refuses as invalid fails the task at once, with the server's message naming the metric, the
    arm, the role and the query - a permanent error that waiting cannot fix. That is Prometheus' C(bad_data) (HTTP
    400, for example a PromQL syntax error), CloudWatch's C(ValidationError), C(InvalidParameterValue),
    C(InvalidParameterCombination) and C(MissingParameter), and botocore's parameter validation (for example a
    metric name longer than 255 characters). The failed result has RV(rejected).
  - Any other failed query (Prometheus down, a timeout, HTTP 5xx, 429 or 503, AWS throttling or access denied) does
    not fail the task. It is that metric's missing data, handled by O(metrics[].on_no_data). Invalid options (an
    unknown kind, a missing query, an unknown placeholder, unreadable times) fail the task.
  - The module never changes anything. It always reports C(changed=false) and runs in check mode as well.
  - With O(validate_only=true) it checks everything a real run checks and builds every query, but sends none.
    Use it to check a release's analysis configuration before anything changes.
  - The connection options can be given one by one or together in O(connection).
  - See C(docs/analysis.md) in the collection for the statistics, how to choose O(alpha), O(beta) and
    O(max_ratio), and how long a decision takes.
author:
  - canary.release maintainers (@canary-release)
options:
  start_time:
    description:
      - When the canary started taking traffic. Data before it is not used.
      - An RFC 3339 date-time (V(2024-05-01T12:00:00Z). Without an offset it is UTC), unix seconds, or a relative
        time such as V(-10m).
      - A relative time moves with every poll. When polling, record the start once, for example with
        C(now(utc=true, fmt='%Y-%m-%dT%H:%M:%SZ')), and pass that.
    type: raw
    required: true
  end_time:
    description:
      - End of the analysis, in the forms of O(start_time). Default now.
      - Set it to replay a past canary. The verdict is then the one a poll at that moment would have returned.
    type: raw
  restarts:
    description:
      - Times at which the C(errors) and C(latency) tests restart, in the forms of O(start_time) (RFC 3339 or unix
        seconds), each after O(start_time) and after the one before it. The C(canary.release.rollout) role passes the
        start of every step after the first, so that a canary that passed a step is judged again on the next step's
        own data, and a regression that begins after a pass is caught.
      - A restart at time R starts a new test with the first window that starts at or after R (a restart exactly on
        a window boundary starts that window).
      - Fail - every window since O(start_time) still counts. The evidence of the test from O(start_time) and of every
        restarted test is summed into one always-valid test, so the chance of failing a good canary stays at most
        O(alpha) however many restarts there are. The first test keeps 90 % of O(alpha), the restarted ones 5 %,
        2.5 %, 1.25 % and so on.
      - Pass - only the test of the latest restart can pass, on the windows since that restart alone (its own
        likelihood ratio, and the O(rate_floor) route on the canary requests since then). Until its first window is
        complete nothing can pass. O(min_duration) still counts from O(start_time).
      - C(threshold) metrics are not affected. The reasons say which data a pass was judged on, and each test's
        evidence has C(restarts) (how many restarted tests have begun) and the canary counts since the latest
        restart.
      - A restart more than 5 minutes after O(end_time) (default now) is an error, as it is for O(start_time).
    type: list
    elements: raw
    default: []
  window:
    description:
      - Length of the comparison windows, in seconds or as a duration (V(30s), V(1m)). At least the scrape
        interval (Prometheus) or the period (CloudWatch).
      - Only complete windows are used. Until the first one is complete the verdict is V(continue).
      - Default is the largest O(metrics[].period) of the CloudWatch metrics, and 15 s when all metrics come
        from Prometheus. Set it to your scrape interval when that is longer than 15 s.
      - Shorter windows decide sooner at high traffic; decisions are taken at window ends, and windows holding
        many errors each make the overdispersion correction slower.
    type: raw
  step:
    description:
      - Step of the Prometheus range queries. It must divide O(window), so that samples fall on window boundaries.
      - Default is the largest divisor of O(window) that is not above 15 s. It is made coarser when the range would
        exceed Prometheus' 11,000 points per series.
    type: raw
  alpha:
    description:
      - Probability of failing a canary that is as good as the baseline, over the whole analysis and however
        often it is polled. It is split evenly across the C(errors) and C(latency) metrics.
    type: float
    default: 0.01
  beta:
    description:
      - Probability of passing a canary whose rate is O(max_ratio) times the baseline's (and above
        O(rate_floor)), per metric.
    type: float
    default: 0.01
  max_ratio:
    description:
      - The design effect. The ratio of canary to baseline error (or slow) rate that must be caught with
        probability 1 - O(beta). Above 1. Smaller ratios take longer to decide.
    type: float
    default: 2.0
  rate_floor:
    description:
      - Absolute error rate below which the canary passes even when errors are too rare to compare ratios. The
        pass needs about 7 / O(rate_floor) canary requests without errors. V(0) disables this pass route.
    type: float
    default: 0.0001
  dispersion:
    description:
      - Correct for per-arm overdispersion, where canary and baseline rates wobble independently from window to
        window more than chance allows. It never makes a decision earlier.
    type: bool
    default: true
  min_duration:
    description:
      - The canary cannot pass before this duration since O(start_time) (seconds or V(5m)). It can fail earlier.
    type: raw
    default: 0
  validate_only:
    description:
      - Check the metrics, the sources and the options exactly as a real run does, make the clients of the
        providers the metrics use, and build every query, but query nothing.
      - Returns RV(verdict=null), RV(valid=true) and in RV(queries) what a real run would send. Invalid input fails
        with the message a real run would give.
    type: bool
    default: false
  max_duration:
    description:
      - Deadline, counted from O(start_time) (seconds or V(30m)). At and after it, an undecided analysis is
        V(inconclusive). Data after the deadline is not read.
      - Without it there is no deadline. Set it, so that a canary without data cannot hold a rollout forever.
    type: raw
  deadline_extension:
    description:
      - Seconds added to O(max_duration). The C(canary.release.rollout) role sets it after an approval, so that the
        judge gets a fresh O(max_duration) from the approval on.
    type: float
    default: 0
  polls:
    description:
      - For a polling loop (the C(canary.release.analysis) role) - how many polls were made before this one. The
        module then says in RV(poll) whether the loop stops and how long it waits; see O(stop_after).
    type: int
    default: 0
  interval:
    description:
      - Seconds between two polls of a loop (at least 1 with O(wait)); the polls of O(wait) and RV(poll.wait) shorten
        it to reach the end of O(stop_after) or the deadline on time.
    type: int
    default: 10
  stop_after:
    description:
      - 'Seconds after O(start_time) when the loop''s own time (a rollout step) is over. The stop rule - V(fail) or
        V(inconclusive) stop at once; V(pass) once O(stop_after) has passed (at once without it); V(continue) once
        O(stop_after) has passed and every metric has data (unless O(stop_needs_data=false)), unless
        O(until_decided); check mode stops after one poll; O(max_polls) polls stop the loop.'
    type: float
  until_decided:
    description:
      - An undecided analysis goes on past O(stop_after) until the judge decides or the deadline passes.
    type: bool
    default: false
  stop_needs_data:
    description:
      - An undecided analysis ends at O(stop_after) only when every metric has data.
    type: bool
    default: true
  max_polls:
    description:
      - Stop the loop after this many polls. V(0) - no limit.
    type: int
    default: 0
  wait:
    description:
      - Keep polling inside this task, every O(interval) seconds (shortened to reach O(stop_after) or the deadline on
        time), for up to this many seconds after the task's first poll, until the stop rule (RV(poll.stopped)) says
        stop. A poll that would come later than O(wait) seconds after the first is left to the next task
        (RV(poll.next_at)).
      - The task returns as soon as a poll decides (V(fail) and V(inconclusive) at once, V(pass) at once or at
        O(stop_after)), so a decision is never held back by O(wait) - at most by one O(interval).
      - The result is the last poll's; RV(poll.messages) has one line per poll made.
      - V(0) - one poll, as without the option. Check mode and a fixed O(end_time) poll once and never wait.
    type: float
    default: 0
  poll_at:
    description:
      - For a loop of tasks - the RV(poll.next_at) of the task before. The first poll waits until then (at most
        O(interval) seconds), so that the polls stay O(interval) apart across tasks. Unset - poll at once.
      - Ignored in check mode and with O(end_time).
    type: float
  label:
    description:
      - 'Put in front of RV(poll.message), for example V(web 1.4.0: step 0 at 5 %).'
    type: str
    default: ""
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
    description: The module only reads. It queries and judges in check mode too.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
notes:
  - boto3 is only needed (and the AWS options only used) when a metric uses O(metrics[].provider=cloudwatch).
  - Needs the C(cloudwatch:GetMetricData) permission for CloudWatch metrics.
  - The queries run from the host the task runs on. Give O(url) as that host sees Prometheus (or use C(delegate_to)).
seealso:
  - module: canary.release.prometheus_query
  - module: canary.release.cloudwatch_metrics
'''

EXAMPLES = r'''
- name: Record when the canary started taking traffic
  ansible.builtin.set_fact:
    canary_started: "{{ now(utc=true, fmt='%Y-%m-%dT%H:%M:%SZ') }}"

- name: Judge the canary every 30 s until it passes or fails (at most 30 minutes)
  canary.release.analysis:
    url: http://prometheus.example.com:9090
    start_time: "{{ canary_started }}"
    min_duration: 5m
    max_duration: 30m
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
      - name: p99_latency
        kind: threshold
        query: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{job="web", ${track}}[1m])))
        max: 1.5
  register: analysis
  until: analysis is failed or analysis.verdict != 'continue'
  retries: 70
  delay: 30

- name: The same in one task - polls every 30 s inside the task and returns at once on a decision
  canary.release.analysis:
    url: http://prometheus.example.com:9090
    start_time: "{{ canary_started }}"
    min_duration: 5m
    max_duration: 30m
    interval: 30
    wait: 1800
    metrics:
      - name: http_errors
        kind: errors
        requests: http_requests_total{job="web", ${track}}
        errors: http_requests_total{job="web", ${track}, code=~"5.."}
  register: analysis

- name: Stop the rollout unless the canary passed
  ansible.builtin.fail:
    msg: "{{ analysis.reason }}"
  when: analysis.verdict != 'pass'

- name: Canary and baseline target groups of an ALB, from CloudWatch
  canary.release.analysis:
    region: eu-west-1
    start_time: "{{ canary_started }}"
    max_duration: 1h
    window: 60
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
      - name: alb_slow
        kind: latency
        provider: cloudwatch
        count:
          namespace: AWS/ApplicationELB
          metric_name: TargetResponseTime
          dimensions: {LoadBalancer: app/web/0123456789abcdef, TargetGroup: "${track}"}
          stat: SampleCount
        bucket:
          namespace: AWS/ApplicationELB
          metric_name: TargetResponseTime
          dimensions: {LoadBalancer: app/web/0123456789abcdef, TargetGroup: "${track}"}
          stat: "TC(:0.5)"
  register: analysis
  until: analysis is failed or analysis.verdict != 'continue'
  retries: 65
  delay: 60

- name: Step 2 of a release - fail on everything since the canary started, pass only on the data since step 2 began
  canary.release.analysis:
    url: http://prometheus.example.com:9090
    start_time: "2024-05-01T12:00:00Z"  # step 0 began
    restarts:
      - "2024-05-01T12:10:00Z"  # step 1 began
      - "2024-05-01T12:20:00Z"  # step 2 began
    max_duration: 1h
    metrics:
      - name: http_errors
        kind: errors
        requests: http_requests_total{job="web", ${track}}
        errors: http_requests_total{job="web", ${track}, code=~"5.."}
  register: analysis

- name: Queries per arm, when the arms differ by more than one selector
  canary.release.analysis:
    url: http://prometheus.example.com:9090
    start_time: "2024-05-01T12:00:00Z"
    end_time: "2024-05-01T12:30:00Z"
    max_duration: 30m
    metrics:
      - name: http_errors
        kind: errors
        canary:
          requests: http_requests_total{job="web-canary"}
          errors: http_requests_total{job="web-canary", code=~"5.."}
        baseline:
          requests: http_requests_total{job="web", instance=~"web-(1|2|3):9100"}
          errors: http_requests_total{job="web", instance=~"web-(1|2|3):9100", code=~"5.."}
        on_no_data: fail
  register: replay
'''

RETURN = r'''
valid:
  description: The options and metrics are valid (a run that is not valid fails instead).
  returned: success
  type: bool
  sample: true
verdict:
  description:
    - Null with O(validate_only=true).
    - V(fail) when a metric failed (its test crossed the fail boundary, a guard was breached, or it had no data
      under O(metrics[].on_no_data=fail)).
    - V(pass) when every metric passed and O(min_duration) has elapsed.
    - V(inconclusive) at or after the deadline otherwise.
    - V(continue) otherwise. Poll again.
  returned: success
  type: str
  choices: [pass, fail, continue, inconclusive]
  sample: fail
reason:
  description: One line saying why, naming the deciding metric and its numbers.
  returned: success
  type: str
  sample: "fail: http_errors: canary 5.31% (124/2335) vs baseline 1.06% (204/19192), ratio 4.99; log mixture LR 5.45 >= 4.61 (ratio >= 2 is likely)"
metrics:
  description:
    - Per metric, in the order given. C(status) is V(pass), V(fail), V(continue) or V(no_data) for C(errors) and
      C(latency), and V(ok), V(fail) or V(no_data) for C(threshold).
    - C(decided_at) is the end of the window (or the sample time of a breach) that decided, unix seconds.
    - C(evidence) of a test has the counts (C(canary_requests), C(canary_errors), C(baseline_requests),
      C(baseline_errors), the rates), C(ratio_estimate), C(log_mixture_lr) and C(fail_threshold), C(log_lr) and
      C(pass_threshold), C(e_value), C(canary_rate_upper) and C(rate_floor), C(dispersion_factor), C(route),
      C(windows) and C(data_notes) (counter resets, dropped gaps, new series).
    - With O(restarts), a test's evidence also has C(restarts) (the restarted tests begun so far),
      C(current_canary_requests) and C(current_canary_errors) (since the latest restart) and
      C(current_log_mixture_lr) (the latest test's own mixture); C(log_lr) and C(canary_rate_upper) are the latest
      test's, C(log_mixture_lr) sums every test's. A guard's has C(samples),
      C(last_value), C(breached_at) and C(breach_value).
  returned: success
  type: list
  elements: dict
  sample:
    - name: http_errors
      kind: errors
      on_no_data: hold
      status: fail
      decided_at: 1714565040.0
      reason: "http_errors: canary 5.31% (124/2335) vs baseline 1.06% (204/19192), ratio 4.99; log mixture LR 5.45 >= 4.61"
      evidence: {canary_requests: 2335.0, canary_errors: 124.0, ratio_estimate: 4.99, log_mixture_lr: 5.45}
elapsed:
  description: Seconds from O(start_time) to O(end_time).
  returned: success
  type: float
  sample: 240.0
deadline:
  description: O(start_time) + O(max_duration) in unix seconds, or null without O(max_duration).
  returned: success
  type: float
  sample: 1714566600.0
start_time:
  description: O(start_time) in unix seconds (rounded to the millisecond).
  returned: success
  type: float
  sample: 1714564800.0
now:
  description: O(end_time) (default the module's clock) in unix seconds.
  returned: success
  type: float
  sample: 1714565040.0
restarts:
  description: O(restarts) in unix seconds (rounded to the millisecond), oldest first.
  returned: success
  type: list
  elements: float
  sample: [1714565400.0, 1714566000.0]
restarts_rfc3339:
  description: O(restarts) as RFC 3339 UTC.
  returned: success
  type: list
  elements: str
  sample: ["2024-05-01T12:10:00Z", "2024-05-01T12:20:00Z"]
test_start:
  description:
    - Where the data the tests can pass on begins, unix seconds - the start of the first window of the latest
      restart, or O(start_time) without O(restarts).
  returned: success, unless O(validate_only=true)
  type: float
  sample: 1714566000.0
start_time_rfc3339:
  description: O(start_time) as RFC 3339 UTC.
  returned: success
  type: str
  sample: "2024-05-01T12:00:00Z"
end_time_rfc3339:
  description: O(end_time) as RFC 3339 UTC.
  returned: success
  type: str
  sample: "2024-05-01T12:04:00Z"
window:
  description: The window length in seconds.
  returned: success
  type: float
  sample: 60.0
windows:
  description: Number of complete windows analysed (up to the deadline).
  returned: success
  type: int
  sample: 4
alpha:
  description: O(alpha).
  returned: success
  type: float
  sample: 0.01
alpha_per_metric:
  description: O(alpha) divided by the number of C(errors) and C(latency) metrics.
  returned: success
  type: float
  sample: 0.005
beta:
  description: O(beta).
  returned: success
  type: float
  sample: 0.01
step:
  description: Step of the Prometheus range queries in seconds, null without Prometheus metrics.
  returned: success
  type: float
  sample: 15.0
queries:
  description:
    - What was sent, one entry per metric, arm and role. A query shared by several metrics was sent once
      (same C(key)).
    - C(query) is the PromQL string after substitution, or the CloudWatch query dict (with its C(id)).
    - C(series) and C(samples) count what came back (null when the query failed or was not sent). C(error) is the
      failure, or null.
  returned: success
  type: list
  elements: dict
  sample:
    - metric: http_errors
      arm: canary
      role: requests
      provider: prometheus
      key: m0_canary_requests
      query: http_requests_total{job="web", track="canary"}
      series: 2
      samples: 34
      error: null
poll:
  description:
    - Where a polling loop (the C(canary.release.analysis) role) stands after this poll.
  returned: success
  type: dict
  contains:
    number:
      description: The last poll's number, from 1 - O(polls) plus the polls made in this task (RV(poll.made)).
      type: int
      sample: 3
    stopped:
      description: Why the loop stops - V(decided), V(time), V(check_mode), V(polls) - or V(polling) (poll again).
      type: str
      sample: polling
    wait:
      description: Whole seconds to wait before the next poll (at least 1), for a loop that waits between tasks.
      type: int
      sample: 10
    has_data:
      description: Whether every metric had data.
      type: bool
      sample: true
    message:
      description: One line describing the poll (the last one made, with O(wait)).
      type: str
      sample: "web 2: step 0 at 5 %: poll 3 at 24 s: continue - errors continue canary 3/120 baseline 41/905 | continue: ..."
    messages:
      description: One line per poll made in this task, oldest first (one line without O(wait)).
      type: list
      elements: str
      sample: ["web 2: step 0 at 5 %: poll 3 at 24 s: continue - ...", "web 2: step 0 at 5 %: poll 4 at 25 s: fail - ..."]
    made:
      description: Polls made in this task (1 without O(wait)). RV(poll.number) is O(polls) plus this.
      type: int
      sample: 2
    next_at:
      description: Unix seconds when the next poll is due (pass it as O(poll_at)); null once the loop stops.
      type: float
      sample: 1714565050.0
rejected:
  description:
    - Only when the task failed because a source refused a query as invalid - one entry per metric, arm and role
      using it, with C(metric), C(arm), C(role), C(provider), C(key), C(query) and C(error) (the server's message).
  returned: failure
  type: list
  elements: dict
  sample:
    - metric: http_errors
      arm: canary
      role: errors
      provider: prometheus
      key: m0_canary_errors
      query: http_requests_total{job="web", track="canary", code=~"5.."
      error: "Prometheus at http://localhost:9090 returned bad_data (HTTP 400) for query ...: 1:60: parse error: ..."
api_calls:
  description: Requests made by the last poll. C(prometheus) counts range queries and C(cloudwatch) counts GetMetricData calls.
  returned: success
  type: dict
  sample: {prometheus: 4, cloudwatch: 0}
'''


import time

from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_fetch import QueryRejectedError
from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_request import (
    AnalysisRequestError,
    metric_argument_spec,
)
from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_run import DEFAULTS, run_analysis
from ansible_collections.canary.release.plugins.module_utils._analysis import polling
from ansible_collections.canary.release.plugins.module_utils.time_spec import TimeSpecError, parse_duration
from ansible_collections.canary.release.plugins.module_utils._common.json_safe import json_safe
from ansible_collections.canary.release.plugins.module_utils._analysis.metric_clients import client_factories, metrics_module


def argument_spec():
    spec = dict(
        metrics=dict(type='list', elements='dict', required=True, options=metric_argument_spec()),
        canary_track=dict(type='str'),
        baseline_track=dict(type='str'),
        start_time=dict(type='raw', required=True),
        end_time=dict(type='raw'),
        restarts=dict(type='list', elements='raw', default=[]),
        window=dict(type='raw'),
        step=dict(type='raw'),
        alpha=dict(type='float', default=DEFAULTS['alpha']),
        beta=dict(type='float', default=DEFAULTS['beta']),
        max_ratio=dict(type='float', default=DEFAULTS['max_ratio']),
        rate_floor=dict(type='float', default=DEFAULTS['rate_floor']),
        dispersion=dict(type='bool', default=DEFAULTS['dispersion']),
        min_duration=dict(type='raw', default=0),
        max_duration=dict(type='raw'),
        validate_only=dict(type='bool', default=DEFAULTS['validate_only']),
        deadline_extension=dict(type='float', default=0.0),
        polls=dict(type='int', default=0),
        interval=dict(type='int', default=10),
        stop_after=dict(type='float'),
        until_decided=dict(type='bool', default=False),
        stop_needs_data=dict(type='bool', default=True),
        max_polls=dict(type='int', default=0),
        label=dict(type='str', default=''),
        wait=dict(type='float', default=0),
        poll_at=dict(type='float'),
    )
    return spec


def extended_deadline(params):
    """``max_duration`` plus ``deadline_extension`` (seconds), or None without a deadline."""
    if params['max_duration'] in (None, ''):
        return None
    try:
        return parse_duration(params['max_duration']) + (params['deadline_extension'] or 0.0)
    except TimeSpecError as error:
        raise AnalysisRequestError('max_duration: %s' % error)


def made_once(factory):
    """``factory`` that makes its client on the first call only: a task polling many times makes one client."""
    made = []

    def once():
        if not made:
            made.append(factory())
        return made[0]

    return once


def loop_settings(params):
    """The polling loop's settings (:data:`~.polling.LOOP_DEFAULTS`) from the module's options."""
    return dict((key, params.get(key)) for key in polling.LOOP_DEFAULTS)


def main():
    module = metrics_module(argument_spec())
    prometheus_client, cloudwatch_call = (made_once(factory) for factory in client_factories(module))
    params = module.params
    try:
        params = dict(module.params, max_duration=extended_deadline(module.params))

        def poll(now=None):
            return run_analysis(params, prometheus_client=prometheus_client, cloudwatch_call=cloudwatch_call, now=now)

        if params['wait'] < 0:
            raise AnalysisRequestError('wait must be >= 0 seconds, got %g' % params['wait'])
        if params['wait'] > 0 and params['interval'] < 1:
            raise AnalysisRequestError('interval must be >= 1 second when wait is set, got %d' % params['interval'])
        if params['validate_only']:
            result, warnings = poll()
        else:
            result, warnings = polling.poll_loop(poll, loop_settings(params), time.time, time.sleep, module.check_mode)
    except QueryRejectedError as error:
        label = params.get('label')
        module.fail_json(msg=('%s: %s' % (label, error)) if label else str(error), rejected=json_safe(error.rejected))
    except AnalysisRequestError as error:
        module.fail_json(msg=str(error))
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, **json_safe(result))


if __name__ == '__main__':
    main()
