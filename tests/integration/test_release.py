"""Whole canary releases with playbooks/canary_release.yml: real nginx, real Prometheus, real sample app instances.

One local stack (examples/local/stack.py) for the module: 1 stable, 1 baseline and 1 canary sample app instance on
127.0.0.1 behind a real nginx, scraped every second by a real Prometheus, under bounded background load. Every
run is a real ``ansible-playbook`` process (stdin closed, as in CI) with the json callback; the tests read the
rollout record the run left on disk, the nginx upstream it edited and the versions the instances run.

The tests run in file order and share the stack: check mode first (nothing may change), then a bad version rolled
back, a good version killed with SIGKILL in the middle of a step and resumed to promotion, and a run that loses
Prometheus during its analysis (held as inconclusive) while a second run of the same service is refused.
Versions and error rates: the stable fleet starts at version 1 with 4 % errors; version 3 has 20 % (5x).
"""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from examples.local.processes import child_pids, is_alive, wait_until
from ansible_collections.canary.release.plugins.module_utils._rollout import state as rollout_state
from examples.local.stack import REPO_ROOT, LocalStack, find_nginx, find_prometheus
from tests.support.paths import BIN_DIR
from tests.support.playbook import PlaybookRun, task_results, playbook_env
from tests.support.recording_server import RecordingServer, signature_problem

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(find_nginx() is None or find_prometheus() is None,
                                 reason='nginx and prometheus are needed')]

SERVICE = 'sample'
PLAYBOOK = os.path.join(REPO_ROOT, 'playbooks', 'canary_release.yml')
DEPLOY_TASKS = os.path.join(REPO_ROOT, 'examples', 'local', 'deploy_tasks.yml')
BASE_ERRORS = 0.04
VERSIONS = {'2': {'error_rate': BASE_ERRORS}, '3': {'error_rate': 5 * BASE_ERRORS},
            '4': {'error_rate': BASE_ERRORS}, '5': {'error_rate': BASE_ERRORS}}
RUN_TIMEOUT = 150
HOOK_SECRET = 'webhook-signing-secret-3c9a71'  # noqa: S105 - a test value


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    with LocalStack(str(tmp_path_factory.mktemp('stack')), stable=1, canary=1, baseline=1, stable_version='1',
                    error_rate=BASE_ERRORS) as local:
        # bounded: at most ~180,000 requests; the file takes 5-6 minutes on a quiet machine and up to 10 under load
        load = local.load(rate=200, duration=900)
        try:
            yield local
        finally:
            load.stop()


def release_vars(stack, state_dir, version, **overrides):
    variables = stack.ansible_vars()
    variables.update({
        'rollout_service': SERVICE, 'rollout_version': version, 'rollout_state_dir': state_dir,
        'rollout_steps': [{'weight': 10, 'pause': 4}, {'weight': 50, 'pause': 4}, {'weight': 100, 'pause': 1}],
        'rollout_report': False, 'rollout_preflight': False,  # both cost seconds: each is tested once
        # a good version (4 % errors) is promoted on the judge's pass (the default); a 10 % floor lets the rate route
        # rule out a worse canary in about half the time the ratio test needs (the suite's time: ~30 s per release)
        'analysis_window': 2, 'analysis_interval': 1, 'analysis_max_duration': 120, 'analysis_rate_floor': 0.1,
        'deploy_tasks_file': DEPLOY_TASKS, 'deploy_health_delay': 1, 'local_stack_versions': VERSIONS,
    })
    variables.update(overrides)
    return variables


