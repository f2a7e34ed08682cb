"""End-to-end benchmark harness: the real playbook against the local stack, with a watcher that times the canary.

Shared by ``bench.blast_radius`` and ``bench.good_release``. One :class:`LocalStack` (examples/local) runs for the
whole benchmark with bounded hey load through NGINX; every release is a real ``ansible-playbook
playbooks/canary_release.yml`` run with its own inventory directory (the stack's groups plus a ``group_vars/all.yml``
with the configuration under test). A :class:`CanaryWatch` thread polls the canary instance's own /metrics and the
NGINX upstream file every 50 ms, so the times and counts do not depend on Prometheus or on ansible's output.
"""

import calendar
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import yaml

from examples.local.demo import ansible_environment, canary_share
from examples.local.stack import REPO_ROOT, analysis_metrics, http_get

PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'canary_release.yml')
ROLLBACK_PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'rollback.yml')
RECORD_TIME_FORMAT = '%Y-%m-%dT%H:%M:%SZ'  # how the rollout record writes times (UTC, whole seconds)
DEPLOY_TASKS = os.path.join(REPO_ROOT, 'examples', 'local', 'deploy_tasks.yml')
RETIRE_TASKS = os.path.join(REPO_ROOT, 'examples', 'local', 'retire_tasks.yml')
SERVICE = 'sample'


def stack_variables(stack, state_dir):
    """Role variables every configuration shares: traffic, deploy, record (no report: it only costs time here)."""
    variables = stack.ansible_vars()
    variables.update({
        'rollout_service': SERVICE,
        'rollout_state_dir': state_dir,
        'rollout_report': False,
        'deploy_tasks_file': DEPLOY_TASKS,
        'deploy_health_retries': 20,
        'deploy_health_delay': 1,
        'promote_retire_tasks_file': RETIRE_TASKS,
        'analysis_max_duration': '5m',
    })
    return variables


def judge_metrics():
    """Our judge: the sample app's error metric (the one the canary breaks), as the demo defines it."""
    return [metric for metric in analysis_metrics() if metric['kind'] == 'errors']


def flagger_metrics(max_error_rate, interval=10, failed_checks=5):
    """The same tool configured Flagger-style: the canary's error rate over the last ``interval`` checked every
    ``interval`` seconds against a fixed threshold; fail after ``failed_checks`` failed checks.

    The analysis module fails a threshold metric at its first breach, so the count of failed checks is part of the
    query: a subquery samples the check every ``interval`` and counts the breaches within the last ``failed_checks``
    checks; the guard breaks when that count reaches ``failed_checks``."""
    ratio = ('sum(rate(sample_app_requests_total{service="sample", ${track}, code=~"5.."}[%ds])) / '
             'sum(rate(sample_app_requests_total{service="sample", ${track}}[%ds]))' % (interval, interval))
    return [{'name': 'error_rate_checks', 'kind': 'threshold', 'on_no_data': 'hold',
             'query': 'sum_over_time(((%s) > bool %g)[%ds:%ds])' % (ratio, max_error_rate, failed_checks * interval,
                                                                    interval),
             'max': failed_checks - 0.5}]


class Inventory:
    """A directory with the stack's inventory and a group_vars/all.yml holding one configuration."""

    def __init__(self, stack, directory, variables):
        os.makedirs(os.path.join(directory, 'group_vars'), exist_ok=True)
        self.path = os.path.join(directory, 'inventory.yml')
        shutil.copyfile(stack.inventory_path, self.path)
        with open(os.path.join(directory, 'group_vars', 'all.yml'), 'w', encoding='utf-8') as handle:
            yaml.safe_dump(variables, handle, sort_keys=True)


