#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: cloudwatch_metrics
short_description: Read CloudWatch metric data with batched GetMetricData calls
version_added: 0.1.0
description:
  - Runs many CloudWatch metric queries at once through C(GetMetricData) and returns the data points per query id,
    timestamps ascending.
  - A query either names a metric (O(queries[].namespace), O(queries[].metric_name), O(queries[].dimensions),
    O(queries[].stat), O(queries[].period), O(queries[].unit)) or is a metric-math or Metrics Insights
    O(queries[].expression) over the ids of other queries.
  - Up to 500 queries go in one call (the API limit); more are split into batches that keep each expression together
    with the queries it uses. Each batch follows C(NextToken) until all pages are read, and pages are merged per id.
    Up to 500 queries whose data fits in one page cost exactly one API call; RV(calls) reports the count.
  - Throttling (C(Throttling), C(RequestLimitExceeded), ...) is retried with jittered exponential backoff.
  - The module never changes anything; it always reports C(changed=false) and runs in check mode as well.
author:
  - canary.release maintainers (@canary-release)
options:
  queries:
    description:
      - The queries, in metric form or expression form.
    type: list
    elements: dict
    required: true
    suboptions:
      id:
        description:
          - Short name of the query, the key of its entry in RV(metrics) and the name expressions use for it.
          - Starts with a lowercase letter; letters, digits and underscores only; unique. Default V(q<index>).
        type: str
      label:
        description: Human-readable label returned with the data.
        type: str
      return_data:
        description:
          - Whether to return this query's data. Set to V(false) for inputs that only feed an expression.
          - When omitted, CloudWatch returns the data.
        type: bool
      period:
        description:
          - Granularity in seconds of the returned data points; required in metric form.
          - V(1), V(5), V(10), V(20), V(30) (high-resolution metrics) or a multiple of V(60).
        type: int
      account_id:
        description: Account to read the metric from, for cross-account observability.
        type: str
      namespace:
        description: Metric namespace, for example V(AWS/ApplicationELB). Metric form.
        type: str
      metric_name:
        description: Metric name, for example V(HTTPCode_Target_5XX_Count). Metric form.
        type: str
      dimensions:
        description:
          - 'Dimensions as a dict of name to value, for example C({"TargetGroup": "targetgroup/canary/0123"}). Metric form.'
        type: dict
      stat:
        description: Statistic, for example V(Sum), V(Average), V(SampleCount), V(Maximum), V(p99), V(tm90). Metric form.
        type: str
      unit:
        description: Only return data stored with this unit. Metric form.
        type: str
      expression:
        description:
          - A metric-math expression over other queries' ids (V(errors / requests)), or a Metrics Insights query
            or C(SEARCH) expression. Expression form; mutually exclusive with the metric keys.
        type: str
  start:
    description:
      - Start of the time range, inclusive. An ISO 8601 / RFC 3339 date-time (V(2024-05-01T12:00:00Z); without
        offset it is UTC), a unix timestamp, or a relative time such as V(-15m), V(-2h), V(now-1d).
      - CloudWatch rounds the start down to the minute (and coarser for old data).
    type: str
    default: -1h
  end:
    description:
      - End of the time range, exclusive, in the forms of O(start). Relative O(start) and O(end) count from the same
        moment.
    type: str
    default: now
  max_datapoints:
    description:
      - Upper bound on data points per page (the API's C(MaxDatapoints)); the module still reads every page.
    type: int
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: The module only reads; it queries in check mode too.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
notes:
  - CloudWatch bills GetMetricData by the number of metrics requested, not by calls; batching saves API calls
    (rate limits, latency), a smaller O(queries) list saves money.
  - Needs the C(cloudwatch:GetMetricData) permission.
seealso:
  - plugin: canary.release.cloudwatch
    plugin_type: lookup
  - name: GetMetricData API reference
    description: The API this module calls.
    link: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
'''

EXAMPLES = r'''
- name: 5xx and request counts of the canary target group, per minute over the last 15 minutes
  canary.release.cloudwatch_metrics:
    region: eu-west-1
    start: -15m
    queries:
      - id: errors
        namespace: AWS/ApplicationELB
        metric_name: HTTPCode_Target_5XX_Count
        dimensions:
          LoadBalancer: app/web/0123456789abcdef
          TargetGroup: targetgroup/web-canary/fedcba9876543210
        stat: Sum
        period: 60
      - id: requests
        namespace: AWS/ApplicationELB
        metric_name: RequestCount
        dimensions:
          LoadBalancer: app/web/0123456789abcdef
          TargetGroup: targetgroup/web-canary/fedcba9876543210
        stat: Sum
        period: 60
      - id: error_ratio
        expression: errors / requests
        label: canary 5xx ratio
  register: canary

- name: Fail when more than 1 % of the canary's requests failed
  ansible.builtin.assert:
    that:
      - (canary.metrics.errors.datapoints | sum) <= 0.01 * (canary.metrics.requests.datapoints | sum)

- name: p99 latency of two instances for a fixed window, only the expression returned
  canary.release.cloudwatch_metrics:
    region: us-east-1
    start: "2024-05-01T12:00:00Z"
    end: "2024-05-01T13:00:00Z"
    queries:
      - id: web1
        namespace: AWS/ApplicationELB
        metric_name: TargetResponseTime
        dimensions:
          LoadBalancer: app/web/0123456789abcdef
          AvailabilityZone: us-east-1a
        stat: p99
        period: 300
        return_data: false
      - id: web2
        namespace: AWS/ApplicationELB
        metric_name: TargetResponseTime
        dimensions:
          LoadBalancer: app/web/0123456789abcdef
          AvailabilityZone: us-east-1b
        stat: p99
        period: 300
        return_data: false
      - id: worst
        expression: MAX(METRICS())
'''

RETURN = r'''
metrics:
  description:
    - The data per query id (a dict keyed by id; use RV(metric_data_queries) for the query order); queries with
      O(queries[].return_data=false) are left out.
    - C(datapoints) holds the API's C(Values) (named so because C(.values) is a dict method in templates), at the
      same positions as C(timestamps).
    - Named C(metrics), not C(results), because Ansible reserves C(results) for loops.
  returned: success
  type: dict
  contains:
    id:
      description: The query id.
      type: str
      returned: success
    label:
      description: The label CloudWatch returned.
      type: str
      returned: success
    status_code:
      description: C(Complete), C(PartialData), C(InternalError) or C(Forbidden); an error status on any page wins.
      type: str
      returned: success
    timestamps:
      description: Timestamps of the data points, RFC 3339 in UTC, ascending.
      type: list
      elements: str
      returned: success
    datapoints:
      description: Values of the data points, in the order of C(timestamps).
      type: list
      elements: float
      returned: success
    messages:
      description: Messages CloudWatch attached to this result, each with C(code) and C(value).
      type: list
      elements: dict
      returned: success
  sample:
    errors:
      id: errors
      label: HTTPCode_Target_5XX_Count
      status_code: Complete
      timestamps: ["2024-05-01T12:00:00Z", "2024-05-01T12:01:00Z"]
      datapoints: [0.0, 2.0]
      messages: []
messages:
  description: Request-level messages CloudWatch returned, each with C(code) and C(value).
  returned: success
  type: list
  elements: dict
  sample: []
calls:
  description: Number of GetMetricData calls made (batches times pages).
  returned: success
  type: int
  sample: 1
batches:
  description: Number of batches of at most 500 queries.
  returned: success
  type: int
  sample: 1
start:
  description: Start of the time range that was sent, RFC 3339 UTC.
  returned: success
  type: str
  sample: "2024-05-01T12:00:00Z"
end:
  description: End of the time range that was sent, RFC 3339 UTC.
  returned: success
  type: str
  sample: "2024-05-01T13:00:00Z"
metric_data_queries:
  description: The C(MetricDataQueries) that were sent, in query order (API field names).
  returned: success
  type: list
  elements: dict
  sample:
    - Id: error_ratio
      Expression: errors / requests
'''

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.canary.release.plugins.module_utils._sources.cloudwatch_metric_data import CloudWatchQueryError, get_metric_data
from ansible_collections.canary.release.plugins.module_utils._common.aws_retry import retrying_get_metric_data
from ansible_collections.canary.release.plugins.module_utils._common.json_safe import json_safe

METRIC_OPTIONS = ('namespace', 'metric_name', 'dimensions', 'stat', 'unit')


def argument_spec():
    return dict(
        queries=dict(
            type='list', elements='dict', required=True,
            options=dict(
                id=dict(type='str'),
                label=dict(type='str'),
                return_data=dict(type='bool'),
                period=dict(type='int'),
                account_id=dict(type='str'),
                namespace=dict(type='str'),
                metric_name=dict(type='str'),
                dimensions=dict(type='dict'),
                stat=dict(type='str'),
                unit=dict(type='str'),
                expression=dict(type='str'),
            ),
            mutually_exclusive=[('expression', option) for option in METRIC_OPTIONS],
            required_one_of=[('expression', 'metric_name')],
        ),
        start=dict(type='str', default='-1h'),
        end=dict(type='str', default='now'),
        max_datapoints=dict(type='int'),
    )


def main():
    module = AnsibleAWSModule(argument_spec=argument_spec(), supports_check_mode=True)
    client = module.client('cloudwatch')
    try:
        data = get_metric_data(retrying_get_metric_data(client), module.params['queries'], start=module.params['start'],
                               end=module.params['end'], max_datapoints=module.params['max_datapoints'])
    except CloudWatchQueryError as error:
        module.fail_json(msg=str(error))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        module.fail_json_aws(error, msg='GetMetricData failed')
    module.exit_json(changed=False, **json_safe(data))


if __name__ == '__main__':
    main()
