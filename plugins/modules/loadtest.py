#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: loadtest
short_description: Send the same bounded synthetic load to a canary and its baseline, in the background
version_added: 0.1.0
description:
  - A canary that gets little organic traffic cannot be judged in useful time - at 0.2 requests per second the judge
    needs hours. This module sends synthetic requests to the canary's and the baseline's instances directly (not
    through the load balancer), the same rate to each instance, so both arms are judged on the same load.
  - O(state=started) starts the load as a detached process on the host the task runs on and returns at once;
    O(state=stopped) stops it and returns what it sent; O(state=query) reads its counts.
  - 'The load never outlives what bounds it - O(duration); O(state=stopped); and, with O(watch_playbook) (on the
    controller), the C(ansible-playbook) process that started it: when the play ends, fails or is killed, the load
    stops within a second. On a load host reached over SSH only O(duration) and O(state=stopped) bound it.'
  - C(hey) sends the requests where it is installed (O(tool=auto)); otherwise a small Python loop does, one request
    at a time per connection on a fixed schedule (about 20 requests per second per connection; a slow service
    gets fewer requests, never a backlog). C(hey) reports its counts when it ends; the Python loop every second.
  - Starting a load that already runs with the same options changes nothing; with other options the running one is
    stopped and the new one started. Invalid options fail the task before anything starts or stops.
  - The canary.release.analysis role uses this module when C(analysis_load_canary_urls) is set - the load runs
    while the step is judged and stops with the analysis (pass, fail, deadline) before any rollback.
author:
  - canary.release maintainers (@canary-release)