class CanaryWatch(threading.Thread):
    """Times one release from the canary's side.

    ``first_request``: monotonic time the canary instance running ``version`` first counted a request;
    ``back_to_zero``: the first time after that the upstream file gives the canary 0 %; the canary's counters then
    (read again 1 s later, for requests already in flight); ``max_share``: the largest share seen."""

    def __init__(self, stack, name, version, interval=0.05):
        super().__init__(daemon=True)
        self.stack = stack
        self.name = name
        self.version = str(version)
        self.interval = interval
        self.stopped = threading.Event()
        self.first_request = None
        self.back_to_zero = None
        self.counters_at_zero = None
        self.last_counters = None
        self.max_share = 0.0
        self.addresses = stack.canary_servers

    def _counters(self):
        instance = self.stack.instances[self.name]
        if instance.version != self.version:
            return None
        status, body = http_get(instance.url + '/metrics', timeout=1)
        if status != 200:
            return None
        counts = dict((code, float(value)) for code, value in
                      re.findall(r'^sample_app_requests_total\{code="(\d+)"\} (\S+)$', body, re.MULTILINE))
        return {'ok': counts.get('200', 0.0), 'errors': counts.get('500', 0.0)}

    def run(self):
        while not self.stopped.wait(self.interval):
            try:
                counters = self._counters()
                share = canary_share(self.stack.upstream_text(), self.addresses)
            except OSError:
                continue
            now = time.monotonic()
            if counters is not None:
                self.last_counters = counters
                if self.first_request is None and counters['ok'] + counters['errors'] > 0:
                    self.first_request = now
            self.max_share = max(self.max_share, share)
            if self.first_request is not None and self.back_to_zero is None and share == 0:
                self.back_to_zero = now
                self.counters_at_zero = counters
                if self.stopped.wait(1.0):
                    break
                try:
                    self.counters_at_zero = self._counters() or counters
                except OSError:
                    pass

    def stop(self):
        self.stopped.set()
        self.join(5)


def run_release(inventory, version, log_path, timeout=600, extra_args=()):
    """One ``ansible-playbook playbooks/canary_release.yml`` run; returns (returncode, seconds)."""
    return run_playbook(inventory, PLAYBOOK, ['-e', 'rollout_version=%s' % version] + list(extra_args), log_path,
                        timeout)


def roll_back(inventory, log_path, reason, timeout=120):
    """``playbooks/rollback.yml`` with ``rollback_reason``: a release left held (paused, waiting for a person) is
    rolled back, so that the next release of the benchmark starts from 100 % stable; returns (returncode, seconds)."""
    return run_playbook(inventory, ROLLBACK_PLAYBOOK, ['-e', json.dumps({'rollback_reason': reason})], log_path,
                        timeout)


def run_playbook(inventory, playbook, args, log_path, timeout):
    """``ansible-playbook -i <inventory> <playbook> <args>`` from the repository root, stdin closed, its output in
    ``log_path``; returns (returncode, or 'timeout' after killing it, and the seconds it took)."""
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory.path, playbook] + \
        list(args)
    started = time.monotonic()
    with open(log_path, 'w', encoding='utf-8') as log:
        process = subprocess.Popen(argv, cwd=REPO_ROOT, env=ansible_environment(), stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            returncode = 'timeout'
    return returncode, time.monotonic() - started


def read_record(state_dir):
    try:
        with open(os.path.join(state_dir, SERVICE + '.json'), encoding='utf-8') as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def record_time(text):
    """Seconds since the epoch of a time the rollout record wrote (``2025-01-31T12:00:00Z``); None when absent."""
    return float(calendar.timegm(time.strptime(text, RECORD_TIME_FORMAT))) if text else None


def step_verdicts(record):
    """Every step a rollout record holds, in order: ``step`` (index), ``weight``, ``verdict``, ``reason`` and
    ``seconds_to_verdict`` - from the step's start at its weight (``started_at``) to its verdict (the entry's last
    change, ``at``), in whole seconds as the record keeps them; None while the step has no verdict."""
    steps = []
    for entry in (record or {}).get('steps', []):
        started, decided = record_time(entry.get('started_at')), record_time(entry.get('at'))
        seconds = decided - started if entry.get('verdict') and None not in (started, decided) else None
        steps.append({'step': entry.get('index'), 'weight': entry.get('weight'), 'verdict': entry.get('verdict'),
                      'reason': entry.get('reason'), 'seconds_to_verdict': seconds})
    return steps


def load_average():
    """The machine's 1-minute load average (2 CPUs: above 2 means other work competed with the benchmark)."""
    return round(os.getloadavg()[0], 2)


def summarize(values):
    """min / median / mean / max of a list of numbers (None entries left out); None when empty."""
    values = sorted(value for value in values if value is not None)
    if not values:
        return None
    middle = len(values) // 2
    median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2.0
    return {'n': len(values), 'min': round(values[0], 2), 'median': round(median, 2),
            'mean': round(sum(values) / len(values), 2), 'max': round(values[-1], 2)}
