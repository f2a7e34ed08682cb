"""The IAM policies in docs/iam/: valid policy documents, the actions the module docs name, and the blocks in the
user docs in step with the files (tests/integration/test_iam.py proves on moto that they are enough and minimal)."""

import json
import os
import re

import pytest

from tests.support.paths import REPO_ROOT

IAM_DIR = os.path.join(REPO_ROOT, 'docs', 'iam')
POLICIES = ('traffic-alb.json', 'analysis-cloudwatch.json')


def read(*parts):
    with open(os.path.join(REPO_ROOT, *parts), encoding='utf-8') as handle:
        return handle.read()


def actions(policy):
    return sorted(action for statement in policy['Statement'] for action in statement['Action'])


@pytest.mark.parametrize('name', POLICIES)
def test_valid_policy_document(name):
    policy = json.loads(read('docs', 'iam', name))
    assert policy['Version'] == '2012-10-17'
    assert set(policy) == {'Version', 'Statement'}
    sids = [statement['Sid'] for statement in policy['Statement']]
    assert len(set(sids)) == len(sids) and all(re.match(r'^[A-Za-z0-9]+$', sid) for sid in sids)
    for statement in policy['Statement']:
        assert set(statement) == {'Sid', 'Effect', 'Action', 'Resource'}
        assert statement['Effect'] == 'Allow'  # least privilege by what is granted, no Deny to reason about
        assert all(re.match(r'^(elasticloadbalancing|cloudwatch):[A-Z][A-Za-z]+$', action) for action in statement['Action'])
        assert '*' not in ''.join(statement['Action'])
        assert len(set(statement['Action'])) == len(statement['Action'])
        for resource in ([statement['Resource']] if isinstance(statement['Resource'], str) else statement['Resource']):
            assert resource == '*' or resource.startswith('arn:aws:elasticloadbalancing:')
        if any(not action.split(':')[1].startswith(('Describe', 'Get')) for action in statement['Action']):
            assert statement['Resource'] != '*', 'write actions must be scoped to ARNs'


def test_alb_doc_block_is_the_file():
    block = re.search(r'## IAM permissions\n.*?```json\n(.*?)```', read('docs', 'alb.md'), re.S).group(1)
    assert block == read('docs', 'iam', 'traffic-alb.json')


def test_docs_point_at_the_files():
    assert 'iam/traffic-alb.json' in read('docs', 'alb.md')
    assert 'iam/analysis-cloudwatch.json' in read('docs', 'metrics.md')
    assert 'iam/traffic-alb.json' in read('docs', 'security.md') and 'iam/analysis-cloudwatch.json' in read('docs', 'security.md')


def test_module_notes_name_the_same_actions():
    traffic = json.loads(read('docs', 'iam', 'traffic-alb.json'))
    named = set()
    for module in ('alb_weights.py', 'alb_canary_rule.py'):
        named |= set(re.findall(r'C\((elasticloadbalancing:[A-Za-z]+)\)', read('plugins', 'modules', module)))
    assert sorted(named) == actions(traffic)
    analysis = json.loads(read('docs', 'iam', 'analysis-cloudwatch.json'))
    assert actions(analysis) == ['cloudwatch:GetMetricData']
