"""canary.release.alb_weights and canary.release.alb_canary_rule against a moto server, through ansible-playbook.

Each test builds its own VPCs, subnets, application load balancer, listeners, rules and target groups with boto3,
runs real ansible-playbook processes whose modules reach the moto server through ``endpoint_url``, and checks the
load balancer afterwards with boto3. The moto server records every request it serves, which gives the exact
sequence of ELBv2 operations per run (the call budget). Several module runs share one playbook where the tests
allow it, because each ansible-playbook start costs about a second.

What moto does not do, and how the tests deal with it: moto applies writes at once (no propagation delay), so the
read-back retry is covered by unit tests with an in-memory client that reports stale weights; moto accepts a
ModifyListener with a target group of another VPC, so "nothing changed" here proves that the module refused
before writing, not that the API would have refused; moto never throttles, so a fault-injecting proxy
(tests/support/throttling_proxy.py) in front of it answers every 2nd ELBv2 request with ``Throttling``.
"""

import pytest

from tests.support.alb_fixture import Stack
from tests.support.moto import REGION, MotoServer, aws_env
from tests.support.playbook import run_playbook
from tests.support.throttling_proxy import ThrottlingProxy

pytestmark = pytest.mark.integration

ELBV2_WRITES = ('ModifyListener', 'ModifyRule', 'CreateRule', 'DeleteRule', 'SetRulePriorities')


@pytest.fixture(scope='module')
def moto():
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stack(moto):
    return Stack(moto)


def task(name, module, endpoint, **args):
    args.update({'endpoint_url': endpoint, 'region': REGION})
    return {'name': name, module: args, 'register': 'out', 'ignore_errors': True}


def weights_task(name, stack, endpoint=None, **args):
    return task(name, 'canary.release.alb_weights', endpoint or stack.moto.endpoint_url, **args)


def rule_task(name, stack, **args):
    return task(name, 'canary.release.alb_canary_rule', stack.moto.endpoint_url, **args)


def play(tasks, **kwargs):
    env = aws_env()
    env.update(kwargs.pop('extra_env', {}))
    run = run_playbook(tasks=tasks, extra_env=env, **kwargs)
    assert len(run.tasks) == len(tasks), run.stdout[-3000:] + run.stderr[-3000:]
    return run


def elbv2_operations(moto):
    """The operations the moto server served since the last ``moto.clear()``."""
    return [request['operation'] for request in moto.requests()]


def test_percent_steps_idempotency_and_call_budget(stack, moto):
    moto.clear()
    run = play([
        weights_task('ten', stack, listener_arn=stack.listener, stable=stack.name('stable'), canary=stack.name('canary'),
                     canary_percent=10),
        weights_task('ten again', stack, listener_arn=stack.listener, stable=stack.name('stable'), canary=stack.name('canary'),
                     canary_percent=10),
        weights_task('twenty five by arn', stack, listener_arn=stack.listener, stable=stack.stable, canary=stack.canary,
                     canary_percent=25),
        weights_task('by port', stack, load_balancer=stack.name('alb'), port=80, stable=stack.name('stable'),
                     canary=stack.name('canary'), canary_percent=33.3),
        weights_task('query', stack, listener_arn=stack.listener, canary=stack.name('canary'), state='query'),
    ])
    # the moto server's own record, in order: the exact budget of each run
    assert elbv2_operations(moto) == [
        'DescribeListeners', 'DescribeTargetGroups', 'ModifyListener', 'DescribeListeners',     # changing, new group
        'DescribeListeners',                                                                     # unchanged
        'DescribeListeners', 'ModifyListener', 'DescribeListeners',                              # groups already there
        'DescribeLoadBalancers', 'DescribeListeners', 'ModifyListener', 'DescribeListeners',     # load balancer name + port
        'DescribeListeners',                                                                     # query
    ]
    ten = run.result('ten')
    assert not ten.get('failed'), ten
    assert ten['changed'] and ten['verified'] and ten['canary_percent'] == 10.0
    assert [(entry['name'], entry['weight']) for entry in ten['target_groups']['after']] == [
        (stack.name('stable'), 9), (stack.name('canary'), 1)]
    assert ten['target_groups']['before'] == [{'arn': stack.stable, 'name': stack.name('stable'), 'weight': 1, 'percent': 100.0}]
    assert ten['api_calls'] == {'DescribeListeners': 2, 'DescribeTargetGroups': 1, 'ModifyListener': 1}
    again = run.result('ten again')
    assert not again['changed'] and again['verified'] and again['api_calls'] == {'DescribeListeners': 1}
    assert run.result('twenty five by arn')['canary_percent'] == 25.0
    by_port = run.result('by port')
    assert by_port['changed'] and by_port['canary_percent'] == pytest.approx(33.3)
    assert by_port['listener_arn'] == stack.listener
    query = run.result('query')
    assert not query['changed'] and query['canary_percent'] == pytest.approx(33.3)
    assert stack.weights(stack.default_actions()) == {'stable': 667, 'canary': 333}
    listeners, rules = stack.snapshot()
    assert [listener['Port'] for listener in listeners] == [80, 81, 82]
    assert stack.weights(stack.rule_state()['Actions']) == {'stable': 1}  # the rule was not touched


