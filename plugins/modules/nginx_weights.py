#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r'''
module: nginx_weights
short_description: Set the server weights of an NGINX upstream, or give a canary group a share of traffic
version_added: 0.1.0
description:
  - Edits the C(weight=) and C(down) parameters of the C(server) lines of one C(upstream) block in an NGINX
    configuration file, then validates and reloads NGINX.
  - Only those tokens change. Every other byte of the file stays as it was, including comments, order, other
    upstreams, C(zone), C(keepalive), C(hash), C(max_fails), C(fail_timeout), C(backup), C(resolve), includes
    and line endings.
  - Either sets explicit weights per server (O(servers)) or computes integer weights that give the servers in
    O(canary) the share O(canary_percent) of traffic, every other non-backup server of the upstream being the
    stable group.
  - The file is replaced atomically; if validation or the reload fails the previous content is restored byte
    for byte. Concurrent runs on the same file are serialised by a lock file.
  - Runs on the NGINX host.
author:
  - canary.release maintainers (@canary-release)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - canary.release.nginx
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  path:
    description:
      - The file that holds the upstream block, the main C(nginx.conf) or an included file.
      - A symbolic link is followed; the file it points to is edited.
    type: path
    required: true
  upstream:
    description:
      - Name of the upstream block. It must be defined exactly once in O(path), at any nesting level.
    type: str
    required: true
  servers:
    description:
      - Explicit weights. Servers of the upstream that are not listed keep their settings.
      - Mutually exclusive with O(canary).
    type: list
    elements: dict
    suboptions:
      address:
        description:
          - The server address exactly as written in the file, for example V(10.0.0.5:8080), V([::1]:8080),
            V(unix:/run/app.sock) or V(app.internal:80).
        type: str
        required: true
      weight:
        description:
          - The weight, an integer. V(0) takes the server out of rotation with C(down) (NGINX rejects
            C(weight=0)) and keeps its C(weight=) token; a positive weight sets C(weight=) and removes C(down).
        type: int
        required: true
  canary:
    description:
      - Addresses of the canary servers, as written in the file. Every other server of the upstream that is not
        a C(backup) server is stable.
      - Requires O(canary_percent) with O(state=present). With O(state=query) it makes the module report the
        current canary share.
      - Mutually exclusive with O(servers).
    type: list
    elements: str
  canary_percent:
    description:
      - Share of traffic for the canary group, from V(0) to V(100).
      - All canary servers get one weight and all stable servers another, both between 1 and O(max_weight),
        chosen so that the canary share is exactly O(canary_percent) when possible, otherwise as close as
        possible; among equally good pairs the smallest weights win. For example 1 canary and 9 stable
        servers at 5 % get weights 9 and 19.
      - V(0) marks the canary servers C(down) and gives the stable servers weight 1. V(100) marks the stable
        servers C(down) and gives the canary servers weight 1.
      - The share actually reached is returned as RV(canary_percent); the task warns when it is more than half a
        percentage point from the request. With C(n_c) canary and C(n_s) stable servers the reachable shares lie
        between C(n_c/(n_c + n_s*max_weight)) and C(n_c*max_weight/(n_c*max_weight + n_s)).
    type: float
  max_weight:
    description:
      - Largest weight O(canary_percent) may use, from 1 to 1000. Larger values allow finer shares; with
        C(hash ... consistent) NGINX allocates 160 ring points per unit of weight per server, so keep it small
        for very large upstreams.
    type: int
    default: 100
  state:
    description:
      - V(present) changes the weights. V(query) only reports the current servers (and the canary share when
        O(canary) is given) and changes nothing.
    type: str
    choices: [present, query]
    default: present
notes:
  - Weighted round robin, C(least_conn), C(random) and C(hash ... consistent) honour weights; the share of
    requests (or of hash keys) a server gets is its weight divided by the sum of the weights of the servers
    that are up. C(backup) servers get no traffic while a primary server is up and are left untouched by
    O(canary_percent).
  - A server whose hostname resolves to several addresses counts once in the share computation, while NGINX
    gives each resolved address the weight.
seealso:
  - module: canary.release.nginx_canary_routing
'''

EXAMPLES = r'''
- name: Send 5 % of traffic to the canary server
  canary.release.nginx_weights:
    path: /etc/nginx/conf.d/app_upstream.conf
    upstream: app
    canary:
      - 10.0.0.10:8080
    canary_percent: 5
  register: shift

- name: Show the share reached and the weights used
  ansible.builtin.debug:
    msg: "{{ shift.canary_percent }} % with weights {{ shift.weights.canary }}/{{ shift.weights.stable }}"

- name: Set weights explicitly and take one server out of rotation
  canary.release.nginx_weights:
    path: /etc/nginx/nginx.conf
    upstream: app
    servers:
      - address: 10.0.0.5:8080
        weight: 3
      - address: unix:/run/app.sock
        weight: 0

