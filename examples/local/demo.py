# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``make demo``: two whole canary releases on this machine, one promoted and one rolled back by itself.

1. Starts the local stack (examples/local/stack.py): 3 stable instances, 1 baseline and 1 canary of the sample app
   at version 1, NGINX in front, Prometheus scraping every second.
2. Sends bounded background load through NGINX (hey at about 100 req/s, for at most the demo's length).
3. Runs ``playbooks/canary_release.yml`` with the real ``ansible-playbook`` against ``examples/local/inventory.yml``
   (variables in ``examples/local/group_vars/all.yml``): version 2 (healthy) goes 5 -> 25 -> 50 -> 100 % and is
   promoted; then version 3 (5 % of its requests fail) is rolled back by the judge.
4. Prints the playbook's progress lines with live per-track request and error rates read from Prometheus, the two
   outcomes and where the reports are.

Every process it started is stopped at the end, also on Ctrl-C, SIGTERM or a failure. Run from the repository root:
``.venv/bin/python -m examples.local.demo [--workdir DIR] [--keep]``.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

from examples.local.processes import StackError
from examples.local.stack import REPO_ROOT, LocalStack, TRACKS

HERE = os.path.dirname(os.path.abspath(__file__))
INVENTORY = os.path.join(HERE, 'inventory.yml')
PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'canary_release.yml')
SERVICE = 'sample'
RELEASES = (('2', 'healthy', 'promoted'), ('3', '5 % of its requests fail', 'rolled_back'))
MSG_RE = re.compile(r'^\s*"msg": (".*")\s*$')
# a list msg (the analysis role prints the lines of all polls of a task at once): one JSON string per line
MSG_LIST_RE = re.compile(r'^\s*"msg": \[\s*$')
MSG_ITEM_RE = re.compile(r'^\s*(".*"),?\s*$')
FATAL_RE = re.compile(r'^(fatal|failed): \[([^\]]+)\]')
ANSI_RE = re.compile(r'\x1b\[[0-9;]*m')
LOAD_SECONDS = 600  # an upper bound: the load stops with the demo (which takes 3-5 minutes)


def ansible_environment():
    """Environment for ansible-playbook: this checkout as the collection, plain text output, no proxy for 127.0.0.1."""
    env = dict(os.environ)
    bin_dir = os.path.dirname(sys.executable)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': os.path.join(REPO_ROOT, 'tests', 'output', 'collections'),
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_FORCE_COLOR': '0',
        'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.default',
        'ANSIBLE_CALLBACK_RESULT_FORMAT': 'json',
        'ANSIBLE_DISPLAY_SKIPPED_HOSTS': 'false',
        'ANSIBLE_HOST_KEY_CHECKING': 'False',
        'ANSIBLE_PIPELINING': 'True',
        'ANSIBLE_RETRY_FILES_ENABLED': 'False',
        'ANSIBLE_LOCALHOST_WARNING': 'False',
        'ANSIBLE_INVENTORY_UNPARSED_WARNING': 'False',
        'NO_PROXY': '127.0.0.1,localhost', 'no_proxy': '127.0.0.1,localhost',
        'PATH': bin_dir + os.pathsep + env.get('PATH', ''),
    })
    return env


def shorten(message):
    """A progress line without the judge's long explanation (the full text is in the playbook log)."""
    for marker in (' | ', ' (continue: ', ' (pass: '):
        if marker in message:
            message = message.split(marker, 1)[0]
    return message if len(message) <= 240 else message[:237] + '...'


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: stop everything and leave."""


class Console:
    """Timestamped, thread-safe lines: ``[  12.3 s] text``."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def elapsed(self):
        return time.monotonic() - self.started

    def line(self, text, prefix=''):
        with self.lock:
            self.stream.write('[%6.1f s] %s%s\n' % (self.elapsed(), prefix, text))
            self.stream.flush()


def canary_share(upstream_text, canary_addresses):
    """The canary's share (percent) of the upstream as written: weights of non-down, non-backup servers."""
    weights = {}
    for address, params in re.findall(r'^\s*server\s+([^\s;]+)([^;]*);', upstream_text, re.MULTILINE):
        words = params.split()
        if 'down' in words or 'backup' in words:
            weight = 0
        else:
            found = [int(word[len('weight='):]) for word in words if word.startswith('weight=')]
            weight = found[0] if found else 1
        weights[address] = weight
    total = sum(weights.values())
    if not total:
        return 0.0
    return 100.0 * sum(weights.get(address, 0) for address in canary_addresses) / total


