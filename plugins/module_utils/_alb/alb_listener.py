# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Change the weights of an ALB listener's (or rule's) forward action through the ELBv2 API, then read them back.

Takes a boto3 ``elbv2`` client (or an :class:`ElbApi` around one). Every call is retried on throttling and
transient errors with :func:`~.aws_retry.aws_retry` (``AWSRetry.jittered_backoff``) and counted, so a run can report its API calls.

API calls per run (see docs/alb.md):

- where: ``DescribeListeners`` (``listener_arn``), ``DescribeRules`` (``rule_arn``), or ``DescribeLoadBalancers`` +
  ``DescribeListeners`` (``load_balancer`` name + ``port``; an ARN skips ``DescribeLoadBalancers``);
- target groups: one ``DescribeTargetGroups`` (by name) when a requested target group is not already in the
  forward action; none when all are (their ARNs, names and validity are known from the action itself);
- at most one ``ModifyListener``/``ModifyRule``, none when nothing changes or in check mode;
- after a write, one ``DescribeListeners``/``DescribeRules`` read-back (more only while the ALB does not yet
  report the new weights, at most ``verify_attempts``).

Requests are validated before any write: unknown listener, rule or target group, more than 5 target groups,
weights out of range or all zero, no forward action, a target group in another VPC, of another type or protocol,
or attached to another load balancer all fail with :class:`AlbError` and change nothing.
"""

import time

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.canary.release.plugins.module_utils._common.aws_retry import DELAY, MAX_DELAY, RETRIES, aws_retry
from ansible_collections.canary.release.plugins.module_utils._alb.alb_arns import (
    is_listener_arn,
    is_load_balancer_arn,
    is_rule_arn,
    is_target_group_arn,
    listener_arn_of_rule,
    load_balancer_arn_of,
    target_group_name,
)
from ansible_collections.canary.release.plugins.module_utils._alb.alb_forward_config import (
    ForwardConfigError,
    check_weights,
    desired_stickiness,
    diff_text,
    holds,
    percent_weights,
    plan_forward,
    read_forward,
    report,
    share_percent,
)

VERIFY_ATTEMPTS = 5
VERIFY_DELAY = 0.5
MAX_PAGES = 50
APPLICATION_PROTOCOLS = ('HTTP', 'HTTPS')
APPLICATION_TARGET_TYPES = ('instance', 'ip')


class AlbError(Exception):
    """A clear, user-facing failure. ``written`` says whether a modify call had already been made."""

    def __init__(self, message, written=False):
        super(AlbError, self).__init__(message)
        self.written = written


_OPERATIONS = {
    'describe_load_balancers': 'DescribeLoadBalancers',
    'describe_listeners': 'DescribeListeners',
    'describe_rules': 'DescribeRules',
    'describe_target_groups': 'DescribeTargetGroups',
    'modify_listener': 'ModifyListener',
    'modify_rule': 'ModifyRule',
    'create_rule': 'CreateRule',
    'delete_rule': 'DeleteRule',
    'set_rule_priorities': 'SetRulePriorities',
}


class ElbApi(object):
    """A boto3 ``elbv2`` client whose calls retry with jittered backoff and are counted per API operation."""

    def __init__(self, client, retries=RETRIES, delay=DELAY, max_delay=MAX_DELAY):
        self.client = client
        self.calls = {}
        self._retry = dict(retries=retries, delay=delay, max_delay=max_delay)

    def call(self, method, **kwargs):
        operation = _OPERATIONS.get(method, method)
        self.calls[operation] = self.calls.get(operation, 0) + 1
        return aws_retry(getattr(self.client, method), **self._retry)(**kwargs)


def as_api(client):
    return client if isinstance(client, ElbApi) else ElbApi(client)


class Location(object):
    """Where the forward action lives: a listener's default actions or a rule's actions."""

    __slots__ = ('kind', 'arn', 'listener_arn', 'load_balancer_arn', 'vpc_id', 'actions', 'port', 'protocol')

    def __init__(self, kind, arn, listener_arn, load_balancer_arn, actions, vpc_id=None, port=None, protocol=None):
        self.kind = kind
        self.arn = arn
        self.listener_arn = listener_arn
        self.load_balancer_arn = load_balancer_arn
        self.actions = actions
        self.vpc_id = vpc_id
        self.port = port
        self.protocol = protocol

    @property
    def where(self):
        return '%s %s' % (self.kind, self.arn)


def _check_listener(listener):
    protocol = listener.get('Protocol')
    if protocol not in APPLICATION_PROTOCOLS:
        raise AlbError('listener %s uses protocol %s: not an application load balancer listener (weighted target '
                       'groups are managed here for HTTP and HTTPS listeners only)' % (listener.get('ListenerArn'), protocol))


def _listener_location(listener, vpc_id=None):
    _check_listener(listener)
    return Location('listener', listener['ListenerArn'], listener['ListenerArn'], listener['LoadBalancerArn'],
                    listener.get('DefaultActions') or [], vpc_id=vpc_id, port=listener.get('Port'),
                    protocol=listener.get('Protocol'))


def _describe_listener(api, listener_arn):
    if not is_listener_arn(listener_arn):
        raise AlbError('listener_arn %r is not a listener ARN (arn:aws:elasticloadbalancing:<region>:<account>:'
                       'listener/app/<name>/<id>/<id>)' % (listener_arn,))
    try:
        listeners = api.call('describe_listeners', ListenerArns=[listener_arn])['Listeners']
    except is_boto3_error_code(('ListenerNotFound', 'LoadBalancerNotFound', 'ValidationError')) as error:
        raise AlbError('listener %s not found: %s' % (listener_arn, _message(error)))
    if not listeners:
        raise AlbError('listener %s not found' % listener_arn)
    return listeners[0]


def _describe_rule(api, rule_arn):
    try:
        rules = api.call('describe_rules', RuleArns=[rule_arn])['Rules']
    except is_boto3_error_code(('RuleNotFound', 'ListenerNotFound', 'ValidationError')) as error:
        raise AlbError('listener rule %s not found: %s' % (rule_arn, _message(error)))
    if not rules:
        raise AlbError('listener rule %s not found' % rule_arn)
    return rules[0]


def _message(error):
    response = getattr(error, 'response', None) or {}
    detail = response.get('Error') or {}
    return '%s (%s)' % (detail.get('Message') or error, detail.get('Code') or type(error).__name__)


def _find_load_balancer(api, load_balancer):
    """``(arn, vpc_id)``; a name costs one DescribeLoadBalancers call, an ARN none."""
    if is_load_balancer_arn(load_balancer):
        return load_balancer, None
    try:
        balancers = api.call('describe_load_balancers', Names=[load_balancer])['LoadBalancers']
    except is_boto3_error_code(('LoadBalancerNotFound', 'ValidationError')) as error:
        raise AlbError('load balancer %s not found: %s' % (load_balancer, _message(error)))
    if not balancers:
        raise AlbError('load balancer %s not found' % load_balancer)
    balancer = balancers[0]
    if balancer.get('Type', 'application') != 'application':
        raise AlbError('load balancer %s is of type %s, not an application load balancer' % (load_balancer, balancer.get('Type')))
    return balancer['LoadBalancerArn'], balancer.get('VpcId')


def list_listeners(api, load_balancer_arn):
    """Every listener of a load balancer (paged with Marker; bounded)."""
    listeners = []
    kwargs = {'LoadBalancerArn': load_balancer_arn}
    for dummy in range(MAX_PAGES):
        try:
            page = api.call('describe_listeners', **kwargs)
        except is_boto3_error_code(('LoadBalancerNotFound', 'ValidationError')) as error:
            raise AlbError('load balancer %s not found: %s' % (load_balancer_arn, _message(error)))
        listeners.extend(page.get('Listeners') or [])
        if not page.get('NextMarker'):
            return listeners
        kwargs['Marker'] = page['NextMarker']
    raise AlbError('more than %d pages of listeners on %s' % (MAX_PAGES, load_balancer_arn))


def locate_listener(api, listener_arn=None, load_balancer=None, port=None):
    """The listener as a :class:`Location`, from its ARN or from its load balancer and port."""
    if listener_arn:
        return _listener_location(_describe_listener(api, listener_arn))
    if not load_balancer or port is None:
        raise AlbError('give listener_arn, or load_balancer and port')
    balancer_arn, vpc_id = _find_load_balancer(api, load_balancer)
    listeners = list_listeners(api, balancer_arn)
    for listener in listeners:
        if int(listener.get('Port')) == int(port):
            return _listener_location(listener, vpc_id)
    raise AlbError('load balancer %s has no listener on port %s (ports: %s)'
                   % (load_balancer, port, ', '.join(str(listener.get('Port')) for listener in listeners) or 'none'))


def locate(api, listener_arn=None, load_balancer=None, port=None, rule_arn=None):
    """Where the forward action to change is: a rule (when ``rule_arn``) or a listener's default actions."""
    if not rule_arn:
        return locate_listener(api, listener_arn, load_balancer, port)
    if not is_rule_arn(rule_arn) or '/app/' not in rule_arn:
        raise AlbError('rule_arn %r is not an application load balancer listener rule ARN '
                       '(arn:aws:elasticloadbalancing:<region>:<account>:listener-rule/app/<name>/<id>/<id>/<id>)' % (rule_arn,))
    owner = listener_arn_of_rule(rule_arn)
    if listener_arn and listener_arn != owner:
        raise AlbError('rule %s does not belong to listener %s (it belongs to %s)' % (rule_arn, listener_arn, owner))
    if load_balancer or port is not None:
        raise AlbError('rule_arn identifies its listener: give it alone or with listener_arn, not with load_balancer/port')
    rule = _describe_rule(api, rule_arn)
    if rule.get('IsDefault'):
        raise AlbError('rule %s is the default rule of listener %s: use listener_arn without rule_arn to change '
                       'the default action' % (rule_arn, owner))
    return Location('rule', rule_arn, owner, load_balancer_arn_of(rule_arn), rule.get('Actions') or [])


