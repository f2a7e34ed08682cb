#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r'''
module: release_metrics
short_description: Publish the state of a canary release as Prometheus metrics (textfile collector, Pushgateway)
version_added: 0.3.0
description:
  - Writes the state of one service's release - the canary weight, the step, the latest verdict, the outcome and the
    time of the last change - in the Prometheus text format to a C(.prom) file that node_exporter's textfile
    collector reads (O(path)), and/or pushes it to a Pushgateway (O(pushgateway_url)).
  - "The metrics, all gauges labelled C(service) and C(version):
    C(canary_release_canary_weight_percent) (0-100), C(canary_release_step) (-1 before the first step),
    C(canary_release_verdict{verdict=pass|fail|continue|inconclusive|watched}) (1 for the latest verdict only),
    C(canary_release_outcome{outcome=running|held|promoted|rolled_back|aborted}) (1 for the current outcome only) and
    C(canary_release_last_change_timestamp_seconds)."
  - A value not given keeps the one already in O(path) (the traffic role gives the weight, the rollout role the
    record); a new O(version) starts afresh (weight 0, step -1, no verdict, running).
  - Idempotent. The timestamp is the time of the last change of a value, so when no value changes the file is not
    rewritten and the task reports no change. The file is replaced atomically (a temporary file in the same
    directory, then a rename), so the collector never reads a partial file.
  - With O(pushgateway_url) the same text replaces the group C(job=canary_release), C(service=<service>) on the
    Pushgateway (HTTP PUT to C(<pushgateway_url>/metrics/job/canary_release/service/<service>)) on every run, as
    the Pushgateway keeps no history to compare with. Without O(path) a push reports a change and the timestamp is the
    time of the push.
  - O(state=absent) removes the file and deletes the group on the Pushgateway.
