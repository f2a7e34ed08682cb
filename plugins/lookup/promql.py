# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: promql
short_description: Evaluate PromQL queries against Prometheus from templates
version_added: 0.1.0
description:
  - Evaluates each term, a PromQL expression, through the Prometheus HTTP API on the controller, as an instant query
    or, when O(start) is set, as a range query.
  - B(Return rule.) For each term the lookup returns the single value when the result is an instant vector with
    exactly one series, or a scalar, or a string; otherwise it returns the list of series (an empty list when nothing
    matched, a list of C({labels, timestamp, value}) for an instant vector with several series, a list of
    C({labels, samples}) for a range query).
  - Values are floats, except the non-finite ones, which are the strings C(NaN), C(+Inf) and C(-Inf);
    C(| float) turns them back into floats.
  - Set O(always_list=true) to get the list of series in every case, for example to loop over the series of a
    query that may match one series or several.
  - With one term, C(lookup()) gives that term's result directly. With several terms use C(query()) (or
    C(wantlist=true)), which returns one entry per term; C(lookup()) would join several string results with commas.
  - Warnings the server returns are shown as Ansible warnings. Server errors (C(bad_data), C(execution), ...),
    HTTP errors, refused connections and timeouts fail with a message naming the query and the server.
author:
  - canary.release maintainers (@canary-release)
options:
  _terms:
    description: PromQL expressions.
    required: true
    type: list
    elements: str
  time:
    description:
      - Evaluation time of instant queries. Default is the server's current time.
      - V(now), a relative time such as V(-5m) or V(now-1h), a unix timestamp in seconds, or an RFC 3339 date-time
        such as V(2024-05-01T12:00:00Z) (a date-time without offset is UTC).
      - Mutually exclusive with O(start).
    type: str
  start:
    description:
      - Start of a range query, in any of the forms accepted by O(time). Setting it makes every term a range query.
    type: str
  end:
    description:
      - End of a range query, in any of the forms accepted by O(time). Relative times count from the same moment
        for all terms.
    type: str
    default: now
  step:
    description:
      - Resolution of a range query, as seconds or a duration such as V(15s), V(1m). Required with O(start).
    type: str
  always_list:
    description:
      - Return the list of series even for a one-series instant vector, a scalar or a string (which then are a
        list with one series).
    type: bool
    default: false
extends_documentation_fragment:
  - canary.release.prometheus.plugins
seealso:
  - module: canary.release.prometheus_query
'''

EXAMPLES = r'''
- name: Number of healthy web targets (one series -> one value)
  ansible.builtin.debug:
    msg: "{{ lookup('canary.release.promql', 'sum(up{job=\"web\"})', url='http://localhost:9090') }}"

- name: Do not patch the next batch while the web error ratio is above 1 %
  ansible.builtin.assert:
    that:
      - lookup('canary.release.promql', error_ratio, url='http://localhost:9090') | float <= 0.01
  vars:
    error_ratio: >-
      sum(rate(http_requests_total{job="web", code=~"5.."}[5m])) / sum(rate(http_requests_total{job="web"}[5m]))

- name: Loop over the series of a query that may match one instance or several
  ansible.builtin.debug:
    msg: "{{ item.labels.instance }} is {{ 'up' if item.value | float == 1 else 'down' }}"
  loop: "{{ lookup('canary.release.promql', 'up{job=\"web\"}', url='http://localhost:9090', always_list=true) }}"

- name: Two queries at once with query(), one result per term
  ansible.builtin.debug:
    msg: "{{ query('canary.release.promql', 'sum(up)', 'count(up == 0)', url='http://localhost:9090') }}"

- name: Range query over the last 10 minutes, a point every 30 seconds
  ansible.builtin.debug:
    msg: "{{ lookup('canary.release.promql', 'sum(rate(http_requests_total[1m]))', start='-10m', step='30s',
             url='http://localhost:9090') }}"

- name: Connection settings from variables, once for every lookup in the play
  ansible.builtin.debug:
    msg: "{{ lookup('canary.release.promql', 'sum(up)') }}"
  vars:
    canary_prometheus_url: https://prometheus.example.com
    canary_prometheus_username: ansible
    canary_prometheus_password: "{{ vault_prometheus_password }}"
    canary_prometheus_ca_path: /etc/pki/tls/certs/internal-ca.pem
'''

RETURN = r'''
_raw:
  description:
    - One entry per term; the single value of a one-series instant vector, scalar or string, else the list of
      series, each a dict with C(labels) and either C(timestamp) and C(value) (instant) or C(samples), a list of
      C([timestamp, value]) pairs (range). Timestamps are unix seconds.
  type: list
  elements: raw
'''

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.canary.release.plugins.module_utils._common.json_safe import json_safe
from ansible_collections.canary.release.plugins.module_utils._sources.prometheus_api import (
    PrometheusError,
    client_from_options,
    lookup_value,
)
from ansible_collections.canary.release.plugins.module_utils.time_spec import TimeSpecError, parse_time

display = Display()


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if not self.get_option('url'):
            raise AnsibleLookupError('canary.release.promql needs url: pass url=..., set canary_prometheus_url, '
                                     'CANARY_PROMETHEUS_URL or [canary_prometheus] url in ansible.cfg')
        start = self.get_option('start')
        step = self.get_option('step')
        if start is not None and self.get_option('time') is not None:
            raise AnsibleLookupError('canary.release.promql: time and start are mutually exclusive')
        if start is not None and step is None:
            raise AnsibleLookupError('canary.release.promql: step is required with start')
        try:
            client = client_from_options(self.get_option)
            now = parse_time('now')
            results = []
            for term in terms:
                if start is not None:
                    result = client.query_range(term, start, self.get_option('end'), step, now=now)
                else:
                    result = client.query(term, time=self.get_option('time'), now=now)
                for warning in result['warnings']:
                    display.warning('Prometheus (query %r): %s' % (term, warning))
                results.append(json_safe(result['series'] if self.get_option('always_list') else lookup_value(result)))
        except (PrometheusError, TimeSpecError) as error:
            raise AnsibleLookupError(str(error))
        return results
