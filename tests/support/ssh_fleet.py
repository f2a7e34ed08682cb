"""A fleet of real SSH hosts on this machine for tests and benchmarks, without Terraform: :class:`SshFleet`.

Each host ``stable-<i>`` is a network namespace joined to the root namespace by a veth pair (one /30 each, as
terraform/examples/local_fleet makes them), running

* the system's ``/usr/sbin/sshd`` in the foreground with a generated configuration (the system sshd is not touched),
* the sample app (examples/local/sample_app.py) on ``127.0.0.1:<app_port>`` inside the namespace,
* a small NGINX (one worker) on ``<address>:80`` proxying to the app: the sample app behind NGINX.

What makes it cheap enough for a test: one ed25519 host key, one client key, one ``authorized_keys`` and one
``sshd_config`` for the whole fleet (each sshd gets its ``ListenAddress`` on the command line); the namespaces are
made by one ``ip -batch`` in the root namespace plus one per namespace; the hosts start in threads.

Every process the fleet starts is its child and is stopped by its PID; :meth:`SshFleet.close` also stops, by PID,
whatever else runs in its namespaces (an app restarted by a deploy, sshd sessions) and the ssh ControlMaster
processes whose ControlPath is in the fleet's control directory, then deletes the namespaces and the veths - also
when the block of ``with SshFleet(...)`` raised. It refuses to start when a namespace of its prefix or an address
of its subnet exists already.

Names: namespaces ``csf<tag><pid % 100000>-stable-<i>``, addresses in ``10.<second_octet>.<4 * (pid % 64)>.0/22``
(the root side ``.1``, the host ``.2`` of the host's /30): at most 256 hosts. ``second_octet`` keeps fleets of
tests apart from each other and from terraform/examples/local_fleet (10.213) and the LocalFleet tests (10.214-217).

Usage::

    with SshFleet(str(tmp_path), 4, 'a', second_octet=220) as fleet:
        inventory = fleet.inventory()            # {'stable': {'hosts': {'stable-1': {...}, ...}}}
        fleet.versions()                         # {'stable-1': '1', ...} through each host's NGINX
        fleet.make_unreachable('stable-2')       # every sshd process of stable-2 stopped: connection refused
        fleet.restore('stable-2')

Needs root, iproute2, /usr/sbin/sshd and nginx (:data:`tests.support.local_fleet.needs_netns`).
"""

import concurrent.futures
import http.client
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from tests.support.local_fleet import SAMPLE_APP, interfaces_in, is_running, namespace_pids, namespaces, processes_mentioning
from tests.support.nginx import find_nginx, main_conf
from tests.support.paths import REPO_ROOT

SSHD = '/usr/sbin/sshd'
# the deploy step of terraform/examples/local_fleet hosts, which fits these hosts too: restart the app with the version
DEPLOY_TASKS = os.path.join(REPO_ROOT, 'tests', 'integration', 'files', 'local_fleet_deploy.yml')
SSHD_NAMES = ('sshd', 'sshd-session')  # the listener and its session processes (sshd-session since OpenSSH 9.8)
MAX_HOSTS = 256
SSHD_CONFIG = """# sshd of the SSH fleet %(prefix)s (generated); ListenAddress comes from each host's command line
Port 22
HostKey %(host_key)s
PidFile none
AuthorizedKeysFile %(authorized_keys)s
AllowUsers root
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
LogLevel VERBOSE
StrictModes no
X11Forwarding no
MaxStartups 200
Subsystem sftp internal-sftp
"""
SITE_CONF = """server {
    listen %(address)s:80;
    location / {
        proxy_pass http://127.0.0.1:%(app_port)d;
        proxy_next_upstream off;
    }
}
"""


class FleetError(RuntimeError):
    pass


def _run(command, stdin=None):
    completed = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise FleetError('%s failed: %s' % (' '.join(command), completed.stderr.strip() or completed.stdout.strip()))
    return completed.stdout


