# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Reading Elastic Load Balancing v2 ARNs without an API call.

The resource part of an ELBv2 ARN is documented and stable:

- load balancer: ``loadbalancer/app/<lb-name>/<lb-id>``
- listener: ``listener/app/<lb-name>/<lb-id>/<listener-id>``
- listener rule: ``listener-rule/app/<lb-name>/<lb-id>/<listener-id>/<rule-id>``
- target group: ``targetgroup/<tg-name>/<tg-id>``

Target group names are unique per account and region, so the name read from the ARN of a target group that a
listener already forwards to identifies that group exactly; that saves a DescribeTargetGroups call when a request
names target groups that the forward action already holds.
"""


import re

_ARN = re.compile(r'^arn:(?P<partition>[^:]+):elasticloadbalancing:(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)$')
_TARGET_GROUP = re.compile(r'^targetgroup/(?P<name>[^/]+)/(?P<id>[^/]+)$')
_LOAD_BALANCER = re.compile(r'^loadbalancer/(?P<kind>app|net|gwy)/(?P<name>[^/]+)/(?P<id>[^/]+)$')
_LISTENER = re.compile(r'^listener/(?P<kind>app|net|gwy)/(?P<name>[^/]+)/(?P<id>[^/]+)/(?P<listener>[^/]+)$')
_RULE = re.compile(r'^listener-rule/(?P<kind>app|net|gwy)/(?P<name>[^/]+)/(?P<id>[^/]+)/(?P<listener>[^/]+)/(?P<rule>[^/]+)$')


def _parts(arn, pattern):
    if not isinstance(arn, str):
        return None
    outer = _ARN.match(arn)
    if not outer:
        return None
    inner = pattern.match(outer.group('resource'))
    if not inner:
        return None
    return outer, inner


def is_target_group_arn(value):
    """True when ``value`` is a target group ARN (as opposed to a target group name)."""
    return _parts(value, _TARGET_GROUP) is not None


def target_group_name(arn):
    """The target group name inside a target group ARN, or None when ``arn`` is not one."""
    parts = _parts(arn, _TARGET_GROUP)
    return parts[1].group('name') if parts else None


def is_load_balancer_arn(value):
    return _parts(value, _LOAD_BALANCER) is not None


def load_balancer_name(arn):
    """The load balancer name in a load balancer, listener or rule ARN, or None."""
    for pattern in (_LOAD_BALANCER, _LISTENER, _RULE):
        parts = _parts(arn, pattern)
        if parts:
            return parts[1].group('name')
    return None


def is_listener_arn(value):
    return _parts(value, _LISTENER) is not None


def is_rule_arn(value):
    return _parts(value, _RULE) is not None


def _prefix(outer):
    return 'arn:%s:elasticloadbalancing:%s:%s:' % (outer.group('partition'), outer.group('region'), outer.group('account'))


def load_balancer_arn_of(arn):
    """The ARN of the load balancer that a listener or rule ARN belongs to, or None."""
    for pattern in (_LISTENER, _RULE):
        parts = _parts(arn, pattern)
        if parts:
            outer, inner = parts
            return '%sloadbalancer/%s/%s/%s' % (_prefix(outer), inner.group('kind'), inner.group('name'), inner.group('id'))
    return None


def listener_arn_of_rule(rule_arn):
    """The ARN of the listener that a rule ARN belongs to, or None."""
    parts = _parts(rule_arn, _RULE)
    if not parts:
        return None
    outer, inner = parts
    return '%slistener/%s/%s/%s/%s' % (_prefix(outer), inner.group('kind'), inner.group('name'), inner.group('id'),
                                       inner.group('listener'))
