"""The real servers of the molecule/ scenarios, started once and shared, stopped by their PIDs.

``up`` starts, under ``--workdir``: the demo's local stack (examples/local/stack.py: sample app instances, NGINX,
Prometheus, all on 127.0.0.1 free ports), one sshd on 127.0.0.1 (its own configuration, host key and client key;
the system's sshd is not touched) through which the scenarios reach the stack's instances as SSH hosts, and a
webhook recording every request (tests/support/recording_server.py). It writes ``vars.json``: the role variables
of the stack (``LocalStack.ansible_vars()``) and ``molecule_*`` facts the playbooks load with ``vars_files``.
``down`` stops every process ``up`` started (and the sshd sessions), by PID and start time, and what ``fleet-up``
left. The molecule ``default`` scenario runs ``up`` in its create and ``down`` in its destroy; with
``shared_state: true`` every other scenario runs between the two.

    python -m tests.support.molecule_servers up --workdir DIR
    python -m tests.support.molecule_servers split --workdir DIR --requests 400    # who answers through NGINX
    python -m tests.support.molecule_servers events --workdir DIR --secret S       # the webhook's events, checked
    python -m tests.support.molecule_servers load --workdir DIR --instances canary-1 baseline-1 --seconds 8
    python -m tests.support.molecule_servers fleet-up --workdir DIR      # the provision scenario's local fleet inputs
    python -m tests.support.molecule_servers fleet-down --workdir DIR    # destroy it (Terraform, then leftovers)
    python -m tests.support.molecule_servers down --workdir DIR

Every command prints one JSON object.
"""

import argparse
import email.message
import json
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import sys
import time

from examples.local.load import Load
from examples.local.processes import ProcessTable, child_pids, free_ports, wait_until
from examples.local.stack import LocalStack
from tests.support.nginx import upstream_weights as nginx_upstream_weights
from tests.support.recording_server import signature_problem

SSHD = '/usr/sbin/sshd'
SERVERS_FILE = 'servers.json'
VARS_FILE = 'vars.json'
FLEET_FILE = 'fleet.json'
FLEET_VARS_FILE = 'fleet_vars.json'


def _path(workdir, *parts):
    return os.path.join(os.path.abspath(workdir), *parts)


def _save(path, data):
    with open(path, 'w', encoding='utf-8') as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write('\n')


def _load(path):
    with open(path, encoding='utf-8') as handle:
        return json.load(handle)


# --- sshd on 127.0.0.1 ----------------------------------------------------------------------------------------------

def _ssh_banner(port):
    with socket.create_connection(('127.0.0.1', port), timeout=1) as connection:
        return connection.recv(64).startswith(b'SSH-')


def start_sshd(directory, processes):
    """sshd on a free 127.0.0.1 port letting the current user in with a key of its own; returns its facts."""
    shutil.rmtree(directory, ignore_errors=True)  # keys and log of an earlier session
    os.makedirs(directory, mode=0o700)
    user = pwd.getpwuid(os.geteuid()).pw_name
    key, host_key = os.path.join(directory, 'id_ed25519'), os.path.join(directory, 'ssh_host_ed25519_key')
    for path, comment in ((key, 'canary-release-molecule'), (host_key, 'molecule-sshd')):
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path], check=True)
    os.replace(key + '.pub', os.path.join(directory, 'authorized_keys'))
    port = free_ports(1)[0]
    config = os.path.join(directory, 'sshd_config')
    settings = [('Port', port), ('ListenAddress', '127.0.0.1'), ('HostKey', host_key), ('PidFile', 'none'),
                ('AuthorizedKeysFile', os.path.join(directory, 'authorized_keys')), ('AllowUsers', user),
                ('PermitRootLogin', 'prohibit-password'), ('PasswordAuthentication', 'no'),
                ('KbdInteractiveAuthentication', 'no'), ('UsePAM', 'no'), ('StrictModes', 'no'),
                ('Subsystem', 'sftp internal-sftp')]
    with open(config, 'w', encoding='utf-8') as handle:
        handle.write(''.join('%s %s\n' % setting for setting in settings))
    if os.geteuid() == 0:
        os.makedirs('/run/sshd', exist_ok=True)  # privilege separation; the package makes it only for its service
    log = os.path.join(directory, 'sshd.log')
    pid, started = processes.spawn([SSHD, '-D', '-f', config, '-E', log], os.path.join(directory, 'sshd.out'))
    wait_until(lambda: _ssh_banner(port), 15, message='sshd on 127.0.0.1:%d' % port)
    return {'port': port, 'user': user, 'key': key, 'log': log, 'pid': pid, 'started': started}