class Release:
    """One ansible-playbook run of canary_release.yml in its own process group, stdin closed."""

    def __init__(self, stack, tmp_path, name, variables, check=False, extra_args=()):
        vars_file = tmp_path / ('%s.json' % name)
        vars_file.write_text(json.dumps(variables))
        command = [os.path.join(BIN_DIR, 'ansible-playbook'), '-i', stack.inventory_path, PLAYBOOK,
                   '-e', '@%s' % vars_file] + (['--check'] if check else []) + list(extra_args)
        env = playbook_env({'ANSIBLE_SHOW_CUSTOM_STATS': 'True', 'ANSIBLE_PIPELINING': 'True'})
        self.process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        start_new_session=True)

    def wait(self, timeout=RUN_TIMEOUT):
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, err = self.process.communicate(timeout=30)
            raise AssertionError('ansible-playbook ran longer than %s s:\n%s\n%s' % (timeout, out[-3000:], err[-3000:]))
        # ansible.builtin.pause writes "Pausing for N seconds" to stdout before the json callback's document, and
        # -v and more the version, the configuration and the connection's commands
        start = out.rfind('\n{\n    "custom_stats"')
        document = out[start + 1:] if start >= 0 else (
            out[out.find('\n{') + 1:] if not out.startswith('{') and '\n{' in out else out)
        run = PlaybookRun(self.process.returncode, out, err, task_results(document))
        try:
            run.stats = json.loads(document).get('global_custom_stats', {})
        except ValueError:
            run.stats = {}
        return run

    def kill(self):
        """SIGKILL the controller's process group and every process below it, by PID.

        ansible-core's forked workers call setsid(): they live in sessions of their own, which the group signal
        misses, and an orphaned worker waits on its dead controller forever. So the group is stopped first (no new
        forks), its descendants are listed, then everything is killed.
        """
        try:
            os.killpg(self.process.pid, signal.SIGSTOP)
        except ProcessLookupError:
            return
        doomed, parents = [], [self.process.pid]
        while parents:
            children = sorted(child_pids(parents.pop()))
            doomed.extend(children)
            parents.extend(children)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def release(stack, tmp_path, name, variables, **kwargs):
    return Release(stack, tmp_path, name, variables, **kwargs).wait()


def ok(run):
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
    return run


def not_promoted(run, summary):
    """A release that ended rolled back or held: exit status 2, the last task fails with the summary line."""
    assert run.returncode == 2, run.stdout[-4000:] + run.stderr[-3000:]
    failed = [task for task in run.tasks if task['result'].get('failed')]
    assert [task['name'].split(' : ')[-1] for task in failed] == ['Stop, the release was not promoted'], failed
    assert failed[0]['result']['msg'].startswith(summary), failed[0]['result']['msg']
    return run


def refused(run, message):
    """A release refused before anything changed: exit status 2, the first failed task says why."""
    assert run.returncode == 2, run.stdout[-4000:] + run.stderr[-3000:]
    failed = [task['result'] for task in run.tasks if task['result'].get('failed')]
    assert message in failed[0]['msg'], failed[0]['msg']
    return run


def messages(run, suffix):
    """The ``msg`` of every task whose name ends with ``suffix``, in order; a list ``msg`` (the analysis role's
    "Report the poll" prints the lines of every poll of a task) gives one entry per line."""
    found = []
    for task in run.tasks:
        if task['name'].endswith(suffix) and 'msg' in task['result'] and not task['result'].get('skipped'):
            message = task['result']['msg']
            found.extend(message if isinstance(message, list) else [message])
    return found


def state_file(state_dir, suffix):
    """The service's record (``.json``) or lock (``.lock``) in ``state_dir``; None when there is none."""
    path = os.path.join(state_dir, SERVICE + suffix)
    if not os.path.exists(path):
        return None
    with open(path, encoding='utf-8') as handle:
        return json.load(handle)


def record(state_dir):
    return state_file(state_dir, '.json')


def lock(state_dir):
    return state_file(state_dir, '.lock')


