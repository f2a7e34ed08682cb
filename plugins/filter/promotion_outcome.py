# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: promotion_outcome
short_description: How a promotion ends - the recorded reason and the result
version_added: 0.2.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Takes the per-host results of a promotion whose batches all passed and what the traffic backend reports now
    (the C(traffic_result) of the C(canary.release.traffic) role), and words the reason recorded with the
    V(promoted) status and the C(promote_result) of the C(canary.release.promote) role, whose C(message) is the
    one-line event.
  - The C(canary.release.promote) role uses it in its V(finish) entry point.
positional: service, version, traffic
options:
  _input:
    description: Per-host results - C(host), C(batch), C(version), C(state) and C(message).
    type: list
    elements: dict
    required: true
  version:
    description: The version promoted.
    type: str
    required: true
  traffic:
    description: The C(traffic_result) after the canary was taken out of rotation (C(canary_percent), C(backend)).
    type: dict
    required: true
  records:
    description: The C(results) of M(canary.release.rollout_state) with
      O(canary.release.rollout_state#module:operation=read) on the state hosts; the first record found names the
      version the promotion replaced, and the newest one's per-host map (C(hosts)) the hosts an earlier run promoted.
    type: list
    elements: dict
    default: []
  reason:
    description: The reason to record; empty - C(<n> stable hosts run <version>, canary at <percent> % via <backend>),
      followed by the hosts left behind (failed or unreachable within C(promote_max_fail_percentage)), if any.
    type: str
    default: ''
  provisioned:
    description: Whether the canary and baseline hosts were created by the C(canary.release.provision) role.
    type: bool
    default: false
  retire_tasks_file:
    description: The task file that retires the canary and baseline hosts otherwise.
    type: str
    default: ''
extends_documentation_fragment:
  - canary.release.release_filters.service
  - canary.release.release_filters.check_mode
'''

EXAMPLES = r'''
- name: Describe the outcome
  ansible.builtin.debug:
    msg: "{{ (host_results | canary.release.promotion_outcome('web', '1.4.0', traffic_result)).result.message }}"
'''

RETURN = r'''
_value:
  description: C(reason) (one line) and C(result) - C(service), C(outcome) (V(promoted)), C(version),
    C(previous_version), C(hosts), C(canary_percent), C(backend), C(retired) (V(provision), V(tasks) or V(none)),
    C(check_mode) and C(message).
  type: dict
'''

from ansible_collections.canary.release.plugins.module_utils._rollout.promotion import newest_record, retirement
from ansible_collections.canary.release.plugins.module_utils._rollout.promotion import promotion_outcome as outcome


def promotion_outcome(results, service, version, traffic, records=None, reason='', provisioned=False,
                      retire_tasks_file='', check_mode=False):
    traffic = traffic or {}
    found = [result['record'] for result in records or [] if result.get('exists') and result.get('record')]
    previous_version = found[0].get('previous_version') if found else None
    newest = newest_record(records) or {}
    recorded = (newest.get('hosts') or {}) if newest.get('version') == str(version) else {}
    return outcome(service, str(version), list(results or []), traffic.get('canary_percent'), traffic.get('backend'),
                   previous_version or None, reason or '', retirement(bool(provisioned), retire_tasks_file or ''),
                   bool(check_mode), recorded)


class FilterModule(object):
    def filters(self):
        return {'promotion_outcome': promotion_outcome}
