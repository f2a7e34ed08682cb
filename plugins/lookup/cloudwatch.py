# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: cloudwatch
short_description: Read CloudWatch metric data from templates
version_added: 0.1.0
description:
  - Runs every term, a CloudWatch metric query, through C(GetMetricData) on the controller, all terms in one call
    (batches of 500, each paginated) and returns one entry per query, in term order.
  - A term is a dict in metric form (C(namespace), C(metric_name), C(dimensions) as a dict, C(stat), C(period),
    optional C(unit)) or expression form (C(expression) over other queries' ids, optional C(period)); both take
    C(id), C(label), C(return_data) and C(account_id). These are the suboptions of the
    M(canary.release.cloudwatch_metrics) module's C(queries). A term may also be a list of such dicts.
  - A query without C(id) gets V(q<index>). Queries with C(return_data=false) (inputs of an expression) return
    V(null) in their place.
  - Each entry is a dict with C(id), C(label), C(status_code), C(timestamps) (RFC 3339 UTC, ascending),
    C(datapoints) (floats, same order) and C(messages).
  - With one term, C(lookup()) gives that entry directly; with several, use C(query()) or C(wantlist=true).
author:
  - canary.release maintainers (@canary-release)
options:
  _terms:
    description: Queries (dicts), or lists of queries.
    required: true
    type: list
    elements: raw
  start:
    description:
      - Start of the time range, inclusive. An ISO 8601 / RFC 3339 date-time (without offset it is UTC), a unix
        timestamp, or a relative time such as V(-15m), V(-2h), V(now-1d).
    type: str
    default: -1h
  end:
    description:
      - End of the time range, exclusive, in the forms of O(start); relative times count from the same moment.
    type: str
    default: now
  max_datapoints:
    description:
      - Upper bound on data points per page (the API's C(MaxDatapoints)); every page is still read.
    type: int
extends_documentation_fragment:
  - amazon.aws.boto3
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
notes:
  - Throttling is retried with jittered exponential backoff. CloudWatch bills GetMetricData by metrics requested.
seealso:
  - module: canary.release.cloudwatch_metrics
'''

EXAMPLES = r'''
- name: 5xx responses of the canary target group over the last 15 minutes
  ansible.builtin.debug:
    msg: "{{ lookup('canary.release.cloudwatch', errors, start='-15m', region='eu-west-1')['datapoints'] | sum }}"
  vars:
    errors:
      id: errors
      namespace: AWS/ApplicationELB
      metric_name: HTTPCode_Target_5XX_Count
      dimensions:
        LoadBalancer: app/web/0123456789abcdef
        TargetGroup: targetgroup/web-canary/fedcba9876543210
      stat: Sum
      period: 60

- name: Error ratio from two metrics and an expression, one GetMetricData call
  ansible.builtin.debug:
    msg: "{{ ratio[2]['datapoints'] | last | default('no data') }}"
  vars:
    target: {LoadBalancer: app/web/0123456789abcdef, TargetGroup: targetgroup/web-canary/fedcba9876543210}
    ratio: >-
      {{ query('canary.release.cloudwatch',
               {'id': 'errors', 'namespace': 'AWS/ApplicationELB', 'metric_name': 'HTTPCode_Target_5XX_Count',
                'dimensions': target, 'stat': 'Sum', 'period': 60},
               {'id': 'requests', 'namespace': 'AWS/ApplicationELB', 'metric_name': 'RequestCount',
                'dimensions': target, 'stat': 'Sum', 'period': 60},
               {'id': 'ratio', 'expression': 'errors / requests'},
               start='-30m', region='eu-west-1') }}

- name: Average CPU of an instance yesterday, credentials from the environment
  ansible.builtin.debug:
    msg: >-
      {{ lookup('canary.release.cloudwatch',
                {'namespace': 'AWS/EC2', 'metric_name': 'CPUUtilization', 'dimensions': {'InstanceId': 'i-0123456789abcdef0'},
                 'stat': 'Average', 'period': 3600},
                start='-2d', end='-1d') }}
'''

RETURN = r'''
_raw:
  description:
    - One dict per query, in term order (V(null) for queries with C(return_data=false)), with C(id), C(label),
      C(status_code), C(timestamps), C(datapoints) and C(messages).
  type: list
  elements: dict
'''

try:
    import botocore
except ImportError:
    pass  # Handled by AWSLookupBase

from ansible.errors import AnsibleLookupError

from ansible_collections.amazon.aws.plugins.plugin_utils.lookup import AWSLookupBase

from ansible_collections.canary.release.plugins.module_utils._sources.cloudwatch_metric_data import (
    CloudWatchQueryError,
    build_metric_data_queries,
    get_metric_data,
)
from ansible_collections.canary.release.plugins.module_utils._common.aws_retry import retrying_get_metric_data
from ansible_collections.canary.release.plugins.module_utils._common.json_safe import json_safe


def flatten_terms(terms):
    """Terms are query dicts or lists of them; return the flat list of queries."""
    queries = []
    for term in terms:
        if isinstance(term, (list, tuple)):
            queries.extend(term)
        else:
            queries.append(term)
    return queries


class LookupModule(AWSLookupBase):

    def run(self, terms, variables=None, **kwargs):
        super(LookupModule, self).run(terms, variables, **kwargs)
        queries = flatten_terms(terms)
        try:
            ids = [api['Id'] for api in build_metric_data_queries(queries)]
        except CloudWatchQueryError as error:
            raise AnsibleLookupError('canary.release.cloudwatch: %s' % error)
        client = self.client('cloudwatch')
        try:
            data = get_metric_data(retrying_get_metric_data(client), queries, start=self.get_option('start'),
                                   end=self.get_option('end'), max_datapoints=self.get_option('max_datapoints'))
        except CloudWatchQueryError as error:
            raise AnsibleLookupError('canary.release.cloudwatch: %s' % error)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            self.fail_aws('canary.release.cloudwatch: GetMetricData failed', error)
        return [json_safe(data['metrics'].get(query_id)) for query_id in ids]
