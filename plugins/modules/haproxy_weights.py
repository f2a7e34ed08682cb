#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r'''
module: haproxy_weights
short_description: Set the server weights of an HAProxy backend at runtime, or give a canary group a share of traffic
version_added: 0.2.0
description:
  - Sets the weights of the servers of one HAProxy backend through the Runtime API (C(set server <backend>/<server>
    weight N) on the stats socket). HAProxy applies them at once, without a reload; no connection is dropped.
  - Optionally writes the same weights into the configuration file (O(path)), so that a later reload or restart keeps
    them. Only the value of the C(weight) keyword changes (or C( weight N) is inserted after a server's address);
    every other byte of the file stays as it was.
  - Either sets explicit weights per server (O(servers)) or computes integer weights that give the servers in
    O(canary) the share O(canary_percent) of traffic, every other non-backup server of the backend being the stable
    group.
  - Everything is checked before anything changes - the backend, every server name, the weights, the socket's level,
    and with O(path) that the file's backend has exactly the running backend's servers. A failed check changes
    neither HAProxy nor the file.
  - With O(path), the new file is written to a temporary file beside it and validated (O(validate_command)) first,
    then the weights are set and read back, then the temporary file replaces the file atomically. If HAProxy refuses
    a weight or the read-back differs, the weights already set are put back and the file is left as it was; after a
    successful task the running HAProxy and the file agree.
  - Runs on the HAProxy host (or anywhere that reaches a TCP stats socket).
author:
  - canary.release maintainers (@canary-release)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  backend:
    description:
      - Name of the backend (a C(backend) or C(listen) section).
    type: str
    required: true
  socket:
    description:
      - The stats socket at level C(admin) - a path such as V(/run/haproxy/admin.sock) (C(stats socket
        /run/haproxy/admin.sock mode 660 level admin) in the C(global) section), or V(host:port) for a TCP socket
        (C(stats socket ipv4@127.0.0.1:9999 level admin)). C(ipv4@), C(ipv6@) and C(unix@) prefixes are accepted.
      - O(state=query) works at any level.
    type: str
    required: true
  path:
    description:
      - The configuration file that holds the backend section, to keep in step with the runtime weights. Not set
        means runtime only (weights are lost at the next reload unless HAProxy reloads its server state).
      - After the task every server of the backend has its runtime weight in the file, including servers the task did
        not name.
      - A symbolic link is followed; the file it points to is edited.
    type: path
  servers:
    description:
      - Explicit weights. Servers of the backend that are not listed keep their weights.
      - Mutually exclusive with O(canary).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The server name (the second word of its C(server) line).
        type: str
        required: true
      weight:
        description:
          - The weight, an integer from 0 to 256. V(0) drains the server - it gets no new requests, while established
            connections and sessions that are persistent on it (stickiness) stay, as HAProxy does.
        type: int
        required: true
  canary:
    description:
      - Names of the canary servers. Every other server of the backend that is not a C(backup) server is stable.
      - Requires O(canary_percent) with O(state=present). With O(state=query) it makes the module report the current
        canary share.
      - Mutually exclusive with O(servers).
    type: list
    elements: str
  canary_percent:
    description:
      - Share of traffic for the canary group, from V(0) to V(100).
      - All canary servers get one weight and all stable servers another, both between 1 and O(max_weight), chosen so
        that the canary share is exactly O(canary_percent) when possible, otherwise as close as possible; among
        equally good pairs the smallest weights win. For example 1 canary and 9 stable servers at 5 % get weights 9
        and 19.
      - V(0) gives the canary servers weight 0 (drained) and the stable servers weight 1. V(100) gives the stable
        servers weight 0 and the canary servers weight 1.
      - The share reached is returned as RV(canary_percent); the task warns when it is more than half a percentage
        point from the request.
    type: float
  max_weight:
    description:
      - Largest weight O(canary_percent) may use, from 1 to 256 (HAProxy's largest weight).
    type: int
    default: 256
  state:
    description:
      - V(present) sets the weights. V(query) only reports them (and the canary share when O(canary) is given, and
        whether the file is in step when O(path) is given) and changes nothing.
    type: str
    choices: [present, query]
    default: present
  validate_command:
    description:
      - Checks the new configuration before anything changes; V(%s) is replaced by the temporary file that holds the
        new content. It runs in the directory of O(path), so relative paths in the configuration resolve as usual.
      - When HAProxy loads several files, name the others too, for example
        V(haproxy -c -f /etc/haproxy/global.cfg -f %s). An empty string skips validation.
    type: str
    default: haproxy -c -f %s
  backup:
    description:
      - Copy the file to C(<path>.<pid>.<timestamp>~) before replacing it.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for another run on the same O(path) (a lock file beside it serialises runs).
    type: float
    default: 60
  timeout:
    description:
      - Seconds one request to the stats socket may take.
    type: float
    default: 10
notes:
  - Weights matter to the C(roundrobin), C(leastconn), C(first) and consistent hashing algorithms. Backends with a
    static algorithm (C(static-rr), map-based hashing) only accept 0 % and 100 % at runtime; HAProxy refuses the
    first weight and nothing is changed.
  - Servers in maintenance or failing their health checks get no traffic whatever their weight; RV(canary_percent)
    is computed from the weights alone.
  - A reload starts HAProxy from the file. Without O(path), runtime weights survive a reload only with
    C(server-state-file) and C(load-server-state-from-file).
seealso:
  - module: canary.release.nginx_weights
'''

EXAMPLES = r'''
- name: Send 5 % of traffic to the canary server, and keep the file in step
  canary.release.haproxy_weights:
    backend: app
    socket: /run/haproxy/admin.sock
    path: /etc/haproxy/haproxy.cfg
    canary: [app-canary-1]
    canary_percent: 5
  register: shift

- name: Show the share reached and the weights set
  ansible.builtin.debug:
    msg: "{{ shift.canary_percent }} % with weights {{ shift.weights }}"

- name: Drain one server at runtime only, over a TCP stats socket
  canary.release.haproxy_weights:
    backend: app
    socket: 127.0.0.1:9999
    servers:
      - name: app-3
        weight: 0

- name: Roll back, validating with the other configuration file HAProxy loads
  canary.release.haproxy_weights:
    backend: app
    socket: /run/haproxy/admin.sock
    path: /etc/haproxy/conf.d/app.cfg
    canary: [app-canary-1]
    canary_percent: 0
    validate_command: haproxy -c -f /etc/haproxy/haproxy.cfg -f %s

- name: Read the current split and whether the file agrees
  canary.release.haproxy_weights:
    backend: app
    socket: /run/haproxy/admin.sock
    path: /etc/haproxy/haproxy.cfg
    canary: [app-canary-1]
    state: query
  register: current
'''

RETURN = r'''
backend:
  description: The backend name.
  returned: always
  type: str
  sample: app
socket:
  description: The stats socket used.
  returned: always
  type: str
  sample: /run/haproxy/admin.sock
path:
  description: The configuration file (symbolic links resolved), or V(null) without O(path).
  returned: always
  type: str
  sample: /etc/haproxy/haproxy.cfg
weights:
  description: Server name to weight after the task (what HAProxy now has, read back; in check mode what it would have).
  returned: always
  type: dict
  sample: {app-canary-1: 9, app-1: 19, app-2: 19}
weights_before:
  description: Server name to weight before the task.
  returned: always
  type: dict
  sample: {app-canary-1: 1, app-1: 1, app-2: 1}
servers_before:
  description: The servers of the backend before the task, in HAProxy's order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The server name.
      type: str
      sample: app-1
    address:
      description: Its address and port.
      type: str
      sample: 10.0.0.11:8080
    weight:
      description: Its weight (HAProxy's C(srv_uweight)).
      type: int
      sample: 1
    backup:
      description: Whether it is a C(backup) server.
      type: bool
      sample: false
    operational:
      description: Whether HAProxy considers it up (health checks).
      type: bool
      sample: true
    maintenance:
      description: Whether it is in maintenance (C(disabled), C(set server ... state maint)).
      type: bool
      sample: false
servers_after:
  description: The servers after the task. Same shape as RV(servers_before).
  returned: always
  type: list
  elements: dict
  sample: [{name: app-canary-1, address: 10.0.0.10:8080, weight: 9, backup: false, operational: true,
            maintenance: false}]
canary_percent:
  description:
    - The canary group's share of traffic after the task, in percent, from the weights of the non-backup servers.
      V(null) when every non-backup server has weight 0.
  returned: when O(canary) is given
  type: float
  sample: 5.0
canary_percent_before:
  description: The canary group's share before the task.
  returned: when O(canary) is given
  type: float
  sample: 10.0
group_weights:
  description: The per-server weights chosen for O(canary_percent).
  returned: when O(canary_percent) is given and O(state=present)
  type: dict
  contains:
    canary:
      description: Weight of every canary server.
      type: int
      sample: 9
    stable:
      description: Weight of every stable server.
      type: int
      sample: 19
    exact:
      description: Whether the requested share is reached exactly.
      type: bool
      sample: true
runtime_changed:
  description: Whether weights were (or in check mode would be) set through the Runtime API.
  returned: always
  type: bool
file_changed:
  description: Whether the file was (or in check mode would be) changed.
  returned: always
  type: bool
validated:
  description: Whether O(validate_command) ran on the new file and succeeded.
  returned: always
  type: bool
verified:
  description: Whether the weights were read back from HAProxy after the change and match RV(weights).
  returned: always
  type: bool
file_weights:
  description: Server name to weight as the file says.
  returned: when O(state=query) and O(path) is given
  type: dict
  sample: {app-canary-1: 9, app-1: 19}
in_step:
  description: Whether the file's weights are the running HAProxy's.
  returned: when O(state=query) and O(path) is given
  type: bool
backup_file:
  description: The backup copy made before the file changed.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /etc/haproxy/haproxy.cfg.2417.2025-01-31@12:00:00~
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.canary.release.plugins.module_utils._haproxy.haproxy_traffic import (
    DEFAULT_MAX_WEIGHT,
    DEFAULT_VALIDATE_COMMAND,
    ConfigFileError,
    HaproxyConfigError,
    HaproxyRuntimeError,
    RequestError,
    WeightError,
    set_backend_weights,
)
from ansible_collections.canary.release.plugins.module_utils.durable_files import DEFAULT_LOCK_TIMEOUT


def diffs(result):
    """Ansible diff entries: the runtime weights, and the file when it changes."""
    entries = []
    if result['runtime_changed']:
        header = '%s backend %s (runtime)' % (result['socket'], result['backend'])
        entries.append({'before': result['before_text'], 'after': result['after_text'],
                        'before_header': header, 'after_header': header})
    if result['file_changed']:
        entries.append({'before': result['file_before'], 'after': result['file_after'],
                        'before_header': result['path'], 'after_header': result['path']})
    return entries


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backend=dict(type='str', required=True),
            socket=dict(type='str', required=True),
            path=dict(type='path'),
            servers=dict(type='list', elements='dict', options=dict(
                name=dict(type='str', required=True),
                weight=dict(type='int', required=True),
            )),
            canary=dict(type='list', elements='str'),
            canary_percent=dict(type='float'),
            max_weight=dict(type='int', default=DEFAULT_MAX_WEIGHT),
            state=dict(type='str', default='present', choices=['present', 'query']),
            validate_command=dict(type='str', default=DEFAULT_VALIDATE_COMMAND),
            backup=dict(type='bool', default=False),
            lock_timeout=dict(type='float', default=DEFAULT_LOCK_TIMEOUT),
            timeout=dict(type='float', default=10.0),
        ),
        mutually_exclusive=[('servers', 'canary')],
        required_if=[('state', 'present', ('servers', 'canary'), True)],
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = set_backend_weights(
            backend=params['backend'], socket=params['socket'], path=params['path'], servers=params['servers'],
            canary=params['canary'], canary_percent=params['canary_percent'], max_weight=params['max_weight'],
            state=params['state'], check_mode=module.check_mode, validate_command=params['validate_command'],
            backup=params['backup'], lock_timeout=params['lock_timeout'], timeout=params['timeout'])
    except ConfigFileError as error:
        module.fail_json(msg=str(error), rc=error.rc, stdout=error.stdout, stderr=error.stderr)
    except (RequestError, WeightError, HaproxyConfigError, HaproxyRuntimeError) as error:
        module.fail_json(msg=str(error))
    for warning in result.pop('warnings', []):
        module.warn(warning)
    entries = diffs(result)
    for key in ('before_text', 'after_text', 'file_before', 'file_after'):
        result.pop(key)
    if module._diff and entries:
        result['diff'] = entries
    module.exit_json(**result)


if __name__ == '__main__':
    main()
