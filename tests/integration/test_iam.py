"""Least privilege, proven: the IAM policies in docs/iam/ on a moto server that enforces IAM.

moto authenticates and authorizes requests once its count of unauthenticated actions reaches
``INITIAL_NO_AUTH_ACTION_COUNT`` (moto/core/authorization.py; the server's ``/moto-api/reset-auth`` endpoint sets
it and restarts the count). The fixture builds the load balancers, the metric data and the IAM users while the
count is infinite (moto's default), then sets it to 0: from then on every request needs a valid signature from a
known access key and an IAM policy allowing the action. Every module run is a real ansible-playbook process whose
tasks carry the access keys of one user.

- ``user_full`` holds exactly the actions of docs/iam/traffic-alb.json and docs/iam/analysis-cloudwatch.json: every
  ALB and CloudWatch module path works.
- ``without_<Action>`` holds the same policy minus that one action: the module run that needs it fails with the
  AccessDenied message naming the action, and the load balancer (listeners and rules) is exactly as before.

What moto cannot enforce, and how the policy is adapted for it (``for_moto``):
- moto authorizes every ELBv2 request against the resource ``*`` (no ``_determine_resource`` for elbv2), so a
  statement scoped to listener ARNs never matches; the write statement is applied with ``"Resource": "*"`` and
  ``test_moto_does_not_enforce_resource_arns`` pins that limitation (if moto learns ARNs, that test fails and the
  scoped form can be tested as it is).
- moto names an action after the request's signing name: CloudWatch signs as ``monitoring``, so moto checks
  ``monitoring:GetMetricData`` where AWS checks ``cloudwatch:GetMetricData``; the prefix is translated.
- moto does not check ``AddTags`` for ``CreateRule`` with tags (AWS does), so that removal is not tested.
- moto answers a denied CloudWatch request (JSON/CBOR protocol) with an XML error body, so botocore reports the code
  as ``403`` and the message holds the XML with ``AccessDenied`` and the action; AWS returns
  ``AccessDeniedException``. The test checks for the words, which both forms contain.
"""

import copy
import datetime
import json
import os

import boto3
import pytest
import requests

from tests.support.alb_fixture import Stack
from tests.support.moto import REGION, MotoServer, aws_env
from tests.support.paths import REPO_ROOT
from tests.support.playbook import run_playbook

pytestmark = pytest.mark.integration

SECRET = 'q7Vf2LmZx9Rt4WcK8pNh'
ROTATED = 'Hn8pKcW4tR9xZmL2fV7q'
NAMESPACE = 'Canary/IAM'


def load_policy(name):
    with open(os.path.join(REPO_ROOT, 'docs', 'iam', name), encoding='utf-8') as handle:
        return json.load(handle)


TRAFFIC = load_policy('traffic-alb.json')
ANALYSIS = load_policy('analysis-cloudwatch.json')
ACTIONS = [action for policy in (TRAFFIC, ANALYSIS) for statement in policy['Statement'] for action in statement['Action']]
# moto does not ask for AddTags on CreateRule with Tags (AWS does): its removal cannot be shown here.
REMOVABLE = [action for action in ACTIONS if action != 'elasticloadbalancing:AddTags']


def for_moto(policy, without=None):
    """The policy as moto can check it: every Resource '*', CloudWatch actions under moto's 'monitoring' prefix."""
    policy = copy.deepcopy(policy)
    for statement in policy['Statement']:
        statement['Action'] = [action.replace('cloudwatch:', 'monitoring:') for action in statement['Action']
                               if action != without]
        statement['Resource'] = '*'
    policy['Statement'] = [statement for statement in policy['Statement'] if statement['Action']]
    return policy


def short(action):
    return action.split(':', 1)[1]


def admin_client(moto, service, keys):
    return boto3.client(service, endpoint_url=moto.endpoint_url, region_name=REGION,
                        aws_access_key_id=keys['AccessKeyId'], aws_secret_access_key=keys['SecretAccessKey'])


