"""An in-memory stand-in for a boto3 ``elbv2`` client, for unit tests of the ALB module_utils.

It implements the calls the ALB code makes with the API's shapes and error codes, records every call, and can
misbehave on purpose: answer chosen calls with ``Throttling`` (``throttle``: indexes of calls, counted from 0)
and return the old actions for a number of reads after a write (``stale_reads``), as an eventually consistent
ALB would. The integration tests use the moto server instead; this exists for the paths moto cannot produce.
"""

import copy
import itertools

from botocore.exceptions import ClientError

REGION = 'eu-west-1'
ACCOUNT = '123456789012'
PREFIX = 'arn:aws:elasticloadbalancing:%s:%s:' % (REGION, ACCOUNT)


def client_error(code, message, operation):
    return ClientError({'Error': {'Code': code, 'Message': message, 'Type': 'Sender'}}, operation)


class FakeElbv2(object):

    def __init__(self):
        self.load_balancers = {}
        self.listeners = {}
        self.rules = {}
        self.target_groups = {}
        self.tags = {}
        self.calls = []
        self.throttle = set()
        self.stale_reads = 0
        self._stale = None
        self._ids = itertools.count(1)

    # --- building the world -------------------------------------------------------------------------------
    def _id(self):
        return '%016x' % next(self._ids)

    def add_load_balancer(self, name, vpc='vpc-1', kind='application'):
        short = {'application': 'app', 'network': 'net'}[kind]
        arn = PREFIX + 'loadbalancer/%s/%s/%s' % (short, name, self._id())
        self.load_balancers[arn] = {'LoadBalancerArn': arn, 'LoadBalancerName': name, 'VpcId': vpc, 'Type': kind}
        return arn

    def add_target_group(self, name, vpc='vpc-1', protocol='HTTP', target_type='instance', load_balancers=()):
        arn = PREFIX + 'targetgroup/%s/%s' % (name, self._id())
        group = {'TargetGroupArn': arn, 'TargetGroupName': name, 'Protocol': protocol, 'Port': 80, 'VpcId': vpc,
                 'TargetType': target_type, 'LoadBalancerArns': list(load_balancers)}
        if target_type == 'lambda':
            del group['Protocol'], group['Port'], group['VpcId']
        self.target_groups[arn] = group
        return arn

    def add_listener(self, load_balancer_arn, port, actions, protocol='HTTP'):
        arn = load_balancer_arn.replace(':loadbalancer/', ':listener/') + '/' + self._id()
        self.listeners[arn] = {'ListenerArn': arn, 'LoadBalancerArn': load_balancer_arn, 'Port': port,
                               'Protocol': protocol, 'DefaultActions': copy.deepcopy(actions)}
        self.rules[arn + '#default'] = {'RuleArn': arn.replace(':listener/', ':listener-rule/') + '/' + self._id(),
                                        'Priority': 'default', 'Conditions': [], 'IsDefault': True, '_listener': arn}
        return arn

    def add_rule(self, listener_arn, priority, conditions, actions):
        arn = listener_arn.replace(':listener/', ':listener-rule/') + '/' + self._id()
        self.rules[arn] = {'RuleArn': arn, 'Priority': str(priority), 'Conditions': copy.deepcopy(conditions),
                           'Actions': copy.deepcopy(actions), 'IsDefault': False, '_listener': listener_arn}
        return arn

    def default_rule_arn(self, listener_arn):
        return self.rules[listener_arn + '#default']['RuleArn']

    # --- bookkeeping ------------------------------------------------------------------------------------------
    def operations(self):
        return [name for name, dummy in self.calls]

    def _call(self, operation, kwargs):
        index = len(self.calls)
        self.calls.append((operation, copy.deepcopy(kwargs)))
        if index in self.throttle:
            raise client_error('Throttling', 'Rate exceeded', operation)

    def _rule_view(self, rule):
        view = dict((key, copy.deepcopy(value)) for key, value in rule.items() if not key.startswith('_'))
        if rule['IsDefault']:
            view['Actions'] = copy.deepcopy(self.listeners[rule['_listener']]['DefaultActions'])
        return view

    def _stale_view(self, arn, fresh):
        if self._stale and self._stale[0] == arn and self._stale[2] > 0:
            self._stale[2] -= 1
            return copy.deepcopy(self._stale[1])
        return fresh

    # --- the API ------------------------------------------------------------------------------------------------
    def describe_load_balancers(self, LoadBalancerArns=None, Names=None):
        self._call('DescribeLoadBalancers', {'LoadBalancerArns': LoadBalancerArns, 'Names': Names})
        found = [balancer for balancer in self.load_balancers.values()
                 if balancer['LoadBalancerArn'] in (LoadBalancerArns or []) or balancer['LoadBalancerName'] in (Names or [])]
        if not found:
            raise client_error('LoadBalancerNotFound', 'One or more load balancers not found', 'DescribeLoadBalancers')
        return {'LoadBalancers': copy.deepcopy(found)}

    def describe_listeners(self, ListenerArns=None, LoadBalancerArn=None, Marker=None):
        self._call('DescribeListeners', {'ListenerArns': ListenerArns, 'LoadBalancerArn': LoadBalancerArn, 'Marker': Marker})
        if LoadBalancerArn:
            if LoadBalancerArn not in self.load_balancers:
                raise client_error('LoadBalancerNotFound', 'One or more load balancers not found', 'DescribeListeners')
            found = [listener for listener in self.listeners.values() if listener['LoadBalancerArn'] == LoadBalancerArn]
            return {'Listeners': copy.deepcopy(found)}
        missing = [arn for arn in ListenerArns if arn not in self.listeners]
        if missing:
            raise client_error('ListenerNotFound', 'One or more listeners not found', 'DescribeListeners')
        listeners = []
        for arn in ListenerArns:
            listener = copy.deepcopy(self.listeners[arn])
            listener['DefaultActions'] = self._stale_view(arn, listener['DefaultActions'])
            listeners.append(listener)
        return {'Listeners': listeners}

    def describe_rules(self, RuleArns=None, ListenerArn=None, Marker=None):
        self._call('DescribeRules', {'RuleArns': RuleArns, 'ListenerArn': ListenerArn, 'Marker': Marker})
        if ListenerArn:
            if ListenerArn not in self.listeners:
                raise client_error('ListenerNotFound', 'One or more listeners not found', 'DescribeRules')
            found = [self._rule_view(rule) for rule in self.rules.values() if rule['_listener'] == ListenerArn]
            return {'Rules': sorted(found, key=lambda rule: (rule['IsDefault'], int(rule['Priority']) if not rule['IsDefault'] else 0))}
        by_arn = dict((rule['RuleArn'], rule) for rule in self.rules.values())
        if any(arn not in by_arn for arn in RuleArns):
            raise client_error('RuleNotFound', 'One or more rules not found', 'DescribeRules')
        rules = []
        for arn in RuleArns:
            view = self._rule_view(by_arn[arn])
            view['Actions'] = self._stale_view(arn, view['Actions'])
            rules.append(view)
        return {'Rules': rules}

    def describe_target_groups(self, Names=None, TargetGroupArns=None):
        self._call('DescribeTargetGroups', {'Names': Names, 'TargetGroupArns': TargetGroupArns})
        by_name = dict((group['TargetGroupName'], group) for group in self.target_groups.values())
        if Names:
            if any(name not in by_name for name in Names):
                raise client_error('TargetGroupNotFound', 'One or more target groups not found', 'DescribeTargetGroups')
            return {'TargetGroups': copy.deepcopy([by_name[name] for name in Names])}
        if any(arn not in self.target_groups for arn in TargetGroupArns):
            raise client_error('TargetGroupNotFound', 'One or more target groups not found', 'DescribeTargetGroups')
        return {'TargetGroups': copy.deepcopy([self.target_groups[arn] for arn in TargetGroupArns])}

    def _check_actions(self, actions, operation):
        for action in actions:
            groups = (action.get('ForwardConfig') or {}).get('TargetGroups') or []
            for group in groups:
                if group['TargetGroupArn'] not in self.target_groups:
                    raise client_error('TargetGroupNotFound', 'Target group not found', operation)
                if not 0 <= group.get('Weight', 1) <= 999:
                    raise client_error('ValidationError', 'Weight out of range', operation)

    def modify_listener(self, ListenerArn, DefaultActions):
        self._call('ModifyListener', {'ListenerArn': ListenerArn, 'DefaultActions': DefaultActions})
        self._check_actions(DefaultActions, 'ModifyListener')
        listener = self.listeners[ListenerArn]
        self._stale = [ListenerArn, copy.deepcopy(listener['DefaultActions']), self.stale_reads]
        listener['DefaultActions'] = copy.deepcopy(DefaultActions)
        return {'Listeners': [copy.deepcopy(listener)]}

    def modify_rule(self, RuleArn, Actions=None, Conditions=None):
        arguments = {'RuleArn': RuleArn}
        if Actions is not None:
            arguments['Actions'] = Actions
        if Conditions is not None:
            arguments['Conditions'] = Conditions
        self._call('ModifyRule', arguments)
        rule = [rule for rule in self.rules.values() if rule['RuleArn'] == RuleArn][0]
        if Actions is not None:
            self._check_actions(Actions, 'ModifyRule')
            self._stale = [RuleArn, copy.deepcopy(rule['Actions']), self.stale_reads]
            rule['Actions'] = copy.deepcopy(Actions)
        if Conditions is not None:
            rule['Conditions'] = copy.deepcopy(Conditions)
        return {'Rules': [self._rule_view(rule)]}

    def create_rule(self, ListenerArn, Priority, Conditions, Actions, Tags=None):
        self._call('CreateRule', {'ListenerArn': ListenerArn, 'Priority': Priority, 'Conditions': Conditions,
                                  'Actions': Actions, 'Tags': Tags})
        self._check_actions(Actions, 'CreateRule')
        if any(rule['Priority'] == str(Priority) and rule['_listener'] == ListenerArn for rule in self.rules.values()):
            raise client_error('PriorityInUse', 'Priority in use', 'CreateRule')
        arn = self.add_rule(ListenerArn, Priority, Conditions, Actions)
        self.tags[arn] = Tags
        return {'Rules': [self._rule_view(self.rules[arn])]}

    def delete_rule(self, RuleArn):
        self._call('DeleteRule', {'RuleArn': RuleArn})
        for key, rule in list(self.rules.items()):
            if rule['RuleArn'] == RuleArn:
                del self.rules[key]
                return {}
        raise client_error('RuleNotFound', 'One or more rules not found', 'DeleteRule')

    def set_rule_priorities(self, RulePriorities):
        self._call('SetRulePriorities', {'RulePriorities': RulePriorities})
        for entry in RulePriorities:
            self.rules[entry['RuleArn']]['Priority'] = str(entry['Priority'])
        return {'Rules': [self._rule_view(self.rules[entry['RuleArn']]) for entry in RulePriorities]}
