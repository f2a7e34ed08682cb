# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: promotion_settings
short_description: The batches of a promotion and how many hosts of a batch may fail, checked
version_added: 0.3.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Checks C(promote_serial) and C(promote_max_fail_percentage) before anything changes and returns them ready for the
    promotion play, whose C(serial) is set from the result (so both may be set as inventory or role variables, not
    only with C(-e)).
  - The C(canary.release.rollout) role (check) and the C(canary.release.promote) role (begin) set C(promote_settings)
    with it on the controller.
positional: max_fail_percentage
options:
  _input:
    description: Hosts per batch, as Ansible's C(serial) takes it - a number, a percentage of the stable hosts (V(25%))
      or a list of those (batch sizes in turn, the last one repeated).
    type: raw
    required: true
  max_fail_percentage:
    description: How many hosts of a batch, in percent of the batch, may fail or be unreachable while the promotion goes
      on; V(0) - any failed host stops it after its batch.
    type: raw
    required: true
'''

EXAMPLES = r'''
- name: Check the promotion's batches
  ansible.builtin.set_fact:
    promote_settings: "{{ promote_serial | canary.release.promotion_settings(promote_max_fail_percentage) }}"
'''

RETURN = r'''
_value:
  description: C(serial) (normalized), C(max_fail_percentage) (a number) and C(error) (why they are invalid; empty when
    they are valid).
  type: dict
'''

from ansible_collections.canary.release.plugins.module_utils._rollout.promotion import promotion_settings as settings


def promotion_settings(serial, max_fail_percentage):
    return settings(serial, max_fail_percentage)


class FilterModule(object):
    def filters(self):
        return {'promotion_settings': promotion_settings}
