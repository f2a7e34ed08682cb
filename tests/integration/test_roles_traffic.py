"""The traffic, deploy and rollback roles and the rollout_state module through real ansible-playbook runs.

A real nginx (tests/support/nginx.py) serves four backends (canary-1, stable-1..3) behind ``upstream app``; splits
are measured by counting which backend answered. The ALB path runs against the moto server. A tiny HTTP server
started by the test stands in for a failing health check and for a chat webhook. Two concurrent
ansible-playbook runs race for the rollout lock; one run is killed with SIGKILL to leave a stale lock behind; a
rollback by hand meets a rollout that is still running.
"""

import concurrent.futures
import json
import os
import signal
import subprocess
import time

import pytest
import yaml

from tests.support.alb_fixture import Stack
from tests.support.moto import REGION, MotoServer, aws_env
from tests.support.nginx import NginxServer, find_nginx
from tests.support.paths import BIN_DIR
from tests.support.playbook import playbook_env, run_playbook
from tests.support.recording_server import RecordingServer, signature_problem

pytestmark = pytest.mark.integration
needs_nginx = pytest.mark.skipif(find_nginx() is None, reason='nginx is not installed')

CANARY = 'canary-1'
STABLE = ['stable-1', 'stable-2', 'stable-3']
SERVICE = 'web'
HOOK_SECRET = 'hook-signing-secret-5f1c0e'  # noqa: S105 - a test value


# --- servers ------------------------------------------------------------------------------------------------------

def upstream_text(nginx):
    """Before the rollout: the canary server is down, the stable servers share everything."""
    return nginx.upstream_block('app', [(CANARY, 'down')] + [(name, '') for name in STABLE])


@pytest.fixture
def nginx():
    server = NginxServer([CANARY] + STABLE)
    try:
        server.start({'upstream.conf': upstream_text(server), 'site.conf': server.default_site('app')})
        yield server
    finally:
        server.cleanup()


def nginx_vars(nginx):
    return {'traffic_backend': 'nginx', 'traffic_service': SERVICE, 'traffic_nginx_path': nginx.path('upstream.conf'),
            'traffic_nginx_upstream': 'app', 'traffic_nginx_canary': [nginx.addresses[CANARY]],
            'traffic_nginx_validate_command': nginx.validate_command,
            'traffic_nginx_reload_command': nginx.reload_command}


def canary_share(nginx, requests=400):
    counts = nginx.count_backends(requests)
    assert set(counts) <= set([CANARY] + STABLE), counts
    return 100.0 * counts[CANARY] / sum(counts.values())


# --- playbooks ----------------------------------------------------------------------------------------------------

def write_playbook(tmp_path, tasks, name='play.yml'):
    path = tmp_path / name
    play = [{'name': 'roles test', 'hosts': 'localhost', 'connection': 'local', 'gather_facts': False, 'tasks': tasks}]
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return str(path)


def play(tmp_path, tasks, extra_vars=None, name='play.yml', **kwargs):
    env = {'ANSIBLE_SHOW_CUSTOM_STATS': 'True'}
    env.update(kwargs.pop('extra_env', {}))
    return run_playbook(playbook=write_playbook(tmp_path, tasks, name), extra_vars=extra_vars, extra_env=env,
                        timeout=120, **kwargs)


def role(name, **variables):
    return {'name': 'role %s' % name, 'ansible.builtin.include_role': {'name': 'canary.release.%s' % name},
            'vars': variables}


def show(name, expression):
    return {'name': name, 'ansible.builtin.debug': {'msg': '{{ %s }}' % expression}}


def state(name, operation, **args):
    args.update(operation=operation, service=SERVICE, state_dir='{{ state_dir }}')
    return {'name': name, 'canary.release.rollout_state': args, 'register': name.replace(' ', '_')}


def shown(run, name):
    return run.result(name)['msg']


def ending(run, suffix):
    """Results of the tasks whose name ends with ``suffix`` (role tasks are prefixed with the role name)."""
    return [task['result'] for task in run.tasks if task['name'].endswith(suffix)]


def failure(run):
    failed = [task for task in run.tasks if task['result'].get('failed') and not task['result'].get('ignore_errors')]
    assert failed, run.stdout[-3000:] + run.stderr[-3000:]
    return failed[-1]


def stats(run):
    # at -v and more, ansible-playbook prints its version and configuration ahead of the json callback's document
    document = run.stdout if run.stdout.startswith('{') else run.stdout[run.stdout.index('\n{') + 1:]
    return json.loads(document)['global_custom_stats']


