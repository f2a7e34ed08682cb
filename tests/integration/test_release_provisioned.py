"""Whole canary releases with ``rollout_provision: terraform``: playbooks/canary_release.yml creates its canary and
baseline hosts with real Terraform, deploys over real SSH, moves real NGINX traffic to them, and destroys them.

The hosts come from terraform/examples/local_fleet (tests/support/local_fleet.py): one canary of the new version and
one baseline of the old, each a network namespace with a veth pair, its own sshd and the sample app. A real NGINX in
the root namespace (tests/support/nginx.py) has the upstream ``app``: two stable backends of its own and the canary's
``address:port`` (down) - the address the fleet gives the first host of its subnet, which the run must find again in
``provision_result.target_groups.canary`` (``traffic_nginx_canary`` is that output). The deploy task file
(tests/integration/files/local_fleet_deploy.yml) restarts the canary's app with ``--app-version`` over SSH inside its
namespace; the deploy role's health check reaches it from the root namespace over the veth. No judge: the steps have
no analysis (``rollout_analysis: false``), so a step is its weight and its pause: the first release opts out of
promotion on evidence (``rollout_require_pass: false``, promote on timer), the second has an approval gate.

* A release stepped 50 % -> 100 % is promoted: while it runs, requests through NGINX reach the canary's new version;
  afterwards the upstream sends everything to the stable backends, the record says promoted, and the fleet is gone -
  namespaces, interfaces, every process seen in them, host directories, the Terraform workspace.
* A release held at its approval gate (50 %, hosts alive, the canary answering through NGINX, the fresh baseline
  running the old version) and then rejected on the re-run is rolled back - the re-run applies again without change
  and does not deploy again - and its hosts are destroyed.

A deploy whose health check fails is not tested here: the deploy role stops the whole playbook (deploy_fail_fast),
so neither the rollback nor the destroy runs and the hosts stay for a re-run to resume.
"""

import collections
import contextlib
import http.client
import json
import os
import sys
import threading
import time
import types

import pytest
import yaml

from tests.support.local_fleet import (APP_PORT, LocalFleet, interfaces_in, is_running, namespaces, needs_netns,
                                       processes_mentioning)
from tests.support.nginx import NginxServer, find_nginx, upstream_weights
from tests.support.paths import REPO_ROOT
from tests.support.playbook import run_playbook

pytestmark = [pytest.mark.integration, needs_netns,
              pytest.mark.skipif(find_nginx() is None, reason='nginx is not installed')]

SERVICE, VERSION, BASELINE_VERSION = 'sample', '2', '1'
PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'canary_release.yml')
DEPLOY_TASKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'files', 'local_fleet_deploy.yml')
STABLE = ['stable-1', 'stable-2']
CANARY_ANSWER = 'hello from canary-1 version %s' % VERSION
PROVISION = 'canary.release.provision : '
DEPLOY = 'Deploy the new version and wait for the health check'
RESTART = 'canary.release.deploy : Restart the sample app with version %s' % VERSION
RUN_TIMEOUT = 120


