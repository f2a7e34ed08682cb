"""playbooks/promote.yml, rollback.yml and status.yml through real ansible-playbook runs against a local stack.

A :class:`examples.local.stack.LocalStack` runs sample app instances, NGINX and Prometheus on 127.0.0.1. Its stable
instances are inventory hosts (local connection, ``deploy_health_url`` per host) that the promote role deploys with
``examples/local/deploy_tasks.yml``; versions are read back from each instance's ``/health``. Each test first leaves
the rollout where a canary release leaves it before the promotion (record of version 2 at its last step, paused for
a human; the canary at 100 % of the NGINX upstream), written directly with the module_utils cores.
"""

import json
import os
import pwd
import urllib.request

import pytest
import yaml

from examples.local.stack import LocalStack, find_nginx, find_prometheus
from tests.support.held_release import before_promotion
from tests.support.paths import REPO_ROOT
from tests.support.playbook import run_playbook
from tests.support.recording_server import RecordingServer, unsigned

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_nginx() is None or find_prometheus() is None, reason='nginx or prometheus is not installed'),
]

SERVICE = 'sample'
PLAYBOOKS = os.path.join(REPO_ROOT, 'playbooks')


@pytest.fixture
def make_stack(tmp_path):
    """Start a stack of ``stable`` stable instances, one canary and no baseline; stopped at the end of the test."""
    started = []

    def make(stable):
        stack = LocalStack(str(tmp_path / 'stack'), stable=stable, canary=1, baseline=0)
        started.append(stack)
        return stack.start()

    yield make
    for stack in started:
        stack.stop()