def read_actions(api, location):
    """The current actions of the location (one DescribeListeners or DescribeRules call)."""
    if location.kind == 'rule':
        return _describe_rule(api, location.arn).get('Actions') or []
    return _describe_listener(api, location.arn).get('DefaultActions') or []


def modify_actions(api, location, actions):
    """One ModifyListener (DefaultActions only) or ModifyRule (Actions only) call."""
    if location.kind == 'rule':
        api.call('modify_rule', RuleArn=location.arn, Actions=actions)
    else:
        api.call('modify_listener', ListenerArn=location.arn, DefaultActions=actions)


def _unique(values):
    seen = set()
    return [value for value in values if not (value in seen or seen.add(value))]


def resolve_target_groups(api, refs, location, known_arns):
    """Map each reference (target group name or ARN) to its ARN; validate new groups for this load balancer.

    ``known_arns`` are the target groups the listener (or rule) already forwards to: a reference to one of them
    resolves without an API call (names are read from the ARNs; they are unique per account and region). Any
    other reference costs one DescribeTargetGroups call for all of them together, which also returns the known
    groups so their VPC is the load balancer's VPC. Returns ``(ref -> arn, arn -> name)``.
    """
    known_arns = _unique(known_arns)
    known_names = dict((target_group_name(arn), arn) for arn in known_arns if target_group_name(arn))
    resolved = {}
    names = dict((arn, target_group_name(arn)) for arn in known_arns)
    missing = []
    for ref in refs:
        if ref in known_arns:
            resolved[ref] = ref
        elif not is_target_group_arn(ref) and ref in known_names:
            resolved[ref] = known_names[ref]
        else:
            missing.append(ref)
    if not missing:
        return resolved, names
    wanted = _unique([target_group_name(ref) or ref for ref in missing])
    lookup = _unique(wanted + list(known_names))
    try:
        groups = api.call('describe_target_groups', Names=lookup)['TargetGroups']
    except is_boto3_error_code('TargetGroupNotFound') as error:
        raise AlbError('target group not found: %s (%s)' % (' or '.join(missing), _message(error)))
    except is_boto3_error_code('ValidationError') as error:
        raise AlbError('invalid target group reference among %s: %s' % (', '.join(missing), _message(error)))
    by_name = dict((group['TargetGroupName'], group) for group in groups)
    vpc_id = location.vpc_id
    if vpc_id is None:
        vpcs = [by_name[name].get('VpcId') for name in known_names if name in by_name and by_name[name].get('VpcId')]
        vpc_id = vpcs[0] if vpcs else None
    if vpc_id is None:
        vpc_id = _load_balancer_vpc(api, location.load_balancer_arn)
    for ref in missing:
        group = by_name.get(target_group_name(ref) or ref)
        if group is None or (is_target_group_arn(ref) and group['TargetGroupArn'] != ref):
            raise AlbError('target group not found: %s' % ref)
        _check_target_group(group, location, vpc_id)
        resolved[ref] = group['TargetGroupArn']
        names[group['TargetGroupArn']] = group['TargetGroupName']
    return resolved, names