def is_run_of(pid, vars_file):
    """Whether process ``pid`` is an ansible-playbook process (controller or worker) of the run with that vars file."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            argv = handle.read().decode('utf-8', 'replace').split('\0')
        with open('/proc/%d/stat' % pid, 'rb') as handle:
            state = handle.read().rsplit(b')', 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b'Z', b'X') and '@' + vars_file in argv


def canary_line(stack):
    address = stack.canary_servers[0]
    return [line.strip() for line in stack.upstream_text().splitlines() if address in line][0]


def versions(stack):
    return dict((name, instance.version) for name, instance in stack.instances.items())


def test_check_mode_lists_every_weight_change_and_changes_nothing(stack, tmp_path):
    state_dir = str(tmp_path / 'state')
    upstream, before = stack.upstream_text(), versions(stack)
    run = ok(release(stack, tmp_path, 'check', release_vars(stack, state_dir, '2', rollout_preflight=True), check=True))
    shares = messages(run, 'Report the traffic split')
    # every step's share, then the promotion's return to 0 % (which is what nginx has now: unchanged)
    assert shares == ['sample: canary at %s %% (requested %s %%) via nginx (check mode)' % (weight, weight)
                      for weight in ('10.0', '50.0', '100.0')] + [
        'sample: canary at 0.0 % (requested 0.0 %) via nginx (check mode), unchanged'], shares
    polls = messages(run, 'Report the poll')
    # the preflight, then one poll per judged step, none of them waiting
    assert len(polls) == 3 and polls[0].startswith('sample 2: preflight: poll 1 at '), polls
    assert all('check mode (one poll, no waiting)' in line for line in polls[1:]), polls
    assert stack.upstream_text() == upstream and versions(stack) == before
    assert not os.path.exists(state_dir)  # not even the record
    # a check run exports what it would have done under its own key, never as canary_release (docs/awx.md)
    assert run.stats['canary_release_check']['check_mode'] is True and 'canary_release' not in run.stats


def test_a_preset_gives_the_steps_when_rollout_steps_is_empty(stack, tmp_path):
    """rollout_preset in CodeDeploy's spelling: 10 % judged for 5 minutes, then 100 % (check mode: no pause)."""
    state_dir = str(tmp_path / 'state')
    run = ok(release(stack, tmp_path, 'preset', release_vars(stack, state_dir, '2', rollout_steps=[],
                                                             rollout_preset='Canary10Percent5Minutes'), check=True))
    assert messages(run, 'Report the traffic split') == [
        'sample: canary at %s %% (requested %s %%) via nginx (check mode)' % (weight, weight)
        for weight in ('10.0', '100.0')] + [
        'sample: canary at 0.0 % (requested 0.0 %) via nginx (check mode), unchanged']
    assert len(messages(run, 'Report the poll')) == 1  # the 100 % step is not judged
    assert not os.path.exists(state_dir)


