# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: promotion_target
short_description: Which version a promotion by hand promotes, and whether it may
version_added: 0.2.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Takes the results of M(canary.release.rollout_state) with O(canary.release.rollout_state#module:operation=read),
    one per host that keeps the rollout record (a loop), and says which version to promote - O(version) when set,
    else the version of the newest record (by C(updated_at)) - and why it may not be promoted - no version known,
    or the rollout of that version was rolled back or aborted and O(force) is false.
  - The C(canary.release.promote) role uses it in its V(begin) entry point.
positional: service, version
options:
  _input:
    description: The C(results) of the looped read.
    type: list
    elements: dict
    required: true
  version:
    description: The version asked for; empty - the version of the newest record.
    type: str
    required: true
  force:
    description: Promote a version whose rollout was rolled back or aborted.
    type: bool
    default: false
extends_documentation_fragment:
  - canary.release.release_filters.service
'''

EXAMPLES = r'''
- name: Stop when the version cannot be promoted
  ansible.builtin.fail:
    msg: "{{ (found.results | canary.release.promotion_target('web', '')).error }}"
'''

RETURN = r'''
_value:
  description: C(service), C(version) (empty when none is known), C(previous_version) (the newest record's, when it
    is of that version; else null), C(state_hosts) (the hosts read, the C(item) of each result) and C(error) (one
    line, or an empty string).
  type: dict
'''

from ansible_collections.canary.release.plugins.module_utils._rollout.promotion import promotion_target as target


def promotion_target(read_results, service, version, force=False):
    return target(service, version, list(read_results or []), bool(force))


class FilterModule(object):
    def filters(self):
        return {'promotion_target': promotion_target}
