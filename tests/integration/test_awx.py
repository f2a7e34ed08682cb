"""The AWX workflow of examples/awx, run the way AWX runs it, short of an AWX server.

Every job is a real ``ansible-playbook`` run through ansible-runner (the engine AWX runs jobs with) in a fresh private
data directory holding the project's playbooks (examples/awx/project), the inventory and the extra variables AWX
would give it (tests/support/awx.py). The workflow is the one examples/awx/workflow.yml defines - its survey, its
nodes, their ``extra_data`` and their links - walked as AWX walks it: the artifacts (``set_stats``) of each job go
to the next nodes as extra variables, and the approval node is decided by the test.

The jobs act on one local stack (examples/local/stack.py): 1 stable and 1 canary sample app instance behind a real
nginx on 127.0.0.1. The release's only step below 100 % is unjudged with an approval gate, so the release job holds
at once - as a release held for a human (an approval gate, or an ``inconclusive`` judge) does - and no analysis runs.
"""

import json
import os
import re
import subprocess

import pytest
import yaml

from examples.local.stack import REPO_ROOT, LocalStack, find_nginx, find_prometheus
from tests.support.awx import Workflow, load_workflow_example, survey_answers
from tests.support.paths import BIN_DIR
from tests.support.playbook import playbook_env

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(find_nginx() is None or find_prometheus() is None,
                                 reason='nginx and prometheus are needed')]

SERVICE = 'sample'
EXAMPLE = os.path.join(REPO_ROOT, 'examples', 'awx')
PROJECT = os.path.join(EXAMPLE, 'project')
WORKFLOW = os.path.join(EXAMPLE, 'workflow.yml')
STEPS = [{'weight': 10, 'pause': 1, 'analysis': False, 'approval': True}, {'weight': 100, 'pause': 0}]


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    with LocalStack(str(tmp_path_factory.mktemp('stack')), stable=1, canary=1, baseline=0, stable_version='1') as local:
        yield local


def launch(stack, tmp_path, version, state_dir):
    """A launch of the example's workflow for ``version``; the AWX inventory holds the stack's hosts and settings."""
    example = load_workflow_example(WORKFLOW, {'canary_services': [SERVICE]})
    with open(stack.inventory_path, encoding='utf-8') as handle:
        inventory = json.load(handle)
    inventory['all']['vars'].update(stack.ansible_vars())
    inventory['all']['vars'].update({
        'rollout_state_dir': state_dir, 'rollout_steps': STEPS, 'rollout_report': False, 'rollout_preflight': False,
        'deploy_tasks_file': os.path.join(REPO_ROOT, 'examples', 'local', 'deploy_tasks.yml'),
        'deploy_health_delay': 0})
    workdir = tmp_path / 'awx'
    workdir.mkdir()
    return Workflow(str(workdir), example['workflow'], example['templates'], PROJECT, inventory,
                    {'rollout_service': SERVICE, 'rollout_version': version})


def ok(job):
    assert job.status == 'successful', (job.template, job.failed_messages(), job.stdout()[-3000:])
    return job


def record(state_dir):
    path = os.path.join(state_dir, SERVICE + '.json')
    if not os.path.exists(path):
        return None
    with open(path, encoding='utf-8') as handle:
        return json.load(handle)


def versions(stack):
    return dict((name, instance.version) for name, instance in stack.instances.items())


def canary_line(stack):
    return [line.strip() for line in stack.upstream_text().splitlines() if stack.canary_servers[0] in line][0]


def only_check_export(job):
    """A check job exports what it would have done under its own key, never ``canary_release``."""
    ok(job)
    assert list(job.artifacts) == ['canary_release_check'], job.artifacts
    assert job.artifacts['canary_release_check']['check_mode'] is True
    return job.artifacts['canary_release_check']


