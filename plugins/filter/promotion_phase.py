# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: promotion_phase
short_description: Which part of a promotion by hand runs, and under which run
version_added: 0.3.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Checks C(promote_phase) of C(playbooks/promote.yml) - V(all) (the whole promotion), V(begin) (checks and the
    rollout lock only, for a sliced promotion) or V(finish) (traffic back to the stable pool, the record promoted, the
    canary retired, once every stable host is recorded) - and finds the run the finish continues.
positional: service, run_id, artifacts
options:
  _input:
    description: The phase.
    type: str
    required: true
  run_id:
    description: C(promote_run_id), the run the begin phase started; empty to take it from O(artifacts).
    type: str
    default: ""
  artifacts:
    description: The workflow's C(canary_release) artifacts; their C(run_id) counts when they are O(service)'s and
      their C(outcome) is V(promoting).
    type: raw
extends_documentation_fragment:
  - canary.release.release_filters.service
'''

EXAMPLES = r'''
- name: Check the phase
  ansible.builtin.set_fact:
    phase: "{{ promote_phase | canary.release.promotion_phase('web', promote_run_id, canary_release | default({})) }}"
'''

RETURN = r'''
_value:
  description: C(phase), C(run_id) (for V(finish); empty otherwise) and C(error) (empty when valid).
  type: dict
'''

from ansible_collections.canary.release.plugins.module_utils._rollout.slicing import promote_phase


def promotion_phase(phase, service, run_id='', artifacts=None):
    return promote_phase(phase, str(service), run_id, artifacts)


class FilterModule(object):
    def filters(self):
        return {'promotion_phase': promotion_phase}
