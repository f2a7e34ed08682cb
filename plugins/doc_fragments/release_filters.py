# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment(object):
    """Options the filters of a release share (plugins/filter/promotion_*.py, rollout_*.py)."""

    SERVICE = r'''
options:
  service:
    description: The service.
    type: str
    required: true
'''

    CHECK_MODE = r'''
options:
  check_mode:
    description: Whether the run is in check mode.
    type: bool
    default: false
'''

    VERSION = r'''
options:
  version:
    description: The version being promoted.
    type: str
    required: true
'''

    RECORDS = r'''
options:
  _input:
    description: The C(results) of M(canary.release.rollout_state) with
      O(canary.release.rollout_state#module:operation=read) on the state hosts (empty without a record).
    type: list
    elements: dict
    required: true
'''
