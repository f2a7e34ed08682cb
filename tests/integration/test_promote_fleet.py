"""A promotion across 12 real SSH hosts (tests/support/ssh_fleet.py) with faults: playbooks/promote.yml run by
``ansible-playbook`` over SSH with pipelining and ControlPersist, batches of ``promote_serial: 4``.

Each stable host is a network namespace with its own sshd and the sample app behind NGINX; the deploy restarts the
app with the new version over SSH (tests/integration/files/local_fleet_deploy.yml). A root-namespace NGINX holds the
traffic split (the 12 hosts and a canary at 100 %), as a canary release leaves it before the promotion; the record is
written directly with the module_utils cores.

1. ``stable-6`` loses its sshd while batch 1 deploys (every sshd process of its namespace ends): batch 2 notes it
   unreachable before deploying (its app still answers the old version), promotes the rest of the batch, and stops
   the promotion (``promote_max_fail_percentage: 0``): paused, traffic unchanged, batch 3 untouched, every host's
   version recorded (``stable-6`` unreachable, unknown; stable-9..12 not in the map: still the previous version).
2. ``stable-6`` back, ``stable-10`` gone, ``promote_max_fail_percentage: 25``: the re-run skips the 7 hosts the record
   says run version 2 (they are not deployed again), promotes stable-6, tolerates stable-10 (1 of 4 of its batch) and
   finishes: traffic back to the stable pool, ``promoted`` with stable-10 named as left behind.
3. ``stable-10`` back: promote.yml again deploys exactly stable-10, records it, and leaves the traffic alone.

Bad settings (``promote_serial: 0``) are refused before the record, the lock or a host is touched.
"""

import json
import os
import sys
import threading
import time

import pytest
import yaml

from ansible_collections.canary.release.plugins.module_utils._nginx import nginx_traffic
from ansible_collections.canary.release.plugins.module_utils._rollout import state as rollout_state
from tests.support.nginx import NginxServer, find_nginx, upstream_weights
from tests.support.paths import REPO_ROOT
from tests.support.playbook import run_playbook
from tests.support.local_fleet import needs_netns
from tests.support.ssh_fleet import SshFleet

pytestmark = [pytest.mark.integration, needs_netns,
              pytest.mark.skipif(find_nginx() is None, reason='nginx is not installed')]

SERVICE = 'sample'
PROMOTE = os.path.join(REPO_ROOT, 'playbooks', 'promote.yml')
CANARY = '127.0.0.1:9'  # the canary's server in the upstream: never asked (down once promoted)
DEPLOY_TASK = 'canary.release.deploy : Restart the sample app with version 2'
RUN_TIMEOUT = 240