def read_record(state_dir):
    with open(os.path.join(state_dir, SERVICE + '.json'), encoding='utf-8') as handle:
        return json.load(handle)


# --- traffic ------------------------------------------------------------------------------------------------------

@needs_nginx
def test_traffic_role_sets_the_nginx_split(nginx, tmp_path):
    before = nginx.worker_pids()
    run = play(tmp_path, [
        role('traffic', traffic_canary_percent=25),
        show('at 25', 'traffic_result'),
        role('traffic', traffic_state='query'),
        show('queried', 'traffic_result'),
    ], extra_vars=nginx_vars(nginx))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = shown(run, 'at 25')
    assert result['backend'] == 'nginx' and result['changed'] is True and result['check_mode'] is False
    assert result['requested_percent'] == 25.0 and result['canary_percent'] == 25.0
    assert result['message'] == 'web: canary at 25.0 % (requested 25.0 %) via nginx'
    assert result['details']['weights'] == {'canary': 1, 'stable': 1, 'exact': True}
    queried = shown(run, 'queried')
    assert queried['canary_percent'] == 25.0 and queried['changed'] is False and queried['requested_percent'] is None
    nginx.wait_for_workers(before)
    assert canary_share(nginx) == 25.0  # round robin over whole cycles: exact

    text = nginx.read('upstream.conf')
    check = play(tmp_path, [role('traffic', traffic_canary_percent=50), show('would', 'traffic_result')],
                 extra_vars=nginx_vars(nginx), check=True, diff=True)
    would = shown(check, 'would')
    assert would['canary_percent'] == 50.0 and would['changed'] is True and would['check_mode'] is True
    assert would['message'].endswith('via nginx (check mode)')
    assert nginx.read('upstream.conf') == text and canary_share(nginx, 40) == 25.0

    bad = play(tmp_path, [role('traffic', traffic_canary_percent=150)], extra_vars=nginx_vars(nginx))
    assert bad.returncode != 0
    assert failure(bad)['result']['msg'] == 'traffic: traffic_canary_percent must be a number from 0 to 100, got 150'
    assert nginx.read('upstream.conf') == text


def test_traffic_and_rollback_roles_on_an_alb(tmp_path):
    server = MotoServer()
    server.start()
    try:
        stack = Stack(server)
        alb = {'traffic_backend': 'alb', 'traffic_alb_stable': stack.name('stable'), 'traffic_alb_canary': stack.name('canary'),
               'traffic_aws_endpoint_url': server.endpoint_url, 'traffic_aws_region': REGION}
        run = play(tmp_path, [
            role('traffic', traffic_canary_percent=25, traffic_alb_listener_arn=stack.listener,
                 traffic_alb_stickiness={'enabled': True, 'duration': 600}),
            show('at 25', 'traffic_result'),
            role('traffic', traffic_state='query', traffic_alb_load_balancer=stack.name('alb'), traffic_alb_port=80),
            show('queried', 'traffic_result'),
            role('rollback', rollback_service=SERVICE, rollback_record=False, rollback_reason='drill',
                 traffic_alb_listener_arn=stack.listener),
            show('rolled back', 'rollback_result'),
        ], extra_vars=alb, extra_env=aws_env())
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        result = shown(run, 'at 25')
        assert result['backend'] == 'alb' and result['canary_percent'] == 25.0 and result['changed'] is True
        assert result['details']['verified'] is True
        assert result['details']['stickiness']['after'] == {'enabled': True, 'duration': 600}
        assert shown(run, 'queried')['canary_percent'] == 25.0
        rolled = shown(run, 'rolled back')
        assert rolled['canary_percent'] == 0.0 and rolled['outcome'] == 'rolled_back' and rolled['backend'] == 'alb'
        assert rolled['message'] == 'web: rolled back, canary at 0.0 % via alb: drill'
        assert stack.weights(stack.default_actions()) == {'stable': 1, 'canary': 0}
        assert stats(run)['canary_release']['outcome'] == 'rolled_back'
    finally:
        server.stop()


# --- rollback -----------------------------------------------------------------------------------------------------

