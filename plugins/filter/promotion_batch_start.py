# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: promotion_batch_start
short_description: What a batch of a promotion sets out to do, before it touches a host
version_added: 0.3.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Takes the C(read) results of the rollout record and the hosts of the batch and says which of them the batch
    promotes (the record's per-host map says which stable hosts an earlier run already promoted; a re-run skips them)
    and what to record before the batch starts (the hosts as V(deploying), so a run that dies during the batch leaves
    their version recorded as unknown).
  - The C(canary.release.promote) role uses it before every batch.
positional: service, version, batch, batch_hosts
options:
  batch:
    description: The number of the batch, from 1.
    type: int
    required: true
  batch_hosts:
    description: The hosts of the batch (C(ansible_play_batch)).
    type: list
    elements: str
    required: true
  max_fail_percentage:
    description: C(promote_max_fail_percentage), checked (see RV(_value.error)).
    type: raw
    default: 0
extends_documentation_fragment:
  - canary.release.release_filters.records
  - canary.release.release_filters.version
  - canary.release.release_filters.service
'''

EXAMPLES = r'''
- name: Decide what the batch does
  ansible.builtin.set_fact:
    batch_start: "{{ records.results | canary.release.promotion_batch_start('web', '1.4.0', 2, ansible_play_batch) }}"
'''

RETURN = r'''
_value:
  description: C(done) (the stable hosts the record says run the version), C(todo) (the hosts of the batch to promote),
    C(hosts) (their V(deploying) entries for O(canary.release.rollout_state#module:hosts)), C(message) (the event) and
    C(error) (an invalid O(max_fail_percentage); empty when valid).
  type: dict
'''

from ansible_collections.canary.release.plugins.module_utils._rollout.promotion import batch_start


def promotion_batch_start(records, service, version, batch, batch_hosts, max_fail_percentage=0):
    return batch_start(service, str(version), int(batch), [str(host) for host in batch_hosts or []], list(records or []),
                       max_fail_percentage)


class FilterModule(object):
    def filters(self):
        return {'promotion_batch_start': promotion_batch_start}
