# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A listener rule that forces requests carrying a header to the canary target group, restricted to a secret
header value and/or trusted source networks.

The rule's conditions are an ``http-header`` condition (the header with the secret value and any public values;
the ALB compares them without letter case and reads ``*``/``?`` as wildcards) and, with ``trusted_sources``, a
``source-ip`` condition; the ALB requires every condition of a rule, so a request needs both. Which forcing is
acceptable at all (a secret, or trusted sources, or ``allow_public_forcing``) is decided by
``_common/forcing_policy``; the ALB's own limits (:func:`check_alb_limits`) are checked too - all before any API
call.

The rule is found by its header: a non-default rule whose conditions are one ``http-header`` condition with the
same header name (compared case-insensitively, as the ALB does) and at most one ``source-ip`` condition, whatever
its values. Its values and source networks are then brought in line with what is asked, so rotating the secret or
changing the networks updates the rule instead of leaving the old one in place. Rules created here also carry the
tag ``canary.release/header-rule``. ``present`` creates the rule (at the given priority, or the lowest free one)
or brings its conditions, forward action and priority in line; ``absent`` deletes it.

The secret is never returned, never in an error message, and shown as a placeholder in the diff text.

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
from ansible_collections.canary.release.plugins.module_utils._common.forcing_policy import (
    ForcingPolicyError,
    check_forcing,
    check_secret,
    trusted_networks,
)

TAG_KEY = 'canary.release/header-rule'
DEFAULT_HEADER = 'X-Canary'
DEFAULT_VALUES = ('always',)
MIN_PRIORITY = 1
MAX_PRIORITY = 50000
# ALB limits (Elastic Load Balancing user guide, "Condition types for listener rules", and the API reference of
# HttpHeaderConditionConfig): up to three match evaluations (values) per condition and five per rule, five
# wildcards per rule, header values of at most 128 characters, header names of at most 40 (RFC 7230 token).
MAX_VALUES_PER_CONDITION = 3
MAX_VALUES_PER_RULE = 5
MAX_WILDCARDS_PER_RULE = 5
MAX_VALUE_LENGTH = 128
MAX_HEADER_NAME_LENGTH = 40
_TOKEN_CHARACTERS = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
SECRET_PLACEHOLDER = '(secret)'
CHANGED_SECRET_PLACEHOLDER = '(secret, changed)'


class HeaderRuleSpec(object):
    """The checked options: ``header_name``, ``public_values``, ``secret`` (or None), ``networks`` (CIDRs)."""

    __slots__ = ('header_name', 'public_values', 'secret', 'networks', 'public_forcing')

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values[name])

    @property
    def values(self):
        """The http-header condition's values: the public ones, then the secret."""
        return list(self.public_values) + ([self.secret] if self.secret is not None else [])

    def conditions(self):
        """The ``Conditions`` of the rule."""
        conditions = [{'Field': 'http-header', 'HttpHeaderConfig': {'HttpHeaderName': self.header_name,
                                                                    'Values': self.values}}]
        if self.networks:
            conditions.append({'Field': 'source-ip', 'SourceIpConfig': {'Values': list(self.networks)}})
        return conditions


def header_rule_spec(header_name=DEFAULT_HEADER, header_values=None, header_secret=None, trusted_sources=None,
                     allow_public_forcing=False, state='present'):
    """Check the options against the forcing policy and the ALB's limits; raises AlbError (never quoting the
    secret). ``header_values`` None means ``['always']`` (the old default) without a secret, none with one."""
    if not isinstance(header_name, str) or not header_name:
        raise AlbError('header_name is needed')
    if len(header_name) > MAX_HEADER_NAME_LENGTH or not set(header_name) <= _TOKEN_CHARACTERS:
        raise AlbError('header_name %r is not allowed: at most %d characters, an HTTP token (RFC 7230)'
                       % (header_name, MAX_HEADER_NAME_LENGTH))
    if header_name.lower() == 'host':
        raise AlbError('header_name cannot be Host (the ALB needs a host-header condition for it)')
    if state == 'absent':
        return HeaderRuleSpec(header_name=header_name, public_values=[], secret=None, networks=[],
                              public_forcing=False)
    try:
        networks = trusted_networks(trusted_sources)
        if header_secret is not None:
            check_secret(header_secret, 'header_secret')
        if header_values is None:
            header_values = list(DEFAULT_VALUES) if header_secret is None else []
        public_values = list(header_values)
        for value in public_values:
            if not isinstance(value, str) or not value or len(value) > MAX_VALUE_LENGTH \
                    or not all('!' <= character <= '~' for character in value):
                raise AlbError('header value %r is not allowed: 1 to %d visible ASCII characters'
                               % (value, MAX_VALUE_LENGTH))
        if len(set(value.lower() for value in public_values)) != len(public_values):
            raise AlbError('header_values lists a value twice (the ALB compares them without letter case)')
        if header_secret is not None and header_secret.lower() in [value.lower() for value in public_values]:
            raise AlbError('header_secret must not also be one of header_values (those are public)')
        if not public_values and header_secret is None:
            raise AlbError('a header secret (header_secret) or at least one header value is needed; to remove '
                           'the rule, use state=absent')
        check_forcing('header %s' % header_name, public_values, networks, allow_public_forcing, DEFAULT_VALUES)
    except ForcingPolicyError as error:
        raise AlbError(str(error))
    spec = HeaderRuleSpec(header_name=header_name, public_values=public_values, secret=header_secret,
                          networks=networks, public_forcing=bool(public_values and not networks))
    check_alb_limits(spec)
    return spec


