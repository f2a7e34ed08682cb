#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r'''
module: alb_weights
short_description: Set the target group weights of an AWS application load balancer's forward action
version_added: 0.1.0
description:
  - Changes the weights of the target groups of the C(forward) action of an application load balancer listener
    (its default action) or of one listener rule, and optionally the target group stickiness. Nothing else changes -
    the listener's port, protocol, certificates and rules, the rule's conditions and priority, every other action
    (for example C(authenticate-oidc) before the forward) and the order of the actions stay exactly as they are.
  - Either give every target group with its weight (O(target_groups)), or give a canary share in percent
    (O(stable), O(canary), O(canary_percent)); the module then computes the weights, see O(canary_percent).
  - Target groups that the forward action already holds are recognised by name or ARN without an API call. Others
    are looked up with one C(DescribeTargetGroups) call and must be of type C(instance) or C(ip), use HTTP or
    HTTPS, live in the load balancer's VPC and not be attached to another load balancer.
  - API calls per run - one C(DescribeListeners) (O(listener_arn)) or C(DescribeRules) (O(rule_arn)), or
    C(DescribeLoadBalancers) + C(DescribeListeners) for a load balancer name and O(port) (an ARN in
    O(load_balancer) skips C(DescribeLoadBalancers)); at most one C(DescribeTargetGroups); at most one
    C(ModifyListener) or C(ModifyRule), none when nothing changes; after a write one read-back
    (C(DescribeListeners)/C(DescribeRules)) confirming that the load balancer reports the new weights, repeated
    with backoff (at most 5 reads) while it does not. RV(api_calls) reports the counts.
  - Throttling and transient errors are retried with jittered exponential backoff (C(AWSRetry.jittered_backoff)).
  - Bad input fails before any write and changes nothing, with a message naming the problem - an unknown
    listener, rule, load balancer or target group, more than 5 target groups, weights out of range or all 0, a
    listener or rule whose action is not C(forward) (C(redirect), C(fixed-response)), a target group of another VPC,
    type, protocol or load balancer.
author:
  - canary.release maintainers (@canary-release)
options:
  listener_arn:
    description:
      - ARN of the listener whose default action to change.
      - With O(rule_arn), optional; when given it must be the rule's listener.
    type: str
  load_balancer:
    description:
      - Name or ARN of the application load balancer; use with O(port) to name the listener.
      - Mutually exclusive with O(listener_arn) and O(rule_arn).
    type: str
  port:
    description:
      - Port of the listener on O(load_balancer).
    type: int
  rule_arn:
    description:
      - ARN of a listener rule whose forward action to change instead of the listener's default action.
      - The listener's default rule is refused; use O(listener_arn) alone for the default action.
    type: str
  target_groups:
    description:
      - The complete list of target groups of the forward action, each with its weight. Target groups of the action
        that are not listed are removed from it; new ones are added after the existing ones.
      - At most 5 entries; the weights must not all be 0.
      - Mutually exclusive with O(stable), O(canary) and O(canary_percent).
    type: list
    elements: dict
    suboptions:
      name:
        description: Target group name. Exactly one of O(target_groups[].name) and O(target_groups[].arn).
        type: str
      arn:
        description: Target group ARN.
        type: str
      weight:
        description: Weight, 0 to 999. A group gets weight / sum of weights of the requests.
        type: int
        required: true
  stable:
    description:
      - The stable target group (name or ARN), for O(canary_percent).
      - With O(state=query), optional; O(canary) gives RV(canary_percent).
    type: str
  canary:
    description:
      - The canary target group (name or ARN), for O(canary_percent).
    type: str
  canary_percent:
    description:
      - Share of requests for O(canary), 0 to 100; O(stable) gets the rest and the forward action holds exactly these
        two target groups.
      - The weights are the pair (each 0 to 999) whose ratio is closest to the share, the smallest such pair
        when several are equally close. Every value with one decimal is exact - V(1) gives canary 1 and stable 99,
        V(5) 1 and 19, V(10) 1 and 9, V(25) 1 and 3, V(50) 1 and 1, V(33.3) 333 and 667, V(0) 0 and 1, V(100) 1 and 0.
        RV(canary_percent) reports the share obtained.
      - When the action already forwards exactly this share to these two groups (for example weights 100 and 900
        for V(10)), nothing is written.
    type: float
  stickiness:
    description:
      - Target group stickiness of the forward action (C(TargetGroupStickinessConfig)); keeps a client on the
        target group it was first sent to, so a user does not flip between versions.
      - When omitted, the current stickiness is kept.
    type: dict
    suboptions:
      enabled:
        description: Whether stickiness is on.
        type: bool
        default: true
      duration:
        description:
          - How long a client sticks to a target group, in seconds, 1 to 604800 (7 days).
          - When omitted with O(stickiness.enabled=true), the current duration, or 3600 when there is none.
        type: int
  state:
    description:
      - V(present) sets the weights; V(query) only reads them (C(changed=false)).
    type: str
    choices: [present, query]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Reads the listener or rule and reports what would change, without writing.
  diff_mode:
    support: full
    description: Before and after weights and stickiness, one line per target group.