def versions(stack, track='stable'):
    """{instance: version} from each instance's /health (``ok <version>``)."""
    found = {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for name, instance in stack.instances.items():
        if instance.track == track:
            with opener.open(instance.url + '/health', timeout=5) as response:
                found[name] = response.read().decode().split()[-1]
    return found


def play(stack, tmp_path, name, extra_vars, inventories=(), **kwargs):
    extra_args = ['-i', stack.inventory_path]
    for index, hosts in enumerate(inventories):
        path = tmp_path / ('inventory-%d.yml' % index)
        path.write_text(yaml.safe_dump(hosts))
        extra_args += ['-i', str(path)]
    variables = dict((key, value) for key, value in stack.ansible_vars().items() if key.startswith('traffic_'))
    variables.update(extra_vars)
    return run_playbook(playbook=os.path.join(PLAYBOOKS, name), extra_vars=variables, extra_args=extra_args,
                        extra_env={'ANSIBLE_SHOW_CUSTOM_STATS': 'True'}, timeout=150, **kwargs)


def controller_user():
    """The OS user running ansible-playbook, as the rollout roles find it: $USER, else $LOGNAME, else id -un."""
    return os.environ.get('USER') or os.environ.get('LOGNAME') or pwd.getpwuid(os.getuid()).pw_name


def read_record(state_dir):
    with open(os.path.join(state_dir, SERVICE + '.json'), encoding='utf-8') as handle:
        return json.load(handle)


def stats(run):
    return json.loads(run.stdout)['global_custom_stats']['canary_release']


def failure(run):
    failed = [task['result'] for task in run.tasks if task['result'].get('failed')]
    assert failed, run.stdout[-3000:] + run.stderr[-3000:]
    return failed[-1]['msg']


def shown(run, name):
    """The lines status.yml printed (one loop item per record host)."""
    return [line for item in run.result(name)['results'] for line in item['msg']]


def test_promote_moves_the_stable_hosts_in_batches_and_returns_the_traffic(make_stack, tmp_path):
    stack = make_stack(4)
    state_dir = str(tmp_path / 'state')
    before_promotion(stack, state_dir)
    marker = tmp_path / 'retired'
    retire = tmp_path / 'retire.yml'
    retire.write_text(yaml.safe_dump([{'name': 'retire marker', 'ansible.builtin.copy': {
        'dest': str(marker), 'content': '{{ promote_version }}', 'mode': '0600'}}]))
    common = {'rollout_service': SERVICE, 'rollout_state_dir': state_dir, 'promote_serial': 2,
              'deploy_tasks_file': os.path.join(REPO_ROOT, 'examples', 'local', 'deploy_tasks.yml'),
              'deploy_health_delay': 0, 'promote_retire_tasks_file': str(retire)}
    upstream, record = stack.upstream_text(), read_record(state_dir)

    checked = play(stack, tmp_path, 'promote.yml', dict(common, promote_serial=4), check=True)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    assert versions(stack) == dict.fromkeys(['stable-1', 'stable-2', 'stable-3', 'stable-4'], '1')
    assert stack.upstream_text() == upstream and read_record(state_dir) == record and not marker.exists()
    # a check run exports what it would have done under its own key, never as canary_release (docs/awx.md)
    would = json.loads(checked.stdout)['global_custom_stats']
    assert list(would) == ['canary_release_check'] and would['canary_release_check']['outcome'] == 'promoted'

    with RecordingServer(200) as webhook:
        run = play(stack, tmp_path, 'promote.yml', dict(common, promote_webhook_url=webhook.url + '/hook/SECRET'))
        posts, headers = list(webhook.requests), list(webhook.headers)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert versions(stack) == dict.fromkeys(['stable-1', 'stable-2', 'stable-3', 'stable-4'], '2')
    # all traffic on the stable pool, which runs version 2 now; the canary out of rotation
    assert '%s down;' % stack.canary_servers[0] in stack.upstream_text()
    assert set(stack.count_instances(40)) == {'stable-1', 'stable-2', 'stable-3', 'stable-4'}

    record = read_record(state_dir)
    message = 'sample 2: promoted (previous version 1), 4 stable hosts run 2, canary at 0.0 % via nginx, ' \
              'canary and baseline hosts retired'
    assert record['status'] == 'promoted' and not os.path.exists(os.path.join(state_dir, SERVICE + '.lock'))
    # the audit trail: a promotion by hand is the person's - outside AWX the controller user
    assert record['finished_by'] == {'kind': 'person', 'name': controller_user(), 'reason': 'controller user'}
    assert record['reason'] == '4 stable hosts run 2, canary at 0.0 % via nginx'
    events = [event['message'] for event in record['events']]
    # each batch is recorded before it starts (its hosts 'deploying') and after it, with every host's version
    assert events[-6:] == [
        'sample 2: promote batch 1: deploying stable-1, stable-2',
        'sample 2: promote batch 1: stable-1, stable-2 run it and passed the health check (2 of 4 stable hosts done)',
        'sample 2: promote batch 2: deploying stable-3, stable-4',
        'sample 2: promote batch 2: stable-3, stable-4 run it and passed the health check (4 of 4 stable hosts done)',
        'sample 2: promoted: 4 stable hosts run 2, canary at 0.0 % via nginx',
        message]
    result = stats(run)
    assert result['outcome'] == 'promoted' and result['message'] == message and result['retired'] == 'tasks'
    assert [(host['host'], host['batch'], host['state']) for host in result['hosts']] == [
        ('stable-1', 1, 'promoted'), ('stable-2', 1, 'promoted'), ('stable-3', 2, 'promoted'), ('stable-4', 2, 'promoted')]
    assert marker.read_text() == '2'
    assert [json.loads(body) for method, path, body in posts] == [{'text': 'canary.release: ' + message}]
    assert unsigned(headers[0]) and headers[0]['Content-Type'] == 'application/json'  # no secret: no signature
    assert 'SECRET' not in run.stdout

    status = play(stack, tmp_path, 'status.yml', {'rollout_service': SERVICE, 'rollout_state_dir': state_dir})
    assert status.returncode == 0, status.stdout[-3000:] + status.stderr[-3000:]
    lines = shown(status, 'Show the rollout')
    assert lines[0] == 'sample 2 on localhost: promoted at step 1 (100.0 %), previous version 1'
    assert 'lock: free' in lines and lines[-1].endswith(' ' + message)
    step = record['steps'][1]
    assert 'step 1 at 100.0 %: approved (since ' + step.get('started_at', step['at']) + ')' in lines


def test_a_failed_batch_stops_the_promotion_then_rollback_and_status(make_stack, tmp_path):
    stack = make_stack(3)
    state_dir = str(tmp_path / 'state')
    before_promotion(stack, state_dir)
    upstream = stack.upstream_text()
    broken = {'all': {'children': {'stable': {'hosts': {'stable-2': {'deploy_health_url': 'http://127.0.0.1:1/health'}}}}}}
    common = {'rollout_service': SERVICE, 'rollout_state_dir': state_dir}

    refused = play(stack, tmp_path, 'promote.yml', {'rollout_state_dir': state_dir})
    assert refused.returncode != 0 and failure(refused).startswith('promote.yml: set rollout_service (the service')
    assert read_record(state_dir)['status'] == 'paused'

    run = play(stack, tmp_path, 'promote.yml', dict(common, promote_serial=1, deploy_health_delay=0, deploy_health_retries=1,
                                                    deploy_tasks_file=os.path.join(REPO_ROOT, 'examples', 'local', 'deploy_tasks.yml')),
               inventories=[broken])
    assert run.returncode != 0
    message = failure(run)
    assert message.startswith('promotion of sample 2 stopped at batch 2: deploy: sample 2 on stable-2 failed its health '
                              'check http://127.0.0.1:1/health after 2 attempts (last answer: ')
    assert message.endswith('). Now stable-1 runs 2, stable-2 runs 2 but is unhealthy, stable-3 still runs 1, and the '
                            'traffic split is unchanged (the canary keeps its share); the rollout is paused - fix the '
                            'host and run the promotion again, or roll back')
    # nothing beyond batch 2 changed, and neither did the traffic
    assert versions(stack) == {'stable-1': '2', 'stable-2': '2', 'stable-3': '1'}
    assert stack.upstream_text() == upstream
    record = read_record(state_dir)
    assert record['status'] == 'paused' and record['events'][-1]['message'].endswith(message)
    assert not os.path.exists(os.path.join(state_dir, SERVICE + '.lock'))
    assert stats(run)['outcome'] == 'paused' and stats(run)['message'] == message

    status = play(stack, tmp_path, 'status.yml',
                  dict(common, rollout_state_hosts=['stable-3'], status_events=1, status_require='paused'))
    assert status.returncode == 0, status.stdout[-3000:] + status.stderr[-3000:]
    lines = shown(status, 'Show the rollout')
    assert lines[0] == 'sample 2 on stable-3: paused at step 1 (100.0 %), previous version 1'
    assert len(lines) == 7 and lines[-1].endswith(message)
    assert lines[-2] == 'stable hosts: stable-1 runs 2; stable-2 runs 2 but unhealthy; any other runs 1'
    assert {name: (entry['state'], entry['version'], entry['batch']) for name, entry in record['hosts'].items()} == {
        'stable-1': ('promoted', '2', 1), 'stable-2': ('unhealthy', '2', 2)}
    none = play(stack, tmp_path, 'status.yml', dict(common, rollout_service='other', status_require='paused'))
    assert none.returncode != 0
    assert failure(none) == 'status.yml: the rollout of other is not recorded on localhost, not paused'
    assert shown(none, 'Show the rollout') == ['other on localhost: no rollout recorded (%s/other.json)' % state_dir]

    rolled = play(stack, tmp_path, 'rollback.yml', dict(common, rollback_reason='stable-3 unhealthy', awx_user_name='alice'))
    assert rolled.returncode == 0, rolled.stdout[-3000:] + rolled.stderr[-3000:]
    assert '%s down;' % stack.canary_servers[0] in stack.upstream_text()
    assert 'canary-1' not in stack.count_instances(40)
    assert read_record(state_dir)['status'] == 'rolled_back'
    # the audit trail: a rollback by hand from AWX is the AWX user's
    assert read_record(state_dir)['finished_by'] == {'kind': 'person', 'name': 'alice', 'reason': 'AWX user'}
    assert stats(rolled)['message'] == 'sample 2: rolled back to 1, canary at 0.0 % via nginx: stable-3 unhealthy'