def check_alb_limits(spec):
    """Refuse what the ALB would refuse, before any call (the message never quotes the secret)."""
    values = spec.values
    if len(values) > MAX_VALUES_PER_CONDITION:
        raise AlbError('the ALB allows at most %d values per condition; the header condition would have %d '
                       '(header_values plus header_secret)' % (MAX_VALUES_PER_CONDITION, len(values)))
    if len(spec.networks) > MAX_VALUES_PER_CONDITION:
        raise AlbError('the ALB allows at most %d values per condition; trusted_sources lists %d networks '
                       '(combine them into wider prefixes)' % (MAX_VALUES_PER_CONDITION, len(spec.networks)))
    if len(values) + len(spec.networks) > MAX_VALUES_PER_RULE:
        raise AlbError('the ALB allows at most %d values per rule; header values, secret and trusted_sources '
                       'add up to %d' % (MAX_VALUES_PER_RULE, len(values) + len(spec.networks)))
    wildcards = sum(value.count('*') + value.count('?') for value in spec.public_values)
    if wildcards > MAX_WILDCARDS_PER_RULE:
        raise AlbError('the ALB allows at most %d wildcards (* and ?) per rule; header_values have %d'
                       % (MAX_WILDCARDS_PER_RULE, wildcards))


def header_conditions(header_name, values, networks=()):
    """The ``Conditions`` of a rule for this header, these values and these source networks."""
    conditions = [{'Field': 'http-header', 'HttpHeaderConfig': {'HttpHeaderName': header_name, 'Values': list(values)}}]
    if networks:
        conditions.append({'Field': 'source-ip', 'SourceIpConfig': {'Values': list(networks)}})
    return conditions


def _condition_parts(rule):
    """``(header name, values, source networks)`` of a rule shaped like ours, else None."""
    header = None
    sources = None
    for condition in rule.get('Conditions') or []:
        field = condition.get('Field')
        if field == 'http-header' and header is None:
            config = condition.get('HttpHeaderConfig') or {}
            header = (str(config.get('HttpHeaderName', '')), list(config.get('Values') or []))
        elif field == 'source-ip' and sources is None:
            sources = list((condition.get('SourceIpConfig') or {}).get('Values') or condition.get('Values') or [])
        else:
            return None
    if header is None:
        return None
    return header[0], header[1], sources or []


def rule_matches(rule, header_name, values=None):
    """True when ``rule`` is a non-default rule for this header: one http-header condition with this name
    (case-insensitive) and at most one source-ip condition. With ``values``, the header values must also be
    exactly these (as a set)."""
    if rule.get('IsDefault'):
        return False
    parts = _condition_parts(rule)
    if parts is None or parts[0].lower() != header_name.lower():
        return False
    return values is None or set(parts[1]) == set(values)


def _same_conditions(rule, spec):
    parts = _condition_parts(rule)
    if parts is None:
        return False
    return set(parts[1]) == set(spec.values) and set(_normalise_networks(parts[2])) == set(spec.networks)


def _normalise_networks(sources):
    try:
        return trusted_networks(sources, 'source-ip')
    except ForcingPolicyError:
        return list(sources)


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


def describe_rule_text(rule_arn, priority, header_name, values, target_group_arns, networks=(), public_values=None,
                       changed_secret=False):
    """A YAML-like description of the rule for ``--diff`` (empty when there is no rule).

    Values not in ``public_values`` are secrets and shown as a placeholder (``(secret, changed)`` with
    ``changed_secret``); ``public_values`` None shows every value.
    """
    if priority is None:
        return ''
    shown = []
    for value in values:
        if public_values is None or value in public_values:
            shown.append(value)
        else:
            shown.append(CHANGED_SECRET_PLACEHOLDER if changed_secret else SECRET_PLACEHOLDER)
    text = 'rule: %s\npriority: %s\ncondition: {http-header: %s, values: [%s]}\n' % (
        rule_arn or '(new)', priority, header_name, ', '.join(shown))
    if networks:
        text += 'condition: {source-ip: [%s]}\n' % ', '.join(networks)
    return text + 'forward: [%s]\n' % ', '.join(target_group_name(arn) or arn for arn in target_group_arns)


