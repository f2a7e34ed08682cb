"""A promotion with AWX job slicing, run the way AWX runs it, against real SSH hosts.

The stable fleet is six real SSH hosts (tests/support/ssh_fleet.py: network namespaces with sshd, the sample app
behind NGINX), reached with pipelining and ControlPersist; the traffic backend is a real NGINX on 127.0.0.1 (a
:class:`examples.local.stack.LocalStack` with the canary at 100 % after its last step, the rollout paused, as a
canary release leaves it before the promotion). Every job is a real ``ansible-playbook`` run through ansible-runner
in its own private data directory (tests/support/awx.py), with the example project's playbooks (examples/awx/project).

The sliced job template runs as AWX runs one with ``job_slice_count`` 3: three concurrent jobs, each with its share
of the inventory's seven hosts (sorted by name, every third one: the canary host lands in one slice), launched by a
workflow job bearing the template's name. The promotion: promote.yml ``promote_phase=begin`` (once) ->
promote_hosts.yml (sliced) -> promote.yml ``promote_phase=finish`` (once), the run id passed on as AWX passes
artifacts. NGINX's reload command counts its calls: a traffic change is one reload.
"""

import json
import os
import shlex
import time

import pytest

from ansible_collections.canary.release.plugins.module_utils._rollout import state as rollout_state
from examples.local.stack import REPO_ROOT, LocalStack, find_nginx, find_prometheus
from tests.support.awx import load_workflow_example, run_job, run_sliced_job, slice_inventory
from tests.support.held_release import before_promotion
from tests.support.local_fleet import needs_netns
from tests.support.ssh_fleet import SshFleet

pytestmark = [pytest.mark.integration, needs_netns,
              pytest.mark.skipif(find_nginx() is None or find_prometheus() is None,
                                 reason='nginx and prometheus are needed')]

SERVICE = 'sample'
PROJECT = os.path.join(REPO_ROOT, 'examples', 'awx', 'project')
SLICES = 3


def templates():
    return load_workflow_example(os.path.join(REPO_ROOT, 'examples', 'awx', 'workflow.yml'))['templates']


def ok(job):
    assert job.status == 'successful', (job.template, job.failed_messages(), job.stdout()[-3000:])
    return job


def refused(job):
    assert job.status == 'failed', (job.template, job.stdout()[-3000:])
    return ' '.join(str(message) for message in job.failed_messages())


def span(job):
    """When the job's playbook ran: the times of its first and last events."""
    stamps = [event['created'] for event in job.events if event.get('created')]
    return min(stamps), max(stamps)


def reloads(path):
    if not os.path.exists(path):
        return 0
    with open(path, encoding='utf-8') as handle:
        return len(handle.read().split())


@pytest.fixture
def world(tmp_path):
    with LocalStack(str(tmp_path / 'stack'), stable=1, canary=1, baseline=0, stable_version='1') as stack, \
            SshFleet(str(tmp_path / 'fleet'), 6, 'w', second_octet=223) as fleet:
        yield stack, fleet


def awx_inventory(stack, fleet, state_dir, counter):
    """The AWX inventory: the fleet as `stable`, the stack's canary host, the traffic and state settings; the NGINX
    reload command counts its calls in ``counter``."""
    traffic = dict((key, value) for key, value in stack.ansible_vars().items() if key.startswith('traffic_'))
    traffic['traffic_nginx_reload_command'] = 'sh -c %s' % shlex.quote(
        'echo reload >> %s && exec %s' % (shlex.quote(counter), stack.reload_command))
    canary = {'ansible_connection': 'local', 'deploy_health_url': stack.instances['canary-1'].url + '/health',
              'deploy_tasks_file': os.path.join(REPO_ROOT, 'examples', 'local', 'deploy_tasks.yml'),
              'local_stack_workdir': stack.workdir}
    return {'all': {'vars': dict(traffic, rollout_state_dir=state_dir, deploy_health_delay=0),
                    'children': dict(fleet.inventory(group='stable'), canary={'hosts': {'canary-1': canary}})}}