@needs_nginx
def test_rollback_role_returns_all_traffic_to_stable_and_records_it(nginx, tmp_path):
    state_dir = str(tmp_path / 'state')
    teardown = tmp_path / 'teardown.yml'
    marker = tmp_path / 'torn-down'
    teardown.write_text(yaml.safe_dump([{'name': 'teardown marker', 'ansible.builtin.copy': {
        'dest': str(marker), 'content': '{{ rollback_result.outcome }}', 'mode': '0600'}}]))
    with RecordingServer(200) as webhook:
        hook_url = webhook.url + '/services/T000/B000/SECRETTOKEN'
        before = nginx.worker_pids()
        run = play(tmp_path, [
            state('begin', 'begin', version='1.4.0', previous_version='1.3.2'),
            role('traffic', traffic_canary_percent=25),
            state('step', 'step', run_id='{{ begin.run_id }}', step=0, weight='{{ traffic_result.canary_percent }}',
                  verdict='fail', reason='error ratio 5.1x the baseline'),
            role('rollback', rollback_service=SERVICE, rollback_run_id='{{ begin.run_id }}', rollback_state_dir=state_dir,
                 rollback_reason='error ratio 5.1x the baseline', rollback_webhook_url='{{ hook_url }}',
                 rollback_webhook_secret='{{ hook_secret }}', rollback_teardown_tasks_file=str(teardown)),
            show('rolled back', 'rollback_result'),
        ], extra_vars=dict(nginx_vars(nginx), state_dir=state_dir, hook_url=hook_url, hook_secret=HOOK_SECRET),
            extra_args=['-vvv'])  # the most verbose output a user would share: neither secret is in it
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        posts, headers = list(webhook.requests), list(webhook.headers)
    rolled = shown(run, 'rolled back')
    message = 'web 1.4.0: rolled back to 1.3.2, canary at 0.0 % via nginx: error ratio 5.1x the baseline'
    assert rolled == {'service': SERVICE, 'outcome': 'rolled_back', 'version': '1.4.0', 'previous_version': '1.3.2',
                      'reason': 'error ratio 5.1x the baseline', 'canary_percent': 0.0, 'backend': 'nginx',
                      'check_mode': False, 'message': message}
    # all traffic on the stable servers, the canary marked down
    nginx.wait_for_workers(before)
    assert canary_share(nginx) == 0.0
    assert '%s down;' % nginx.addresses[CANARY] in nginx.read('upstream.conf').decode()
    # the record says rolled_back and the lock is released
    record = read_record(state_dir)
    assert record['status'] == 'rolled_back' and record['reason'] == 'error ratio 5.1x the baseline'
    assert record['steps'][0]['verdict'] == 'fail' and record['steps'][0]['weight'] == 25.0
    assert record['events'][-1]['message'] == 'web 1.4.0: rolled back to 1.3.2: error ratio 5.1x the baseline'
    assert not os.path.exists(os.path.join(state_dir, SERVICE + '.lock'))
    # one Slack-compatible POST, the token-bearing URL never shown
    assert [(method, path) for method, path, body in posts] == [('POST', '/services/T000/B000/SECRETTOKEN')]
    assert json.loads(posts[0][2]) == {'text': 'canary.release: ' + message}
    assert signature_problem(HOOK_SECRET, headers[0], posts[0][2]) is None
    output = run.stdout + run.stderr
    assert 'SECRETTOKEN' not in output and HOOK_SECRET not in output
    assert '"invocation"' in run.stdout  # -vvv took effect: module arguments are shown, masked where no_log
    assert stats(run)['canary_release'] == rolled
    assert marker.read_text() == 'rolled_back'


# --- deploy -------------------------------------------------------------------------------------------------------

@needs_nginx
def test_deploy_role_failed_health_check_stops_before_traffic(nginx, tmp_path):
    text = nginx.read('upstream.conf')
    with RecordingServer(503) as health:
        run = play(tmp_path, [
            role('deploy', deploy_service=SERVICE, deploy_version='1.4.0', deploy_restart_command='true',
                 deploy_health_url=health.url + '/healthz', deploy_health_retries=2, deploy_health_delay=0,
                 deploy_health_timeout=5),
            role('traffic', traffic_canary_percent=25),
        ], extra_vars=nginx_vars(nginx))
        requests = list(health.requests)
    assert run.returncode != 0
    message = failure(run)['result']['msg']
    assert message == ('deploy: web 1.4.0 on localhost failed its health check %s/healthz after 3 attempts (last answer: '
                       'HTTP 503); the release stops here, before any traffic moves to the canary' % health.url)
    assert [(method, path) for method, path, body in requests] == [('GET', '/healthz')] * 3
    assert not ending(run, 'Set the canary share of the NGINX upstream app')
    assert nginx.read('upstream.conf') == text