options:
  state:
    description:
      - V(started) - start the load (or keep the one that runs with the same options).
      - V(stopped) - stop it; the result has its final counts.
      - V(query) - its counts, whether it runs or not.
    type: str
    choices: [started, stopped, query]
    default: started
  name:
    description:
      - Names the load (one load per name on a host) - usually the service. 1 to 128 letters, digits and C(. _ @ + -).
    type: str
    required: true
  canary_urls:
    description:
      - With O(state=started), the canary instances' URLs (C(http://) or C(https://)), one per instance; each
        gets O(rate) requests per second.
    type: list
    elements: str
  baseline_urls:
    description:
      - With O(state=started), the baseline's URLs - the baseline instances, or stable instances the judge reads
        as the baseline, one per instance; each gets O(rate) requests per second.
    type: list
    elements: str
  rate:
    description:
      - Requests per second to each URL (above 0, at most 1000).
    type: float
    default: 10
  duration:
    description:
      - The longest the load runs - seconds, or a number with C(s), C(m), C(h) or C(d) (at most a day). Required
        with O(state=started).
    type: str
  method:
    description: The HTTP method.
    type: str
    choices: [GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS]
    default: GET
  headers:
    description:
      - Request headers (a C(Host) header, an C(Authorization) token...). Not logged.
    type: dict
    default: {}
  body:
    description: The request body. Not logged.
    type: str
    default: ''
  timeout:
    description: Seconds a request may take (above 0, at most 300).
    type: float
    default: 10
  tool:
    description:
      - V(auto) - C(hey) where it is installed and able (not for V(PATCH), not for C(https://) URLs with
        O(validate_certs), since C(hey) never verifies certificates), else the Python loop.
      - V(hey) or V(python) - that one (V(hey) fails when it is missing or unable).
    type: str
    choices: [auto, hey, python]
    default: auto
  validate_certs:
    description: Whether the Python loop verifies the certificates of C(https://) URLs.
    type: bool
    default: true
  watch_playbook:
    description:
      - Stop the load when the C(ansible-playbook) process that started the task ends. Only on the host that runs
        C(ansible-playbook) (the controller, C(delegate_to=localhost)); elsewhere there is no such process to watch.
    type: bool
    default: true
  state_dir:
    description:
      - Where the load's PID file and counts are kept on the host. Default C(~/.cache/canary-release/loadtest).
    type: path
attributes:
  check_mode:
    support: full
    description: Says whether it would start or stop a load, and does neither.
  diff_mode:
    support: none
    description: A load is a process, not a file to compare.
notes:
  - Requests go from the host the task runs on to the URLs as that host reaches them.
  - The synthetic requests count in the services' metrics like any others - label them (a header your metrics can
    tell apart) if dashboards must not show them.
seealso:
  - name: Load generation for quiet canaries
    description: docs/analysis.md in the collection.
    link: https://github.com/canary-release/canary.release/blob/main/docs/analysis.md#load-generation-for-quiet-canaries
'''

EXAMPLES = r'''
- name: Load the canary and the baseline alike for the analysis, 20 req/s each, for at most 30 minutes
  canary.release.loadtest:
    name: web
    canary_urls: [http://10.0.1.10:8080/health/deep]
    baseline_urls: [http://10.0.1.20:8080/health/deep]
    rate: 20
    duration: 30m
  delegate_to: localhost

- name: Stop it and see what it sent
  canary.release.loadtest:
    name: web
    state: stopped
  delegate_to: localhost
  register: load

- name: Show the counts
  ansible.builtin.debug:
    msg: "{{ load.message }}"
'''

RETURN = r'''
state:
  description: V(running) or V(stopped) after the task.
  returned: always
  type: str
  sample: stopped
pid:
  description: The load process' PID (null when none runs or ran).
  returned: always
  type: int
  sample: 41234
tool:
  description: V(hey) or V(python) (null before a load ever ran).
  returned: always
  type: str
  sample: hey
requests:
  description: Requests sent so far (both arms; C(hey) reports them when it ends).
  returned: always
  type: int
  sample: 2400
transport_errors:
  description: Requests that got no HTTP answer (refused, reset, timed out).
  returned: always
  type: int
  sample: 0
seconds:
  description: How long the load has run.
  returned: always
  type: float
  sample: 120.4
ended:
  description:
    - Why the load ended - V(duration), V(stopped) or V(play ended); null while it runs.
  returned: always
  type: str
  sample: stopped
targets:
  description: Per URL - C(arm) (V(canary) or V(baseline)), C(url), C(rate), C(requests), C(status) (count per HTTP
    status) and C(transport_errors).
  returned: always
  type: list
  elements: dict
  sample: [{arm: canary, url: 'http://10.0.1.10:8080/', rate: 20.0, requests: 1200, status: {'200': 1188, '500': 12},
            transport_errors: 0}]
watched_pid:
  description: The C(ansible-playbook) process the load stops with (null when none).
  returned: when a load was started
  type: int
message:
  description: One line on what happened.
  returned: always
  type: str
  sample: 'load web: stopped, requests sent: baseline 1200, canary 1200 (ended: stopped)'
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.canary.release.plugins.module_utils._loadtest.load_plan import LoadPlanError
from ansible_collections.canary.release.plugins.module_utils._loadtest.load_process import LoadProcessError
from ansible_collections.canary.release.plugins.module_utils._loadtest.load_task import load_task


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type='str', choices=['started', 'stopped', 'query'], default='started'),
            name=dict(type='str', required=True),
            canary_urls=dict(type='list', elements='str'),
            baseline_urls=dict(type='list', elements='str'),
            rate=dict(type='float', default=10.0),
            duration=dict(type='str'),
            method=dict(type='str', choices=['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
                        default='GET'),
            headers=dict(type='dict', default={}, no_log=True),
            body=dict(type='str', default='', no_log=True),
            timeout=dict(type='float', default=10.0),
            tool=dict(type='str', choices=['auto', 'hey', 'python'], default='auto'),
            validate_certs=dict(type='bool', default=True),
            watch_playbook=dict(type='bool', default=True),
            state_dir=dict(type='path'),
        ),
        required_if=[('state', 'started', ('canary_urls', 'baseline_urls', 'duration'))],
        supports_check_mode=True,
    )
    try:
        result = load_task(module.params, module.check_mode)
    except LoadPlanError as error:
        module.fail_json(msg='load %s: %s' % (module.params['name'], error), problems=error.problems)
    except (LoadProcessError, OSError) as error:
        module.fail_json(msg='load %s: %s' % (module.params['name'], error))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