def _load_balancer_vpc(api, load_balancer_arn):
    try:
        balancers = api.call('describe_load_balancers', LoadBalancerArns=[load_balancer_arn])['LoadBalancers']
    except is_boto3_error_code(('LoadBalancerNotFound', 'ValidationError')) as error:
        raise AlbError('load balancer %s not found: %s' % (load_balancer_arn, _message(error)))
    return balancers[0].get('VpcId') if balancers else None


def _check_target_group(group, location, vpc_id):
    name = group['TargetGroupName']
    target_type = group.get('TargetType', 'instance')
    if target_type not in APPLICATION_TARGET_TYPES:
        raise AlbError('target group %s has target type %s; an application load balancer weight change here '
                       'takes target groups of type instance or ip' % (name, target_type))
    if group.get('Protocol') not in APPLICATION_PROTOCOLS:
        raise AlbError('target group %s uses protocol %s, which belongs to a network or gateway load balancer; '
                       'an application load balancer forwards to HTTP or HTTPS target groups' % (name, group.get('Protocol')))
    if vpc_id and group.get('VpcId') != vpc_id:
        raise AlbError('target group %s is in %s, but load balancer %s is in %s'
                       % (name, group.get('VpcId'), location.load_balancer_arn, vpc_id))
    others = [arn for arn in group.get('LoadBalancerArns') or [] if arn != location.load_balancer_arn]
    if others:
        raise AlbError('target group %s is attached to another load balancer (%s); a target group serves one '
                       'load balancer' % (name, ', '.join(others)))