@needs_nginx
def test_deploy_role_copies_restarts_and_waits_until_healthy(nginx, tmp_path):
    artifact = tmp_path / 'app-1.4.0.txt'
    artifact.write_text('version 1.4.0\n')
    dest = tmp_path / 'installed.txt'
    restarts = tmp_path / 'restarts.log'
    deploy = dict(deploy_service=SERVICE, deploy_version='1.4.0', deploy_artifact_src=str(artifact),
                  deploy_artifact_dest=str(dest), deploy_artifact_mode='0640',
                  deploy_restart_command='/bin/sh -c "echo restart >> %s"' % restarts,
                  deploy_health_url='http://%s/healthz' % nginx.addresses[CANARY], deploy_health_delay=0)
    run = play(tmp_path, [role('deploy', **deploy), show('first', 'deploy_result'),
                          role('deploy', **deploy), show('second', 'deploy_result')])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    first, second = shown(run, 'first'), shown(run, 'second')
    assert first == {'host': 'localhost', 'service': SERVICE, 'version': '1.4.0', 'healthy': True, 'health_status': 200,
                     'health_attempts': 1, 'artifact_changed': True, 'check_mode': False}
    assert second['artifact_changed'] is False and second['healthy'] is True
    assert dest.read_text() == 'version 1.4.0\n' and oct(dest.stat().st_mode & 0o777) == '0o640'
    assert restarts.read_text() == 'restart\n'  # the second deploy found the artifact in place: no restart


# --- the rollout lock across ansible-playbook runs ---------------------------------------------------------------

def holding_play(tmp_path, release, name, version='1.4.0'):
    """begin, then hold the lock until ``release`` exists (at most 60 s), then finish."""
    return write_playbook(tmp_path, [
        state('begin', 'begin', version=version),
        state('step', 'step', run_id='{{ begin.run_id }}', step=0, weight=5, verdict='pass'),
        {'name': 'hold', 'ansible.builtin.wait_for': {'path': str(release), 'timeout': 60}},
        state('finish', 'finish', run_id='{{ begin.run_id }}', status='promoted'),
    ], name)


def wait_until(condition, timeout=60.0, what='condition'):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError('timed out after %s s waiting for %s' % (timeout, what))


def test_two_concurrent_rollouts_of_one_service_one_is_refused(tmp_path):
    state_dir = str(tmp_path / 'state')
    release = tmp_path / 'release'
    playbooks = [holding_play(tmp_path, release, 'first.yml'), holding_play(tmp_path, release, 'second.yml')]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(run_playbook, playbook=path, extra_vars={'state_dir': state_dir}, timeout=120)
                   for path in playbooks]
        try:
            done, dummy = concurrent.futures.wait(futures, timeout=90, return_when=concurrent.futures.FIRST_COMPLETED)
            assert len(done) == 1, 'both runs finished while one should hold the lock'
            refused = done.pop().result()
            with open(os.path.join(state_dir, SERVICE + '.lock'), encoding='utf-8') as handle:
                holder = json.load(handle)
            with open('/proc/%d/cmdline' % holder['pid'], 'rb') as handle:
                assert b'ansible-playbook' in handle.read()  # the lock names the live run's process
        finally:
            release.write_text('go')
        winner = [future for future in futures if future.result(timeout=120) is not refused][0].result()
    assert refused.returncode != 0
    begin = refused.result('begin')
    assert begin['failed'] and begin['msg'].startswith(
        'rollout of web already running since %s, pid %d on host ' % (holder['started_at'], holder['pid']))
    assert begin['holder']['run_id'] == holder['run_id']
    assert winner.returncode == 0, winner.stdout[-3000:] + winner.stderr[-3000:]
    assert winner.result('finish')['record']['status'] == 'promoted'
    assert not os.path.exists(os.path.join(state_dir, SERVICE + '.lock'))


def children(pid):
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry, 'rb') as handle:
                    stat = handle.read()
            except OSError:
                continue
            if int(stat[stat.rindex(b')') + 2:].split()[1]) == pid:
                found.append(int(entry))
    return found


