#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r'''
module: nginx_canary_routing
short_description: Force chosen requests to the canary and keep users on one side, on NGINX
version_added: 0.1.0
description:
  - Writes a fully managed NGINX snippet (the whole file is owned by this module) to be included inside
    C(http {}). It defines a variable that names the upstream for each request, so the site uses
    C(proxy_pass http://$canary_release_<upstream>;).
  - Requests whose header O(header_name) has the secret O(header_secret) (or one of O(header_values)), or whose
    cookie O(cookie_name) has O(cookie_secret) (or one of O(cookie_values)), go to O(canary_upstream), a group of
    canary servers only; every other request goes to O(upstream), whose weights M(canary.release.nginx_weights)
    sets. With O(trusted_sources), only requests from those networks can be forced; with a secret and
    O(trusted_sources), a request needs both.
  - Forcing that anyone could use is refused before anything is written - public values (the old default
    header C(X-Canary) with C(always), or any O(header_values)/O(cookie_values)) without O(trusted_sources) - unless
    O(allow_public_forcing=true). Secrets must pass the rule in docs/nginx.md (16 to 128 visible ASCII
    characters, at least 8 different ones, an estimated 64 bits or more).
  - With O(sticky), it also defines a sticky key and a C(Set-Cookie) value so that
    C(hash $<variable>_sticky_key consistent;) in O(upstream) keeps each user on one side while the weights
    still decide which share of users lands on the canary.
  - The file is replaced atomically, validated and reloaded; on failure the previous file is restored (or the
    new one removed). Concurrent runs on the same file are serialised.
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
      - The snippet file. It is created when missing and completely rewritten otherwise.
    type: path
    required: true
  upstream:
    description:
      - The weighted upstream (stable and canary servers) that normal requests use.
    type: str
    required: true
  canary_upstream:
    description:
      - The upstream that forced requests use. It must contain only canary servers.
      - Defined in the snippet when O(canary_servers) is given, otherwise it must be defined elsewhere.
    type: str
    required: true
  canary_servers:
    description:
      - Addresses of the canary servers. When given, the snippet defines O(canary_upstream) with them.
    type: list
    elements: str
  variable:
    description:
      - Name (without C($)) of the variable holding the upstream name. Defaults to C(canary_release_) followed
        by O(upstream) with characters other than letters, digits and C(_) replaced by C(_).
    type: str
  header_name:
    description:
      - Request header that forces the canary when it has O(header_secret) or one of O(header_values).
    type: str
    default: X-Canary
  header_secret:
    description:
      - The secret header value that forces the canary (exact, case-sensitive match). Not logged.
      - 16 to 128 visible ASCII characters without C(*) and C(?), at least 8 different characters (letter case
        ignored) and an estimated strength of at least 64 bits (see docs/nginx.md); generate it, for example
        with C(openssl rand -hex 20).
      - The snippet file holds the value; diffs show a placeholder instead.
    type: str
  header_values:
    description:
      - Public header values that force the canary (exact match, case-insensitive). They are not secret (they
        appear in logs and outputs), so they need O(trusted_sources) or O(allow_public_forcing=true).
      - Not set means V([always]) (the old default) when O(header_secret) is not set either, and none otherwise;
        V(always) without O(trusted_sources) is refused, with a message saying what to set.
      - An empty list disables forcing by a public header value.
    type: list
    elements: str
  cookie_name:
    description:
      - Cookie that forces the canary when it has O(cookie_secret) or one of O(cookie_values), for example a
        beta-tester cookie. Letters, digits and C(_) only. Not set means no forcing by cookie.
    type: str
  cookie_secret:
    description:
      - The secret cookie value that forces the canary (exact, case-sensitive match). Not logged.
      - The same rule as O(header_secret), and no double quote, comma, semicolon or backslash (not allowed in a cookie value).
    type: str
  cookie_values:
    description:
      - Public cookie values that force the canary (exact match, case-insensitive); like O(header_values), they
        need O(trusted_sources) or O(allow_public_forcing=true).
      - Not set means V([always]) when O(cookie_secret) is not set either, and none otherwise.
    type: list
    elements: str
  trusted_sources:
    description:
      - Networks (CIDRs, IPv4 or IPv6; a single address means /32 or /128) whose clients may force the canary.
        Every forcing (header or cookie, secret or public value) then also needs a client address in one of them.
      - Matched by a C(geo) block on the address NGINX sees, C($remote_addr); when the real-IP module is
        configured (C(set_real_ip_from), C(real_ip_header)), that is the address it found. Trust only proxies you
        run in C(set_real_ip_from), or any client can claim a trusted address.
      - Networks wider than /8 (IPv4) or /16 (IPv6), host bits set, and overlapping networks are refused.
    type: list
    elements: str
  allow_public_forcing:
    description:
      - Accept public forcing values without O(trusted_sources). B(Dangerous) - anyone who learns or guesses the
        value reaches the canary, even at 0 %, while an unreviewed build runs. Issues a warning. For test systems.
    type: bool
    default: false
  sticky:
    description:
      - Define C($<variable>_sticky_key) and C($<variable>_set_cookie) for sticky sessions. Add
        C(hash $<variable>_sticky_key consistent;) to O(upstream) and
        C(add_header Set-Cookie $<variable>_set_cookie always;) where the site proxies; RV(directives) returns
        both lines.
      - A request without the cookie is hashed on its C($request_id) and gets the cookie with that value, so its
        next requests reach the same server as long as the weights stay the same.
    type: bool
    default: false
  sticky_cookie:
    description:
      - Name of the sticky cookie. Letters, digits and C(_) only.
    type: str
    default: canary_sticky
  sticky_max_age:
    description:
      - C(Max-Age) of the sticky cookie in seconds.
    type: int
    default: 86400
seealso:
  - module: canary.release.nginx_weights
'''

EXAMPLES = r'''
- name: Let testers reach the canary with a secret header, from the office and VPN only; keep users sticky
  canary.release.nginx_canary_routing:
    path: /etc/nginx/conf.d/app_routing.conf
    upstream: app
    canary_upstream: app_canary
    canary_servers: [10.0.0.10:8080]
    header_secret: "{{ vault_canary_header_secret }}"   # X-Canary: <secret>
    trusted_sources: [192.0.2.0/24, "2001:db8:10::/48"]
    cookie_name: beta
    cookie_secret: "{{ vault_beta_cookie_secret }}"     # beta testers anywhere (and in trusted_sources)
    sticky: true
  register: routing

# nginx.conf, inside http {} (the snippet defines the variables used here):
#   include /etc/nginx/conf.d/app_routing.conf;
#   upstream app {
#       hash $canary_release_app_sticky_key consistent;
#       server 10.0.0.10:8080;   # canary
#       server 10.0.0.11:8080;
#   }
#   server {
#       location / {
#           add_header Set-Cookie $canary_release_app_set_cookie always;
#           proxy_pass http://$canary_release_app;
#       }
#   }

- name: Stop forcing once the canary is promoted
  canary.release.nginx_canary_routing:
    path: /etc/nginx/conf.d/app_routing.conf
    upstream: app
    canary_upstream: app_canary
    canary_servers: [10.0.0.10:8080]
    header_values: []
'''

RETURN = r'''
path:
  description: The snippet file (symbolic links resolved).
  returned: always
  type: str
  sample: /etc/nginx/conf.d/app_routing.conf
variables:
  description: The NGINX variables the snippet defines.
  returned: always
  type: dict
  contains:
    upstream:
      description: Holds the upstream name for the request.
      type: str
      sample: $canary_release_app
    sticky_key:
      description: The sticky hash key (only with O(sticky)).
      type: str
      sample: $canary_release_app_sticky_key
    set_cookie:
      description: The C(Set-Cookie) value for requests without the sticky cookie (only with O(sticky)).
      type: str
      sample: $canary_release_app_set_cookie
directives:
  description: Lines to put in the site configuration.
  returned: always
  type: dict
  contains:
    proxy_pass:
      description: For the C(location) that proxies to the application.
      type: str
      sample: proxy_pass http://$canary_release_app;
    hash:
      description: For the O(upstream) block (only with O(sticky)).
      type: str
      sample: hash $canary_release_app_sticky_key consistent;
    add_header:
      description: For the C(location) that proxies (only with O(sticky)).
      type: str
      sample: add_header Set-Cookie $canary_release_app_set_cookie always;
backup_file:
  description: The backup copy made before the change.
  returned: when O(backup=true) and an existing file changed
  type: str
  sample: /etc/nginx/conf.d/app_routing.conf.2417.2025-01-31@12:00:00~
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

from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_config_file import (
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_RELOAD_COMMAND,
    DEFAULT_VALIDATE_COMMAND,
    ConfigFileError,
    split_command,
    update_file,
)
from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_routing import (
    DEFAULT_HEADER_NAME,
    DEFAULT_STICKY_COOKIE,
    DEFAULT_STICKY_MAX_AGE,
    RoutingError,
    redact,
    render,
    routing_spec,
)
from ansible_collections.canary.release.plugins.module_utils._common.forcing_policy import PUBLIC_FORCING_WARNING


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            upstream=dict(type='str', required=True),
            canary_upstream=dict(type='str', required=True),
            canary_servers=dict(type='list', elements='str'),
            variable=dict(type='str'),
            header_name=dict(type='str', default=DEFAULT_HEADER_NAME),
            header_secret=dict(type='str', no_log=True),
            header_values=dict(type='list', elements='str'),
            cookie_name=dict(type='str'),
            cookie_secret=dict(type='str', no_log=True),
            cookie_values=dict(type='list', elements='str'),
            trusted_sources=dict(type='list', elements='str'),
            allow_public_forcing=dict(type='bool', default=False),
            sticky=dict(type='bool', default=False),
            sticky_cookie=dict(type='str', default=DEFAULT_STICKY_COOKIE),
            sticky_max_age=dict(type='int', default=DEFAULT_STICKY_MAX_AGE),
            validate_command=dict(type='str', default=DEFAULT_VALIDATE_COMMAND),
            reload_command=dict(type='str', default=DEFAULT_RELOAD_COMMAND),
            reload=dict(type='bool', default=True),
            backup=dict(type='bool', default=False),
            lock_timeout=dict(type='float', default=DEFAULT_LOCK_TIMEOUT),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        spec = routing_spec(
            upstream=params['upstream'], canary_upstream=params['canary_upstream'],
            canary_servers=params['canary_servers'], variable=params['variable'], header_name=params['header_name'],
            header_values=params['header_values'], cookie_name=params['cookie_name'],
            cookie_values=params['cookie_values'], sticky=params['sticky'], sticky_cookie=params['sticky_cookie'],
            sticky_max_age=params['sticky_max_age'], header_secret=params['header_secret'],
            cookie_secret=params['cookie_secret'], trusted_sources=params['trusted_sources'],
            allow_public_forcing=params['allow_public_forcing'])
        text = render(spec)
        outcome = update_file(
            params['path'], lambda before: (text, None), check_mode=module.check_mode,
            validate_argv=split_command(params['validate_command']),
            reload_argv=split_command(params['reload_command']) if params['reload'] else [],
            backup=params['backup'], lock_timeout=params['lock_timeout'], create=True)
    except RoutingError as error:
        module.fail_json(msg=str(error))
    except ConfigFileError as error:
        module.fail_json(msg=str(error), rc=error.rc, stdout=error.stdout, stderr=error.stderr,
                         restored=error.restored)
    if spec.public_forcing:
        module.warn(PUBLIC_FORCING_WARNING % 'a forcing value')
    variables, directives = spec.variables()
    result = dict(changed=outcome.changed, path=outcome.path, variables=variables, directives=directives,
                  validated=outcome.validated, reloaded=outcome.reloaded)
    if outcome.backup_file:
        result['backup_file'] = outcome.backup_file
    if module._diff and outcome.changed:
        # The snippet holds the secrets, escaped (so no_log would not recognise them): show placeholders.
        result['diff'] = {'before': redact(outcome.before or ''), 'after': redact(outcome.after, outcome.before or ''),
                          'before_header': outcome.path if outcome.before is not None else '/dev/null',
                          'after_header': outcome.path}
    module.exit_json(**result)


if __name__ == '__main__':
    main()