def test_bad_version_is_rolled_back_automatically(stack, tmp_path):
    state_dir = str(tmp_path / 'state')
    started = time.monotonic()
    with RecordingServer(200) as webhook:
        hook_url = webhook.url + '/services/T000/B000/SECRETTOKEN'
        # a long first step: a fail ends it at once, a pass would go on after 30 s
        run = not_promoted(release(stack, tmp_path, 'bad', release_vars(
            stack, state_dir, '3', rollout_previous_version='1', rollout_webhook_url=hook_url,
            rollout_webhook_secret=HOOK_SECRET,
            rollout_steps=[{'weight': 10, 'pause': 30}, {'weight': 50, 'pause': 4}, {'weight': 100, 'pause': 1}],
            # synthetic load on both arms while the step is judged (it adds to the stack's organic load here)
            analysis_load_canary_urls=[stack.instances['canary-1'].url + '/'],
            analysis_load_baseline_urls=[stack.instances['baseline-1'].url + '/'], analysis_load_rate=20,
            analysis_load_headers={'X-Load-Token': 'load-header-secret-9f2'})),
            'sample 3: release rolled back - step 0 at 10 %, verdict fail: errors: canary ')
        posts, headers = list(webhook.requests), list(webhook.headers)
    seconds = time.monotonic() - started
    final = record(state_dir)
    assert final['status'] == 'rolled_back' and final['version'] == '3' and final['previous_version'] == '1'
    assert [(step['index'], step['weight'], step['verdict']) for step in final['steps']] == [(0, 10.0, 'fail')], \
        messages(run, 'Report the poll')
    assert final['reason'].startswith('step 0 at 10 %, verdict fail: errors: canary ')
    decided = rollout_state.parse_time(final['steps'][0]['at']) - rollout_state.parse_time(final['steps'][0]['started_at'])
    assert decided < 30, messages(run, 'Report the poll')  # decided before the step's time was over
    assert lock(state_dir) is None
    assert canary_line(stack).endswith('down;  # canary-1')  # 100 % stable
    assert stack.instances['stable-1'].version == '1'  # never promoted
    polls = messages(run, 'Report the poll')
    assert polls[-1].startswith('sample 3: step 0 at 10 %: poll ') and ': fail - errors fail canary ' in polls[-1], polls
    assert all(': continue' in line for line in polls[:-1]), polls  # one line per poll until the decision
    assert run.stats['canary_release']['outcome'] == 'rolled_back'
    assert seconds < 90, seconds
    # the synthetic load ran while the step was judged and stopped with the analysis, before the rollback
    load_lines = messages(run, 'Report the synthetic load')
    assert len(load_lines) == 1 and load_lines[0].startswith('sample 3: step 0 at 10 %: load sample: stopped, '
                                                             'requests sent: baseline '), load_lines
    assert load_lines[0].endswith('(ended: stopped)')
    sent = dict((arm, int(count)) for arm, count in re.findall(r'(baseline|canary) (\d+)', load_lines[0]))
    assert sent['canary'] > 20 and sent['baseline'] > 20 and abs(sent['canary'] - sent['baseline']) <= 25, sent
    names = [task['name'] for task in run.tasks]
    load_at = [index for index, name in enumerate(names) if name.endswith('Report the synthetic load')]
    traffic_at = [index for index, name in enumerate(names) if name.endswith('Report the traffic split')]
    assert load_at[0] < traffic_at[-1]  # the rollback's traffic change came after the load stopped
    # the rollback drained the canary without checking the traffic settings again (checked before the release began)
    judged_at = [index for index, name in enumerate(names) if name.endswith('Judge the canary against the baseline')]
    assert judged_at and judged_at[-1] < traffic_at[-1]
    assert [name for name in names[judged_at[-1]:] if name.endswith((' : Check the NGINX settings',
                                                                     ' : Check the canary percent'))] == []
    with open(os.path.expanduser('~/.cache/canary-release/loadtest/sample.pid.json'), encoding='utf-8') as handle:
        load_pid = json.load(handle)['pid']
    assert not is_alive(load_pid)
    assert 'load-header-secret-9f2' not in run.stdout + run.stderr
    # every transition went to the webhook as Slack-compatible JSON, one line each; the URL was never shown
    texts = [json.loads(body)['text'] for method, path, body in posts]
    assert all(method == 'POST' and path == '/services/T000/B000/SECRETTOKEN' for method, path, body in posts)
    assert texts[0].startswith('canary.release: sample 3: rollout started (previous version 1) by run ')
    assert texts[1] == 'canary.release: sample 3: step 0 at 10 %'
    assert texts[2].startswith('canary.release: sample 3: step 0 at 10 %, verdict fail: errors: canary ')
    assert texts[-1].startswith('canary.release: sample 3: rolled back to 1, canary at 0.0 % via nginx: step 0 at 10 %, '
                                'verdict fail: errors: canary ')
    assert all('\n' not in text for text in texts) and 'SECRETTOKEN' not in run.stdout + run.stderr
    # every event signed, the rollout's own and the rollback role's, each within the tolerance of its arrival
    assert [signature_problem(HOOK_SECRET, header, body) for header, (method, path, body) in zip(headers, posts)] \
        == [None] * len(posts)
    assert HOOK_SECRET not in run.stdout + run.stderr + json.dumps(final)