@pytest.fixture
def fleet_release(tmp_path):
    """12 stable hosts of version 1, the NGINX split (canary at 100 %), the record of version 2 paused after its last
    step; yields (fleet, nginx, play)."""
    with SshFleet(str(tmp_path / 'fleet'), 12, 'pf', second_octet=222, version='1') as fleet:
        with NginxServer([], workdir=str(tmp_path)) as nginx:
            servers = [fleet.address(name) + ':80' for name in fleet.names] + [CANARY]
            upstream = 'upstream app {\n%s}\n' % ''.join('    server %s;\n' % server for server in servers)
            nginx.start({'upstream.conf': upstream, 'site.conf': nginx.default_site('app')})
            nginx_traffic.set_upstream_weights(nginx.path('upstream.conf'), 'app', canary=[CANARY], canary_percent=100,
                                               validate_command=nginx.validate_command, reload_command=nginx.reload_command)
            state_dir = str(tmp_path / 'state')
            begun = rollout_state.begin(state_dir, SERVICE, '2', previous_version='1')
            rollout_state.record_step(state_dir, SERVICE, 0, weight=25, verdict='pass', run_id=begun['run_id'])
            rollout_state.record_step(state_dir, SERVICE, 1, weight=100, verdict='approved', run_id=begun['run_id'])
            rollout_state.finish(state_dir, SERVICE, 'paused', run_id=begun['run_id'])
            inventory = tmp_path / 'inventory.yml'
            inventory.write_text(yaml.safe_dump({'all': {'children': fleet.inventory('stable'), 'hosts': {'localhost': {
                'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}}}, sort_keys=False))
            common = {'rollout_service': SERVICE, 'rollout_state_dir': state_dir, 'promote_serial': 4,
                      'deploy_health_delay': 1, 'deploy_health_retries': 10,
                      'traffic_backend': 'nginx', 'traffic_nginx_host': 'localhost',
                      'traffic_nginx_path': nginx.path('upstream.conf'), 'traffic_nginx_upstream': 'app',
                      'traffic_nginx_canary': [CANARY], 'traffic_nginx_validate_command': nginx.validate_command,
                      'traffic_nginx_reload_command': nginx.reload_command}

            def play(returncode=0, **more):
                run = run_playbook(playbook=PROMOTE, extra_vars=dict(common, **more), extra_args=['-i', str(inventory)],
                                   extra_env={'ANSIBLE_SHOW_CUSTOM_STATS': 'True'}, timeout=RUN_TIMEOUT)
                assert run.returncode == returncode, run.stdout[-4000:] + run.stderr[-3000:]
                return run
            yield fleet, nginx, state_dir, play


def read_record(state_dir):
    with open(os.path.join(state_dir, SERVICE + '.json'), encoding='utf-8') as handle:
        return json.load(handle)


def host_map(state_dir):
    return {name: (entry['state'], entry['version']) for name, entry in (read_record(state_dir).get('hosts') or {}).items()}


def deployed(run):
    """The hosts on which the deploy task ran (not skipped), from the json callback's per-host results."""
    document = json.loads(run.stdout)
    return sorted(host for play in document['plays'] for task in play['tasks'] if task['task']['name'] == DEPLOY_TASK
                  for host, result in task['hosts'].items() if not result.get('skipped'))


def failure(run):
    failed = [task['result'] for task in run.tasks if task['result'].get('failed')]
    assert failed, run.stdout[-3000:] + run.stderr[-3000:]
    return failed[-1]['msg']


def when_recorded(state_dir, text, action, limit=RUN_TIMEOUT):
    """Run ``action`` once an event containing ``text`` is in the record (watched every 0.1 s, at most ``limit`` s)."""
    stop = threading.Event()

    def watch():
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and not stop.wait(0.1):
            try:
                events = [event['message'] for event in read_record(state_dir)['events']]
            except (OSError, ValueError):
                continue
            if any(text in message for message in events):
                action()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return stop, watcher


def test_an_unreachable_host_stops_the_promotion_and_a_re_run_continues_with_the_hosts_not_done(fleet_release):
    fleet, nginx, state_dir, play = fleet_release
    names = fleet.names
    split = upstream_weights(nginx.read('upstream.conf').decode())

    refused = play(returncode=2, promote_serial=0)
    assert failure(refused).startswith('promote: promote_serial must be a number of hosts (1 or more)')
    assert read_record(state_dir)['status'] == 'paused' and 'hosts' not in read_record(state_dir)
    assert not os.path.exists(os.path.join(state_dir, SERVICE + '.lock'))

    # 1. stable-6 (batch 2) loses its sshd while batch 1 deploys
    stop, watcher = when_recorded(state_dir, 'promote batch 1: deploying', lambda: fleet.make_unreachable('stable-6'))
    try:
        first = play(returncode=2)
    finally:
        stop.set()
        watcher.join(10)
    message = failure(first)
    assert message.startswith('promotion of sample 2 stopped at batch 2: unreachable: '), message
    assert ('Now stable-1, stable-2, stable-3, stable-4, stable-5, stable-7, stable-8 run 2, stable-6 is unreachable '
            '(version unknown), stable-9, stable-10, stable-11, stable-12 still run 1, and the traffic split is unchanged') in message
    assert fleet.versions() == dict((name, '2' if name in names[:8] and name != 'stable-6' else '1') for name in names)
    assert upstream_weights(nginx.read('upstream.conf').decode()) == split
    record = read_record(state_dir)
    assert record['status'] == 'paused' and not os.path.exists(os.path.join(state_dir, SERVICE + '.lock'))
    assert host_map(state_dir) == dict([(name, ('promoted', '2')) for name in names[:8] if name != 'stable-6']
                                       + [('stable-6', ('unreachable', None))])
    assert deployed(first) == sorted(name for name in names[:8] if name != 'stable-6')

    # 2. stable-6 back, stable-10 gone; a quarter of a batch may fail
    fleet.restore('stable-6')
    fleet.make_unreachable('stable-10')
    second = play(promote_max_fail_percentage=25)
    assert deployed(second) == sorted(['stable-6', 'stable-9', 'stable-11', 'stable-12'])
    record = read_record(state_dir)
    assert record['status'] == 'promoted'
    assert record['reason'] == ('11 stable hosts run 2, canary at 0.0 % via nginx; left behind: stable-10 is unreachable '
                                '(version unknown) - run the promotion again to finish it')
    assert fleet.versions() == dict((name, '1' if name == 'stable-10' else '2') for name in names)
    weights = upstream_weights(nginx.read('upstream.conf').decode())
    assert weights[CANARY] == 0 and all(weights[fleet.address(name) + ':80'] > 0 for name in names), weights
    events = [event['message'] for event in record['events']]
    assert 'sample 2: promote batch 2: deploying stable-6; stable-5, stable-7, stable-8 already run it' in events

    # 3. stable-10 back: only it is deployed, the traffic is left alone
    fleet.restore('stable-10')
    upstream = nginx.read('upstream.conf')
    third = play()
    assert deployed(third) == ['stable-10']
    assert fleet.versions() == dict.fromkeys(names, '2')
    assert nginx.read('upstream.conf') == upstream
    assert host_map(state_dir) == dict.fromkeys(names, ('promoted', '2'))
    assert read_record(state_dir)['status'] == 'promoted'