def test_a_sliced_promotion_takes_the_lock_once_changes_traffic_once_and_records_every_host(world, tmp_path):
    started = time.monotonic()
    stack, fleet = world
    state_dir, counter, workdir = str(tmp_path / 'state'), str(tmp_path / 'reloads'), str(tmp_path / 'awx')
    before_promotion(stack, state_dir, SERVICE)
    inventory = awx_inventory(stack, fleet, state_dir, counter)
    example = templates()
    promote, promote_hosts = example['canary promote'], example['canary promote hosts']
    assert promote_hosts['job_slice_count'] > 1 and promote.get('job_slice_count', 1) == 1
    upstream = stack.upstream_text()
    shares = [sorted(slice_inventory(inventory, number, SLICES)['all']['children']['stable']['hosts'])
              for number in range(1, SLICES + 1)]
    assert shares == [['stable-3', 'stable-6'], ['stable-1', 'stable-4'], ['stable-2', 'stable-5']]  # canary-1 in 1

    # the playbooks that must run once, sliced by mistake: every slice refuses, nothing changes
    held = rollout_state.read(state_dir, SERVICE)['record']
    for name, playbook, extra_vars in (
            ('canary promote', 'promote.yml', {}), ('canary rollback', 'rollback.yml', {}),
            ('canary release', 'the canary release (canary_release.yml)', {'rollout_version': '2'})):
        for job in run_sliced_job(workdir, PROJECT, inventory, example[name], dict(extra_vars, rollout_service=SERVICE),
                                  SLICES):
            assert ('%s must run once, but AWX runs this job as one slice of the sliced job template "%s"'
                    % (playbook, name)) in refused(job)
    assert rollout_state.read(state_dir, SERVICE)['lock'] is None
    assert rollout_state.read(state_dir, SERVICE)['record'] == held and reloads(counter) == 0

    begin = ok(run_job(workdir, PROJECT, inventory, promote, {'rollout_service': SERVICE, 'promote_phase': 'begin'}))
    exported = begin.artifacts['canary_release']
    assert exported['outcome'] == 'promoting' and exported['version'] == '2' and exported['run_id']
    lock = rollout_state.read(state_dir, SERVICE)['lock']
    assert lock['run_id'] == exported['run_id']
    assert fleet.versions() == dict.fromkeys(fleet.names, '1') and reloads(counter) == 0

    # a finish before the hosts are done is refused and names them
    early = refused(run_job(workdir, PROJECT, inventory, promote, {'rollout_service': SERVICE, 'promote_phase': 'finish',
                                                                   'canary_release': exported}))
    assert ('6 of 6 stable hosts have no result in the rollout record: stable-1, stable-2, stable-3, stable-4, '
            'stable-5, stable-6') in early
    assert reloads(counter) == 0 and stack.upstream_text() == upstream

    slices = run_sliced_job(workdir, PROJECT, inventory, promote_hosts,
                            {'rollout_service': SERVICE, 'canary_release': exported}, SLICES)
    for job, share in zip(slices, shares):
        ok(job)
        part = job.artifacts['canary_release']
        assert part['run_id'] == exported['run_id'] and part['outcome'] == 'promoting'
        assert sorted(host['host'] for host in part['hosts']) == share
        assert set(host['state'] for host in part['hosts']) == {'promoted'}
    # the slices ran at the same time
    assert max(span(job)[0] for job in slices) < min(span(job)[1] for job in slices)
    # no slice took the lock or changed the traffic
    assert rollout_state.read(state_dir, SERVICE)['lock'] == lock
    assert reloads(counter) == 0 and stack.upstream_text() == upstream
    assert fleet.versions() == dict.fromkeys(fleet.names, '2')
    record = rollout_state.read(state_dir, SERVICE)['record']
    assert record['status'] == 'running'
    assert dict((name, (entry['state'], entry['version'])) for name, entry in record['hosts'].items()) == \
        dict.fromkeys(fleet.names, ('promoted', '2'))
    # each slice's batches (promote_serial 1: one host each) are events of the record
    events = [event['message'] for event in record['events']]
    for share in shares:
        for batch, host in enumerate(share, 1):
            assert '%s 2: promote batch %d: deploying %s' % (SERVICE, batch, host) in events, events
            assert '%s 2: promote batch %d: %s runs it and passed the health check (%d of 2 stable hosts done)' % (
                SERVICE, batch, host, batch) in events, events

    finish = ok(run_job(workdir, PROJECT, inventory, promote, {'rollout_service': SERVICE, 'promote_phase': 'finish',
                                                               'canary_release': slices[-1].artifacts['canary_release']}))
    assert finish.artifacts['canary_release']['outcome'] == 'promoted'
    assert reloads(counter) == 1
    canary_line = [line for line in stack.upstream_text().splitlines() if stack.canary_servers[0] in line][0]
    assert 'down' in canary_line, stack.upstream_text()
    read = rollout_state.read(state_dir, SERVICE)
    assert read['record']['status'] == 'promoted' and read['lock'] is None
    # the lock was taken once: one begin (the resumed rollout) in the record between the held release and the end
    resumed = [message for message in (event['message'] for event in read['record']['events']) if 'resum' in message]
    assert len(resumed) == 1, resumed
    assert time.monotonic() - started < 120
    with open(os.path.join(str(tmp_path), 'record.json'), 'w', encoding='utf-8') as handle:
        json.dump(read['record'], handle, indent=2)
