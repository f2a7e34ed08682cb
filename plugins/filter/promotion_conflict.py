# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: promotion_conflict
short_description: Why the next batch of a promotion must not start
version_added: 0.2.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Takes the results of M(canary.release.rollout_state) with O(canary.release.rollout_state#module:operation=read),
    one per host that keeps the rollout record (a loop), and says why the promotion of O(version) must stop before
    its next batch - the record is for another version, the rollout finished (for example a rollback), or another
    run holds the lock. An empty string when the batch may start.
  - The C(canary.release.promote) role uses it before every batch.
positional: version, run_id
options:
  _input:
    description: The C(results) of the looped read.
    type: list
    elements: dict
    required: true
  version:
    description: The version being promoted.
    type: str
    required: true
  run_id:
    description: The rollout run that hands over to the promotion; empty for a promotion by hand.
    type: str
    default: ""
  check_mode:
    description: Whether the run is in check mode (the lock is not checked then).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Stop when a rollback or another run took the rollout over
  ansible.builtin.fail:
    msg: "{{ records.results | canary.release.promotion_conflict('1.4.0', run_id) }}"
  when: records.results | canary.release.promotion_conflict('1.4.0', run_id) | length > 0
'''

RETURN = r'''
_value:
  description: The reasons, one per host, each ending with C(;), or an empty string.
  type: str
'''

from ansible_collections.canary.release.plugins.module_utils._rollout.promotion import batch_conflict


def promotion_conflict(read_results, version, run_id='', check_mode=False):
    reasons = [batch_conflict(str(version), run_id or '', result.get('item'), result, bool(check_mode))
               for result in read_results or []]
    return ' '.join('%s;' % reason for reason in reasons if reason)


class FilterModule(object):
    def filters(self):
        return {'promotion_conflict': promotion_conflict}