def set_auth(moto, count):
    answer = requests.post(moto.endpoint_url + '/moto-api/reset-auth', data=str(count).encode(), timeout=10)
    answer.raise_for_status()


@pytest.fixture(scope='module')
def world():
    moto = MotoServer()
    moto.start()
    try:
        full_stack, denied_stack = Stack(moto), Stack(moto)
        iam = boto3.client('iam', endpoint_url=moto.endpoint_url, region_name=REGION,
                           aws_access_key_id='testing', aws_secret_access_key='testing')
        cloudwatch = boto3.client('cloudwatch', endpoint_url=moto.endpoint_url, region_name=REGION,
                                  aws_access_key_id='testing', aws_secret_access_key='testing')
        start = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0) - datetime.timedelta(minutes=20)
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=[
            {'MetricName': 'Requests', 'Timestamp': start + datetime.timedelta(minutes=minute), 'Value': 1.0 + minute}
            for minute in range(5)])

        def user(name, statements):
            iam.create_user(UserName=name)
            for index, policy in enumerate(policy for policy in statements if policy['Statement']):
                iam.put_user_policy(UserName=name, PolicyName='p%d' % index, PolicyDocument=json.dumps(policy))
            return iam.create_access_key(UserName=name)['AccessKey']

        keys = {'admin': user('admin', [{'Version': '2012-10-17', 'Statement': [
            {'Effect': 'Allow', 'Action': '*', 'Resource': '*'}]}])}
        keys['full'] = user('user_full', [for_moto(TRAFFIC), for_moto(ANALYSIS)])
        keys['scoped'] = user('user_scoped', [TRAFFIC])
        for action in REMOVABLE:
            keys[action] = user('without_' + short(action), [for_moto(TRAFFIC, action), for_moto(ANALYSIS, action)])
        # The existing header rule the denied cases try to move, rotate and delete.
        header_rule = denied_stack.elb.create_rule(
            ListenerArn=denied_stack.listener, Priority=5,
            Conditions=[{'Field': 'http-header', 'HttpHeaderConfig': {'HttpHeaderName': 'X-Canary', 'Values': [SECRET]}}],
            Actions=[{'Type': 'forward', 'ForwardConfig': {'TargetGroups': [
                {'TargetGroupArn': denied_stack.canary, 'Weight': 1}]}}])['Rules'][0]['RuleArn']
        set_auth(moto, 0)  # from here on: every request signed by a known user and allowed by its policies
        for stack in (full_stack, denied_stack):
            stack.elb = admin_client(moto, 'elbv2', keys['admin'])
        yield {'moto': moto, 'keys': keys, 'full': full_stack, 'denied': denied_stack, 'header_rule': header_rule,
               'start': start}
    finally:
        set_auth(moto, 'inf')
        moto.stop()


def task(name, module, keys, moto, **args):
    args.update({'endpoint_url': moto.endpoint_url, 'region': REGION, 'access_key': keys['AccessKeyId'],
                 'secret_key': keys['SecretAccessKey']})
    return {'name': name, module: args, 'register': 'out', 'ignore_errors': True}


def metrics_args(world):
    start = world['start']
    return dict(queries=[{'id': 'requests', 'namespace': NAMESPACE, 'metric_name': 'Requests', 'stat': 'Sum',
                          'period': 60}],
                start=start.strftime('%Y-%m-%dT%H:%M:%SZ'),
                end=(start + datetime.timedelta(minutes=5)).strftime('%Y-%m-%dT%H:%M:%SZ'))


def play(tasks):
    env = aws_env()
    env.pop('AWS_SESSION_TOKEN')  # the tasks' own keys, no session token
    env.update({'AWS_ACCESS_KEY_ID': 'unknown', 'AWS_SECRET_ACCESS_KEY': 'unknown'})
    run = run_playbook(tasks=tasks, extra_env=env, timeout=300)
    assert len(run.tasks) == len(tasks), run.stdout[-3000:] + run.stderr[-3000:]
    return run