def _http_get(address, path, timeout=2.0):
    """``(status, body)`` of one GET to ``http://address:80/path`` (no proxy from the environment)."""
    connection = http.client.HTTPConnection(address, 80, timeout=timeout)
    try:
        connection.request('GET', path)
        response = connection.getresponse()
        return response.status, response.read().decode('utf-8', 'replace').strip()
    finally:
        connection.close()


def _ssh_banner(address, timeout=1.0):
    with socket.create_connection((address, 22), timeout=timeout) as connection:
        return connection.recv(64).startswith(b'SSH-')


def process_name(pid):
    try:
        with open('/proc/%d/comm' % pid, encoding='utf-8') as handle:
            return handle.read().strip()
    except OSError:
        return None


def terminate(pids, timeout=5.0):
    """SIGTERM to ``pids``, SIGKILL to those still running after ``timeout``; returns when all have ended."""
    pids = set(pids)
    for sig, seconds in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pids = set(pid for pid in pids if is_running(pid))
            if not pids:
                return
            time.sleep(0.02)
    raise FleetError('processes did not end after SIGKILL: %s' % sorted(pids))


def memory_kib(pid):
    """``(rss, pss)`` of a process in KiB from /proc (0, 0 when it has ended)."""
    found = {'Rss:': 0, 'Pss:': 0}
    try:
        with open('/proc/%d/smaps_rollup' % pid, encoding='utf-8') as handle:
            for line in handle:
                fields = line.split()
                if fields and fields[0] in found:
                    found[fields[0]] = int(fields[1])
    except OSError:
        pass
    return found['Rss:'], found['Pss:']


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far (from /proc/<pid>/stat; 0 when it has ended)."""
    try:
        with open('/proc/%d/stat' % pid, encoding='utf-8') as handle:
            fields = handle.read().rsplit(')', 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


class SshHost:
    """One host of the fleet: its name, namespace, veth, addresses, directory and the processes it started."""

    def __init__(self, fleet, index):
        self.name = 'stable-%d' % (index + 1)
        self.namespace = '%s-%s' % (fleet.prefix, self.name)
        self.veth = 'sf%s%05dh%d' % (fleet.tag, os.getpid() % 100000, index)
        link = list(ipaddress.ip_network(fleet.subnet).subnets(new_prefix=30))[index]
        self.root_address, self.address = str(link[1]), str(link[2])
        self.directory = os.path.join(fleet.directory, self.name)
        self.processes = {}  # role (sshd, app, nginx) -> Popen

    def exec_in(self, argv):
        return ['ip', 'netns', 'exec', self.namespace] + list(argv)


class SshFleet:
    """``count`` stable hosts (``stable-1`` ...) reached over real SSH; see the module's documentation.

    Attributes: ``names``, ``prefix``, ``subnet``, ``directory`` (keys, configuration, logs), ``control_dir`` (the
    ControlPath directory, short for the socket path limit), ``key`` (the client's private key), ``app_port``.
    """

    def __init__(self, workdir, count, tag, second_octet=220, version='1', app_port=8080, ready_timeout=60.0):
        if not 1 <= count <= MAX_HOSTS:
            raise ValueError('an SSH fleet has 1 to %d hosts, not %r' % (MAX_HOSTS, count))
        self.nginx = find_nginx()
        if not self.nginx:
            raise FleetError('nginx is not installed')
        self.tag, self.version, self.app_port, self.ready_timeout = tag, str(version), app_port, ready_timeout
        self.prefix = 'csf%s%d' % (tag, os.getpid() % 100000)
        self.subnet = '10.%d.%d.0/22' % (second_octet, 4 * (os.getpid() % 64))
        self.directory = os.path.join(os.path.abspath(workdir), 'ssh_fleet_' + self.prefix)
        self.control_dir = None
        self.hosts = {}
        for index in range(count):
            host = SshHost(self, index)
            self.hosts[host.name] = host
        self.names = list(self.hosts)
        self.key = os.path.join(self.directory, 'id_ed25519')
        self.sshd_config = os.path.join(self.directory, 'sshd_config')
        self.started = False

    # --- the API for tests -------------------------------------------------------------------------------------

    def address(self, name):
        """The host's address (in its namespace): SSH on port 22, NGINX on port 80."""
        return self.hosts[name].address

    def ssh_common_args(self, control_persist=True):
        args = ['-o StrictHostKeyChecking=no', '-o UserKnownHostsFile=/dev/null', '-o IdentitiesOnly=yes']
        if control_persist:
            args += ['-o ControlMaster=auto', '-o ControlPersist=60s', '-o ControlPath=%s/%%C' % self.control_dir]
        return ' '.join(args)

    def host_vars(self, name, pipelining=True, control_persist=True):
        """The inventory variables of one host (see :meth:`inventory`)."""
        address = self.address(name)
        return {
            'ansible_host': address,
            'ansible_user': 'root',
            'ansible_ssh_private_key_file': self.key,
            # ssh_args come before the common args and ssh keeps the first value of an option: without this, the
            # default ssh_args (ControlMaster=auto, ControlPersist=60s) would win over the settings here
            'ansible_ssh_args': '-C',
            'ansible_ssh_common_args': self.ssh_common_args(control_persist),
            'ansible_pipelining': pipelining,
            'ansible_python_interpreter': sys.executable,
            'deploy_health_url': 'http://%s/health' % address,
            'deploy_tasks_file': DEPLOY_TASKS,
            'local_fleet_app_port': self.app_port,
        }

    def inventory(self, group='stable', pipelining=True, control_persist=True, names=None):
        """``{group: {'hosts': {name: variables}}}`` for a YAML inventory (``names``: a subset, default all).

        The connection is what a real fleet would use: ssh as root with the fleet's client key, no host key checks
        (the hosts are recreated for each test), ``pipelining``, and with ``control_persist`` one ControlMaster per
        host kept for 60 s with its socket in :attr:`control_dir`. The deploy role's settings: the health check
        through the host's NGINX and the deploy task file that restarts the app with the new version.
        """
        return {group: {'hosts': dict((name, self.host_vars(name, pipelining, control_persist))
                                      for name in (names or self.names))}}

    def versions(self, names=None):
        """``{name: version}`` from ``GET /`` through each host's NGINX (``hello from <name> version <v>``); None for
        a host that did not answer that (its answer or error is in :attr:`last_answers`)."""
        names = list(names or self.names)
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
            answers = dict(zip(names, pool.map(self._answer, names)))
        self.last_answers = answers
        found = {}
        for name, answer in answers.items():
            expected = 'hello from %s version ' % name
            found[name] = answer[len(expected):] if answer.startswith(expected) else None
        return found

    def _answer(self, name):
        try:
            status, body = _http_get(self.address(name), '/')
        except (OSError, http.client.HTTPException) as error:
            return 'error: %s' % error
        return body if status == 200 else 'status %d: %s' % (status, body)

    def sshd_pids(self, name):
        """PIDs of every sshd process in the host's namespace: the listener and the sessions."""
        return [pid for pid in namespace_pids(self.hosts[name].namespace) if process_name(pid) in SSHD_NAMES]

    def make_unreachable(self, name):
        """Stop every sshd process of the host (listener and sessions, so ControlMaster connections to it end too):
        new SSH connections are refused at once. The app and NGINX keep running."""
        host = self.hosts[name]
        terminate(self.sshd_pids(name))
        self._reap(host, 'sshd')
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                _ssh_banner(host.address, timeout=0.5)
            except ConnectionRefusedError:
                return
            except OSError:
                pass
            time.sleep(0.05)
        raise FleetError('%s still accepts SSH connections' % name)

    def restore(self, name):
        """Start the host's sshd again and wait for its banner."""
        host = self.hosts[name]
        if host.processes.get('sshd') is not None:
            raise FleetError('the sshd of %s runs already' % name)
        self._start_sshd(host)
        self._wait_ready(host, ('sshd',))

    def memory(self):
        """Per host: the processes in its namespace now, their RSS and PSS (proportional share) in KiB."""
        found = {}
        for name, host in self.hosts.items():
            pids = namespace_pids(host.namespace)
            sizes = [memory_kib(pid) for pid in pids]
            found[name] = {'processes': sorted(process_name(pid) or '?' for pid in pids),
                           'rss_kib': sum(rss for rss, pss in sizes), 'pss_kib': sum(pss for rss, pss in sizes)}
        return found

    def control_master_pids(self):
        """PIDs of the ssh ControlMaster processes whose ControlPath is in :attr:`control_dir`."""
        if not self.control_dir:
            return []
        return [pid for pid in processes_mentioning(self.control_dir)
                if pid != os.getpid() and process_name(pid) == 'ssh']

    def stop_control_masters(self):
        """Stop the fleet's ControlMaster processes by PID; returns the CPU seconds they had used."""
        pids = self.control_master_pids()
        used = sum(cpu_seconds(pid) for pid in pids)
        terminate(pids)
        return used

    # --- start ----------------------------------------------------------------------------------------------

    def start(self):
        if self.started:
            raise FleetError('the fleet %s is started already' % self.prefix)
        existing = namespaces(self.prefix + '-')
        if existing:
            raise FleetError('namespaces of the prefix %s exist already: %s' % (self.prefix, ', '.join(existing)))
        in_use = interfaces_in(self.subnet)
        if in_use:
            raise FleetError('addresses of %s are in use on %s' % (self.subnet, ', '.join(sorted(in_use))))
        self.started = True
        try:
            self._prepare_files()
            self._make_namespaces()
            workers = min(16, len(self.hosts))
            with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(self._start_host, self.hosts.values()))
        except BaseException:
            self.close()
            raise
        return self

    def _prepare_files(self):
        os.makedirs(self.directory)
        os.chmod(self.directory, 0o755)  # nginx workers run as nobody
        self.control_dir = tempfile.mkdtemp(prefix='csf-', dir='/tmp')
        host_key = os.path.join(self.directory, 'ssh_host_ed25519_key')
        for path in (host_key, self.key):
            _run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', self.prefix, '-f', path])
        authorized_keys = os.path.join(self.directory, 'authorized_keys')
        shutil.copyfile(self.key + '.pub', authorized_keys)
        os.chmod(authorized_keys, 0o600)
        with open(self.sshd_config, 'w', encoding='utf-8') as handle:
            handle.write(SSHD_CONFIG % {'prefix': self.prefix, 'host_key': host_key, 'authorized_keys': authorized_keys})
        # sshd's privilege separation directory; the openssh-server package creates it only when its service starts
        os.makedirs('/run/sshd', exist_ok=True)
        _run([SSHD, '-t', '-f', self.sshd_config])
        for host in self.hosts.values():
            for directory in ('', 'nginx', 'nginx/conf', 'nginx/logs', 'nginx/tmp'):
                os.makedirs(os.path.join(host.directory, directory), exist_ok=True)
            with open(os.path.join(host.directory, 'nginx', 'conf', 'site.conf'), 'w', encoding='utf-8') as handle:
                handle.write(SITE_CONF % {'address': host.address, 'app_port': self.app_port})
            prefix = os.path.join(host.directory, 'nginx')
            with open(os.path.join(prefix, 'conf', 'nginx.conf'), 'w', encoding='utf-8') as handle:
                handle.write(main_conf(prefix, [os.path.join(prefix, 'conf', 'site.conf')], worker_connections=256))

    def _make_namespaces(self):
        """One ``ip -batch`` for the root namespace's side of every host, then one inside each namespace."""
        lines = []
        for host in self.hosts.values():
            lines += ['netns add %s' % host.namespace,
                      'link add %s type veth peer name eth0 netns %s' % (host.veth, host.namespace),
                      'address add %s/30 dev %s' % (host.root_address, host.veth),
                      'link set dev %s up' % host.veth]
        _run(['ip', '-batch', '-'], '\n'.join(lines) + '\n')
        for host in self.hosts.values():
            _run(['ip', '-n', host.namespace, '-batch', '-'],
                 'link set dev lo up\naddress add %s/30 dev eth0\nlink set dev eth0 up\n' % host.address)

    def _spawn(self, host, role, argv):
        with open(os.path.join(host.directory, role + '.log'), 'ab') as log:
            host.processes[role] = subprocess.Popen(host.exec_in(argv), stdin=subprocess.DEVNULL, stdout=log,
                                                    stderr=subprocess.STDOUT, close_fds=True, start_new_session=True)

    def _start_sshd(self, host):
        # ip netns exec execs sshd: the PID is sshd's; -D keeps it in the foreground, a child of this process
        self._spawn(host, 'sshd', [SSHD, '-D', '-f', self.sshd_config, '-o', 'ListenAddress=' + host.address,
                                   '-E', os.path.join(host.directory, 'sshd.log')])

    def _start_host(self, host):
        self._start_sshd(host)
        # restart_app.py (the deploy) finds the app by its port and appends to the file its stdout is
        self._spawn(host, 'app', [sys.executable, SAMPLE_APP, '--listen', '127.0.0.1:%d' % self.app_port,
                                  '--app-version', self.version, '--instance', host.name])
        prefix = os.path.join(host.directory, 'nginx')
        self._spawn(host, 'nginx', [self.nginx, '-p', prefix, '-c', os.path.join(prefix, 'conf', 'nginx.conf'),
                                    '-e', os.path.join(prefix, 'logs', 'error.log'), '-g', 'daemon off;'])
        self._wait_ready(host, ('sshd', 'app'))

    def _wait_ready(self, host, parts):
        """Wait until sshd shows its banner and ``/health`` answers 200 through NGINX (``parts``)."""
        deadline = time.monotonic() + self.ready_timeout
        missing = list(parts)
        while missing:
            for role, process in host.processes.items():
                if process is not None and process.poll() is not None:
                    log = os.path.join(host.directory, role + '.log')
                    raise FleetError('%s of %s exited with %s; see %s' % (role, host.name, process.returncode, log))
            try:
                if 'sshd' in missing and _ssh_banner(host.address):
                    missing.remove('sshd')
                if 'app' in missing and _http_get(host.address, '/health')[0] == 200:
                    missing.remove('app')
            except (OSError, http.client.HTTPException):
                pass
            if missing and time.monotonic() > deadline:
                raise FleetError('%s not ready after %.0f s: %s' % (host.name, self.ready_timeout, ', '.join(missing)))
            if missing:
                time.sleep(0.05)

    # --- stop -----------------------------------------------------------------------------------------------

    def _reap(self, host, role):
        process = host.processes.pop(role, None)
        if process is not None:
            process.wait(5)

    def close(self):
        """Stop every process of the fleet by PID, delete its namespaces and veths. Idempotent."""
        if not self.started:
            return
        problems = []
        try:
            self.stop_control_masters()
        except FleetError as error:
            problems.append(str(error))
        pids = set()
        for host in self.hosts.values():
            pids.update(process.pid for process in host.processes.values() if process.poll() is None)
            pids.update(namespace_pids(host.namespace))
        try:
            terminate(pids)
        except FleetError as error:
            problems.append(str(error))
        for host in self.hosts.values():
            for role in list(host.processes):
                self._reap(host, role)
        present = set(namespaces(self.prefix + '-'))
        deleting = ['netns delete %s' % host.namespace for host in self.hosts.values() if host.namespace in present]
        if deleting:
            # -force: go on after a failure, so that one namespace in use does not keep the others
            subprocess.run(['ip', '-force', '-batch', '-'], input='\n'.join(deleting) + '\n', capture_output=True,
                           text=True, check=False)
        # the peer end lived in the namespace, so the kernel removes each pair with it (asynchronously)
        deadline = time.monotonic() + 5
        while interfaces_in(self.subnet) and time.monotonic() < deadline:
            time.sleep(0.05)
        for interface in interfaces_in(self.subnet):
            subprocess.run(['ip', 'link', 'delete', 'dev', interface], capture_output=True, check=False)
        if self.control_dir:
            shutil.rmtree(self.control_dir, ignore_errors=True)
        self.started = False
        left = namespaces(self.prefix + '-') + sorted(interfaces_in(self.subnet))
        if left or problems:
            raise FleetError('the fleet %s left %s %s' % (self.prefix, left, '; '.join(problems)))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.close()
        return False