def test_good_version_killed_mid_step_resumes_waits_for_approval_and_is_promoted(stack, tmp_path):
    state_dir = str(tmp_path / 'state')
    variables = release_vars(stack, state_dir, '2', rollout_previous_version='1', rollout_report=True,
                             rollout_report_dir=str(tmp_path / 'reports'),
                             rollout_steps=[{'weight': 10, 'pause': 4}, {'weight': 50, 'pause': 10, 'approval': True},
                                            {'weight': 100, 'pause': 1}],
                             awx_job_id=42)  # as in AWX: a hold ends the job with the rollout paused
    first = Release(stack, tmp_path, 'good', variables)
    try:
        wait_until(lambda: (record(state_dir) or {}).get('step') == 1, timeout=90, interval=0.2,
                   message='the rollout to begin step 1 (50 %)')
        time.sleep(2)  # in the middle of step 1's analysis
        killed_at = record(state_dir)
        first.kill()
    finally:
        first.kill()
        first.process.communicate(timeout=30)
    vars_file = str(tmp_path / 'good.json')  # no process of the killed run is left, workers included
    # (SIGKILLed processes take a moment to leave /proc: a worker inside a long module call is killed, not reaped yet)
    wait_until(lambda: not [pid for pid in map(int, filter(str.isdigit, os.listdir('/proc'))) if is_run_of(pid, vars_file)],
               timeout=10, interval=0.2, message='every process of the killed run to be gone')
    # promotion on evidence (the default): step 1 begins only after the judge passed step 0
    assert killed_at['status'] == 'running' and killed_at['steps'][0]['verdict'] == 'pass'
    assert killed_at['steps'][1]['verdict'] is None
    stale = lock(state_dir)
    assert stale['pid'] == first.process.pid
    # the controller is gone; the weights it set stay: 50 % to the canary
    line = canary_line(stack)
    assert 'down' not in line, line
    counts = stack.count_instances(60)
    assert 18 <= counts.get('canary-1', 0) <= 42, counts

    # the resumed run watches step 1 to its end, then its approval gate ends the job (AWX) with the rollout paused
    gate = ok(release(stack, tmp_path, 'resumed', variables))
    paused = record(state_dir)
    assert paused['status'] == 'paused' and lock(state_dir) is None
    assert paused['steps'][1]['verdict'] == 'awaiting_approval'
    assert paused['steps'][1]['started_at'] == killed_at['steps'][1]['started_at']  # resumed, not restarted
    # step 1 is judged with a restart at its start: fail on everything since step 0, pass on step 1's own data
    judged = [task['result'] for task in gate.tasks if task['name'].endswith('Judge the canary against the baseline')]
    assert judged[-1]['restarts_rfc3339'] == [killed_at['steps'][1]['started_at']], judged[-1]
    tests = [metric for metric in judged[-1]['metrics'] if metric['kind'] != 'threshold']
    assert tests and all(metric['evidence']['restarts'] == 1 for metric in tests), tests
    resumed = [event['message'] for event in paused['events'] if ': resumed at step 1 (50 %) by run ' in event['message']]
    assert len(resumed) == 1, paused['events']
    assert any('took over the stale lock of sample: pid %d' % first.process.pid in warning
               for task in gate.tasks for warning in task['result'].get('warnings', []))
    # the canary had version 2 already: the resumed run did not deploy it again
    assert not messages(gate, 'Wait until the health check answers at %s/health' % stack.instances['canary-1'].url)
    held = gate.stats['canary_release']
    assert held['outcome'] == 'held' and held['status'] == 'paused' and held['step'] == 1
    assert 'rollout_approval=approve' in held['message']
    assert 'down' not in canary_line(stack)  # still 50 % while the humans decide

    # the workflow's approval node said yes: the next job resumes with the approval and promotes
    variables['rollout_approval'] = 'approve'
    run = ok(release(stack, tmp_path, 'approved', variables))
    final = record(state_dir)
    assert final['status'] == 'promoted', final['events'][-5:]
    assert [(step['index'], step['weight'], step['verdict']) for step in final['steps']][1:] == [
        (1, 50.0, 'approved'), (2, 100.0, final['steps'][2]['verdict'])]
    assert final['steps'][0]['verdict'] == 'pass' and final['steps'][2]['verdict'] == 'watched'  # 100 %: a soak
    assert final['steps'][1]['reason'] == 'approved (rollout_approval=approve)'
    assert versions(stack) == {'stable-1': '2', 'baseline-1': '1', 'canary-1': '2'}
    assert canary_line(stack).endswith('down;  # canary-1') and lock(state_dir) is None
    assert run.stats['canary_release']['outcome'] == 'promoted'
    summary = messages(run, 'Report the event')[-1]
    assert summary.startswith('sample 2: release promoted') and '; report ' in summary, summary
    report = summary.split('; report ')[1]
    assert report.startswith(str(tmp_path / 'reports')) and os.path.exists(report)


