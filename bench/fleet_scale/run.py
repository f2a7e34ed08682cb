"""Fleet scale: what promotion costs per host over real SSH, and what the release engine costs per step.

The hosts come from tests/support/ssh_fleet.py: network namespaces on this machine, each with its own sshd, the sample
app and a one-worker NGINX in front of it. A real NGINX in the root namespace (tests/support/nginx.py) has the
service's upstream: the canary (one of its own backends) and the stable hosts' NGINX.

1. Promotion (``playbooks/promote.yml``) of N = 4, 8, 16, 32 stable hosts, with and without pipelining, over SSH with
   ControlPersist (one ControlMaster per host, stopped before every run so that every run pays its connections),
   ``promote_serial`` 25 % (4 batches whatever N) and the default 5 forks. Before each run the rollout is left where
   a canary release leaves it before a promotion by hand (the record of the new version at 100 %, paused for a
   human, written with the rollout_state core; the canary at 100 % of the upstream); the run deploys the version on
   every host (the deploy task file restarts the app over SSH, the health check runs on the host through its
   NGINX), returns the traffic to the stable pool and records the promotion. Measured per run: wall time, controller
   CPU (user + system of ansible-playbook and everything it waited for: ``getrusage(RUSAGE_CHILDREN)`` around the
   run, plus the ControlMaster processes, which detach from it), task results (json callback), the load average.
   Each run is checked: every host answers with the new version through its NGINX, the record says promoted, the
   canary is out of the upstream. Fitted by least squares: seconds = fixed + per_host * N.
2. Engine overhead per step: ``playbooks/canary_release.yml`` with one canary and one stable host, no analysis
   (``rollout_analysis: false``, ``rollout_require_pass: false``), no report, plans of 1, 4 and 8 steps (100;
   5/25/50/100; 5/10/20/30/40/50/75/100 %), each run twice: every pause 0 (such a step is done when its weight is
   set: one engine turn), and every pause ``STEP_PAUSE`` s (the step's start, the wait, the verdict: two engine turns
   and two announcements, as a step with a pause or an analysis takes), its pauses subtracted from the wall time.
   Fitted seconds = fixed + per_step * steps (wall and controller CPU) and tasks per step, for each.

Writes bench/results/fleet_scale.json. Run from the repository root as root (namespaces), on a quiet machine:
``PYTHONPATH=.:tests/output/collections .venv/bin/python -m bench.fleet_scale.run`` (11 minutes at load 3-6, 18 at
load 7-9; ``--hosts``, ``--repeats`` and ``--step-repeats`` change the grid).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import yaml

from ansible_collections.canary.release.plugins.module_utils._nginx import nginx_traffic
from ansible_collections.canary.release.plugins.module_utils._rollout import state as rollout_state
from bench.results_file import nginx_version, write_results
from tests.support.nginx import NginxServer, upstream_weights
from tests.support.paths import BIN_DIR, REPO_ROOT
from tests.support.playbook import playbook_env
from tests.support.ssh_fleet import SshFleet, cpu_seconds

SERVICE = 'sample'
SERIAL = '25%'
HOSTS = (4, 8, 16, 32)
PLANS = ((100,), (5, 25, 50, 100), (5, 10, 20, 30, 40, 50, 75, 100))
STEP_PAUSE = 1  # seconds; the paused plans' pauses are subtracted from their wall time
PLAYBOOKS = os.path.join(REPO_ROOT, 'playbooks')
RUN_TIMEOUT = 600


def fit(points):
    """Least squares ``y = fixed + slope * x`` over ``[(x, y), ...]``: ``{'fixed', 'slope', 'r2'}``."""
    count = len(points)
    mean_x = sum(x for x, y in points) / count
    mean_y = sum(y for x, y in points) / count
    sxx = sum((x - mean_x) ** 2 for x, y in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    slope = sxy / sxx
    fixed = mean_y - slope * mean_x
    residual = sum((y - fixed - slope * x) ** 2 for x, y in points)
    total = sum((y - mean_y) ** 2 for x, y in points)
    return {'fixed': round(fixed, 3), 'slope': round(slope, 4), 'r2': round(1 - residual / total, 4) if total else None}


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def watch_main_process(process):
    """Wait for ``process``; return the CPU seconds of that process alone - ansible-playbook's main process, where the
    strategy, the templating of loops and the result handling run one at a time - last seen in /proc before it ended
    (at most 0.1 s before); None when it outlived RUN_TIMEOUT (it is killed)."""
    seen = 0.0
    deadline = time.monotonic() + RUN_TIMEOUT
    while process.poll() is None:
        seen = max(seen, cpu_seconds(process.pid))
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            return None
        time.sleep(0.1)
    return seen


class Bench:
    """The fleet, the root NGINX with the upstream ``app`` and one ansible-playbook run at a time."""

    def __init__(self, workdir, fleet, nginx):
        self.workdir, self.fleet, self.nginx = workdir, fleet, nginx
        self.state_dir = os.path.join(workdir, 'state')
        self.number = 0
        self.version = '1'

    def traffic_vars(self, canary):
        return {'traffic_backend': 'nginx', 'traffic_nginx_host': 'localhost',
                'traffic_nginx_path': self.nginx.path('upstream.conf'), 'traffic_nginx_upstream': 'app',
                'traffic_nginx_canary': [canary], 'traffic_nginx_validate_command': self.nginx.validate_command,
                'traffic_nginx_reload_command': self.nginx.reload_command}

    def write_upstream(self, canary, stable):
        servers = ['    server %s down;\n' % canary] + ['    server %s:80;\n' % self.fleet.address(name) for name in stable]
        self.nginx.write('upstream.conf', 'upstream app {\n%s}\n' % ''.join(servers))
        self.nginx.reload()

    def play(self, playbook, inventory, extra_vars, label):
        """One ansible-playbook run: its measurements and the json callback's document."""
        self.number += 1
        base = os.path.join(self.workdir, '%02d-%s' % (self.number, label))
        with open(base + '-inventory.yml', 'w', encoding='utf-8') as handle:
            yaml.safe_dump(inventory, handle)
        with open(base + '-vars.json', 'w', encoding='utf-8') as handle:
            json.dump(extra_vars, handle)
        command = [os.path.join(BIN_DIR, 'ansible-playbook'), '-i', base + '-inventory.yml', '-e', '@' + base + '-vars.json',
                   os.path.join(PLAYBOOKS, playbook)]
        self.fleet.stop_control_masters()  # every run opens its own connections
        load_before = os.getloadavg()
        cpu_before, started = children_cpu(), time.monotonic()
        with open(base + '.json', 'w+', encoding='utf-8') as stdout, open(base + '.stderr', 'w+', encoding='utf-8') as stderr:
            process = subprocess.Popen(command, env=playbook_env(), stdout=stdout, stderr=stderr, text=True)
            main_cpu = watch_main_process(process)
            stdout.seek(0)
            stderr.seek(0)
            output, errors = stdout.read(), stderr.read()
        wall, cpu = time.monotonic() - started, children_cpu() - cpu_before
        masters = self.fleet.stop_control_masters()
        if main_cpu is None or process.returncode != 0:
            raise RuntimeError('%s exited %d (see %s.json): %s' % (playbook, process.returncode, base, errors[-2000:]))
        document = json.loads(output[output.index('{'):])
        results = [result for play in document['plays'] for task in play['tasks'] for result in task['hosts'].values()]
        return {'wall_seconds': round(wall, 2), 'ansible_cpu_seconds': round(cpu, 2),
                'control_master_cpu_seconds': round(masters, 2), 'cpu_seconds': round(cpu + masters, 2),
                'main_process_cpu_seconds': round(main_cpu, 2),
                'task_results': len(results), 'tasks_skipped': sum(1 for result in results if result.get('skipped')),
                'tasks': sum(len(play['tasks']) for play in document['plays']),
                'load_before': [round(value, 2) for value in load_before],
                'load_after': [round(value, 2) for value in os.getloadavg()]}

    def check(self, names, version, canary):
        found = self.fleet.versions(names)
        if set(found.values()) != {version}:
            raise RuntimeError('after the run the hosts answer %r, not version %s' % (self.fleet.last_answers, version))
        with open(os.path.join(self.state_dir, SERVICE + '.json'), encoding='utf-8') as handle:
            record = json.load(handle)
        if record['status'] != 'promoted' or record['version'] != version:
            raise RuntimeError('the record says %s %s, not promoted %s' % (record['status'], record['version'], version))
        weights = upstream_weights(self.nginx.read('upstream.conf').decode())
        if weights.get(canary) != 0:
            raise RuntimeError('the canary %s still has weight %s in the upstream' % (canary, weights.get(canary)))

    def next_version(self):
        previous, self.version = self.version, str(int(self.version) + 1)
        return previous, self.version

    # --- 1. promotion -----------------------------------------------------------------------------------------

    def promotion(self, count, pipelining):
        names = self.fleet.names[:count]
        canary = self.nginx.addresses['canary-1']
        self.write_upstream(canary, names)
        previous, version = self.next_version()
        # where a canary release leaves the rollout before a promotion by hand (as tests/integration/test_release_end)
        begun = rollout_state.begin(self.state_dir, SERVICE, version, previous_version=previous)
        rollout_state.record_step(self.state_dir, SERVICE, 0, weight=100, verdict='approved', run_id=begun['run_id'])
        rollout_state.finish(self.state_dir, SERVICE, 'paused', run_id=begun['run_id'])
        nginx_traffic.set_upstream_weights(self.nginx.path('upstream.conf'), 'app', canary=[canary], canary_percent=100,
                                           validate_command=self.nginx.validate_command,
                                           reload_command=self.nginx.reload_command)
        inventory = self.fleet.inventory(pipelining=pipelining, names=names)
        inventory['all'] = {'hosts': {'localhost': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}}
        extra_vars = dict(self.traffic_vars(canary), rollout_service=SERVICE, rollout_state_dir=self.state_dir,
                          promote_serial=SERIAL, deploy_health_delay=1, deploy_health_retries=10)
        run = self.play('promote.yml', inventory, extra_vars, 'promote-%d-%s' % (count, 'pipelining' if pipelining else 'plain'))
        self.check(names, version, canary)
        run.update(hosts=count, pipelining=pipelining, version=version)
        print('promote %2d hosts, pipelining %-5s: %6.1f s wall, %6.1f s controller CPU (%.1f in ControlMasters), '
              '%d task results, load %.1f' % (count, pipelining, run['wall_seconds'], run['cpu_seconds'],
                                              run['control_master_cpu_seconds'], run['task_results'], run['load_before'][0]))
        sys.stdout.flush()
        return run

    # --- 2. steps ---------------------------------------------------------------------------------------------

    def release(self, plan, pause=0):
        canary_name, stable_name = self.fleet.names[-1], self.fleet.names[0]
        canary = '%s:80' % self.fleet.address(canary_name)
        self.write_upstream(canary, [stable_name])
        previous, version = self.next_version()
        inventory = {'canary': {'hosts': {'canary-1': self.fleet.host_vars(canary_name)}},
                     'stable': {'hosts': {stable_name: self.fleet.host_vars(stable_name)}},
                     'all': {'hosts': {'localhost': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}}}
        extra_vars = dict(self.traffic_vars(canary), rollout_service=SERVICE, rollout_version=version,
                          rollout_previous_version=previous, rollout_state_dir=self.state_dir,
                          rollout_steps=[{'weight': weight, 'pause': pause} for weight in plan],
                          rollout_analysis=False, rollout_require_pass=False, rollout_report=False,
                          promote_serial=1, deploy_health_delay=1, deploy_health_retries=10)
        run = self.play('canary_release.yml', inventory, extra_vars, 'release-%d-steps-pause-%d' % (len(plan), pause))
        self.check([canary_name, stable_name], version, canary)
        run.update(steps=len(plan), plan=list(plan), version=version, pause=pause,
                   wall_seconds_without_pauses=round(run['wall_seconds'] - pause * len(plan), 2))
        print('release of %d steps, pause %d s: %6.1f s wall (%.1f without the pauses), %6.1f s controller CPU, '
              '%d task results, load %.1f' % (len(plan), pause, run['wall_seconds'], run['wall_seconds_without_pauses'],
                                              run['cpu_seconds'], run['task_results'], run['load_before'][0]))
        sys.stdout.flush()
        return run


