#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r'''
module: alb_canary_rule
short_description: Force requests with a header to the canary target group on an AWS application load balancer
version_added: 0.1.0
description:
  - Keeps (O(state=present)) or removes (O(state=absent)) one listener rule that forwards requests carrying the
    header O(header_name) with the secret O(header_secret) (or one of O(header_values)) to the canary target group,
    whatever the weights of the default action are. With O(trusted_sources), the rule also has a C(source-ip)
    condition, so only clients from those networks are forced; the ALB requires all conditions of a rule, so with
    a secret and O(trusted_sources) a request needs both. Testers and synthetic checks reach the new version
    during a rollout; remove the rule when the rollout ends.
  - Forcing that anyone could use is refused before any API call - public values (the old default
    header C(X-Canary) with C(always), or any O(header_values)) without O(trusted_sources) - unless
    O(allow_public_forcing=true). Secrets must pass the rule in docs/alb.md (16 to 128 visible ASCII characters
    without C(*) and C(?), at least 8 different ones, an estimated 64 bits or more). What the ALB would refuse (more than
    3 values per condition or 5 per rule, more than 5 wildcards, values over 128 characters) is refused first too.
  - The rule is identified by its header - a non-default rule whose conditions are one C(http-header) condition
    with this header name (compared without case, as the load balancer does) and at most one C(source-ip)
    condition is this module's rule, whoever created it, whatever its values; its values and networks are brought
    in line, so rotating the secret updates the rule. Rules created here also carry the tag
    C(canary.release/header-rule).
  - With O(state=present), a missing rule is created at O(priority) or at the lowest free priority; an existing
    rule gets its conditions and its forward action brought in line (other actions, such as authentication, are
    kept) and is moved to O(priority) when given. Two or more matching rules are an error; O(state=absent) deletes
    them all.
  - Rules are evaluated in priority order (lowest number first); a rule with a lower number and a matching
    condition (for example a path rule) wins over this one, so give O(priority) when the listener has such rules.
  - API calls - C(DescribeListeners) (or C(DescribeLoadBalancers) + C(DescribeListeners)), C(DescribeRules), a
    C(DescribeTargetGroups) only when the canary is in neither the default action nor the rule, then at most one
    C(CreateRule), C(ModifyRule) (+ C(SetRulePriorities)) or C(DeleteRule). Throttling is retried with jittered
    backoff.
author:
  - canary.release maintainers (@canary-release)
options:
  listener_arn:
    description: ARN of the listener.
    type: str
  load_balancer:
    description: Name or ARN of the application load balancer; use with O(port).
    type: str
  port:
    description: Port of the listener on O(load_balancer).
    type: int
  canary:
    description:
      - The canary target group (name or ARN). Required with O(state=present).
      - The same checks as M(canary.release.alb_weights) apply (type, protocol, VPC, load balancer).
    type: str
  header_name:
    description: The HTTP header that forces the canary (an HTTP token of at most 40 characters, not C(Host)).
    type: str
    default: X-Canary
  header_secret:
    description:
      - The secret header value that forces the canary. Not logged, never returned; diffs show C((secret)).
      - 16 to 128 visible ASCII characters without C(*) and C(?), at least 8 different characters (letter case
        ignored) and an estimated strength of at least 64 bits (see docs/alb.md); generate it, for example with
        C(openssl rand -hex 20).
      - The ALB compares header values without letter case, so the strength counts letters case-insensitively.
    type: str
  header_values:
    description:
      - Public header values that force the canary (the load balancer allows C(*) and C(?) wildcards, at most 5 per
        rule). They are not secret (they appear in outputs), so they need O(trusted_sources) or
        O(allow_public_forcing=true).
      - Not set means V([always]) (the old default) when O(header_secret) is not set either, and none otherwise;
        V(always) without O(trusted_sources) is refused, with a message saying what to set.
      - Together with O(header_secret), at most 3 values (one ALB condition).
    type: list
    elements: str
  trusted_sources:
    description:
      - Networks (CIDRs, IPv4 or IPv6; a single address means /32 or /128) whose clients may force the canary; the
        rule gets a C(source-ip) condition with them. At most 3 (one ALB condition), and at most 5 values in all
        with the header values.
      - The ALB matches the address that connects to it - behind a CDN or proxy, that is the proxy's address, not
        the client's (C(X-Forwarded-For) is not used).
      - Networks wider than /8 (IPv4) or /16 (IPv6), host bits set, and overlapping networks are refused.
    type: list
    elements: str
  allow_public_forcing:
    description:
      - Accept public forcing values without O(trusted_sources). B(Dangerous) - anyone who learns or guesses the
        value reaches the canary, even at 0 %, while an unreviewed build runs. Issues a warning. For test systems.
    type: bool
    default: false
  priority:
    description:
      - Rule priority, 1 to 50000. When omitted, a new rule takes the lowest free priority and an existing rule keeps
        its own.
    type: int
  state:
    description: V(present) keeps the rule, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Reports what would be created, changed or deleted without writing.
  diff_mode:
    support: full
    description: The rule (priority, condition, forward target) before and after.
