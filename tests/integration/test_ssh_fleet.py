"""The SSH fleet of tests/support/ssh_fleet.py: real hosts reached the way a real fleet is, and gone afterwards.

Four hosts (network namespaces with sshd, the sample app and NGINX). ansible-playbook reaches every one over SSH with
pipelining and ControlPersist (one ControlMaster per host in the fleet's control directory, no module file copied
over SFTP: sshd's log has no sftp session) and runs inside each host's namespace; the deploy role with the fleet's
inventory puts version 2 on one host (restart over SSH, health check through that host's NGINX), which
``versions()`` reads back. A host made unreachable (every sshd process in its namespace stopped, so its
ControlMaster ends too) is UNREACHABLE while the others answer, and answers again after ``restore()``. After
``close()`` nothing of the fleet is left: namespaces, interfaces, processes, control sockets.
"""

import json
import os
import time

import pytest
import yaml

from tests.support.local_fleet import interfaces_in, is_running, namespace_pids, namespaces, needs_netns
from tests.support.nginx import find_nginx
from tests.support.playbook import run_playbook
from tests.support.ssh_fleet import SshFleet

pytestmark = [pytest.mark.integration, needs_netns,
              pytest.mark.skipif(find_nginx() is None, reason='nginx is not installed')]

PLAYS = [
    {'name': 'every host', 'hosts': 'stable', 'gather_facts': False, 'tasks': [
        {'name': 'ping', 'ansible.builtin.ping': {}},
        {'name': 'namespace', 'ansible.builtin.command': 'ip netns identify', 'changed_when': False}]},
    {'name': 'deploy', 'hosts': 'stable-1', 'gather_facts': False, 'tasks': [
        {'name': 'deploy version 2', 'ansible.builtin.include_role': {'name': 'canary.release.deploy'},
         'vars': {'deploy_service': 'sample', 'deploy_version': '2', 'deploy_health_delay': 1}}]},
]
PING = [{'name': 'ping', 'hosts': 'stable', 'gather_facts': False, 'tasks': [{'name': 'ping', 'ansible.builtin.ping': {}}]}]


def run(tmp_path, inventory, name, plays, returncode=0):
    paths = [tmp_path / (name + suffix) for suffix in ('.yml', '-inventory.yml')]
    paths[0].write_text(yaml.safe_dump(plays, sort_keys=False))
    paths[1].write_text(yaml.safe_dump(inventory))
    completed = run_playbook(playbook=str(paths[0]), extra_args=['-i', str(paths[1])], timeout=60)
    assert completed.returncode == returncode, completed.stdout[-3000:] + completed.stderr[-3000:]
    return json.loads(completed.stdout)


def host_results(document, task):
    return dict((host, result) for play in document['plays'] for ran in play['tasks'] if ran['task']['name'] == task
                for host, result in ran['hosts'].items())


def sftp_sessions(fleet, name):
    with open(os.path.join(fleet.directory, name, 'sshd.log'), encoding='utf-8') as handle:
        return handle.read().count('subsystem request for sftp')


def test_ssh_fleet_reached_over_ssh_made_unreachable_and_removed(tmp_path):
    started = time.monotonic()
    with SshFleet(str(tmp_path), 4, 't', second_octet=220) as fleet:
        assert fleet.names == ['stable-1', 'stable-2', 'stable-3', 'stable-4']
        assert len(set(fleet.address(name) for name in fleet.names)) == 4
        assert fleet.versions() == dict.fromkeys(fleet.names, '1')
        inventory = fleet.inventory(pipelining=True, control_persist=True)

        document = run(tmp_path, inventory, 'first', PLAYS)
        assert dict((host, result['ping']) for host, result in host_results(document, 'ping').items()) == \
            dict.fromkeys(fleet.names, 'pong')
        # the modules ran inside each host's namespace
        assert dict((host, result['stdout']) for host, result in host_results(document, 'namespace').items()) == \
            dict((name, fleet.hosts[name].namespace) for name in fleet.names)
        # ControlPersist: one master per host is still there; pipelining: no module file copied over SFTP
        masters = fleet.control_master_pids()
        assert len(masters) == 4, masters
        assert [sftp_sessions(fleet, name) for name in fleet.names[1:]] == [0, 0, 0]
        # the deploy's script module copies restart_app.py, pipelining or not
        assert document['stats']['stable-1']['changed'] >= 1
        assert fleet.versions() == {'stable-1': '2', 'stable-2': '1', 'stable-3': '1', 'stable-4': '1'}

        fleet.make_unreachable('stable-2')
        assert fleet.sshd_pids('stable-2') == []
        # its ControlMaster lost its connection and ended
        deadline = time.monotonic() + 5
        while len(fleet.control_master_pids()) > 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(fleet.control_master_pids()) == 3
        document = run(tmp_path, inventory, 'unreachable', PING, returncode=4)
        stats = document['stats']
        assert stats['stable-2']['unreachable'] == 1 and stats['stable-2']['ok'] == 0
        assert [stats[name]['ok'] for name in ('stable-1', 'stable-3', 'stable-4')] == [1, 1, 1]
        assert 'Connection refused' in host_results(document, 'ping')['stable-2']['msg']
        # the app and NGINX of the unreachable host still answer
        assert fleet.versions()['stable-2'] == '1'

        fleet.restore('stable-2')
        document = run(tmp_path, inventory, 'restored', PING)
        assert [document['stats'][name]['ok'] for name in fleet.names] == [1, 1, 1, 1]

        pids = set(fleet.control_master_pids())
        for name in fleet.names:
            pids.update(namespace_pids(fleet.hosts[name].namespace))
        control_dir, prefix, subnet = fleet.control_dir, fleet.prefix, fleet.subnet
        assert len(pids) >= 4 * 5  # per host sshd, the app, NGINX master and worker, the ControlMaster (and sessions)
    assert namespaces(prefix + '-') == [] and interfaces_in(subnet) == set()
    assert [pid for pid in pids if is_running(pid)] == []
    assert not os.path.exists(control_dir)
    assert time.monotonic() - started < 30
