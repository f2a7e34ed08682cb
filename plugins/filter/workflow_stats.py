# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: workflow_stats
short_description: The set_stats data a job passes down an AWX workflow
version_added: 0.2.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Takes what a job exports (the result of a rollback, a promotion, a rollout transition or a status) and returns the
    C(data) of its M(ansible.builtin.set_stats) task - a dict with the one key C(canary_release) holding the input,
    which AWX passes to the next nodes of a workflow as an extra variable.
  - In check mode the one key is C(canary_release_check) instead, so a check-mode job exports nothing a workflow could
    take for a real outcome and leaves the C(canary_release) of an earlier job as it was.
  - C(check_mode) in the exported data is set to O(check_mode).
  - The C(canary.release.notify) role (entry point V(stats)) uses it for every job of the collection.
positional: check_mode
options:
  _input:
    description: What to export.
    type: dict
    required: true
extends_documentation_fragment:
  - canary.release.release_filters.check_mode
'''

EXAMPLES = r'''
- name: Export the outcome for AWX workflows
  ansible.builtin.set_stats:
    data: "{{ {'service': 'web', 'outcome': 'rolled_back'} | canary.release.workflow_stats(ansible_check_mode) }}"
    per_host: false
    aggregate: false
'''

RETURN = r'''
_value:
  description: A dict with one key, C(canary_release) - or in check mode C(canary_release_check) - holding the input.
  type: dict
'''

from ansible.errors import AnsibleFilterError
from ansible_collections.canary.release.plugins.module_utils._rollout.workflow import workflow_stats as stats


def workflow_stats(data, check_mode=False):
    try:
        return stats(data, check_mode)
    except ValueError as error:
        raise AnsibleFilterError('workflow_stats: %s' % error)


class FilterModule(object):
    def filters(self):
        return {'workflow_stats': workflow_stats}