def check_request(target_groups=None, canary_percent=None, stickiness=None):
    """Validate what can be validated before any API call (count, weights, percent, stickiness)."""
    if target_groups is not None:
        entries = []
        for entry in target_groups:
            ref = entry.get('arn') or entry.get('name')
            if not ref or (entry.get('arn') and entry.get('name')):
                raise AlbError('each entry of target_groups needs exactly one of name or arn: %r' % (entry,))
            entries.append({'arn': ref, 'weight': entry.get('weight')})
        try:
            check_weights(entries)
        except ForwardConfigError as error:
            raise AlbError(str(error))
    try:
        if canary_percent is not None:
            percent_weights(canary_percent)
        desired_stickiness(stickiness, None)
    except ForwardConfigError as error:
        raise AlbError(str(error))


def verify(api, location, groups, stickiness, attempts=VERIFY_ATTEMPTS, delay=VERIFY_DELAY, sleep=time.sleep):
    """Read the actions back until they hold ``groups`` and ``stickiness``; return the number of reads."""
    for attempt in range(1, attempts + 1):
        if holds(read_actions(api, location), groups, stickiness, location.where):
            return attempt
        if attempt < attempts:
            sleep(delay * 2 ** (attempt - 1))
    raise AlbError('%s was modified, but after %d reads the ALB does not report the new weights %s; check it and '
                   'run again' % (location.where, attempts, ', '.join('%s=%s' % (target_group_name(group['arn']), group['weight'])
                                                                      for group in groups)), written=True)


