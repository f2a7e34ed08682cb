# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: rollout_status
short_description: The rollout record of one host as lines for a human
version_added: 0.2.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Takes one result of M(canary.release.rollout_state) with O(canary.release.rollout_state#module:operation=read)
    and returns the lines C(playbooks/status.yml) prints - status and position, times, the lock, every step's verdict
    and the last O(events) events.
positional: service, host
options:
  _input:
    description: The read result (C(exists), C(record), C(lock), C(record_path)).
    type: dict
    required: true
  host:
    description: The host the record was read on.
    type: str
    required: true
  events:
    description: How many of the last events to show.
    type: int
    default: 10
extends_documentation_fragment:
  - canary.release.release_filters.service
'''

EXAMPLES = r'''
- name: Show the rollout
  ansible.builtin.debug:
    msg: "{{ read | canary.release.rollout_status('web', 'localhost', events=5) }}"
'''

RETURN = r'''
_value:
  description: The lines.
  type: list
  elements: str
'''

from ansible_collections.canary.release.plugins.module_utils._rollout.status import status_lines


def rollout_status(read_result, service, host, events=10):
    return status_lines(dict(read_result or {}), service, host, int(events))


class FilterModule(object):
    def filters(self):
        return {'rollout_status': rollout_status}