def ssh_vars(sshd):
    """Connection variables of an inventory host reached through the shared sshd."""
    from tests.support.local_fleet import SSH_OPTIONS  # pylint: disable=import-outside-toplevel
    return {'ansible_connection': 'ssh', 'ansible_host': '127.0.0.1', 'ansible_port': sshd['port'],
            'ansible_user': sshd['user'], 'ansible_ssh_private_key_file': sshd['key'],
            'ansible_ssh_common_args': SSH_OPTIONS, 'ansible_python_interpreter': sys.executable}


# --- up and down ----------------------------------------------------------------------------------------------------

def up(workdir):
    """Start the stack, sshd and the webhook (each once: a second ``up`` finds them running)."""
    servers_path = _path(workdir, SERVERS_FILE)
    if os.path.exists(servers_path):
        return dict(_load(servers_path), reused=True)
    os.makedirs(workdir, exist_ok=True)
    processes = ProcessTable()
    stack = LocalStack(_path(workdir, 'stack'))
    stack.start()
    servers = {'stack': stack.workdir, 'processes': []}
    _save(servers_path, servers)  # from here on, down finds what to stop
    try:
        sshd = start_sshd(_path(workdir, 'ssh'), processes)
        servers['processes'].append([sshd['pid'], sshd['started']])
        webhook_port = free_ports(1)[0]
        webhook_log = _path(workdir, 'webhook.jsonl')
        open(webhook_log, 'w', encoding='utf-8').close()  # this session's events only
        pid, started = processes.spawn(
            [sys.executable, '-m', 'tests.support.recording_server', '--port', str(webhook_port), '--log', webhook_log],
            _path(workdir, 'webhook.out'), cwd=stack.state['repo_root'])
        servers['processes'].append([pid, started])
        wait_until(lambda: socket.create_connection(('127.0.0.1', webhook_port), timeout=1).close() or True, 15,
                   message='the webhook on 127.0.0.1:%d' % webhook_port)
        servers.update(sshd=sshd, webhook={'url': 'http://127.0.0.1:%d/hook' % webhook_port, 'log': webhook_log})
        _save(servers_path, servers)
    except BaseException:
        down(workdir)
        raise
    role_vars = dict(stack.ansible_vars(), local_stack_workdir=stack.workdir, local_stack_root=stack.state['repo_root'],
                     molecule_servers_dir=os.path.abspath(workdir), molecule_state_dir=_path(workdir, 'state'),
                     molecule_ssh=ssh_vars(sshd), molecule_sshd_log=sshd['log'], molecule_webhook_url=servers['webhook']['url'],
                     molecule_instances=dict((name, {'address': instance.address, 'url': instance.url})
                                             for name, instance in stack.instances.items()),
                     molecule_lb_url=stack.lb_url)
    _save(_path(workdir, VARS_FILE), role_vars)
    return dict(servers, reused=False)


def down(workdir):
    """Stop what ``up`` and ``fleet-up`` started; idempotent."""
    stopped = []
    if os.path.exists(_path(workdir, FLEET_FILE)):
        stopped.append(fleet_down(workdir))
    servers_path = _path(workdir, SERVERS_FILE)
    if not os.path.exists(servers_path):
        return {'stopped': stopped}
    servers = _load(servers_path)
    processes = ProcessTable()
    for pid, started in servers['processes']:
        # sshd's sessions first (a controller's ControlPersist connection would keep them), then sshd itself
        for child in sorted(child_pids(pid)):
            processes.stop(child, timeout=5)
        if processes.stop(pid, started, timeout=5):
            stopped.append(pid)
    stack = LocalStack.attach(servers['stack'])
    stopped.extend(stack.pids())
    stack.stop()
    os.remove(servers_path)
    return {'stopped': stopped}


# --- what the verify playbooks ask ----------------------------------------------------------------------------------

def upstream_weights(stack):
    """``{instance: weight}`` of the stack's upstream as NGINX reads it from disk (``down``: 0, no ``weight=``: 1)."""
    names = dict((instance.address, name) for name, instance in stack.instances.items())
    return dict((names.get(address, address), weight) for address, weight in nginx_upstream_weights(stack.upstream_text()).items())


