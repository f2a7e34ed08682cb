# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A listener rule that forces requests carrying a header (``X-Canary: always``) to the canary target group.

The rule is found by its condition: a non-default rule whose only condition is ``http-header`` with the same
header name (compared case-insensitively, as the ALB does) and the same set of values. Whatever created it, that
rule does exactly what is asked, so it is adopted; rules created here also carry the tag
``canary.release/header-rule`` for people reading the console. ``present`` creates the rule (at the given
priority, or the lowest free one) or brings its forward action and priority in line; ``absent`` deletes it.

API calls: DescribeListeners (or DescribeLoadBalancers + DescribeListeners), DescribeRules for the listener (one
page per 400 rules; a listener has at most 100), a DescribeTargetGroups only when the canary is in neither the
default action nor the rule, then at most one CreateRule/ModifyRule (+ SetRulePriorities when the priority moves)
or DeleteRule.
"""


from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.canary.release.plugins.module_utils._alb.alb_arns import target_group_name
from ansible_collections.canary.release.plugins.module_utils._alb.alb_forward_config import (
    ForwardConfigError,
    forward_action_index,
    forward_target_groups,
    plan_forward,
)
from ansible_collections.canary.release.plugins.module_utils._alb.alb_listener import (
    MAX_PAGES,
    AlbError,
    as_api,
    locate_listener,
    resolve_target_groups,
)

TAG_KEY = 'canary.release/header-rule'
DEFAULT_HEADER = 'X-Canary'
DEFAULT_VALUES = ('always',)
MIN_PRIORITY = 1
MAX_PRIORITY = 50000


def header_conditions(header_name, values):
    """The ``Conditions`` of the rule."""
    return [{'Field': 'http-header', 'HttpHeaderConfig': {'HttpHeaderName': header_name, 'Values': list(values)}}]


def rule_matches(rule, header_name, values):
    """True when ``rule`` is a non-default rule whose only condition is this header with exactly these values."""
    if rule.get('IsDefault'):
        return False
    conditions = rule.get('Conditions') or []
    if len(conditions) != 1 or conditions[0].get('Field') != 'http-header':
        return False
    config = conditions[0].get('HttpHeaderConfig') or {}
    return (str(config.get('HttpHeaderName', '')).lower() == header_name.lower()
            and set(config.get('Values') or []) == set(values))


def rule_priority(rule):
    try:
        return int(rule.get('Priority'))
    except (TypeError, ValueError):
        return None


def choose_priority(rules, wanted=None, own_arn=None):
    """``wanted`` when no other rule uses it (else a clear error), otherwise the lowest free priority."""
    used = dict((rule_priority(rule), rule['RuleArn']) for rule in rules
                if not rule.get('IsDefault') and rule.get('RuleArn') != own_arn and rule_priority(rule) is not None)
    if wanted is not None:
        if not MIN_PRIORITY <= wanted <= MAX_PRIORITY:
            raise AlbError('priority must be from %d to %d, got %r' % (MIN_PRIORITY, MAX_PRIORITY, wanted))
        if wanted in used:
            raise AlbError('priority %d is already used by rule %s' % (wanted, used[wanted]))
        return wanted
    for candidate in range(MIN_PRIORITY, MAX_PRIORITY + 1):
        if candidate not in used:
            return candidate
    raise AlbError('no free rule priority on this listener')


def list_rules(api, listener_arn):
    """Every rule of a listener (paged with Marker; bounded)."""
    rules = []
    kwargs = {'ListenerArn': listener_arn}
    for dummy in range(MAX_PAGES):
        page = api.call('describe_rules', **kwargs)
        rules.extend(page.get('Rules') or [])
        if not page.get('NextMarker'):
            return rules
        kwargs['Marker'] = page['NextMarker']
    raise AlbError('more than %d pages of rules on %s' % (MAX_PAGES, listener_arn))


def describe_rule_text(rule_arn, priority, header_name, values, target_group_arns):
    """A YAML-like description of the rule for ``--diff`` (empty when there is no rule)."""
    if priority is None:
        return ''
    return ('rule: %s\npriority: %s\ncondition: {http-header: %s, values: [%s]}\nforward: [%s]\n'
            % (rule_arn or '(new)', priority, header_name, ', '.join(values),
               ', '.join(target_group_name(arn) or arn for arn in target_group_arns)))


def _forward_arns(actions):
    try:
        return [group['arn'] for group in forward_target_groups(actions[forward_action_index(actions)])]
    except ForwardConfigError:
        return []


def ensure_header_rule(client, listener_arn=None, load_balancer=None, port=None, canary=None,
                       header_name=DEFAULT_HEADER, header_values=DEFAULT_VALUES, priority=None, state='present',
                       check_mode=False):
    """Create, update or delete the header rule. Returns a dict (see the alb_canary_rule module's RETURN)."""
    api = as_api(client)
    values = list(header_values or [])
    if not header_name or not values:
        raise AlbError('header_name and at least one header value are needed')
    if state == 'present' and not canary:
        raise AlbError('state=present needs canary (target group name or ARN)')
    location = locate_listener(api, listener_arn, load_balancer, port)
    rules = list_rules(api, location.arn)
    matching = sorted((rule for rule in rules if rule_matches(rule, header_name, values)), key=rule_priority)
    result = {
        'changed': False,
        'listener_arn': location.arn,
        'header_name': header_name,
        'header_values': values,
        'api_calls': api.calls,
    }
    if state == 'absent':
        before = ''.join(describe_rule_text(rule['RuleArn'], rule_priority(rule), header_name, values, _forward_arns(rule['Actions']))
                         for rule in matching)
        result.update({'changed': bool(matching), 'rule_arn': None, 'priority': None, 'target_group': None,
                       'deleted': [rule['RuleArn'] for rule in matching], 'before_text': before, 'after_text': ''})
        if not check_mode:
            for rule in matching:
                try:
                    api.call('delete_rule', RuleArn=rule['RuleArn'])
                except is_boto3_error_code('RuleNotFound'):
                    pass  # already gone: the goal is reached
        return result
    if len(matching) > 1:
        raise AlbError('%d rules of listener %s match header %s %s (%s); remove all but one (state=absent removes them all)'
                       % (len(matching), location.arn, header_name, values, ', '.join(rule['RuleArn'] for rule in matching)))
    rule = matching[0] if matching else None
    known = _forward_arns(location.actions) + (_forward_arns(rule['Actions']) if rule else [])
    resolved, names = resolve_target_groups(api, [canary], location, known)
    canary_arn = resolved[canary]
    result['target_group'] = {'arn': canary_arn, 'name': names.get(canary_arn) or target_group_name(canary_arn)}
    if rule is None:
        new_priority = choose_priority(rules, priority)
        result.update({'changed': True, 'rule_arn': None, 'priority': new_priority, 'before_text': '',
                       'after_text': describe_rule_text(None, new_priority, header_name, values, [canary_arn])})
        if not check_mode:
            created = api.call('create_rule', ListenerArn=location.arn, Priority=new_priority,
                               Conditions=header_conditions(header_name, values),
                               Actions=[{'Type': 'forward', 'ForwardConfig': {
                                   'TargetGroups': [{'TargetGroupArn': canary_arn, 'Weight': 1}]}}],
                               Tags=[{'Key': TAG_KEY, 'Value': header_name}])
            result['rule_arn'] = created['Rules'][0]['RuleArn']
        return result
    current_priority = rule_priority(rule)
    new_priority = current_priority if priority is None or priority == current_priority else choose_priority(rules, priority, rule['RuleArn'])
    try:
        plan = plan_forward(rule['Actions'], [{'arn': canary_arn, 'weight': 1}], None, True, 'rule %s' % rule['RuleArn'])
    except ForwardConfigError as error:
        raise AlbError('rule %s matches header %s but cannot forward to the canary: %s' % (rule['RuleArn'], header_name, error))
    result.update({
        'changed': plan.changed or new_priority != current_priority,
        'rule_arn': rule['RuleArn'],
        'priority': new_priority,
        'before_text': describe_rule_text(rule['RuleArn'], current_priority, header_name, values, [group['arn'] for group in plan.before]),
        'after_text': describe_rule_text(rule['RuleArn'], new_priority, header_name, values, [group['arn'] for group in plan.after]),
    })
    if check_mode:
        return result
    if plan.changed:
        api.call('modify_rule', RuleArn=rule['RuleArn'], Actions=plan.actions)
    if new_priority != current_priority:
        api.call('set_rule_priorities', RulePriorities=[{'RuleArn': rule['RuleArn'], 'Priority': new_priority}])
    return result
