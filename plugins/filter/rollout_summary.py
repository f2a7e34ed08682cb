# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: rollout_summary
short_description: The one-line summary and the outcome of a release from its rollout record
version_added: 0.2.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Takes a rollout record (or null) and returns the summary line printed at the end of a release and the outcome -
    V(held) for a paused rollout, else the record's status.
positional: service, version
options:
  _input:
    description: The rollout record, or null.
    type: dict
    required: true
  version:
    description: The version.
    type: str
    required: true
extends_documentation_fragment:
  - canary.release.release_filters.service
'''

EXAMPLES = r'''
- name: Summarise the release
  ansible.builtin.debug:
    msg: "{{ (final.record | canary.release.rollout_summary('web', '1.4.0')).summary }}"
'''

RETURN = r'''
_value:
  description: C(summary) (one line) and C(outcome) (V(promoted), V(rolled_back), V(held), V(aborted), V(running), or
    null without a record).
  type: dict
'''

from ansible_collections.canary.release.plugins.module_utils._rollout.status import outcome, summary


def rollout_summary(record, service, version):
    record = dict(record) if record else None
    return {'summary': summary(record, service, str(version)), 'outcome': outcome(record)}


class FilterModule(object):
    def filters(self):
        return {'rollout_summary': rollout_summary}