def _forward_arns(actions):
    try:
        return [group['arn'] for group in forward_target_groups(actions[forward_action_index(actions)])]
    except ForwardConfigError:
        return []


def ensure_header_rule(client, listener_arn=None, load_balancer=None, port=None, canary=None,
                       header_name=DEFAULT_HEADER, header_values=None, priority=None, state='present',
                       check_mode=False, header_secret=None, trusted_sources=None, allow_public_forcing=False):
    """Create, update or delete the header rule. Returns a dict (see the alb_canary_rule module's RETURN) with
    ``public_forcing`` (True when allow_public_forcing let public values through without trusted sources)."""
    spec = header_rule_spec(header_name, header_values, header_secret, trusted_sources, allow_public_forcing, state)
    if state == 'present' and not canary:
        raise AlbError('state=present needs canary (target group name or ARN)')
    api = as_api(client)
    location = locate_listener(api, listener_arn, load_balancer, port)
    rules = list_rules(api, location.arn)
    matching = sorted((rule for rule in rules if rule_matches(rule, header_name)), key=rule_priority)
    result = {
        'changed': False,
        'listener_arn': location.arn,
        'header_name': header_name,
        'header_values': list(spec.public_values),
        'trusted_sources': list(spec.networks),
        'public_forcing': spec.public_forcing,
        'api_calls': api.calls,
    }
    public = set(spec.public_values)

    def text_of(rule, arns, rule_priority_value=None):
        parts = _condition_parts(rule)
        return describe_rule_text(rule['RuleArn'], rule_priority(rule) if rule_priority_value is None else rule_priority_value,
                                  parts[0], parts[1], arns, parts[2], public)

    if state == 'absent':
        before = ''.join(text_of(rule, _forward_arns(rule['Actions'])) for rule in matching)
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
        raise AlbError('%d rules of listener %s force the canary by header %s (%s); remove all but one (state=absent '
                       'removes them all)' % (len(matching), location.arn, header_name,
                                              ', '.join(rule['RuleArn'] for rule in matching)))
    rule = matching[0] if matching else None
    known = _forward_arns(location.actions) + (_forward_arns(rule['Actions']) if rule else [])
    resolved, names = resolve_target_groups(api, [canary], location, known)
    canary_arn = resolved[canary]
    result['target_group'] = {'arn': canary_arn, 'name': names.get(canary_arn) or target_group_name(canary_arn)}
    conditions = spec.conditions()
    if rule is None:
        new_priority = choose_priority(rules, priority)
        result.update({'changed': True, 'rule_arn': None, 'priority': new_priority, 'before_text': '',
                       'after_text': describe_rule_text(None, new_priority, header_name, spec.values, [canary_arn],
                                                        spec.networks, public)})
        if not check_mode:
            created = api.call('create_rule', ListenerArn=location.arn, Priority=new_priority,
                               Conditions=conditions,
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
        raise AlbError('rule %s forces header %s but cannot forward to the canary: %s' % (rule['RuleArn'], header_name, error))
    same_conditions = _same_conditions(rule, spec)
    old_parts = _condition_parts(rule)
    old_secrets = set(old_parts[1]) - public
    secret_changed = old_secrets != (set([spec.secret]) if spec.secret is not None else set())
    result.update({
        'changed': plan.changed or new_priority != current_priority or not same_conditions,
        'rule_arn': rule['RuleArn'],
        'priority': new_priority,
        'before_text': text_of(rule, [group['arn'] for group in plan.before]),
        'after_text': describe_rule_text(rule['RuleArn'], new_priority, old_parts[0] if same_conditions else header_name,
                                         spec.values, [group['arn'] for group in plan.after], spec.networks, public,
                                         changed_secret=secret_changed and spec.secret is not None),
    })
    if check_mode:
        return result
    if plan.changed or not same_conditions:
        changes = {}
        if plan.changed:
            changes['Actions'] = plan.actions
        if not same_conditions:
            changes['Conditions'] = conditions
        api.call('modify_rule', RuleArn=rule['RuleArn'], **changes)
    if new_priority != current_priority:
        api.call('set_rule_priorities', RulePriorities=[{'RuleArn': rule['RuleArn'], 'Priority': new_priority}])
    return result
