# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: promotion_finish_check
short_description: Whether a sliced promotion may finish - every stable host recorded
version_added: 0.3.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Takes the C(read) results of the rollout record and the stable hosts of the full inventory and says whether the
    finish phase of C(playbooks/promote.yml) may return the traffic to the stable pool and record the rollout promoted.
  - Every stable host needs a result in the record's per-host map; a host without one (its slice did not run or did
    not get to it) or with a batch still V(deploying) refuses the finish, and so do hosts that failed, were unhealthy
    or unreachable beyond O(max_fail_percentage) percent of the stable hosts (within it they are left behind, named).
    The record must be of the version, unfinished and locked by O(run_id).
positional: service, version, run_id, stable_hosts
options:
  version:
    description: The version being promoted; empty for the newest record's.
    type: str
    required: true
  run_id:
    description: The run the begin phase started (C(promote_run_id)).
    type: str
    required: true
  stable_hosts:
    description: The stable hosts of the full inventory.
    type: list
    elements: str
    required: true
  max_fail_percentage:
    description: C(promote_max_fail_percentage), here in percent of all the stable hosts.
    type: raw
    default: 0
extends_documentation_fragment:
  - canary.release.release_filters.records
  - canary.release.release_filters.service
'''

EXAMPLES = r'''
- name: Check that every stable host is recorded
  ansible.builtin.set_fact:
    finish_check: "{{ records.results | canary.release.promotion_finish_check('web', '', run_id, groups['stable']) }}"
'''

RETURN = r'''
_value:
  description: C(version), C(already_promoted) (the run finished already), C(left_behind) (hosts that did not take the
    version, within the tolerance), C(message) and C(error) (empty when the promotion may finish; names the hosts).
  type: dict
'''

from ansible_collections.canary.release.plugins.module_utils._rollout.slicing import finish_check


def promotion_finish_check(records, service, version, run_id, stable_hosts, max_fail_percentage=0):
    return finish_check(str(service), version, str(run_id or ''), list(records or []),
                        [str(host) for host in stable_hosts or []], max_fail_percentage)


class FilterModule(object):
    def filters(self):
        return {'promotion_finish_check': promotion_finish_check}