notes:
  - IAM permissions - C(elasticloadbalancing:DescribeListeners), C(elasticloadbalancing:DescribeRules),
    C(elasticloadbalancing:DescribeTargetGroups), C(elasticloadbalancing:DescribeLoadBalancers) (for a load
    balancer name), C(elasticloadbalancing:ModifyListener), C(elasticloadbalancing:ModifyRule).
  - The module is in the C(group/canary.release.aws) action group, which also contains C(group/amazon.aws.aws),
    so C(module_defaults) can set the AWS options once.
  - See docs/alb.md in the collection for the header-forced canary (M(canary.release.alb_canary_rule)).
seealso:
  - module: canary.release.alb_canary_rule
  - module: amazon.aws.elb_application_lb
    description: Manages a whole load balancer (and by default purges listeners and rules it is not given).
  - name: Listener forward action (ELBv2 API)
    description: Weighted target groups and target group stickiness.
    link: https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_ForwardActionConfig.html
'''

EXAMPLES = r'''
- name: Send 10 % of the requests to the canary target group
  canary.release.alb_weights:
    region: eu-west-1
    listener_arn: "{{ listener_arn }}"
    stable: web-stable
    canary: web-canary
    canary_percent: 10
  register: traffic

- name: Show the share obtained
  ansible.builtin.debug:
    msg: "canary gets {{ traffic.canary_percent }} %, verified {{ traffic.verified }}"

- name: Explicit weights on a listener named by load balancer and port, sticky for 10 minutes
  canary.release.alb_weights:
    load_balancer: web
    port: 443
    target_groups:
      - name: web-stable
        weight: 900
      - name: web-canary
        weight: 100
    stickiness:
      enabled: true
      duration: 600

- name: Shift a listener rule's forward action instead of the default action
  canary.release.alb_weights:
    rule_arn: "{{ api_rule_arn }}"
    stable: api-stable
    canary: api-canary
    canary_percent: 25

- name: AWS options once for the whole play
  module_defaults:
    group/canary.release.aws:
      region: eu-west-1
  block:
    - name: Read the current split
      canary.release.alb_weights:
        listener_arn: "{{ listener_arn }}"
        canary: web-canary
        state: query
      register: current

    - name: Promote - everything to the new version
      canary.release.alb_weights:
        listener_arn: "{{ listener_arn }}"
        stable: web-stable
        canary: web-canary
        canary_percent: 100