@pytest.fixture
def release(tmp_path):
    """``release(tag, second_octet, **rollout_vars)``: the fleet (LocalFleet's tag and subnet) and the NGINX of one
    release, and ``run(**more)``, one ansible-playbook run of canary_release.yml on them. Both stop with the test."""
    with contextlib.ExitStack() as cleanup:
        def prepare(tag, second_octet, **rollout_vars):
            fleet = cleanup.enter_context(LocalFleet(tmp_path, tag, second_octet, SERVICE, VERSION, BASELINE_VERSION))
            nginx = cleanup.enter_context(NginxServer(STABLE, workdir=str(tmp_path)))
            stable = nginx.upstream_block('app', [(name, '') for name in STABLE])
            nginx.start({'upstream.conf': stable.replace('}', '    server %s down;\n}' % fleet.app_server('canary')),
                         'site.conf': nginx.default_site('app')})
            variables = dict(release_vars(fleet, nginx, str(tmp_path / 'state')), **rollout_vars)
            inventory = tmp_path / 'inventory.yml'
            inventory.write_text(yaml.safe_dump({'all': {'hosts': {'localhost': {
                'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}}}))

            def run(returncode=0, **more):
                completed = run_playbook(playbook=PLAYBOOK, extra_vars=dict(variables, **more),
                                         extra_args=['-i', str(inventory)], timeout=RUN_TIMEOUT)
                assert completed.returncode == returncode, completed.stdout[-4000:] + completed.stderr[-3000:]
                return completed
            return fleet, nginx, run
        yield prepare


def release_vars(fleet, nginx, state_dir):
    variables = fleet.provision_vars()
    variables.update({
        'rollout_service': SERVICE, 'rollout_version': VERSION, 'rollout_previous_version': BASELINE_VERSION,
        'rollout_state_dir': state_dir, 'rollout_provision': 'terraform',
        'rollout_analysis': False, 'rollout_report': False,  # no judge, so no metrics to report on
        'traffic_backend': 'nginx', 'traffic_nginx_host': 'localhost',
        'traffic_nginx_path': nginx.path('upstream.conf'), 'traffic_nginx_upstream': 'app',
        'traffic_nginx_canary': '{{ provision_result.target_groups.canary }}',  # the fleet's output, read at each step
        'traffic_nginx_validate_command': nginx.validate_command, 'traffic_nginx_reload_command': nginx.reload_command,
        'deploy_tasks_file': DEPLOY_TASKS, 'local_fleet_app_port': APP_PORT,
        # from the root namespace, where NGINX is, over the canary's veth
        'deploy_health_url': 'http://{{ ansible_host }}:%d/health' % APP_PORT, 'deploy_health_from': 'localhost',
        'deploy_health_delay': 1, 'deploy_health_retries': 10,
    })
    return variables


@contextlib.contextmanager
def observing(nginx, fleet, limit=RUN_TIMEOUT):
    """While the block runs (at most ``limit`` s): one request through NGINX every 0.1 s and the PIDs in the fleet's
    namespaces every 0.5 s. Yields what was seen: ``answers`` (a Counter of bodies, or errors) and ``pids`` (a set)."""
    seen = types.SimpleNamespace(answers=collections.Counter(), pids=set())
    stopped = threading.Event()

    def watch():
        now = time.monotonic()
        deadline, next_pids = now + limit, now
        while time.monotonic() < deadline and not stopped.wait(0.1):
            try:
                status, body, dummy = nginx.request(timeout=2)
                seen.answers[body if status == 200 else 'status %d' % status] += 1
            except (OSError, http.client.HTTPException):
                seen.answers['connection error'] += 1
            if time.monotonic() >= next_pids:
                seen.pids.update(fleet.pids())
                next_pids += 0.5

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        stopped.set()
        watcher.join(10)


# --- what the run did and left ------------------------------------------------------------------------------------

def results(run, name):
    return [task['result'] for task in run.tasks if task['name'] == name]


def messages(run, suffix):
    """The ``msg`` of every task whose name ends with ``suffix`` that ran, in order."""
    return [task['result']['msg'] for task in run.tasks
            if task['name'].endswith(suffix) and 'msg' in task['result'] and not task['result'].get('skipped')]


def provisioned(run):
    """provision_result after each time the provision role ran, in order."""
    return [result['ansible_facts']['provision_result'] for result in results(run, PROVISION + 'Describe the hosts')
            + results(run, PROVISION + 'Describe the outcome')]


def record(state_dir):
    with open(os.path.join(state_dir, SERVICE + '.json'), encoding='utf-8') as handle:
        return json.load(handle)


def app_answer(server):
    """The body of ``GET /`` from an app server (``address:port``), straight, not through NGINX."""
    connection = http.client.HTTPConnection(*server.split(':'), timeout=5)
    try:
        connection.request('GET', '/')
        return connection.getresponse().read().decode().strip()
    finally:
        connection.close()


def assert_all_traffic_on_stable(nginx, fleet):
    """The canary's server is down in the upstream, the stable ones have the default weight, and only they answer."""
    stable_weights = dict((nginx.addresses[name], 1) for name in STABLE)
    assert upstream_weights(nginx.read('upstream.conf').decode()) == dict(stable_weights, **{fleet.app_server('canary'): 0})
    assert set(nginx.count_backends(20)) <= set(STABLE)


def assert_destroyed(fleet, pids):
    """Nothing of the fleet is left: namespaces, interfaces, the processes seen in them, host files, the workspace."""
    assert namespaces(fleet.prefix) == []
    assert interfaces_in(fleet.subnet) == set()
    assert [pid for pid in pids if is_running(pid)] == []
    assert processes_mentioning(fleet.work_dir) == [] and os.listdir(fleet.work_dir) == []
    assert not os.path.exists(os.path.join(fleet.project, 'terraform.tfstate.d', fleet.workspace))


# --- the releases -------------------------------------------------------------------------------------------------

def test_provisioned_release_is_stepped_promoted_and_its_hosts_destroyed(release, tmp_path):
    started = time.monotonic()
    # no judge and no gate: only the explicit opt-out "promote on timer" accepts these steps
    fleet, nginx, run_release = release('a', 215, rollout_require_pass=False,
                                        rollout_steps=[{'weight': 50, 'pause': 4}, {'weight': 100, 'pause': 2}])
    canary, baseline = fleet.host_id('canary'), fleet.host_id('baseline')
    with observing(nginx, fleet) as seen:
        run = run_release()

    # Terraform created both hosts, the run found the canary's server in the outputs and put the hosts in the groups.
    created, retired = provisioned(run)
    assert created['state'] == 'present' and created['changed'] is True and created['workspace'] == 'sample-2'
    assert sorted((host['id'], host['track']) for host in created['hosts']) == [
        (baseline, 'baseline'), (canary, 'canary')]
    assert created['target_groups']['canary'] == [fleet.app_server('canary')]
    added = run.result(PROVISION + 'Add the hosts to the groups canary and baseline')['results']
    assert sorted((item['add_host']['host_name'], item['add_host']['groups']) for item in added) == [
        (baseline, ['baseline']), (canary, ['canary'])]

    # The deploy ran on the canary alone, over SSH inside its namespace, and restarted its app with the new version;
    # the health check from the root namespace reached it over the veth.
    restarts = results(run, RESTART)
    assert len(restarts) == 1
    restart = json.loads(restarts[0]['stdout'])
    assert restart['namespace'] == canary and restart['stopped'] != restart['started']
    assert restart['argv'][restart['argv'].index('--app-version') + 1] == VERSION
    deployed = run.result('canary.release.deploy : Expose the deploy outcome')['ansible_facts']['deploy_result']
    assert deployed['host'] == canary and deployed['healthy'] is True and deployed['health_status'] == 200
    assert restart['started'] in seen.pids  # the new app lived in the canary's namespace

    # The weights stepped 50 % -> 100 %, then the promotion gave everything back to the stable pool; requests through
    # NGINX reached the canary's new version in between, and none failed.
    assert messages(run, 'Report the traffic split') == [
        'sample: canary at %s %% (requested %s %%) via nginx' % (weight, weight) for weight in ('50.0', '100.0')] + [
        'sample: canary at 0.0 % (requested 0.0 %) via nginx']
    assert set(seen.answers) == set(STABLE) | {CANARY_ANSWER}, seen.answers
    # announced once (it was printed, POSTed and exported twice: by advance.yml and again by steps.yml)
    assert messages(run, 'Report the event').count('sample 2: every step done (watched, watched); promoting') == 1
    final = record(str(tmp_path / 'state'))
    assert (final['status'], final['version'], final['previous_version']) == ('promoted', VERSION, BASELINE_VERSION)
    assert [(step['index'], step['weight'], step['verdict']) for step in final['steps']] == [
        (0, 50.0, 'watched'), (1, 100.0, 'watched')]
    assert not os.path.exists(str(tmp_path / 'state' / (SERVICE + '.lock')))
    assert_all_traffic_on_stable(nginx, fleet)

    # The promotion retired the hosts: Terraform destroyed them and nothing of them is left.
    assert retired['state'] == 'absent' and retired['changed'] is True and retired['kept'] is False
    assert len(seen.pids) >= 4  # sshd and the app in each namespace, and the restarted app
    assert_destroyed(fleet, seen.pids)
    assert time.monotonic() - started < 90


def test_provisioned_release_rejected_at_its_gate_is_rolled_back_and_its_hosts_destroyed(release, tmp_path):
    started = time.monotonic()
    fleet, nginx, run_release = release('b', 216, rollout_approval_mode='end',
                                        rollout_steps=[{'weight': 50, 'pause': 1, 'approval': True}, {'weight': 100}])
    canary, baseline = fleet.host_id('canary'), fleet.host_id('baseline')

    # First run: hosts created, canary deployed, 50 % of the traffic, then the approval gate ends the run.
    held = run_release(returncode=2)  # held (outside AWX): not promoted
    assert record(str(tmp_path / 'state'))['status'] == 'paused'
    assert [step['verdict'] for step in record(str(tmp_path / 'state'))['steps']] == ['awaiting_approval']
    assert namespaces(fleet.prefix) == sorted([baseline, canary])
    assert len(results(held, RESTART)) == 1 and json.loads(results(held, RESTART)[0]['stdout'])['namespace'] == canary
    answers = nginx.count_backends(40)
    assert set(answers) == set(STABLE) | {CANARY_ANSWER} and 10 <= answers[CANARY_ANSWER] <= 30, answers
    assert app_answer(fleet.app_server('baseline')) == 'hello from baseline-1 version %s' % BASELINE_VERSION
    pids = fleet.pids()
    assert len(pids) >= 4

    # The re-run with the rejection: the same hosts (Terraform applies without a change), no second deploy, the canary
    # out of rotation, the record rolled back, the hosts destroyed.
    rejected = run_release(returncode=2, rollout_approval='reject')
    again, destroyed = provisioned(rejected)
    assert again['changed'] is False and sorted(host['id'] for host in again['hosts']) == sorted([baseline, canary])
    assert destroyed['state'] == 'absent' and destroyed['changed'] is True
    assert [result.get('skipped') for result in results(rejected, DEPLOY)] == [True]
    assert results(rejected, RESTART) == []
    final = record(str(tmp_path / 'state'))
    assert final['status'] == 'rolled_back' and final['steps'][0]['verdict'] == 'rejected'
    assert final['reason'] == 'step 0 at 50 %, rejected (rollout_approval=reject)'
    assert_all_traffic_on_stable(nginx, fleet)
    assert_destroyed(fleet, pids)
    assert time.monotonic() - started < 90
