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
  - Keeps (O(state=present)) or removes (O(state=absent)) one listener rule that forwards every request carrying
    the header O(header_name) with one of O(header_values) (C(X-Canary) and C(always) by default) to the canary
    target group, whatever the weights of the default action are. Testers and synthetic checks reach the new
    version during a rollout; remove the rule when the rollout ends.
  - The rule is identified by its condition - a rule whose only condition is this header (name compared without
    case, as the load balancer does) with exactly these values is this module's rule, whoever created it. Rules
    created here also carry the tag C(canary.release/header-rule).
  - With O(state=present), a missing rule is created at O(priority) or at the lowest free priority; an existing
    rule gets its forward action pointed at O(canary) (other actions, such as authentication, are kept) and is moved
    to O(priority) when given. Two or more matching rules are an error; O(state=absent) deletes them all.
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
    description: The HTTP header that forces the canary.
    type: str
    default: X-Canary
  header_values:
    description: Header values that force the canary (the load balancer allows C(*) and C(?) wildcards).
    type: list
    elements: str
    default: [always]
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
- name: 'During the rollout, requests with "X-Canary: always" go to the canary'
  canary.release.alb_canary_rule:
    listener_arn: "{{ listener_arn }}"
    canary: web-canary

- name: A different header and values, before the path rules
  canary.release.alb_canary_rule:
    load_balancer: web
    port: 443
    canary: web-canary
    header_name: X-Version
    header_values: [canary, next]
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
  description: The header values.
  returned: always
  type: list
  elements: str
  sample: [always]
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

from ansible_collections.canary.release.plugins.module_utils._alb.alb_header_rule import DEFAULT_HEADER, DEFAULT_VALUES, ensure_header_rule
from ansible_collections.canary.release.plugins.module_utils._alb.alb_listener import AlbError


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            listener_arn=dict(type='str'),
            load_balancer=dict(type='str'),
            port=dict(type='int'),
            canary=dict(type='str'),
            header_name=dict(type='str', default=DEFAULT_HEADER),
            header_values=dict(type='list', elements='str', default=list(DEFAULT_VALUES)),
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
            priority=params['priority'], state=params['state'], check_mode=module.check_mode)
    except AlbError as error:
        module.fail_json(msg=str(error))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        module.fail_json_aws(error, msg='ELBv2 API call failed')
    before_text = result.pop('before_text')
    after_text = result.pop('after_text')
    if module._diff and result['changed']:
        result['diff'] = {'before': before_text, 'after': after_text,
                          'before_header': '%s header rule (before)' % result['listener_arn'],
                          'after_header': '%s header rule (after)' % result['listener_arn']}
    module.exit_json(**result)


if __name__ == '__main__':
    main()