def set_forward_weights(client, listener_arn=None, load_balancer=None, port=None, rule_arn=None, target_groups=None,
                        stable=None, canary=None, canary_percent=None, stickiness=None, state='present',
                        check_mode=False, verify_attempts=VERIFY_ATTEMPTS, verify_delay=VERIFY_DELAY, sleep=time.sleep):
    """Set (``state='present'``) or read (``state='query'``) the weights of a forward action. Returns a dict.

    Raises :class:`AlbError` (clear message, nothing changed unless ``written``) or botocore errors.
    """
    api = as_api(client)
    if state == 'present':
        if (target_groups is None) == (canary_percent is None):
            raise AlbError('give either target_groups or canary_percent (with stable and canary)')
        if canary_percent is not None and not (stable and canary):
            raise AlbError('canary_percent needs stable and canary')
        check_request(target_groups, canary_percent, stickiness)
    location = locate(api, listener_arn, load_balancer, port, rule_arn)
    try:
        forward = read_forward(location.actions, location.where)
    except ForwardConfigError as error:
        raise AlbError(str(error))
    current, current_stickiness = forward[1], forward[2]
    current_arns = [group['arn'] for group in current]
    result = {
        'changed': False,
        'verified': True,
        'listener_arn': location.listener_arn,
        'rule_arn': location.arn if location.kind == 'rule' else None,
        'load_balancer_arn': location.load_balancer_arn,
        'api_calls': api.calls,
        'reads_after_write': 0,
    }
    if state == 'query':
        resolved = dict((ref, _known(ref, current_arns)) for ref in (stable, canary) if ref)
        entries = report(current)
        result.update({
            'target_groups': {'before': entries, 'after': entries},
            'stickiness': {'before': current_stickiness, 'after': current_stickiness},
            'canary_percent': (share_percent(current, resolved[canary]) or 0.0) if canary else None,
            'requested_percent': None,
            'before_text': diff_text(current, current_stickiness),
            'after_text': diff_text(current, current_stickiness),
        })
        return result
    refs = [entry.get('arn') or entry.get('name') for entry in target_groups] if target_groups is not None else [stable, canary]
    resolved, names = resolve_target_groups(api, refs, location, current_arns)
    if target_groups is not None:
        desired = [{'arn': resolved[ref], 'weight': entry['weight']} for ref, entry in zip(refs, target_groups)]
        proportional = False
        canary_arn = None
    else:
        stable_arn, canary_arn = resolved[stable], resolved[canary]
        if stable_arn == canary_arn:
            raise AlbError('stable and canary are the same target group (%s)' % stable_arn)
        split = percent_weights(canary_percent)
        desired = [{'arn': stable_arn, 'weight': split['stable_weight']}, {'arn': canary_arn, 'weight': split['canary_weight']}]
        proportional = True
    try:
        plan = plan_forward(location.actions, desired, stickiness, proportional, location.where)
    except ForwardConfigError as error:
        raise AlbError(str(error))
    result.update({
        'changed': plan.changed,
        'target_groups': {'before': report(plan.before, names), 'after': report(plan.after, names)},
        'stickiness': {'before': plan.stickiness_before, 'after': plan.stickiness_after},
        'canary_percent': share_percent(plan.after, canary_arn) if canary_arn else None,
        'requested_percent': canary_percent,
        'before_text': diff_text(plan.before, plan.stickiness_before, names),
        'after_text': diff_text(plan.after, plan.stickiness_after, names),
    })
    if not plan.changed:
        return result
    if check_mode:
        result['verified'] = False
        return result
    modify_actions(api, location, plan.actions)
    try:
        result['reads_after_write'] = verify(api, location, plan.after, plan.stickiness_after, verify_attempts,
                                             verify_delay, sleep)
    except AlbError:
        raise
    except Exception as error:  # pylint: disable=broad-except
        # the write went through: report it as a change whatever broke the read-back
        raise AlbError('%s was modified, but reading it back failed: %s' % (location.where, _message(error)), written=True)
    result['verified'] = True
    return result


def _known(ref, arns):
    """The ARN among ``arns`` that ``ref`` (name or ARN) names, or ``ref`` itself."""
    for arn in arns:
        if ref == arn or ref == target_group_name(arn):
            return arn
    return ref