- name: Roll back (canary servers down), validating a non-default configuration path
  canary.release.nginx_weights:
    path: /opt/nginx/conf/upstreams.conf
    upstream: app
    canary: [10.0.0.10:8080]
    canary_percent: 0
    validate_command: /opt/nginx/sbin/nginx -p /opt/nginx -t
    reload_command: /opt/nginx/sbin/nginx -p /opt/nginx -s reload

- name: Read the current split without changing anything
  canary.release.nginx_weights:
    path: /etc/nginx/conf.d/app_upstream.conf
    upstream: app
    canary: [10.0.0.10:8080]
    state: query
  register: current
'''

RETURN = r'''
path:
  description: The file that was read (symbolic links resolved).
  returned: always
  type: str
  sample: /etc/nginx/conf.d/app_upstream.conf
upstream:
  description: The upstream name.
  returned: always
  type: str
  sample: app
servers_before:
  description: The servers of the upstream before the task, in file order.
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: The address as written in the file.
      type: str
      sample: 10.0.0.5:8080
    weight:
      description: The effective weight (1 when the file has no C(weight=) token).
      type: int
      sample: 19
    down:
      description: Whether the server is marked C(down).
      type: bool
      sample: false
    backup:
      description: Whether the server is a C(backup) server.
      type: bool
      sample: false
servers_after:
  description:
    - The servers after the task (what the file now says, or would say in check mode). Same shape as
      RV(servers_before).
  returned: always
  type: list
  elements: dict
  sample: [{address: 10.0.0.10:8080, weight: 9, down: false, backup: false}]
canary_percent:
  description:
    - The canary group's share of traffic after the task, in percent, computed from the weights of the servers
      that are up. V(null) when no primary server is up.
  returned: when O(canary) is given
  type: float
  sample: 5.0
canary_percent_before:
  description: The canary group's share before the task.
  returned: when O(canary) is given
  type: float
  sample: 0.0
weights:
  description: The per-server weights chosen for O(canary_percent).
  returned: when O(canary_percent) is given and O(state=present)
  type: dict
  contains:
    canary:
      description: Weight of every canary server; V(null) when they are marked C(down) (0 %).
      type: int
      sample: 9
    stable:
      description: Weight of every stable server; V(null) when they are marked C(down) (100 %).
      type: int
      sample: 19
    exact:
      description: Whether the requested share is reached exactly.
      type: bool
      sample: true
backup_file:
  description: The backup copy made before the change.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /etc/nginx/nginx.conf.2417.2025-01-31@12:00:00~
validated:
  description: Whether O(validate_command) ran and succeeded.
  returned: always
  type: bool
reloaded:
  description: Whether O(reload_command) ran and succeeded.
  returned: always
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.canary.release.plugins.module_utils._common.canary_weights import DEFAULT_MAX_WEIGHT, WeightError
from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_config_file import (
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_RELOAD_COMMAND,
    DEFAULT_VALIDATE_COMMAND,
    ConfigFileError,
)
from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_traffic import RequestError, set_upstream_weights
from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_upstream import NginxConfigError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            upstream=dict(type='str', required=True),
            servers=dict(type='list', elements='dict', options=dict(
                address=dict(type='str', required=True),
                weight=dict(type='int', required=True),
            )),
            canary=dict(type='list', elements='str'),
            canary_percent=dict(type='float'),
            max_weight=dict(type='int', default=DEFAULT_MAX_WEIGHT),
            state=dict(type='str', default='present', choices=['present', 'query']),
            validate_command=dict(type='str', default=DEFAULT_VALIDATE_COMMAND),
            reload_command=dict(type='str', default=DEFAULT_RELOAD_COMMAND),
            reload=dict(type='bool', default=True),
            backup=dict(type='bool', default=False),
            lock_timeout=dict(type='float', default=DEFAULT_LOCK_TIMEOUT),
        ),
        mutually_exclusive=[('servers', 'canary')],
        required_if=[('state', 'present', ('servers', 'canary'), True)],
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = set_upstream_weights(
            path=params['path'], upstream=params['upstream'], servers=params['servers'], canary=params['canary'],
            canary_percent=params['canary_percent'], max_weight=params['max_weight'], state=params['state'],
            check_mode=module.check_mode, validate_command=params['validate_command'],
            reload_command=params['reload_command'], reload=params['reload'], backup=params['backup'],
            lock_timeout=params['lock_timeout'])
    except ConfigFileError as error:
        module.fail_json(msg=str(error), rc=error.rc, stdout=error.stdout, stderr=error.stderr,
                         restored=error.restored)
    except (RequestError, WeightError, NginxConfigError) as error:
        module.fail_json(msg=str(error))
    for warning in result.pop('warnings', []):
        module.warn(warning)
    before_text = result.pop('before_text')
    after_text = result.pop('after_text')
    if module._diff and result['changed']:
        result['diff'] = {'before': before_text, 'after': after_text,
                          'before_header': result['path'], 'after_header': result['path']}
    module.exit_json(**result)


if __name__ == '__main__':
    main()
