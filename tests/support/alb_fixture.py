"""An application load balancer built on the moto server with boto3, for the ALB tests.

:class:`Stack` creates, under a unique name prefix, two VPCs, subnets, an ALB (plus another one), listeners
80 (forward to the stable target group, legacy single-target-group form, with a path rule), 81 (redirect) and
82 (fixed-response), and target groups stable, canary, spare (ip), tcp (TCP), elsewhere (another VPC) and taken
(used by the other load balancer); its helpers read the weights back.
"""

import itertools

import boto3

from tests.support.moto import REGION

_names = itertools.count(1)


def client(moto, service):
    return boto3.client(service, endpoint_url=moto.endpoint_url, region_name=REGION,
                        aws_access_key_id='testing', aws_secret_access_key='testing')


class Stack(object):
    """One ALB with listeners 80 (forward to stable, legacy form, plus a path rule), 81 (redirect) and 82
    (fixed-response); target groups stable, canary, spare (ip), tcp (TCP), elsewhere (another VPC) and taken
    (used by another load balancer)."""

    def __init__(self, moto):
        self.moto = moto
        prefix = 's%d' % next(_names)
        self.prefix = prefix
        ec2 = client(moto, 'ec2')
        self.elb = elb = client(moto, 'elbv2')
        vpc = ec2.create_vpc(CidrBlock='10.0.0.0/16')['Vpc']['VpcId']
        other_vpc = ec2.create_vpc(CidrBlock='10.1.0.0/16')['Vpc']['VpcId']
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock='10.0.%d.0/24' % index, AvailabilityZone=REGION + zone)['Subnet']['SubnetId']
                   for index, zone in ((1, 'a'), (2, 'b'))]
        self.lb = elb.create_load_balancer(Name=prefix + '-alb', Subnets=subnets, Type='application')['LoadBalancers'][0]['LoadBalancerArn']
        other_lb = elb.create_load_balancer(Name=prefix + '-other', Subnets=subnets, Type='application')['LoadBalancers'][0]['LoadBalancerArn']

        def group(name, **extra):
            args = dict(Name='%s-%s' % (prefix, name), Protocol='HTTP', Port=80, VpcId=vpc, TargetType='instance')
            args.update(extra)
            return elb.create_target_group(**args)['TargetGroups'][0]['TargetGroupArn']

        self.stable = group('stable')
        self.canary = group('canary')
        self.spare = group('spare', TargetType='ip')
        self.tcp = group('tcp', Protocol='TCP')
        self.elsewhere = group('elsewhere', VpcId=other_vpc)
        self.taken = group('taken')
        self.listener = elb.create_listener(LoadBalancerArn=self.lb, Protocol='HTTP', Port=80, DefaultActions=[
            {'Type': 'forward', 'TargetGroupArn': self.stable}])['Listeners'][0]['ListenerArn']
        self.redirect = elb.create_listener(LoadBalancerArn=self.lb, Protocol='HTTP', Port=81, DefaultActions=[
            {'Type': 'redirect', 'RedirectConfig': {'Protocol': 'HTTPS', 'Port': '443', 'StatusCode': 'HTTP_301'}}])['Listeners'][0]['ListenerArn']
        self.fixed = elb.create_listener(LoadBalancerArn=self.lb, Protocol='HTTP', Port=82, DefaultActions=[
            {'Type': 'fixed-response', 'FixedResponseConfig': {'StatusCode': '503', 'ContentType': 'text/plain',
                                                               'MessageBody': 'maintenance'}}])['Listeners'][0]['ListenerArn']
        elb.create_listener(LoadBalancerArn=other_lb, Protocol='HTTP', Port=80, DefaultActions=[
            {'Type': 'forward', 'TargetGroupArn': self.taken}])
        self.rule = elb.create_rule(ListenerArn=self.listener, Priority=10, Conditions=[
            {'Field': 'path-pattern', 'PathPatternConfig': {'Values': ['/api/*']}}], Actions=[
            {'Type': 'forward', 'ForwardConfig': {'TargetGroups': [{'TargetGroupArn': self.stable, 'Weight': 1}]}}])['Rules'][0]['RuleArn']

    def default_rule(self):
        return [rule for rule in self.elb.describe_rules(ListenerArn=self.listener)['Rules'] if rule['IsDefault']][0]['RuleArn']

    def name(self, short):
        return '%s-%s' % (self.prefix, short)

    def default_actions(self, listener=None):
        return self.elb.describe_listeners(ListenerArns=[listener or self.listener])['Listeners'][0]['DefaultActions']

    def rule_state(self, rule=None):
        return self.elb.describe_rules(RuleArns=[rule or self.rule])['Rules'][0]

    def snapshot(self):
        """Everything the module could touch: the three listeners and every rule of listener 80."""
        listeners = self.elb.describe_listeners(LoadBalancerArn=self.lb)['Listeners']
        rules = self.elb.describe_rules(ListenerArn=self.listener)['Rules']
        return sorted(listeners, key=lambda item: item['Port']), sorted(rules, key=lambda item: item['RuleArn'])

    def weights(self, actions):
        forward = [action for action in actions if action['Type'] == 'forward'][0]
        if 'ForwardConfig' not in forward:
            return {self.short(forward['TargetGroupArn']): 1}
        return dict((self.short(group['TargetGroupArn']), group['Weight']) for group in forward['ForwardConfig']['TargetGroups'])

    def short(self, arn):
        return arn.split('/')[1][len(self.prefix) + 1:]