def held_at_the_gate(workflow, stack, state_dir, version):
    """Walk to the approval node: the release holds, the status gate passes; return the gate's export."""
    assert workflow.walk() == ['release', 'gate']
    release = ok(workflow.jobs['release'])  # in AWX a hold ends the job successfully
    held = release.artifacts['canary_release']
    assert list(release.artifacts) == ['canary_release']
    assert (held['outcome'], held['status'], held['step'], held['version'], held['check_mode']) == \
        ('held', 'paused', 0, version, False)
    gate = ok(workflow.jobs['gate'])
    # AWX passed the release's artifacts down as extra variables, and the node's extra_data
    assert gate.extra_vars['canary_release'] == held and gate.extra_vars['status_require'] == 'paused'
    assert gate.extra_vars['rollout_version'] == version and gate.extra_vars['awx_workflow_job_id'] > 0
    shown = gate.artifacts['canary_release']  # what the approval node shows: the workflow's last canary_release
    assert (shown['outcome'], shown['status'], shown['version'], shown['locked']) == ('held', 'paused', version, False)
    assert shown['message'] == ('%s %s: release held at step 0 (10 %%), waiting for rollout_approval=approve or reject'
                                % (SERVICE, version)), shown['message']
    assert [(step['index'], step['weight'], step['verdict']) for step in shown['steps']] == \
        [(0, 10.0, 'awaiting_approval')]
    assert record(state_dir)['status'] == 'paused' and 'down' not in canary_line(stack)  # 10 % while humans decide
    return shown


def test_approved_workflow_promotes_the_held_canary_and_check_jobs_change_nothing(stack, tmp_path):
    state_dir = str(tmp_path / 'state')
    workflow = launch(stack, tmp_path, '2', state_dir)
    before = versions(stack)

    shown = held_at_the_gate(workflow, stack, state_dir, '2')
    paused, upstream, deployed = record(state_dir), stack.upstream_text(), versions(stack)
    assert deployed == dict(before, **{'canary-1': '2'})
    # check jobs while the release waits for the approval (a check release: test_release.py; a check promotion:
    # test_release_end.py): nothing changes, and a workflow that ran them would still read the gate's canary_release
    for node, expected in (('rollback', 'rolled_back'), ('status', 'held')):
        job = workflow.run_node(node, job_type='check', after='approval')
        assert job.extra_vars['canary_release'] == shown
        assert only_check_export(job)['outcome'] == expected, (node, job.artifacts)
        assert record(state_dir) == paused and stack.upstream_text() == upstream and versions(stack) == deployed, node

    # approved: the promotion's begin, its stable hosts (sliced), its finish, then the status of where it ended
    assert workflow.walk(approve=True) == ['approval', 'promote', 'promote_hosts', 'promote_finish', 'status']
    promote = ok(workflow.jobs['promote'])
    assert promote.extra_vars['canary_release'] == shown and promote.extra_vars['promote_phase'] == 'begin'
    begun = promote.artifacts['canary_release']
    assert (begun['outcome'], begun['version']) == ('promoting', '2') and begun['run_id']
    # two hosts in the inventory: two slices (AWX slices no more than there are hosts); canary-1's has no stable host
    sliced = ok(workflow.jobs['promote_hosts'])
    assert [sorted(host['host'] for host in ok(job).artifacts['canary_release']['hosts']) for job in sliced.slices] == \
        [[], ['stable-1']]
    assert all(job.artifacts['canary_release']['run_id'] == begun['run_id'] for job in sliced.slices)
    finish = ok(workflow.jobs['promote_finish'])
    assert finish.extra_vars['canary_release']['run_id'] == begun['run_id']
    promoted = finish.artifacts['canary_release']
    assert (promoted['outcome'], promoted['version'], promoted['previous_version'], promoted['check_mode']) == \
        ('promoted', '2', None, False)  # the release was not told the version it replaces
    assert [(host['host'], host['state']) for host in promoted['hosts']] == [('stable-1', 'promoted')]
    assert versions(stack) == {'stable-1': '2', 'canary-1': '2'}
    assert canary_line(stack).endswith('down;  # canary-1')
    final = record(state_dir)
    assert final['status'] == 'promoted' and not os.path.exists(os.path.join(state_dir, SERVICE + '.lock'))
    status = ok(workflow.jobs['status'])
    assert status.extra_vars['canary_release'] == promoted  # the finish job's artifacts won over the earlier ones
    ended = status.artifacts['canary_release']
    assert (ended['outcome'], ended['status'], ended['run_id']) == ('promoted', 'promoted', final['run_id'])
    assert ended['message'] == '%s 2: release promoted - %s' % (SERVICE, final['reason'])


