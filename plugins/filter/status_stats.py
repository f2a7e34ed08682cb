# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: status_stats
short_description: What playbooks/status.yml exports to an AWX workflow - the newest rollout record
version_added: 0.2.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Takes the loop results of M(canary.release.rollout_state) with
    O(canary.release.rollout_state#module:operation=read) on the state hosts and returns the newest record (by
    C(updated_at)) in the shape a canary release exports, for M(ansible.builtin.set_stats).
  - C(playbooks/status.yml) uses it, through the C(canary.release.workflow_stats) filter.
positional: service
options:
  _input:
    description: The read results, each with C(item) (the host), C(exists), C(record) and C(lock).
    type: list
    elements: dict
    required: true
extends_documentation_fragment:
  - canary.release.release_filters.service
'''

EXAMPLES = r'''
- name: Show what a status job exports
  ansible.builtin.debug:
    msg: "{{ (status_read.results | canary.release.status_stats('web')).message }}"
'''

RETURN = r'''
_value:
  description: C(service), C(version), C(previous_version), C(outcome) (V(held) for a paused rollout, else the status;
    None without a record), C(status), C(step), C(weight), C(run_id), C(reason), C(started_at), C(updated_at),
    C(finished_at), C(steps) (C(index), C(weight), C(verdict), C(reason), C(started_at)), C(locked), C(hosts)
    (C(host), C(status), C(version), C(updated_at)) and C(message) (the summary line).
  type: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.canary.release.plugins.module_utils._rollout.workflow import status_stats as stats


def status_stats(read_results, service):
    try:
        return stats(list(read_results) if isinstance(read_results, (list, tuple)) else read_results, service)
    except ValueError as error:
        raise AnsibleFilterError('status_stats: %s' % error)


class FilterModule(object):
    def filters(self):
        return {'status_stats': status_stats}