class MetricsPrinter(threading.Thread):
    """Every ``every`` seconds: per-track request and error rates from Prometheus and the canary share in NGINX."""

    def __init__(self, stack, console, every=5.0, window='5s'):
        super().__init__(daemon=True)
        self.stack = stack
        self.console = console
        self.every = every
        self.window = window
        self.stopped = threading.Event()
        self.canary = stack.canary_servers

    def describe(self):
        rates = self.stack.track_rates(self.window)
        parts = []
        for track in TRACKS:
            if track in rates:
                requests, errors = rates[track]['requests'], rates[track]['errors']
                percent = 100.0 * errors / requests if requests else 0.0
                parts.append('%s %5.1f req/s %4.1f %% errors' % (track, requests, percent))
        share = canary_share(self.stack.upstream_text(), self.canary)
        versions = {}
        for instance in self.stack.instances.values():
            versions.setdefault(instance.track, set()).add(instance.version)
        running = ' '.join('%s v%s' % (track, '/'.join(sorted(versions[track]))) for track in TRACKS if track in versions)
        return 'nginx canary share %3.0f %% | %s | %s' % (share, ' | '.join(parts), running)

    def run(self):
        while not self.stopped.wait(self.every):
            try:
                self.console.line(self.describe(), prefix='  metrics  ')
            except Exception as error:  # pylint: disable=broad-except
                self.console.line('(metrics unavailable: %s)' % error, prefix='  metrics  ')

    def stop(self):
        self.stopped.set()
        self.join(5)