def test_denied_workflow_rolls_the_held_canary_back_and_a_gate_after_it_fails(stack, tmp_path):
    state_dir = str(tmp_path / 'state')
    workflow = launch(stack, tmp_path, '3', state_dir)
    stable = dict((name, version) for name, version in versions(stack).items() if name.startswith('stable'))
    shown = held_at_the_gate(workflow, stack, state_dir, '3')
    assert versions(stack)['canary-1'] == '3'

    # denied (or timed out): the rollback job, with the node's reason, then the status
    assert workflow.walk(approve=False) == ['approval', 'rollback', 'status']
    rollback = ok(workflow.jobs['rollback'])
    assert rollback.extra_vars['canary_release'] == shown
    reason = workflow.nodes['rollback']['extra_data']['rollback_reason']
    rolled = rollback.artifacts['canary_release']
    assert (rolled['outcome'], rolled['version'], rolled['canary_percent'], rolled['check_mode']) == \
        ('rolled_back', '3', 0.0, False)
    # (the release was not told the version it replaces: rollout_previous_version)
    assert shown['previous_version'] is None
    assert rolled['message'] == '%s 3: rolled back, canary at 0.0 %% via nginx: %s' % (SERVICE, reason)
    assert canary_line(stack).endswith('down;  # canary-1')
    assert record(state_dir)['status'] == 'rolled_back' and record(state_dir)['reason'] == reason
    assert dict((name, version) for name, version in versions(stack).items() if name.startswith('stable')) == stable
    ended = ok(workflow.jobs['status']).artifacts['canary_release']
    assert (ended['outcome'], ended['status'], ended['version']) == ('rolled_back', 'rolled_back', '3')

    # the gate of a release that is not held fails (nothing to approve) and still exports where the release stands
    gate = workflow.run_node('gate')
    assert gate.status == 'failed'
    assert gate.failed_messages() == ['status.yml: the rollout of %s is rolled_back on localhost, not paused' % SERVICE]
    assert gate.artifacts['canary_release']['outcome'] == 'rolled_back'


# --- the example itself -------------------------------------------------------------------------------------------

def accepted_variables(playbook):
    """The variables a playbook of the collection reads: its plays' variables, what it reads with a default, and the
    options of the roles it includes (every entry point of their argument specs)."""
    path = os.path.join(REPO_ROOT, 'playbooks', playbook)
    with open(path, encoding='utf-8') as handle:
        text = handle.read()
    names = set(re.findall(r'\b([a-z][a-z0-9_]*) \| default\(', text))
    for play in yaml.safe_load(text):
        names.update(play.get('vars') or {})
        for vars_file in play.get('vars_files') or []:
            with open(os.path.join(os.path.dirname(path), vars_file), encoding='utf-8') as handle:
                names.update(re.findall(r'\b([a-z][a-z0-9_]*) \| default\(', handle.read()))
    for role in set(re.findall(r'name: canary\.release\.([a-z_]+)', text)):
        with open(os.path.join(REPO_ROOT, 'roles', role, 'meta', 'argument_specs.yml'), encoding='utf-8') as handle:
            specs = yaml.safe_load(handle)['argument_specs']
        names.update(option for entry in specs.values() for option in entry.get('options', {}))
    return names