def test_prometheus_down_holds_as_inconclusive_and_a_second_rollout_is_refused(stack, tmp_path):
    state_dir = str(tmp_path / 'state')
    before = versions(stack)
    # a 20 s deadline: on a loaded machine the first poll can come 10 s after the step's start, and the test needs
    # polls that wait for data before the deadline makes the step inconclusive
    variables = release_vars(stack, state_dir, '4', analysis_max_duration=20,
                             rollout_steps=[{'weight': 10, 'pause': 4}, {'weight': 100, 'pause': 1}])
    held = Release(stack, tmp_path, 'held', variables)
    try:
        wait_until(lambda: (record(state_dir) or {}).get('step') == 0, timeout=90, interval=0.2,
                   message='the rollout to begin step 0')
        stack.stop_prometheus()
        holder = lock(state_dir)
        refused = release(stack, tmp_path, 'second', release_vars(stack, state_dir, '5'))
        run = held.wait()
    finally:
        held.kill()
        stack.start_prometheus()
    assert refused.returncode != 0
    failed = [task['result'] for task in refused.tasks if task['result'].get('failed')]
    assert failed[-1]['msg'].startswith('rollout of sample already running since %s, pid %d on host '
                                        % (holder['started_at'], held.process.pid)), failed[-1]['msg']

    # outside AWX a held release exits non-zero, so that a CI pipeline cannot take it for a promotion
    not_promoted(run, 'sample 4: release held at step 0 (10 %), waiting for rollout_approval=approve or reject')
    final = record(state_dir)
    assert final['status'] == 'paused' and final['version'] == '4' and lock(state_dir) is None
    assert [(step['index'], step['verdict']) for step in final['steps']] == [(0, 'inconclusive')]
    assert 'no data' in final['steps'][0]['reason'], final['steps'][0]
    polls = messages(run, 'Report the poll')
    assert any('waiting for data' in line for line in polls), polls
    assert polls[-1].startswith('sample 4: step 0 at 10 %: poll ') and ': inconclusive - ' in polls[-1]
    assert run.stats['canary_release']['outcome'] == 'held'
    assert versions(stack)['stable-1'] == before['stable-1']  # no promotion
    assert 'down' not in canary_line(stack)  # held at 10 %, not rolled back

    # the human rejects it on the re-run
    variables['rollout_approval'] = 'reject'
    rejected = not_promoted(release(stack, tmp_path, 'rejected', variables), 'sample 4: release rolled back - ')
    final = record(state_dir)
    assert final['status'] == 'rolled_back' and final['steps'][0]['verdict'] == 'rejected'
    assert canary_line(stack).endswith('down;  # canary-1')
    assert rejected.stats['canary_release']['outcome'] == 'rolled_back'


def test_a_run_that_died_after_a_failed_step_rolls_back_without_moving_traffic(stack, tmp_path):
    """The controller died between recording a failed step and the rollback: the next run rolls back at once."""
    state_dir = str(tmp_path / 'state')
    gone = subprocess.Popen(['true'])
    gone.wait()
    owner = dict(rollout_state.local_identity(), pid=gone.pid, pid_start='1')
    begun = rollout_state.begin(state_dir, SERVICE, '3', previous_version='2', owner=owner)
    rollout_state.record_step(state_dir, SERVICE, 0, weight=10, verdict='fail', reason='errors: canary 20% vs 4%',
                              run_id=begun['run_id'])
    before = versions(stack)
    run = not_promoted(release(stack, tmp_path, 'died', release_vars(stack, state_dir, '3')),
                       'sample 3: release rolled back - resumed after step 0 at 10 % had ended with verdict fail: ')
    assert versions(stack) == before  # nothing deployed
    final = record(state_dir)
    assert final['status'] == 'rolled_back'
    assert final['reason'] == 'resumed after step 0 at 10 % had ended with verdict fail: errors: canary 20% vs 4%'
    # the only traffic change is the rollback's: the failed canary got no traffic again, and was not deployed again
    assert messages(run, 'Report the traffic split') == ['sample: canary at 0.0 % (requested 0.0 %) via nginx, unchanged']
    assert not messages(run, 'Report the poll')  # no judging
    assert canary_line(stack).endswith('down;  # canary-1') and lock(state_dir) is None