def test_moto_does_not_enforce_resource_arns(world):
    """moto checks ELBv2 writes against Resource '*': the ARN-scoped write statement is denied even for the ARNs it
    names. Read actions (Resource '*' in the file too) work as written."""
    moto, stack = world['moto'], world['full']
    scoped = admin_client(moto, 'elbv2', world['keys']['scoped'])
    assert scoped.describe_listeners(ListenerArns=[stack.listener])['Listeners']
    policy = copy.deepcopy(TRAFFIC)
    policy['Statement'][1]['Resource'] = ['arn:aws:elasticloadbalancing:*:*:listener/app/*',
                                          'arn:aws:elasticloadbalancing:*:*:listener-rule/app/*']
    admin_client(moto, 'iam', world['keys']['admin']).put_user_policy(
        UserName='user_scoped', PolicyName='p0', PolicyDocument=json.dumps(policy))
    with pytest.raises(Exception, match='not authorized to perform: elasticloadbalancing:ModifyListener'):
        scoped.modify_listener(ListenerArn=stack.listener, DefaultActions=stack.default_actions())


def test_the_policy_is_enough(world):
    moto, stack, keys = world['moto'], world['full'], world['keys']['full']
    weights = 'canary.release.alb_weights'
    rule = 'canary.release.alb_canary_rule'
    header = dict(listener_arn=stack.listener, canary=stack.name('canary'), header_secret=SECRET)
    rotated = dict(header)
    rotated['header_secret'] = ROTATED
    moved = dict(rotated)
    moved['priority'] = 3
    run = play([
        task('set', weights, keys, moto, listener_arn=stack.listener, stable=stack.name('stable'),
             canary=stack.name('canary'), canary_percent=10),
        task('by name', weights, keys, moto, load_balancer=stack.name('alb'), port=80, stable=stack.name('stable'),
             canary=stack.name('canary'), canary_percent=25),
        task('on the rule', weights, keys, moto, rule_arn=stack.rule,
             stable=stack.name('stable'), canary=stack.name('canary'), canary_percent=50),
        task('query', weights, keys, moto, listener_arn=stack.listener, canary=stack.name('canary'), state='query'),
        task('create', rule, keys, moto, **header),
        task('rotate', rule, keys, moto, **rotated),
        task('move', rule, keys, moto, **moved),
        task('delete', rule, keys, moto, listener_arn=stack.listener, state='absent'),
        task('metrics', 'canary.release.cloudwatch_metrics', keys, moto, **metrics_args(world)),
    ])
    for name in ('set', 'by name', 'on the rule', 'query', 'create', 'rotate', 'move', 'delete', 'metrics'):
        result = run.result(name)
        assert not result.get('failed'), (name, result.get('msg'))
    for name in ('set', 'by name', 'on the rule', 'create', 'rotate', 'move', 'delete'):
        assert run.result(name)['changed'], name
    assert run.result('set')['api_calls'] == {'DescribeListeners': 2, 'DescribeTargetGroups': 1, 'ModifyListener': 1}
    assert run.result('by name')['api_calls']['DescribeLoadBalancers'] == 1
    assert run.result('on the rule')['api_calls'].get('ModifyRule') == 1
    assert run.result('query')['canary_percent'] == 25.0
    assert run.result('create')['api_calls'].get('CreateRule') == 1
    assert run.result('rotate')['api_calls'].get('ModifyRule') == 1
    assert run.result('move')['api_calls'].get('SetRulePriorities') == 1 and run.result('move')['priority'] == 3
    assert run.result('delete')['deleted'] == [run.result('create')['rule_arn']]
    assert run.result('metrics')['metrics']['requests']['datapoints'] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert stack.weights(stack.default_actions()) == {'stable': 3, 'canary': 1}
    assert SECRET not in run.stdout + run.stderr and ROTATED not in run.stdout + run.stderr


