# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: promotion_slice_start
short_description: Whether a slice of a sliced promotion may deploy its share of the stable hosts
version_added: 0.3.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Takes the C(read) results of the rollout record on the state hosts and says whether a job of
    C(playbooks/promote_hosts.yml) may deploy its share of the stable hosts. A slice takes no lock and changes no
    traffic; it works under the run the begin phase of C(promote.yml) started, so the record must be of the version,
    unfinished, and its lock held by that run (the check made before every batch, M(canary.release.rollout_state)'s
    lock information). A rollout promoted with no host left behind leaves nothing to do.
positional: service, version, run_id, artifacts
options:
  version:
    description: The version being promoted; empty for the newest record's.
    type: str
    default: ""
  run_id:
    description: C(promote_run_id); empty to take it from O(artifacts).
    type: str
    default: ""
  artifacts:
    description: The workflow's C(canary_release) artifacts (the begin phase's export).
    type: raw
extends_documentation_fragment:
  - canary.release.release_filters.records
  - canary.release.release_filters.service
'''

EXAMPLES = r'''
- name: Decide whether this slice may start
  ansible.builtin.set_fact:
    slice_start: "{{ records.results | canary.release.promotion_slice_start('web', '', promote_run_id) }}"
'''

RETURN = r'''
_value:
  description: C(version), C(run_id), C(skip) (nothing to do), C(message) and C(error) (empty when the slice may start).
  type: dict
'''

from ansible_collections.canary.release.plugins.module_utils._rollout.slicing import slice_start


def promotion_slice_start(records, service, version='', run_id='', artifacts=None):
    return slice_start(str(service), version, run_id, list(records or []), artifacts)


class FilterModule(object):
    def filters(self):
        return {'promotion_slice_start': promotion_slice_start}