class Demo:
    def __init__(self, workdir, rate=100, keep=False, console=None, releases=RELEASES):
        self.workdir = workdir
        self.rate = rate
        self.keep = keep
        self.console = console or Console()
        self.releases = releases
        self.stack = None
        self.load = None
        self.printer = None
        self.playbook = None
        self.outcomes = []
        self.current = None
        self.in_msg_list = False

    # --- the playbook ------------------------------------------------------------------------------------------

    def run_release(self, version, description):
        log_path = os.path.join(self.workdir, 'logs', 'ansible-version-%s.log' % version)
        argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', INVENTORY, PLAYBOOK,
                '-e', 'local_stack_workdir=%s' % self.workdir, '-e', 'rollout_service=%s' % SERVICE,
                '-e', 'rollout_version=%s' % version]
        self.console.line('=== release version %s (%s): ansible-playbook playbooks/canary_release.yml -e rollout_version=%s'
                          % (version, description, version))
        started = time.monotonic()
        with open(log_path, 'w', encoding='utf-8') as log:
            self.playbook = subprocess.Popen(argv, cwd=REPO_ROOT, env=ansible_environment(), stdin=subprocess.DEVNULL,
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                             start_new_session=True)
            for raw in self.playbook.stdout:
                log.write(raw)
                self.show(ANSI_RE.sub('', raw.rstrip('\n')))
            returncode = self.playbook.wait()
        self.playbook = None
        record = self.read_record()
        return {'version': version, 'returncode': returncode, 'seconds': round(time.monotonic() - started, 1),
                'status': record.get('status') if record else None, 'reason': record.get('reason') if record else None,
                'log': log_path}

    def show(self, line):
        if self.in_msg_list:
            match = MSG_ITEM_RE.match(line)
            if match:
                self.show_message(match.group(1))
                return
            self.in_msg_list = False
        if MSG_LIST_RE.match(line):
            self.in_msg_list = True
            return
        match = MSG_RE.match(line)
        if match:
            self.show_message(match.group(1))
            return
        match = FATAL_RE.match(line)
        if match:
            self.console.line(line[:400], prefix='  ! ')

    def show_message(self, text):
        try:
            message = json.loads(text)
        except ValueError:
            message = text
        for part in str(message).splitlines():
            self.console.line(shorten(part), prefix='  ')

    def read_record(self):
        path = os.path.join(self.workdir, 'state', '%s.json' % SERVICE)
        try:
            with open(path, encoding='utf-8') as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    # --- the whole demo ----------------------------------------------------------------------------------------

    def run(self):
        if not os.path.exists(PLAYBOOK):
            raise StackError('%s is not there yet' % PLAYBOOK)
        self.console.line('starting the local stack in %s: 3 stable + 1 baseline + 1 canary at version 1, NGINX, '
                          'Prometheus (1 s scrape)' % self.workdir)
        self.stack = LocalStack(self.workdir, stable=3, canary=1, baseline=1, stable_version='1', scrape_interval='1s')
        self.stack.start()
        self.console.line('load balancer %s, Prometheus %s' % (self.stack.lb_url, self.stack.prometheus_url))
        self.load = self.stack.load(rate=self.rate, duration=LOAD_SECONDS)
        self.console.line('background load: %s at ~%d req/s through NGINX (at most %d s)'
                          % (self.load.tool, self.rate, LOAD_SECONDS))
        self.printer = MetricsPrinter(self.stack, self.console)
        self.printer.start()
        time.sleep(3)
        for version, description, expected in self.releases:
            self.current = version
            outcome = self.run_release(version, description)
            self.current = None
            outcome['expected'] = expected
            self.outcomes.append(outcome)
            self.console.line('=== version %s: %s (%s) after %.0f s' % (
                version, outcome['status'], outcome['reason'] or 'no reason recorded', outcome['seconds']))
        return self.outcomes

    def stop(self):
        """Stop everything started, in order; safe to call more than once and after a partial start."""
        if self.playbook is not None and self.playbook.poll() is None:
            self.console.line('stopping ansible-playbook (PID %d)' % self.playbook.pid)
            try:
                os.killpg(self.playbook.pid, signal.SIGINT)  # the session this demo created for it
                self.playbook.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.playbook.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.playbook.wait(5)
        if self.printer is not None:
            self.printer.stop()
        load_result = self.load.stop() if self.load is not None else None
        if self.stack is not None and not self.keep:
            self.stack.stop()
        return load_result

    def summary(self, load_result):
        lines = ['', 'outcomes:']
        if self.current is not None:
            lines.append('  version %s: interrupted (the canary share was left as the record says: %s)'
                         % (self.current, os.path.join(self.workdir, 'state', SERVICE + '.json')))
        for outcome in self.outcomes:
            verdict = 'as expected' if outcome['status'] == outcome['expected'] else 'NOT as expected (%s)' % outcome['expected']
            lines.append('  version %s: %s after %.0f s, %s - %s'
                         % (outcome['version'], outcome['status'], outcome['seconds'], verdict, outcome['reason']))
        if load_result:
            lines.append('background load: %d requests at %.0f req/s, status %s, %d transport errors' % (
                load_result['requests'], load_result['rate'], json.dumps(load_result['status'], sort_keys=True),
                load_result['errors']))
        reports = os.path.join(self.workdir, 'reports')
        if os.path.isdir(reports):
            found = sorted(os.path.join(root, name) for root, dummy, names in os.walk(reports) for name in names
                           if name.endswith('.html'))
            lines.append('reports: %s' % (', '.join(found) if found else reports))
        lines.append('rollout record: %s' % os.path.join(self.workdir, 'state', SERVICE + '.json'))
        logs = sorted(os.path.join(self.workdir, 'logs', name) for name in os.listdir(os.path.join(self.workdir, 'logs'))
                      if name.startswith('ansible-')) if os.path.isdir(os.path.join(self.workdir, 'logs')) else []
        lines.append('playbook logs: %s' % (', '.join(logs) or 'none'))
        lines.append('stack: %s' % ('still running (--keep): stop it with .venv/bin/python -m examples.local.stack '
                                    'down --workdir %s' % self.workdir if self.keep else 'stopped, every process ended'))
        return lines


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m examples.local.demo', description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--workdir', help='directory for the stack, logs and reports (default: a new one in /tmp)')
    parser.add_argument('--rate', type=int, default=100, help='background load in req/s')
    parser.add_argument('--keep', action='store_true', help='leave the stack running at the end')
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    workdir = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix='canary-demo-')
    os.makedirs(workdir, exist_ok=True)
    demo = Demo(workdir, rate=args.rate, keep=args.keep)

    def interrupt(signum, frame):  # pylint: disable=unused-argument
        raise Interrupted(signal.Signals(signum).name)

    previous = dict((sig, signal.signal(sig, interrupt)) for sig in (signal.SIGINT, signal.SIGTERM))
    status = 1
    load_result = None
    try:
        outcomes = demo.run()
        status = 0 if all(outcome['status'] == outcome['expected'] for outcome in outcomes) else 1
    except Interrupted as signal_name:
        demo.console.line('interrupted (%s): stopping everything' % signal_name)
        status = 130
    except (StackError, OSError) as error:
        demo.console.line('demo failed: %s' % error)
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        try:
            load_result = demo.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    for line in demo.summary(load_result):
        print(line)
    sys.stdout.flush()
    return status


if __name__ == '__main__':
    sys.exit(main())