@pytest.mark.parametrize('overrides, message', [
    ({'traffic_backend': 'envoy'}, 'traffic_backend'),
    ({'rollout_steps': [{'weight': 50}, {'weight': 10}, {'weight': 100}]},
     'rollout_steps[1]: weight 10 is not above the weight of the step before (50)'),
    ({'analysis_metrics': [{'name': 'errors', 'kind': 'errors'}]}, 'errors'),
    ({'rollout_analysis': False}, 'rollout_steps: no step is judged and none has an approval gate'),
    ({'rollout_steps': [], 'rollout_preset': 'all_at_once'}, 'rollout_steps: no step is judged and none has'),
    ({'rollout_preset': 'canary_10'}, "rollout_preset: 'canary_10' is not a preset"),
], ids=['unknown backend', 'steps going down', 'metric without queries', 'promotion by timer alone',
        'all at once needs the timer opt-out', 'unknown preset beside steps'])
def test_a_release_that_would_fail_later_is_refused_before_anything_changes(stack, tmp_path, overrides, message):
    """Play 0 and 1 check everything a release will use: nothing is recorded, locked, deployed or shifted."""
    state_dir = str(tmp_path / 'state')
    upstream, before = stack.upstream_text(), versions(stack)
    refused(release(stack, tmp_path, 'refused', release_vars(stack, state_dir, '5', **overrides)), message)
    assert not os.path.exists(state_dir)  # no record, no lock
    assert stack.upstream_text() == upstream and versions(stack) == before


def typo_metrics(stack):
    """The stack's metrics with a PromQL syntax error in the errors query (no closing brace)."""
    metrics = [dict(metric) for metric in stack.ansible_vars()['analysis_metrics']]
    metrics[0]['errors'] = metrics[0]['errors'].rstrip('}')
    return metrics


def test_a_query_refused_at_the_preflight_refuses_the_release_before_anything_changes(stack, tmp_path):
    state_dir = str(tmp_path / 'state')
    upstream, before = stack.upstream_text(), versions(stack)
    run = refused(release(stack, tmp_path, 'preflight', release_vars(stack, state_dir, '5', rollout_preflight=True,
                                                                     analysis_metrics=typo_metrics(stack))),
                  "sample 5: preflight: 2 queries were refused as invalid - a permanent error, not missing data")
    failed = [task for task in run.tasks if task['result'].get('failed')]
    assert "metric 'errors' (canary errors query): Prometheus at " in failed[0]['result']['msg']
    assert 'bad_data (HTTP 400)' in failed[0]['result']['msg'] and 'parse error' in failed[0]['result']['msg']
    assert not os.path.exists(state_dir)  # no record, no lock
    assert stack.upstream_text() == upstream and versions(stack) == before


def test_a_query_refused_mid_release_stops_at_once_without_moving_traffic_up_and_a_rerun_resumes(stack, tmp_path):
    """Without the preflight, the first poll of step 0 meets the typo: the run stops at once (no half hour of
    `continue`), the canary keeps step 0's weight, the record stays running; fixed, the same command resumes."""
    state_dir = str(tmp_path / 'state')
    variables = release_vars(stack, state_dir, '5', rollout_previous_version='1',
                             rollout_steps=[{'weight': 10, 'pause': 30}, {'weight': 100, 'pause': 1}])
    started = time.monotonic()
    run = release(stack, tmp_path, 'typo', dict(variables, analysis_metrics=typo_metrics(stack)))
    seconds = time.monotonic() - started
    assert run.returncode == 2, run.stdout[-3000:]
    failed = [task for task in run.tasks if task['result'].get('failed')]
    assert [task['name'].split(' : ')[-1] for task in failed] == ['Judge the canary against the baseline',
                                                                  'Stop, the analysis failed'], failed
    message = failed[-1]['result']['msg']
    assert message.startswith('sample 5: step 0 at 10 %: release stopped, the analysis failed - no traffic moved up: '
                              'the canary keeps its weight and the rollout stays running at step 0. Fix the cause and '
                              'run the same command again to resume the step, or roll back with '
                              'playbooks/rollback.yml. The analysis said: 2 queries were refused as invalid'), message
    assert "metric 'errors' (canary errors query): Prometheus at " in message and 'parse error' in message
    assert not messages(run, 'Report the poll')  # the first poll failed
    stopped = record(state_dir)
    assert stopped['status'] == 'running' and stopped['step'] == 0 and stopped['weight'] == 10.0
    assert stopped['steps'][0]['verdict'] is None
    assert 'down' not in canary_line(stack)  # still 10 %, never 100 %
    assert seconds < 60, seconds  # not the step's 30 s, nor max_duration

    # fixed: the same command resumes step 0 (not restarted) and promotes
    run = ok(release(stack, tmp_path, 'fixed', dict(variables, rollout_steps=[{'weight': 10, 'pause': 4},
                                                                              {'weight': 100, 'pause': 1}])))
    final = record(state_dir)
    assert final['status'] == 'promoted', final['events'][-5:]
    assert final['steps'][0]['started_at'] == stopped['steps'][0]['started_at']
    assert canary_line(stack).endswith('down;  # canary-1') and lock(state_dir) is None