def test_each_action_is_needed(world):
    """One user per removed action, all cases in one ansible-playbook run; each needs exactly the missing action."""
    moto, stack, keys = world['moto'], world['denied'], world['keys']
    weights = 'canary.release.alb_weights'
    rule = 'canary.release.alb_canary_rule'
    set_weights = dict(listener_arn=stack.listener, stable=stack.name('stable'), canary=stack.name('canary'),
                       canary_percent=10)
    existing = dict(listener_arn=stack.listener, canary=stack.name('canary'), header_secret=SECRET)
    cases = [  # (action removed, module, arguments): a run that reaches that action
        ('elasticloadbalancing:DescribeLoadBalancers', weights,
         dict(load_balancer=stack.name('alb'), port=80, stable=stack.name('stable'), canary=stack.name('canary'),
              canary_percent=10)),
        ('elasticloadbalancing:DescribeListeners', weights, set_weights),
        ('elasticloadbalancing:DescribeTargetGroups', weights, set_weights),
        ('elasticloadbalancing:ModifyListener', weights, set_weights),
        ('elasticloadbalancing:ModifyRule', weights,
         dict(rule_arn=stack.rule, stable=stack.name('stable'),
              canary=stack.name('canary'), canary_percent=10)),
        ('elasticloadbalancing:DescribeRules', rule, dict(existing, header_name='X-Other')),
        ('elasticloadbalancing:CreateRule', rule, dict(existing, header_name='X-Other')),
        ('elasticloadbalancing:SetRulePriorities', rule, dict(existing, priority=7)),
        ('elasticloadbalancing:DeleteRule', rule, dict(listener_arn=stack.listener, state='absent')),
        ('cloudwatch:GetMetricData', 'canary.release.cloudwatch_metrics', metrics_args(world)),
    ]
    assert sorted(action for action, dummy, dummy in cases) == sorted(REMOVABLE)  # every action of the files
    cases.append(('elasticloadbalancing:ModifyRule', rule, dict(existing, header_secret=ROTATED)))  # rotation
    before = stack.snapshot()
    run = play([task('without %s #%d' % (action, index), module, keys[action], moto, **args)
                for index, (action, module, args) in enumerate(cases)])
    for index, (action, dummy, dummy) in enumerate(cases):
        result = run.result('without %s #%d' % (action, index))
        moto_action = action.replace('cloudwatch:', 'monitoring:')
        assert result.get('failed'), (action, result)
        assert 'AccessDenied' in result['msg'] and 'not authorized to perform: %s' % moto_action in result['msg'], (
            action, result['msg'])
    assert stack.snapshot() == before  # nothing half-changed
    assert stack.rule_state(world['header_rule'])['Priority'] == '5'
    assert SECRET not in run.stdout + run.stderr and ROTATED not in run.stdout + run.stderr


def test_rotation_and_move_without_set_rule_priorities_is_half_done(world):
    """The one partial change the API allows (docs/alb.md): ModifyRule and SetRulePriorities are two calls, so a user
    who may modify but not reorder rules gets the rotation applied and the move denied."""
    moto, stack, keys = world['moto'], world['denied'], world['keys']['elasticloadbalancing:SetRulePriorities']
    run = play([task('rotate and move', 'canary.release.alb_canary_rule', keys, moto, listener_arn=stack.listener,
                     canary=stack.name('canary'), header_secret=ROTATED, priority=8)])
    assert 'not authorized to perform: elasticloadbalancing:SetRulePriorities' in run.result('rotate and move')['msg']
    rule = stack.rule_state(world['header_rule'])
    assert rule['Priority'] == '5' and rule['Conditions'][0]['HttpHeaderConfig']['Values'] == [ROTATED]
