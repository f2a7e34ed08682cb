# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: promotion_host
short_description: The result of one stable host of a promotion
version_added: 0.2.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Takes a host name and says how its part of a promotion went - V(promoted) (V(checked) in check mode), or after a
    failure V(unhealthy) (the C(deploy_result) of the C(canary.release.deploy) role says the new version is
    installed but failed its health check), V(failed) (the deploy itself failed) or V(unreachable).
  - The C(canary.release.promote) role sets C(promote_host_result) with it on every stable host.
positional: batch, version
options:
  _input:
    description: The host.
    type: str
    required: true
  batch:
    description: The number of the host's batch, from 1.
    type: int
    required: true
  version:
    description: The version promoted.
    type: str
    required: true
  failed:
    description: Whether the deploy of the new version failed on the host.
    type: bool
    default: false
  error:
    description: Why, when it failed.
    type: str
    default: ''
  deploy_result:
    description: The C(deploy_result) of the C(canary.release.deploy) role on the host, when it set one.
    type: dict
  unreachable:
    description: Whether the controller could not reach the host (state V(unreachable), version unknown; O(error) says
      why).
    type: bool
    default: false
extends_documentation_fragment:
  - canary.release.release_filters.check_mode
'''

EXAMPLES = r'''
- name: Note the promoted host
  ansible.builtin.set_fact:
    promote_host_result: "{{ inventory_hostname | canary.release.promotion_host(1, '1.4.0') }}"
'''

RETURN = r'''
_value:
  description: C(host), C(batch), C(version), C(state) (V(promoted), V(checked), V(unhealthy) or V(failed)) and
    C(message) (empty unless it failed).
  type: dict
'''

from ansible_collections.canary.release.plugins.module_utils._rollout.promotion import host_result


def promotion_host(host, batch, version, failed=False, error='', deploy_result=None, check_mode=False, unreachable=False):
    return host_result(str(host), int(batch), str(version), bool(failed), '' if error is None else str(error),
                       deploy_result if isinstance(deploy_result, dict) else None, bool(check_mode), bool(unreachable))


class FilterModule(object):
    def filters(self):
        return {'promotion_host': promotion_host}