def test_the_example_workflow_is_valid_and_asks_only_for_what_the_playbooks_take():
    project_playbooks = sorted(os.listdir(os.path.join(PROJECT, 'playbooks')))
    assert project_playbooks == ['canary_release.yml', 'promote.yml', 'promote_hosts.yml', 'rollback.yml', 'status.yml']
    checked = subprocess.run(
        [os.path.join(BIN_DIR, 'ansible-playbook'), '--syntax-check', WORKFLOW]
        + [os.path.join(PROJECT, 'playbooks', name) for name in project_playbooks],
        env=playbook_env(), capture_output=True, text=True, timeout=120, check=False)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]

    example = load_workflow_example(WORKFLOW)
    templates, workflow = example['templates'], example['workflow']
    # each job template runs the project's playbook that imports the collection's playbook of the same name
    playbook_of = {}
    for name, template in templates.items():
        with open(os.path.join(PROJECT, template['playbook']), encoding='utf-8') as handle:
            imported = yaml.safe_load(handle)[0]['ansible.builtin.import_playbook']
        assert imported == 'canary.release.' + os.path.basename(template['playbook'])[:-4], name
        assert template['ask_variables_on_launch'] is True, name  # else AWX drops the nodes' extra_data
        playbook_of[name] = os.path.basename(template['playbook'])
    assert sorted(playbook_of.values()) == project_playbooks

    nodes = dict((node['identifier'], node) for node in workflow['workflow_nodes'])
    assert len(nodes) == len(workflow['workflow_nodes']), 'node identifiers must be unique'
    for identifier, node in nodes.items():
        for kind, links in (node.get('related') or {}).items():
            assert kind in ('success_nodes', 'failure_nodes', 'always_nodes'), (identifier, kind)
            assert all(link['identifier'] in nodes for link in links), (identifier, links)
        job = node['unified_job_template']
        if job['type'] == 'workflow_approval':
            assert job['timeout'] > 0 and not node.get('extra_data'), identifier
            continue
        assert job['type'] == 'job_template' and job['name'] in templates, (identifier, job)
        # every variable a node sets is one its playbook reads
        unknown = set(node.get('extra_data') or {}) - accepted_variables(playbook_of[job['name']])
        assert not unknown, (identifier, unknown)
    template_of = dict((identifier, playbook_of.get(node['unified_job_template']['name']))
                       for identifier, node in nodes.items())
    approval = [identifier for identifier, node in nodes.items()
                if node['unified_job_template']['type'] == 'workflow_approval']
    assert len(approval) == 1
    related = nodes[approval[0]]['related']
    assert [template_of[link['identifier']] for link in related['success_nodes']] == ['promote.yml']
    # the promotion in phases: begin (once), the stable hosts (the only sliced template), finish (once)
    chain = [related['success_nodes'][0]['identifier']]
    while len(chain) < 3:
        chain.append(nodes[chain[-1]]['related']['success_nodes'][0]['identifier'])
    assert [(template_of[node], (nodes[node].get('extra_data') or {}).get('promote_phase')) for node in chain] == [
        ('promote.yml', 'begin'), ('promote_hosts.yml', None), ('promote.yml', 'finish')]
    assert [name for name, template in templates.items() if int(template.get('job_slice_count') or 1) > 1] == \
        ['canary promote hosts']
    assert [template_of[link['identifier']] for link in related['failure_nodes']] == ['rollback.yml']
    # the gate before the approval: a status job that requires a paused (held) rollout
    gates = [identifier for identifier, node in nodes.items()
             if {'identifier': approval[0]} in (node.get('related') or {}).get('success_nodes', [])]
    assert [(template_of[gate], nodes[gate]['extra_data']) for gate in gates] == [
        ('status.yml', {'status_require': 'paused'})]

    # the survey: every variable it sets is read by the release, and the service by every playbook
    assert workflow['survey_enabled'] is True
    variables = [question['variable'] for question in workflow['survey_spec']['spec']]
    assert sorted(variables) == ['rollout_service', 'rollout_version']
    assert not set(variables) - accepted_variables('canary_release.yml')
    assert all('rollout_service' in accepted_variables(name) for name in project_playbooks)
    # answers are checked as AWX checks them
    assert survey_answers(workflow['survey_spec'], {'rollout_service': 'web', 'rollout_version': '1.4.0'})
    for bad in ({'rollout_service': 'web'}, {'rollout_service': 'nope', 'rollout_version': '1'},
                {'rollout_service': 'web', 'rollout_version': ''}, {'rollout_service': 'web', 'rollout_versoin': '1'}):
        with pytest.raises(ValueError):
            survey_answers(workflow['survey_spec'], bad)