def test_explicit_weights_extremes_and_check_and_diff_modes(stack, moto):
    tasks = [
        weights_task('explicit', stack, listener_arn=stack.listener, target_groups=[
            {'name': stack.name('stable'), 'weight': 700}, {'arn': stack.canary, 'weight': 200},
            {'name': stack.name('spare'), 'weight': 100}]),
        weights_task('all to canary', stack, listener_arn=stack.listener, stable=stack.name('stable'),
                     canary=stack.name('canary'), canary_percent=100),
    ]
    run = play(tasks, diff=True)
    explicit = run.result('explicit')
    assert explicit['changed'] and explicit['canary_percent'] is None
    assert [entry['percent'] for entry in explicit['target_groups']['after']] == [70.0, 20.0, 10.0]
    assert explicit['diff']['after'] == ('target_groups:\n  %s: 700  # 70 %%\n  %s: 200  # 20 %%\n  %s: 100  # 10 %%\n'
                                         'stickiness: {enabled: false}\n' % (stack.name('stable'), stack.name('canary'), stack.name('spare')))
    assert explicit['diff']['before'].startswith('target_groups:\n  %s: 1  # 100 %%\n' % stack.name('stable'))
    assert stack.weights(stack.default_actions()) == {'stable': 0, 'canary': 1}
    assert run.result('all to canary')['canary_percent'] == 100.0

    before = stack.snapshot()
    moto.clear()
    check = play([weights_task('would', stack, listener_arn=stack.listener, stable=stack.name('stable'),
                               canary=stack.name('canary'), canary_percent=5, stickiness={'duration': 600}),
                  weights_task('same', stack, listener_arn=stack.listener, stable=stack.name('stable'),
                               canary=stack.name('canary'), canary_percent=100)], check=True, diff=True)
    would = check.result('would')
    assert would['changed'] and not would['verified']
    assert [(entry['name'], entry['weight']) for entry in would['target_groups']['after']] == [
        (stack.name('stable'), 19), (stack.name('canary'), 1)]
    assert would['stickiness']['after'] == {'enabled': True, 'duration': 600}
    assert 'stickiness: {enabled: true, duration: 600}' in would['diff']['after']
    assert not check.result('same')['changed'] and 'diff' not in check.result('same')
    assert stack.snapshot() == before
    assert not [operation for operation in elbv2_operations(moto) if operation in ELBV2_WRITES]