'''

RETURN = r'''
target_groups:
  description: The forward action's target groups before and after, each with C(arn), C(name), C(weight) and
    C(percent) (the share of requests it gets). In check mode C(after) is what would be written.
  returned: always
  type: dict
  contains:
    before:
      description: Target groups before the run.
      type: list
      elements: dict
      returned: always
    after:
      description: Target groups after the run.
      type: list
      elements: dict
      returned: always
  sample:
    before:
      - {arn: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-stable/0123456789abcdef", name: web-stable, weight: 1, percent: 100.0}
    after:
      - {arn: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-stable/0123456789abcdef", name: web-stable, weight: 9, percent: 90.0}
      - {arn: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-canary/fedcba9876543210", name: web-canary, weight: 1, percent: 10.0}
canary_percent:
  description:
    - The share of requests (percent) the canary target group gets after the run. V(null) with O(target_groups),
      and with O(state=query) when O(canary) is not given; V(0.0) when the canary is not in the forward action.
  returned: always
  type: float
  sample: 10.0
requested_percent:
  description: O(canary_percent) as given.
  returned: always
  type: float
  sample: 10.0
stickiness:
  description: Target group stickiness before and after, each C({enabled, duration}) (C(duration) null when off).
  returned: always
  type: dict
  sample: {before: {enabled: false, duration: null}, after: {enabled: true, duration: 600}}
verified:
  description:
    - True when the load balancer reports the weights of RV(target_groups.after) - read back after a write, or
      just read when nothing had to change. False in check mode when a change would be made.
  returned: always
  type: bool
  sample: true
reads_after_write:
  description: Number of read-backs until the load balancer reported the new weights (0 without a write).
  returned: always
  type: int
  sample: 1
api_calls:
  description: ELBv2 API calls made, per operation (logical calls; retries after throttling are not counted).
  returned: always
  type: dict
  sample: {DescribeListeners: 2, ModifyListener: 1}
listener_arn:
  description: The listener.
  returned: always
  type: str
  sample: arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/fedcba9876543210
rule_arn:
  description: The rule whose forward action was managed, null for the default action.
  returned: always
  type: str
  sample: null
load_balancer_arn:
  description: The load balancer.
  returned: always
  type: str
  sample: arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef
'''

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.canary.release.plugins.module_utils._alb.alb_listener import AlbError, set_forward_weights


def argument_spec():
    return dict(
        listener_arn=dict(type='str'),
        load_balancer=dict(type='str'),
        port=dict(type='int'),
        rule_arn=dict(type='str'),
        target_groups=dict(type='list', elements='dict', options=dict(
            name=dict(type='str'),
            arn=dict(type='str'),
            weight=dict(type='int', required=True),
        ), mutually_exclusive=[('name', 'arn')], required_one_of=[('name', 'arn')]),
        stable=dict(type='str'),
        canary=dict(type='str'),
        canary_percent=dict(type='float'),
        stickiness=dict(type='dict', options=dict(
            enabled=dict(type='bool', default=True),
            duration=dict(type='int'),
        )),
        state=dict(type='str', default='present', choices=['present', 'query']),
    )


def main():
    module = AnsibleAWSModule(
        argument_spec=argument_spec(),
        required_one_of=[('listener_arn', 'load_balancer', 'rule_arn')],
        mutually_exclusive=[('listener_arn', 'load_balancer'), ('rule_arn', 'load_balancer'), ('rule_arn', 'port'),
                            ('target_groups', 'stable'), ('target_groups', 'canary'), ('target_groups', 'canary_percent')],
        required_together=[('load_balancer', 'port')],
        required_by={'canary_percent': ('stable', 'canary')},
        required_if=[('state', 'present', ('target_groups', 'canary_percent'), True)],
        supports_check_mode=True,
    )
    params = module.params
    client = module.client('elbv2')
    try:
        result = set_forward_weights(
            client, listener_arn=params['listener_arn'], load_balancer=params['load_balancer'], port=params['port'],
            rule_arn=params['rule_arn'], target_groups=params['target_groups'], stable=params['stable'],
            canary=params['canary'], canary_percent=params['canary_percent'], stickiness=params['stickiness'],
            state=params['state'], check_mode=module.check_mode)
    except AlbError as error:
        module.fail_json(msg=str(error), changed=error.written)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        module.fail_json_aws(error, msg='ELBv2 API call failed')
    before_text = result.pop('before_text')
    after_text = result.pop('after_text')
    if module._diff and result['changed']:
        where = result['rule_arn'] or result['listener_arn']
        result['diff'] = {'before': before_text, 'after': after_text,
                          'before_header': '%s (before)' % where, 'after_header': '%s (after)' % where}
    module.exit_json(**result)


if __name__ == '__main__':
    main()
