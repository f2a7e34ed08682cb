# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: promotion_batch
short_description: What a finished batch of a promotion means
version_added: 0.2.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Takes the per-host results of a promotion so far and says whether batch O(batch) stops the promotion (a host did
    not take the new version or failed its health check) and words the event - which hosts run which version.
  - The C(canary.release.promote) role uses it after every batch.
positional: service, version, batch, hosts
options:
  _input:
    description: Per-host results of this run - C(host), C(batch), C(state) (V(promoted), V(checked), V(unhealthy),
      V(failed) or V(unreachable)) and C(message).
    type: list
    elements: dict
    required: true
  batch:
    description: The number of the batch that just ended, from 1.
    type: int
    required: true
  hosts:
    description: Every stable host of the promotion, in order.
    type: list
    elements: str
    required: true
  previous_version:
    description: The version the hosts not yet promoted run.
    type: str
  batch_hosts:
    description: The hosts the batch set out to promote; one without a result in O(_input) was lost during the batch
      (V(unreachable)).
    type: list
    elements: str
    default: []
  max_fail_percentage:
    description: How many hosts of the batch, in percent, may fail or be unreachable while the promotion goes on
      (C(promote_max_fail_percentage)); more stops it.
    type: float
    default: 0
  recorded_done:
    description: The hosts an earlier run promoted (the record's per-host map), skipped by this run.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - canary.release.release_filters.version
  - canary.release.release_filters.service
  - canary.release.release_filters.check_mode
'''

EXAMPLES = r'''
- name: Conclude the batch
  ansible.builtin.debug:
    msg: "{{ (results | canary.release.promotion_batch('web', '1.4.0', 2, groups['stable'])).message }}"
'''

RETURN = r'''
_value:
  description: C(stopped) (bool), C(message) (one line), C(done) and C(pending) (host names), C(hosts) (the batch's
    per-host results, for the record), C(tolerated) (hosts that failed within O(max_fail_percentage)) and, when
    stopped, C(result) (the role's C(promote_result)).
  type: dict
'''

from ansible_collections.canary.release.plugins.module_utils._rollout.promotion import conclude_batch


def promotion_batch(results, service, version, batch, hosts, previous_version=None, check_mode=False, batch_hosts=None,
                    max_fail_percentage=0, recorded_done=None):
    return conclude_batch(service, str(version), int(batch), list(results or []), list(hosts or []),
                          previous_version or None, bool(check_mode), list(batch_hosts or []),
                          float(max_fail_percentage or 0), list(recorded_done or []))


class FilterModule(object):
    def filters(self):
        return {'promotion_batch': promotion_batch}