def test_rule_forward_action_with_stickiness(stack, moto):
    rule_before = stack.rule_state()
    moto.clear()
    run = play([
        weights_task('rule', stack, rule_arn=stack.rule, stable=stack.name('stable'), canary=stack.name('canary'),
                     canary_percent=50, stickiness={'enabled': True, 'duration': 86400}),
        weights_task('rule again', stack, rule_arn=stack.rule, listener_arn=stack.listener, stable=stack.name('stable'),
                     canary=stack.name('canary'), canary_percent=50, stickiness={'enabled': True, 'duration': 86400}),
        weights_task('stickiness off', stack, rule_arn=stack.rule, stable=stack.name('stable'), canary=stack.name('canary'),
                     canary_percent=50, stickiness={'enabled': False}),
    ])
    assert elbv2_operations(moto) == [
        'DescribeRules', 'DescribeTargetGroups', 'ModifyRule', 'DescribeRules',
        'DescribeRules',
        'DescribeRules', 'ModifyRule', 'DescribeRules',
    ]
    rule = run.result('rule')
    assert rule['changed'] and rule['verified'] and rule['rule_arn'] == stack.rule
    assert rule['stickiness'] == {'before': {'enabled': False, 'duration': None}, 'after': {'enabled': True, 'duration': 86400}}
    assert not run.result('rule again')['changed']
    assert run.result('stickiness off')['changed']
    after = stack.rule_state()
    assert stack.weights(after['Actions']) == {'stable': 1, 'canary': 1}
    assert after['Actions'][0]['ForwardConfig']['TargetGroupStickinessConfig'] == {'Enabled': False}
    assert after['Conditions'] == rule_before['Conditions'] and after['Priority'] == rule_before['Priority']
    assert stack.default_actions() == [{'Type': 'forward', 'TargetGroupArn': stack.stable}]  # default action untouched


def test_bad_input_changes_nothing(stack, moto):
    """Every refusal issue 9 names, through ansible-playbook; the finer ones (unknown port or target group ARN, bad
    stickiness, percent out of range, Lambda groups...) are in tests/unit/plugins/module_utils/_alb/test_alb_listener.py."""
    stable, canary = stack.name('stable'), stack.name('canary')
    missing_listener = stack.listener[:-4] + 'ffff'
    missing_rule = stack.rule[:-4] + 'ffff'
    cases = [
        ('unknown listener', dict(listener_arn=missing_listener, stable=stable, canary=canary, canary_percent=10),
         'listener %s not found' % missing_listener),
        ('unknown rule', dict(rule_arn=missing_rule, stable=stable, canary=canary, canary_percent=10), 'not found'),
        ('unknown load balancer', dict(load_balancer=stack.name('nope'), port=80, stable=stable, canary=canary,
                                       canary_percent=10), 'load balancer %s not found' % stack.name('nope')),
        ('unknown target group', dict(listener_arn=stack.listener, stable=stable, canary=stack.name('nope'), canary_percent=10),
         'target group not found: %s' % stack.name('nope')),
        ('six target groups', dict(listener_arn=stack.listener, target_groups=[
            {'name': stack.name(short), 'weight': 1} for short in ('stable', 'canary', 'spare', 'a', 'b', 'c')]), 'at most 5'),
        ('weight too big', dict(listener_arn=stack.listener, target_groups=[{'name': stable, 'weight': 1000}]), 'from 0 to 999'),
        ('all zero', dict(listener_arn=stack.listener, target_groups=[{'name': stable, 'weight': 0},
                                                                      {'name': canary, 'weight': 0}]), 'all weights are 0'),
        ('redirect', dict(listener_arn=stack.redirect, stable=stable, canary=canary, canary_percent=10),
         'no forward action (its actions: redirect)'),
        ('fixed response', dict(listener_arn=stack.fixed, stable=stable, canary=canary, canary_percent=10),
         'no forward action (its actions: fixed-response)'),
        ('another vpc', dict(listener_arn=stack.listener, stable=stable, canary=stack.name('elsewhere'), canary_percent=10),
         'target group %s is in vpc-' % stack.name('elsewhere')),
        ('tcp target group', dict(listener_arn=stack.listener, stable=stable, canary=stack.name('tcp'), canary_percent=10),
         'uses protocol TCP'),
        ('another load balancer', dict(listener_arn=stack.listener, stable=stable, canary=stack.name('taken'), canary_percent=10),
         'attached to another load balancer'),
        ('default rule', dict(rule_arn=stack.default_rule(), stable=stable, canary=canary, canary_percent=10), 'default rule'),
        ('both modes', dict(listener_arn=stack.listener, stable=stable, canary=canary, canary_percent=10,
                            target_groups=[{'name': stable, 'weight': 1}]), 'mutually exclusive'),
    ]
    before = stack.snapshot()
    moto.clear()
    run = play([weights_task(name, stack, **args) for name, args, dummy in cases])
    for name, dummy, words in cases:
        result = run.result(name)
        assert result.get('failed'), (name, result)
        assert words in result['msg'], (name, result['msg'])
        assert not result.get('changed'), name
    assert stack.snapshot() == before
    assert not [operation for operation in elbv2_operations(moto) if operation in ELBV2_WRITES]


