#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: prometheus_query
short_description: Run an instant or range PromQL query against Prometheus
version_added: 0.1.0
description:
  - Evaluates a PromQL expression through the Prometheus HTTP API (C(/api/v1/query) or C(/api/v1/query_range)) of
    Prometheus or a compatible server (Thanos, Mimir, Cortex, VictoriaMetrics) and returns the result as plain data.
  - An instant query runs when O(start) is not set; a range query when it is.
  - The module never changes anything; it always reports C(changed=false) and runs in check mode as well.
  - Sample values are floats, except the non-finite values, which are returned as the strings C(NaN), C(+Inf) and
    C(-Inf) (the way Prometheus writes them) so that results stay valid JSON; C(| float) turns them back into floats.
  - An empty result is an empty RV(series) list, not an error. Errors reported by the server (C(bad_data),
    C(execution), C(timeout), C(unavailable), ...), HTTP errors, refused connections and timeouts fail the task
    with a message naming the query and the server.
author:
  - canary.release maintainers (@canary-release)
options:
  query:
    description:
      - The PromQL expression.
    type: str
    required: true
  time:
    description:
      - Evaluation time of an instant query. Default is the server's current time.
      - V(now), a relative time such as V(-5m) or V(now-1h), a unix timestamp in seconds, or an RFC 3339 date-time
        such as V(2024-05-01T12:00:00Z) (a date-time without offset is UTC).
      - Mutually exclusive with O(start).
    type: raw
  start:
    description:
      - Start of a range query, in any of the forms accepted by O(time). Setting it makes the query a range query.
    type: raw
  end:
    description:
      - End of a range query, in any of the forms accepted by O(time). Relative O(start) and O(end) count from the
        same moment.
      - Only used with O(start); defaults to V(now) then.
    type: raw
  step:
    description:
      - Resolution of a range query, as seconds or a duration such as V(15s), V(1m), V(1h30m). Required with O(start).
    type: raw
extends_documentation_fragment:
  - canary.release.prometheus
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the query in check mode too.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
notes:
  - The queries run from the host the task runs on; use O(url) as that host sees Prometheus (or C(delegate_to)).
seealso:
  - plugin: canary.release.promql
    plugin_type: lookup
  - name: Prometheus HTTP API
    description: The API this module calls.
    link: https://prometheus.io/docs/prometheus/latest/querying/api/
'''

EXAMPLES = r'''
- name: Error ratio of the canary over the last 5 minutes
  canary.release.prometheus_query:
    url: http://localhost:9090
    query: >-
      sum(rate(http_requests_total{job="web", arm="canary", code=~"5.."}[5m]))
      / sum(rate(http_requests_total{job="web", arm="canary"}[5m]))
  register: canary_errors

- name: Stop when the canary's error ratio is above 1 %
  ansible.builtin.assert:
    that:
      - canary_errors.series | length == 0 or (canary_errors.series[0].value | float) <= 0.01
    fail_msg: "canary error ratio is {{ canary_errors.series[0].value }}"

- name: Request rate per instance, one point a minute over the last hour
  canary.release.prometheus_query:
    url: http://localhost:9090
    query: sum by (instance) (rate(http_requests_total[1m]))
    start: -1h
    end: now
    step: 1m
  register: rates

- name: Print the latest value of every instance
  ansible.builtin.debug:
    msg: "{{ item.labels.instance }}: {{ item.samples[-1][1] }}"
  loop: "{{ rates.series }}"

- name: Query a multi-tenant Mimir behind TLS with a client certificate
  canary.release.prometheus_query:
    url: https://mimir.example.com/prometheus
    query: up{job="web"}
    time: "2024-05-01T12:00:00Z"
    headers:
      X-Scope-OrgID: team-web
    ca_path: /etc/pki/tls/certs/internal-ca.pem
    client_cert: /etc/pki/tls/certs/ansible.pem
    client_key: /etc/pki/tls/private/ansible.key

- name: Query Prometheus behind basic authentication
  canary.release.prometheus_query:
    url: https://prometheus.example.com
    url_username: ansible
    url_password: "{{ vault_prometheus_password }}"
    query: sum(up{job="web"})
'''

RETURN = r'''
result_type:
  description: The Prometheus result type.
  returned: success
  type: str
  choices: [vector, matrix, scalar, string]
  sample: vector
series:
  description:
    - The result, one entry per series; empty when nothing matched.
    - An instant vector series has C(labels), C(timestamp) and C(value); a range (matrix) series has C(labels) and
      C(samples), a list of C([timestamp, value]) pairs in time order. Timestamps are unix seconds.
    - A scalar or string result is one entry with empty C(labels); a string's C(value) is the string.
    - Values are floats, or the strings C(NaN), C(+Inf), C(-Inf). Native histogram samples are under C(histogram)
      (instant) or C(histograms) (range).
  returned: success
  type: list
  elements: dict
  sample:
    - labels: {__name__: up, instance: "web-1:9100", job: web}
      timestamp: 1714564800.0
      value: 1.0
prometheus_warnings:
  description: Warnings the server returned with the result (for example a failing remote-read endpoint). Each is
    also shown as an Ansible warning.
  returned: success
  type: list
  elements: str
  sample: []
prometheus_infos:
  description: Info annotations the server returned (Prometheus 2.45 and later).
  returned: success
  type: list
  elements: str
  sample: []
query:
  description: The query that was evaluated.
  returned: always
  type: str
  sample: sum(up{job="web"})
request:
  description: The request that was sent; relative times are resolved to unix seconds in C(params).
  returned: success
  type: dict
  contains:
    method:
      description: V(GET) or V(POST).
      type: str
      returned: success
    path:
      description: C(/api/v1/query) or C(/api/v1/query_range).
      type: str
      returned: success
    params:
      description: The query parameters (C(query), C(time) or C(start), C(end), C(step)).
      type: dict
      returned: success
  sample: {method: GET, path: /api/v1/query, params: {query: up}}
error_type:
  description: On failure, the server's C(errorType) (C(bad_data), C(execution), ...) or C(http), C(connection),
    C(timeout), C(tls), C(response), C(invalid_argument).
  returned: failure
  type: str
  sample: bad_data
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.canary.release.plugins.module_utils._common.json_safe import json_safe
from ansible_collections.canary.release.plugins.module_utils._sources.prometheus_api import (
    PrometheusError,
    client_from_options,
    connection_argument_spec,
)


def argument_spec():
    spec = dict(
        query=dict(type='str', required=True),
        time=dict(type='raw'),
        start=dict(type='raw'),
        end=dict(type='raw'),
        step=dict(type='raw'),
    )
    spec.update(connection_argument_spec(url_required=True))
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[('time', 'start'), ('bearer_token', 'url_username'), ('bearer_token', 'url_password')],
        required_together=[('start', 'step')],
        required_by={'end': ('start',)},
        supports_check_mode=True,
    )
    params = module.params
    try:
        client = client_from_options(params.get)
        if params['start'] is not None:
            end = params['end'] if params['end'] is not None else 'now'
            result = client.query_range(params['query'], params['start'], end, params['step'])
        else:
            result = client.query(params['query'], time=params['time'])
    except PrometheusError as error:
        module.fail_json(msg=str(error), query=params['query'], error_type=error.error_type or error.kind)

    for warning in result['warnings']:
        module.warn('Prometheus: %s' % warning)
    module.exit_json(
        changed=False,
        query=params['query'],
        result_type=result['result_type'],
        series=json_safe(result['series']),
        prometheus_warnings=result['warnings'],
        prometheus_infos=result['infos'],
        request=result['request'],
    )


if __name__ == '__main__':
    main()