notes:
  - IAM permissions - C(elasticloadbalancing:DescribeListeners), C(elasticloadbalancing:DescribeRules),
    C(elasticloadbalancing:DescribeTargetGroups), C(elasticloadbalancing:DescribeLoadBalancers) (for a load balancer
    name), C(elasticloadbalancing:CreateRule), C(elasticloadbalancing:AddTags) (tags on create),
    C(elasticloadbalancing:ModifyRule), C(elasticloadbalancing:SetRulePriorities), C(elasticloadbalancing:DeleteRule).
  - In the C(group/canary.release.aws) action group.
seealso:
  - module: canary.release.alb_weights
'''

EXAMPLES = r'''
- name: 'During the rollout, requests with "X-Canary: <secret>" from the office go to the canary'
  canary.release.alb_canary_rule:
    listener_arn: "{{ listener_arn }}"
    canary: web-canary
    header_secret: "{{ vault_canary_header_secret }}"
    trusted_sources: [192.0.2.0/24, "2001:db8:10::/48"]

- name: A different header, a secret only (from anywhere), before the path rules
  canary.release.alb_canary_rule:
    load_balancer: web
    port: 443
    canary: web-canary
    header_name: X-Version
    header_secret: "{{ vault_canary_header_secret }}"
    priority: 1

- name: After promotion or rollback, remove the rule
  canary.release.alb_canary_rule:
    listener_arn: "{{ listener_arn }}"
    state: absent
'''

RETURN = r'''
rule_arn:
  description: The rule's ARN; null after O(state=absent), and in check mode when the rule would be created.
  returned: always
  type: str
  sample: arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/web/0123456789abcdef/fedcba9876543210/0011223344556677
priority:
  description: The rule's priority (null with O(state=absent)).
  returned: always
  type: int
  sample: 1
target_group:
  description: The canary target group, C({arn, name}) (null with O(state=absent)).
  returned: always
  type: dict
  sample: {arn: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-canary/fedcba9876543210", name: web-canary}
deleted:
  description: ARNs of the rules deleted (or that would be, in check mode).
  returned: when O(state=absent)
  type: list
  elements: str
  sample: []
listener_arn:
  description: The listener.
  returned: always
  type: str
  sample: arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/fedcba9876543210
header_name:
  description: The header.
  returned: always
  type: str
  sample: X-Canary
header_values:
  description: The public header values (never the secret).
  returned: always
  type: list
  elements: str
  sample: []
trusted_sources:
  description: The networks of the C(source-ip) condition, normalised (empty without O(trusted_sources)).
  returned: always
  type: list
  elements: str
  sample: [192.0.2.0/24]
api_calls:
  description: ELBv2 API calls made, per operation.
  returned: always
  type: dict
  sample: {DescribeListeners: 1, DescribeRules: 1, CreateRule: 1}
'''

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.canary.release.plugins.module_utils._alb.alb_header_rule import DEFAULT_HEADER, ensure_header_rule
from ansible_collections.canary.release.plugins.module_utils._alb.alb_listener import AlbError
from ansible_collections.canary.release.plugins.module_utils._common.forcing_policy import PUBLIC_FORCING_WARNING


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            listener_arn=dict(type='str'),
            load_balancer=dict(type='str'),
            port=dict(type='int'),
            canary=dict(type='str'),
            header_name=dict(type='str', default=DEFAULT_HEADER),
            header_secret=dict(type='str', no_log=True),
            header_values=dict(type='list', elements='str'),
            trusted_sources=dict(type='list', elements='str'),
            allow_public_forcing=dict(type='bool', default=False),
            priority=dict(type='int'),
            state=dict(type='str', default='present', choices=['present', 'absent']),
        ),
        required_one_of=[('listener_arn', 'load_balancer')],
        mutually_exclusive=[('listener_arn', 'load_balancer')],
        required_together=[('load_balancer', 'port')],
        required_if=[('state', 'present', ('canary',))],
        supports_check_mode=True,
    )
    params = module.params
    client = module.client('elbv2')
    try:
        result = ensure_header_rule(
            client, listener_arn=params['listener_arn'], load_balancer=params['load_balancer'], port=params['port'],
            canary=params['canary'], header_name=params['header_name'], header_values=params['header_values'],
            priority=params['priority'], state=params['state'], check_mode=module.check_mode,
            header_secret=params['header_secret'], trusted_sources=params['trusted_sources'],
            allow_public_forcing=params['allow_public_forcing'])
    except AlbError as error:
        module.fail_json(msg=str(error))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        module.fail_json_aws(error, msg='ELBv2 API call failed')
    if result.pop('public_forcing'):
        module.warn(PUBLIC_FORCING_WARNING % ('header %s with one of header_values' % result['header_name']))
    before_text = result.pop('before_text')
    after_text = result.pop('after_text')
    if module._diff and result['changed']:
        result['diff'] = {'before': before_text, 'after': after_text,
                          'before_header': '%s header rule (before)' % result['listener_arn'],
                          'after_header': '%s header rule (after)' % result['listener_arn']}
    module.exit_json(**result)


if __name__ == '__main__':
    main()