SECRET = 'k7Qm2xR9vT4pL8wZ3nB6'
TRUSTED = ['192.0.2.0/24', '2001:db8:10::/48']


def test_header_rule_present_and_absent(stack, moto):
    """The rule's conditions are exactly what was asked (http-header with the secret + source-ip), with check mode,
    diff mode and idempotency; the secret is in no output of a -vvv --diff run."""
    restricted = dict(listener_arn=stack.listener, canary=stack.name('canary'), header_secret=SECRET,
                      trusted_sources=TRUSTED)
    elsewhere = dict(restricted)
    elsewhere['canary'] = stack.name('elsewhere')
    rotated = SECRET[::-1]
    rotation = dict(restricted)
    rotation['header_secret'] = rotated
    moto.clear()
    run = play([rule_task('check create', stack, **restricted)], check=True, diff=True, extra_args=['-vvv'])
    check = run.result('check create')
    assert check['changed'] and check['rule_arn'] is None and check['priority'] == 1
    assert 'condition: {http-header: X-Canary, values: [(secret)]}' in check['diff']['after']
    assert 'condition: {source-ip: [192.0.2.0/24, 2001:db8:10::/48]}' in check['diff']['after']
    assert not [operation for operation in elbv2_operations(moto) if operation in ELBV2_WRITES]
    assert SECRET not in run.stdout + run.stderr and 'ESTABLISH LOCAL CONNECTION' in run.stdout + run.stderr

    run = play([
        rule_task('create', stack, **restricted),
        rule_task('again', stack, load_balancer=stack.name('alb'), port=80, canary=stack.canary, header_secret=SECRET,
                  trusted_sources=list(reversed(TRUSTED))),
        rule_task('bad priority', stack, priority=10, **restricted),
        rule_task('other vpc', stack, **elsewhere),
    ], diff=True, extra_args=['-vvv'])
    assert SECRET not in run.stdout + run.stderr
    create = run.result('create')
    assert create['changed'] and create['priority'] == 1, create
    assert create['target_group'] == {'arn': stack.canary, 'name': stack.name('canary')}
    assert create['header_values'] == [] and create['trusted_sources'] == TRUSTED
    assert create['invocation']['module_args']['header_secret'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
    rule = stack.rule_state(create['rule_arn'])
    assert rule['Conditions'] == [
        {'Field': 'http-header', 'HttpHeaderConfig': {'HttpHeaderName': 'X-Canary', 'Values': [SECRET]}},
        {'Field': 'source-ip', 'SourceIpConfig': {'Values': TRUSTED}}], rule['Conditions']
    assert stack.weights(rule['Actions']) == {'canary': 1}
    tags = stack.elb.describe_tags(ResourceArns=[create['rule_arn']])['TagDescriptions'][0]['Tags']
    assert tags == [{'Key': 'canary.release/header-rule', 'Value': 'X-Canary'}]
    again = run.result('again')
    assert not again['changed'] and again['rule_arn'] == create['rule_arn']
    assert 'priority 10 is already used' in run.result('bad priority')['msg']
    assert 'is in vpc-' in run.result('other vpc')['msg']
    assert stack.rule_state()['Priority'] == '10'  # the path rule stays

    # Rotating the secret, in check mode then for real: the same rule changes, no second rule appears.
    moto.clear()
    run = play([rule_task('rotate', stack, **rotation)], check=True, diff=True)
    assert run.result('rotate')['changed'] and 'values: [(secret, changed)]' in run.result('rotate')['diff']['after']
    assert stack.rule_state(create['rule_arn'])['Conditions'][0]['HttpHeaderConfig']['Values'] == [SECRET]
    run = play([rule_task('rotate', stack, **rotation), rule_task('rotate again', stack, **rotation)])
    assert run.result('rotate')['changed'] and run.result('rotate')['rule_arn'] == create['rule_arn']
    assert not run.result('rotate again')['changed']
    assert stack.rule_state(create['rule_arn'])['Conditions'][0]['HttpHeaderConfig']['Values'] == [rotated]
    assert elbv2_operations(moto).count('ModifyRule') == 1 and 'CreateRule' not in elbv2_operations(moto)

    moto.clear()
    run = play([
        rule_task('remove', stack, listener_arn=stack.listener, state='absent'),
        rule_task('remove again', stack, listener_arn=stack.listener, state='absent'),
    ], diff=True)
    remove = run.result('remove')
    assert remove['changed'] and remove['deleted'] == [create['rule_arn']]
    assert remove['diff']['after'] == '' and 'X-Canary' in remove['diff']['before']
    assert rotated not in run.stdout  # absent does not know the secret: shown as a placeholder all the same
    assert not run.result('remove again')['changed']
    assert elbv2_operations(moto) == ['DescribeListeners', 'DescribeRules', 'DeleteRule', 'DescribeListeners', 'DescribeRules']
    rules = stack.elb.describe_rules(ListenerArn=stack.listener)['Rules']
    assert sorted(rule['Priority'] for rule in rules) == ['10', 'default']


def test_header_rule_refuses_public_forcing_and_alb_limits_before_any_call(stack, moto):
    cases = [
        ('old default', dict(), "old default value 'always'"),
        ('public value', dict(header_values=['beta']), 'not secret'),
        ('guessable secret', dict(header_secret='canarycanary1234'), 'not an acceptable secret'),
        ('wildcard secret', dict(header_secret=SECRET + '*'), 'wildcards'),
        ('too many values', dict(header_secret=SECRET, header_values=['a', 'b', 'c'], trusted_sources=TRUSTED),
         'at most 3 values per condition'),
        ('too many networks', dict(header_secret=SECRET, trusted_sources=['10.0.0.0/8', '172.16.0.0/12',
                                                                          '192.168.0.0/16', '192.0.2.0/24']),
         'trusted_sources lists 4'),
        ('too many in the rule', dict(header_secret=SECRET, header_values=['a', 'b'],
                                      trusted_sources=['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']),
         'at most 5 values per rule'),
        ('the whole internet', dict(header_secret=SECRET, trusted_sources=['0.0.0.0/0']), 'wider than /8'),
    ]
    before = stack.snapshot()
    moto.clear()
    run = play([rule_task(name, stack, listener_arn=stack.listener, canary=stack.name('canary'), **args)
                for name, args, dummy in cases])
    for name, dummy, words in cases:
        result = run.result(name)
        assert result.get('failed') and words in result['msg'], (name, result)
    assert 'canarycanary1234' not in run.stdout + run.stderr
    assert elbv2_operations(moto) == []  # refused before any call
    assert stack.snapshot() == before

    # allow_public_forcing: accepted, with a warning.
    run = play([rule_task('public', stack, listener_arn=stack.listener, canary=stack.name('canary'),
                          allow_public_forcing=True)])
    public = run.result('public')
    assert public['changed'] and any('allow_public_forcing' in warning for warning in public['warnings'])
    assert stack.rule_state(public['rule_arn'])['Conditions'] == [
        {'Field': 'http-header', 'HttpHeaderConfig': {'HttpHeaderName': 'X-Canary', 'Values': ['always']}}]
    play([rule_task('remove', stack, listener_arn=stack.listener, state='absent')])


def test_throttling_is_retried(stack, moto):
    moto.clear()
    with ThrottlingProxy(moto.endpoint_url, every=2) as proxy:
        run = play([weights_task('through proxy', stack, endpoint=proxy.url, listener_arn=stack.listener,
                                 stable=stack.name('stable'), canary=stack.name('canary'), canary_percent=20)],
                   extra_env={'AWS_MAX_ATTEMPTS': '1'})  # botocore itself does not retry: AWSRetry has to
        throttled = proxy.throttled()
    result = run.result('through proxy')
    assert not result.get('failed'), result
    assert result['changed'] and result['verified'] and result['canary_percent'] == 20.0
    # every 2nd ELBv2 request refused: each call after the first was throttled once, then retried
    assert throttled == ['DescribeTargetGroups', 'ModifyListener', 'DescribeListeners']
    # what got through is exactly the budget: throttled requests were retried, none was duplicated
    assert elbv2_operations(moto) == ['DescribeListeners', 'DescribeTargetGroups', 'ModifyListener', 'DescribeListeners']
    assert stack.weights(stack.default_actions()) == {'stable': 4, 'canary': 1}
