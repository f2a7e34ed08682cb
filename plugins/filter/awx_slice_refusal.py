# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: awx_slice_refusal
short_description: Why a playbook that must run once may not run in this AWX job (a slice of a sliced job template)
version_added: 0.3.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Takes the name of the playbook and the job's AWX variables and says why the playbook must not run here, when
    AWX runs the job as one slice of a sliced job template (job slice count above 1); an empty string otherwise.
  - AWX passes no slice number or count to the playbook. It runs a sliced job template as a workflow job that bears
    the template's name, whose nodes launch the slices; a job launched by a workflow job named like its own job
    template is taken for a slice. A workflow of yours named like one of its job templates looks the same - rename it.
  - The release walk, C(promote.yml) and C(rollback.yml) refuse to run as slices; only C(promote_hosts.yml) may be
    sliced (docs/awx.md).
positional: variables
options:
  _input:
    description: The playbook's name, for the message.
    type: str
    required: true
  variables:
    description: The AWX variables of the job - C(awx_job_template_name), C(awx_workflow_job_name),
      C(awx_job_launch_type) (or their C(tower_) twins); missing ones may be left out.
    type: dict
    required: true
'''

EXAMPLES = r'''
- name: Refuse to run as a slice
  ansible.builtin.fail:
    msg: "{{ refusal }}"
  when: refusal | length > 0
  vars:
    refusal: >-
      {{ 'canary_release.yml' | canary.release.awx_slice_refusal({'awx_job_template_name': awx_job_template_name
         | default(''), 'awx_workflow_job_name': awx_workflow_job_name | default('')}) }}
'''

RETURN = r'''
_value:
  description: The reason, or an empty string when the job is not a slice.
  type: str
'''

from ansible_collections.canary.release.plugins.module_utils._rollout.slicing import slice_refusal


def awx_slice_refusal(playbook, variables):
    return slice_refusal(str(playbook), dict(variables or {}))


class FilterModule(object):
    def filters(self):
        return {'awx_slice_refusal': awx_slice_refusal}