def summarize(promotions, releases):
    summary = {}
    for pipelining in (True, False):
        runs = [run for run in promotions if run['pipelining'] == pipelining]
        key = 'pipelining' if pipelining else 'no_pipelining'
        summary[key] = dict((measure, fit([(run['hosts'], run[measure]) for run in runs]))
                            for measure in ('cpu_seconds', 'ansible_cpu_seconds', 'main_process_cpu_seconds', 'wall_seconds',
                                            'task_results'))
    summary.update(summarize_steps(releases))
    return summary


def summarize_steps(releases):
    summary = {}
    for key, pause in (('steps', 0), ('steps_with_pause', STEP_PAUSE)):
        runs = [run for run in releases if run['pause'] == pause]
        summary[key] = dict((measure, fit([(run['steps'], run[measure]) for run in runs]))
                            for measure in ('wall_seconds_without_pauses', 'cpu_seconds', 'main_process_cpu_seconds',
                                            'task_results', 'tasks'))
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hosts', type=int, nargs='+', default=list(HOSTS), help='fleet sizes to promote')
    parser.add_argument('--repeats', type=int, default=1, help='runs per fleet size and connection setting')
    parser.add_argument('--step-repeats', type=int, default=2, help='runs per step plan')
    parser.add_argument('--workdir', default=None, help='where the fleet and the run logs go (default: a temporary dir)')
    parser.add_argument('--steps-only', action='store_true',
                        help='measure the steps only, print their fits and write no results file (a quick check)')
    args = parser.parse_args(argv)
    if args.steps_only:
        args.hosts = [2]
    workdir = args.workdir or tempfile.mkdtemp(prefix='bench-fleet-')
    os.makedirs(workdir, exist_ok=True)
    started, load_start = time.monotonic(), os.getloadavg()
    with SshFleet(workdir, max(args.hosts), 'b', second_octet=221) as fleet, \
            NginxServer(['canary-1'], workdir=workdir) as nginx:
        up = round(time.monotonic() - started, 2)
        memory = fleet.memory()
        print('%d SSH hosts up in %.1f s; per host %s' % (len(fleet.names), up, json.dumps(memory[fleet.names[0]])))
        nginx.start({'upstream.conf': 'upstream app {\n    server %s;\n}\n' % nginx.addresses['canary-1'],
                     'site.conf': nginx.default_site('app')})
        bench = Bench(workdir, fleet, nginx)
        promotions = [] if args.steps_only else [bench.promotion(count, pipelining) for dummy in range(args.repeats)
                                                 for count in args.hosts for pipelining in (True, False)]
        releases = [bench.release(plan, pause) for dummy in range(args.step_repeats) for pause in (0, STEP_PAUSE)
                    for plan in PLANS]
        memory_after = fleet.memory()
    if args.steps_only:
        print(json.dumps(summarize_steps(releases), indent=1, sort_keys=True))
        return 0
    summary = summarize(promotions, releases)
    per_host = summary['pipelining']['cpu_seconds']['slope']
    per_step = summary['steps']['wall_seconds_without_pauses']['slope']
    per_step_paused = summary['steps_with_pause']['wall_seconds_without_pauses']['slope']
    rss = [entry['rss_kib'] for entry in memory.values()]
    pss = [entry['pss_kib'] for entry in memory.values()]
    results = {
        'hosts': sorted(set(args.hosts)),
        'per_host_seconds': per_host,
        'per_host_seconds_no_pipelining': summary['no_pipelining']['cpu_seconds']['slope'],
        'per_host_wall_seconds': summary['pipelining']['wall_seconds']['slope'],
        'per_step_seconds': per_step,
        'per_step_cpu_seconds': summary['steps']['cpu_seconds']['slope'],
        'tasks_per_step': summary['steps']['tasks']['slope'],
        # a step with a pause (or an analysis): two engine turns, the pause itself not counted
        'per_step_seconds_with_pause': per_step_paused,
        'per_step_cpu_seconds_with_pause': summary['steps_with_pause']['cpu_seconds']['slope'],
        'tasks_per_step_with_pause': summary['steps_with_pause']['tasks']['slope'],
        'targets': {'per_host_seconds': 1.0, 'per_step_seconds': 2.0},
        'met': {'per_host_seconds': per_host <= 1.0, 'per_step_seconds': per_step <= 2.0,
                'per_step_seconds_with_pause': per_step_paused <= 2.0},
        'fits': summary,
        'settings': {'promote_serial': SERIAL, 'forks': 5, 'control_persist': '60s (masters stopped before each run)',
                     'ssh_args': '-C', 'deploy_health_delay': 1, 'step_plans': [list(plan) for plan in PLANS],
                     'step_pauses': [0, STEP_PAUSE],
                     'nginx': nginx_version(nginx.nginx)},
        'fleet': {'hosts': len(memory), 'seconds_to_start': up,
                  'rss_kib_per_host': {'min': min(rss), 'max': max(rss), 'mean': round(sum(rss) / len(rss))},
                  'pss_kib_per_host': {'min': min(pss), 'max': max(pss), 'mean': round(sum(pss) / len(pss))},
                  'processes_per_host': memory[fleet.names[0]]['processes'],
                  'after_runs': memory_after[fleet.names[0]]},
        'promotions': promotions,
        'releases': releases,
        'load': {'start': [round(value, 2) for value in load_start], 'end': [round(value, 2) for value in os.getloadavg()]},
        'seconds': round(time.monotonic() - started, 1),
    }
    path = write_results('fleet_scale', results)
    print('per host %.3f s controller CPU with pipelining (%.3f without), per step %.2f s (%.1f tasks), with a pause '
          '%.2f s besides the pause (%.1f tasks); wrote %s'
          % (per_host, results['per_host_seconds_no_pipelining'], per_step, results['tasks_per_step'], per_step_paused,
             results['tasks_per_step_with_pause'], path))
    return 0


if __name__ == '__main__':
    sys.exit(main())