author:
  - canary.release maintainers (@canary-release)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Nothing is written or pushed; the result and the diff say what would be.
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  service:
    description:
      - The service whose release this is - the C(service) label, and the Pushgateway group.
    type: str
    required: true
  version:
    description:
      - The version being released, the C(version) label. Not set means the O(record)'s version, else the one in
        O(path).
    type: str
  canary_percent:
    description:
      - The canary's share of the traffic now, 0 to 100. Not set keeps the published value (or the O(record)'s).
    type: float
  step:
    description:
      - Index of the current step, -1 before the first step. Not set keeps the published value (or the O(record)'s).
    type: int
  verdict:
    description:
      - The latest verdict. Not set keeps the published verdict (or the O(record)'s latest).
    type: str
    choices: [pass, fail, continue, inconclusive, watched]
  outcome:
    description:
      - Where the release stands. V(promoting) counts as V(running), V(already_promoted) as V(promoted). Not set
        keeps the published outcome (or the one the O(record)'s status says).
    type: str
    choices: [running, held, promoting, promoted, already_promoted, rolled_back, aborted]
  record:
    description:
      - A rollout record (C(canary.release.rollout_state)'s C(record)). Its version, step and latest verdict
        (a person's approval counts as V(pass), a rejection as V(fail)) are published, and its weight while the
        release is unfinished; explicit options win over it.
    type: dict
  path:
    description:
      - The C(.prom) file in node_exporter's C(--collector.textfile.directory), one file per service, for example
        V(/var/lib/prometheus/node-exporter/canary_release_web.prom). The directory must exist.
      - Not set means no file (O(pushgateway_url) then must be set).
    type: path
  mode:
    description:
      - The mode of a new file; a replaced file keeps its mode, owner and group. The exporter must be able to read it.
    type: raw
    default: '0644'
  pushgateway_url:
    description:
      - The Pushgateway's base URL, for example V(http://pushgateway.example.com:9091). Not set means no push.
    type: str
  pushgateway_username:
    description:
      - User name for HTTP basic authentication with the Pushgateway.
    type: str
  pushgateway_password:
    description:
      - Password for HTTP basic authentication with the Pushgateway.
    type: str
  pushgateway_token:
    description:
      - Bearer token for the Pushgateway, sent as C(Authorization) header C(Bearer <token>).
    type: str
  pushgateway_timeout:
    description:
      - Seconds to wait for the Pushgateway.
    type: float
    default: 10
  validate_certs:
    description:
      - Verify the Pushgateway's TLS certificate.
    type: bool
    default: true
  state:
    description:
      - V(present) publishes the state, V(absent) removes the file and the Pushgateway group.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Scrape the Pushgateway with C(honor_labels) set to V(true), so that the C(job) and C(service) labels stay as pushed.
seealso:
  - name: The textfile collector
    description: node_exporter's documentation of the textfile collector.
    link: https://github.com/prometheus/node_exporter#textfile-collector
'''

EXAMPLES = r'''
- name: Publish the canary weight after a weight change
  canary.release.release_metrics:
    service: web
    version: "2.4.1"
    canary_percent: 25
    path: /var/lib/prometheus/node-exporter/canary_release_web.prom

- name: Publish the state of the rollout record, and push it
  canary.release.release_metrics:
    service: web
    record: "{{ rollout_record }}"
    outcome: held
    path: /var/lib/prometheus/node-exporter/canary_release_web.prom
    pushgateway_url: http://pushgateway.example.com:9091
    pushgateway_token: "{{ vault_pushgateway_token }}"

- name: Remove the metrics once the release is forgotten
  canary.release.release_metrics:
    service: web
    path: /var/lib/prometheus/node-exporter/canary_release_web.prom
    state: absent
'''

RETURN = r'''
metrics:
  description: The state published (or, in check mode, that would be); null with O(state=absent).
  returned: always
  type: dict
  contains:
    service: {description: The service label., type: str, returned: success}
    version: {description: The version label., type: str, returned: success}
    weight: {description: The canary weight in percent., type: float, returned: success}
    step: {description: 'The current step (-1 before the first).', type: int, returned: success}
    verdict: {description: The latest verdict (null before the first)., type: str, returned: success}
    outcome: {description: The current outcome., type: str, returned: success}
    timestamp: {description: Unix time of the last change., type: float, returned: success}
  sample: {service: web, version: "2.4.1", weight: 25.0, step: 1, verdict: pass, outcome: running, timestamp: 1767225600.0}
text:
  description: The text written and pushed (empty with O(state=absent)).
  returned: always
  type: str
path:
  description: The file written, or null.
  returned: always
  type: str
written:
  description: Whether the file was (or, in check mode, would be) replaced or removed.
  returned: always
  type: bool
pushed:
  description: Whether the Pushgateway took the text (or the deletion); false in check mode and without O(pushgateway_url).
  returned: always
  type: bool
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.canary.release.plugins.module_utils._observe.release_metrics import (
    DEFAULT_MODE,
    MetricsError,
    from_record,
    publish_textfile,
    push,
    read_textfile,
    remove_textfile,
    render,
    update,
)


def run(module):
    params = module.params
    path, url = params['path'], params['pushgateway_url']
    before_text, previous = read_textfile(path) if path else (None, None)
    if params['state'] == 'absent':
        state, text = None, ''
        written = before_text is not None
    else:
        values = from_record(params['record'], params['outcome'])
        given = (('weight', 'canary_percent'), ('step', 'step'), ('verdict', 'verdict'))
        values.update((key, params[name]) for key, name in given if params[name] is not None)
        state = update(previous, params['service'], params['version'], values, time.time())
        text = render(state)
        written = path is not None and text != before_text
    if written and not module.check_mode:
        if state is None:
            remove_textfile(path)
        else:
            mode = params['mode'] if isinstance(params['mode'], int) else int(str(params['mode']), 8)
            publish_textfile(path, text, mode)
    pushed = False
    if url and not module.check_mode:
        push(url, params['service'], text if state is not None else None, username=params['pushgateway_username'],
             password=params['pushgateway_password'], token=params['pushgateway_token'],
             timeout=params['pushgateway_timeout'], validate_certs=params['validate_certs'])
        pushed = True
    result = dict(changed=bool(written or (url and not path)), metrics=state, text=text, path=path, written=written,
                  pushed=pushed)
    if module._diff and path:
        result['diff'] = dict(before=before_text or '', after=text, before_header=path, after_header=path)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            service=dict(type='str', required=True),
            version=dict(type='str'),
            canary_percent=dict(type='float'),
            step=dict(type='int'),
            verdict=dict(type='str', choices=['pass', 'fail', 'continue', 'inconclusive', 'watched']),
            outcome=dict(type='str', choices=['running', 'held', 'promoting', 'promoted', 'already_promoted',
                                              'rolled_back', 'aborted']),
            record=dict(type='dict'),
            path=dict(type='path'),
            mode=dict(type='raw', default='%04o' % DEFAULT_MODE),
            pushgateway_url=dict(type='str'),
            pushgateway_username=dict(type='str'),
            pushgateway_password=dict(type='str', no_log=True),
            pushgateway_token=dict(type='str', no_log=True),
            pushgateway_timeout=dict(type='float', default=10.0),
            validate_certs=dict(type='bool', default=True),
            state=dict(type='str', default='present', choices=['present', 'absent']),
        ),
        required_one_of=[('path', 'pushgateway_url')],
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except (MetricsError, ValueError) as error:
        module.fail_json(msg=str(error))


if __name__ == '__main__':
    main()