def test_no_secret_appears_in_the_output_the_record_the_events_or_the_report(stack, tmp_path):
    """A whole release, promoted, with every secret option set, at -vvv: no secret anywhere it leaves a trace.

    The local Prometheus has no authentication: the bearer token is sent and ignored (test_prometheus_query.py
    checks basic auth and TLS against an authenticating one); the AWS keys are given to the analysis role although
    the metrics come from Prometheus, as an AWX credential would inject them. The AWS access key ID is an
    identifier, not a secret (amazon.aws does not mask it either), so it is not searched for.
    """
    state_dir, report_dir = tmp_path / 'state', tmp_path / 'reports'
    secrets = {'webhook token': 'T0KEN-in-the-webhook-path-81d2', 'signing secret': 'signing-secret-0b6e4f',
               'bearer token': 'prometheus-bearer-9a7c33', 'aws secret key': 'aws-secret-key-4e21d8',
               'aws session token': 'aws-session-token-77f0ab'}
    with RecordingServer(200) as webhook:
        run = ok(release(stack, tmp_path, 'secrets', release_vars(
            stack, str(state_dir), '5', rollout_previous_version='2',
            rollout_steps=[{'weight': 50, 'pause': 2}, {'weight': 100, 'pause': 1}],
            rollout_report=True, rollout_report_dir=str(report_dir), rollout_preflight=True,
            rollout_webhook_url=webhook.url + '/services/T000/B000/' + secrets['webhook token'],
            rollout_webhook_secret=secrets['signing secret'],
            analysis_prometheus_bearer_token=secrets['bearer token'],
            analysis_aws_access_key='AKIAEXAMPLEACCESSKEY', analysis_aws_secret_key=secrets['aws secret key'],
            analysis_aws_session_token=secrets['aws session token'], analysis_aws_region='eu-west-1'),
            extra_args=['-vvv']))
        posts, headers = list(webhook.requests), list(webhook.headers)
    assert record(str(state_dir))['status'] == 'promoted' and run.stats['canary_release']['outcome'] == 'promoted'
    assert '"invocation"' in run.stdout  # -vvv took effect: every module's arguments are in the output
    # every event arrived, signed: the rollout's, the promotion's (through playbooks/vars/release.yml)
    texts = [json.loads(body)['text'] for method, path, body in posts]
    assert any(': promoted' in text for text in texts) and len(texts) >= 5, texts
    assert [signature_problem(secrets['signing secret'], header, body) for header, (m, p, body) in zip(headers, posts)] \
        == [None] * len(posts)
    traces = {'stdout': run.stdout.encode(), 'stderr': run.stderr.encode(), 'stats': json.dumps(run.stats).encode(),
              'events': b'\n'.join(body for method, path, body in posts) + repr(
                  [sorted(header.items()) for header in headers]).encode()}
    files = [os.path.join(top, name) for root in (state_dir, report_dir) for top, dirs, names in os.walk(root)
             for name in names]
    assert any(path.endswith('.json') and 'state' in path for path in files)
    assert any(path.endswith('report.html') for path in files), files
    for path in files:
        with open(path, 'rb') as handle:
            traces[path] = handle.read()
    leaks = sorted((what, where) for what, secret in secrets.items() for where, text in traces.items()
                   if secret.encode() in text)
    assert not leaks, leaks
    # and the files' modes: the state directory and record private, the report readable (docs/security.md)
    assert oct(os.stat(state_dir).st_mode & 0o777) == '0o700'
    assert oct(os.stat(state_dir / (SERVICE + '.json')).st_mode & 0o777) == '0o600'
    assert set(oct(os.stat(path).st_mode & 0o777) for path in files if str(report_dir) in path) == {'0o644'}