def split(workdir, requests):
    """The upstream's weights on disk and who answered ``requests`` GETs through NGINX:
    ``{'weights': {instance: weight}, 'answers': {instance: n}, 'requests': n}``."""
    stack = LocalStack.attach(_load(_path(workdir, SERVERS_FILE))['stack'])
    return {'weights': upstream_weights(stack), 'answers': stack.count_instances(requests), 'requests': requests}


def events(workdir, secret):
    """The webhook's requests: each POSTed ``text`` and, with ``secret``, why its signature is not valid (or None)."""
    found = []
    with open(_load(_path(workdir, SERVERS_FILE))['webhook']['log'], encoding='utf-8') as handle:
        for line in handle:
            request = json.loads(line)
            headers = email.message.Message()
            for name, value in request['headers'].items():
                headers[name] = value
            body = request['body'].encode('utf-8')
            found.append({'method': request['method'], 'text': json.loads(request['body']).get('text'),
                          'signature_problem': signature_problem(secret, headers, body) if secret else None})
    return {'events': found}


def load(workdir, instances, seconds, rate):
    """``rate`` req/s straight to each instance for ``seconds`` (all at once), then one scrape interval more; writes
    and returns the window ``{'start', 'end'}`` (unix seconds) and what each instance answered."""
    stack = LocalStack.attach(_load(_path(workdir, SERVERS_FILE))['stack'])
    start = time.time()
    running = dict((name, Load(stack.instances[name].url + '/', rate=rate, duration=seconds).start())
                   for name in instances)
    answers = dict((name, running[name].wait()['status']) for name in instances)
    time.sleep(2.5)  # Prometheus scrapes every second: the last requests are in by now
    window = {'start': int(start), 'end': int(time.time()), 'answers': answers}
    _save(_path(workdir, 'load.json'), window)
    return window


# --- the provision scenario's local fleet ---------------------------------------------------------------------------

def fleet_up(workdir):
    """A LocalFleet (terraform/examples/local_fleet copied, an SSH key, a prefix and subnet of its own) for the
    provision role; returns the role's variables, kept in fleet_vars.json (fleet.json: what fleet-down needs)."""
    from tests.support.local_fleet import LocalFleet  # pylint: disable=import-outside-toplevel
    directory = pathlib.Path(_path(workdir, 'fleet'))
    if os.path.exists(_path(workdir, FLEET_FILE)):
        return dict(_load(_path(workdir, FLEET_VARS_FILE)), reused=True)
    directory.mkdir(parents=True)
    fleet = LocalFleet(directory, 'm', 217, 'sample', '2', '1')
    role_vars = dict(fleet.provision_vars(), provision_service='sample', provision_version='2')
    _save(_path(workdir, FLEET_FILE), fleet.saved())
    _save(_path(workdir, FLEET_VARS_FILE), role_vars)
    return dict(role_vars, reused=False)


def fleet_down(workdir):
    """Destroy the fleet of fleet-up: Terraform if its workspace has state, then every leftover of its prefix."""
    from tests.support.local_fleet import LocalFleet  # pylint: disable=import-outside-toplevel
    path = _path(workdir, FLEET_FILE)
    if not os.path.exists(path):
        return {'destroyed': None}
    fleet = LocalFleet.restore(_load(path))
    fleet.destroy()
    shutil.rmtree(os.path.dirname(fleet.project), ignore_errors=True)
    os.remove(path)
    os.remove(_path(workdir, FLEET_VARS_FILE))
    return {'destroyed': fleet.prefix}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.support.molecule_servers')
    commands = parser.add_subparsers(dest='command', required=True)
    for name in ('up', 'down', 'split', 'events', 'load', 'fleet-up', 'fleet-down'):
        commands.add_parser(name).add_argument('--workdir', required=True)
    commands.choices['split'].add_argument('--requests', type=int, default=400)
    commands.choices['events'].add_argument('--secret', default='')
    commands.choices['load'].add_argument('--instances', nargs='+', required=True)
    commands.choices['load'].add_argument('--seconds', type=float, default=8)
    commands.choices['load'].add_argument('--rate', type=float, default=50)
    args = parser.parse_args(argv)
    handlers = {
        'up': lambda: up(args.workdir), 'down': lambda: down(args.workdir),
        'split': lambda: split(args.workdir, args.requests), 'events': lambda: events(args.workdir, args.secret),
        'load': lambda: load(args.workdir, args.instances, args.seconds, args.rate),
        'fleet-up': lambda: fleet_up(args.workdir), 'fleet-down': lambda: fleet_down(args.workdir),
    }
    print(json.dumps(handlers[args.command](), sort_keys=True))


if __name__ == '__main__':
    main()