def test_killed_run_leaves_a_stale_lock_that_the_next_run_takes_over(tmp_path):
    state_dir = str(tmp_path / 'state')
    release = tmp_path / 'release'
    vars_file = tmp_path / 'vars.json'
    vars_file.write_text(json.dumps({'state_dir': state_dir}))
    command = [os.path.join(BIN_DIR, 'ansible-playbook'), '-i', 'localhost,', holding_play(tmp_path, release, 'held.yml'),
               '-e', '@%s' % vars_file]
    process = subprocess.Popen(command, env=playbook_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        wait_until(lambda: os.path.exists(os.path.join(state_dir, SERVICE + '.json'))
                   and read_record(state_dir)['step'] == 0, what='the first run to record step 0')
        workers = children(process.pid)
        process.send_signal(signal.SIGKILL)  # the controller dies mid-rollout
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        release.write_text('go')  # lets the orphaned worker's wait_for end
        for pid in workers:
            try:
                wait_until(lambda: not os.path.exists('/proc/%d' % pid), timeout=20, what='worker %d to exit' % pid)
            except AssertionError:
                os.kill(pid, signal.SIGKILL)
    with open(os.path.join(state_dir, SERVICE + '.lock'), encoding='utf-8') as handle:
        stale = json.load(handle)
    assert stale['pid'] == process.pid
    run = play(tmp_path, [state('begin', 'begin', version='1.4.0'),
                          state('finish', 'finish', run_id='{{ begin.run_id }}', status='promoted')],
               extra_vars={'state_dir': state_dir}, diff=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    begin = run.result('begin')
    assert begin['resumed'] is True and begin['next_step'] == 1 and begin['taken_over']['run_id'] == stale['run_id']
    assert any('took over the stale lock of web: pid %d on ' % process.pid in warning
               and 'is no longer running' in warning for warning in begin['warnings'])
    assert '"status": "running"' in begin['diff']['after'] and begin['diff']['before_header'].endswith('web.json')
    assert run.result('finish')['record']['status'] == 'promoted'


@needs_nginx
def test_rollback_by_hand_while_a_rollout_runs_needs_break_lock(nginx, tmp_path):
    """Traffic goes back to stable at once; the live rollout's lock is only broken on request, and then that
    rollout cannot finish over the rollback."""
    state_dir = str(tmp_path / 'state')
    release = tmp_path / 'release'
    vars_file = tmp_path / 'vars.json'
    vars_file.write_text(json.dumps({'state_dir': state_dir}))
    holder = subprocess.Popen([os.path.join(BIN_DIR, 'ansible-playbook'), '-i', 'localhost,', '-e', '@%s' % vars_file,
                               holding_play(tmp_path, release, 'held.yml')],
                              env=playbook_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        wait_until(lambda: os.path.exists(os.path.join(state_dir, SERVICE + '.json'))
                   and read_record(state_dir)['step'] == 0, what='the rollout to record step 0')
        rollback = role('rollback', rollback_service=SERVICE, rollback_state_dir=state_dir, rollback_reason='by hand')
        refused = play(tmp_path, [rollback], extra_vars=dict(nginx_vars(nginx), traffic_canary_percent=25))
        assert refused.returncode != 0
        message = failure(refused)['result']['msg']
        assert message.startswith('rollback of web: the canary is out of rotation (100 % stable), but the rollout '
                                  'record could not be marked rolled_back: rollout of web already running since ')
        assert 'rollback_break_lock=true' in message
        assert '%s down;' % nginx.addresses[CANARY] in nginx.read('upstream.conf').decode()
        assert read_record(state_dir)['status'] == 'running'

        rollback['vars']['rollback_break_lock'] = True
        broken = play(tmp_path, [rollback], extra_vars=nginx_vars(nginx))
        assert broken.returncode == 0, broken.stdout[-3000:] + broken.stderr[-3000:]
        finished = ending(broken, 'Finish the rollout as rolled_back')[0]  # a loop: warnings on the task's result
        assert any('broke the lock of web (break_lock)' in warning for warning in finished['warnings'])
        assert read_record(state_dir)['status'] == 'rolled_back'
    finally:
        release.write_text('go')
        out, dummy = holder.communicate(timeout=120)
    # the interrupted rollout cannot promote over the rollback
    results = json.loads(out)['plays'][0]['tasks'][-1]['hosts']['localhost']
    assert holder.returncode != 0 and results['failed']
    assert results['msg'].startswith('the rollout of web 1.4.0 already finished as rolled_back on ')
    assert read_record(state_dir)['status'] == 'rolled_back'
