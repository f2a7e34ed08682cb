"""The rollout record and lock: real files in tmp_path, real processes as lock holders (alive, dead, reused pid)."""

import json
import multiprocessing
import os
import socket
import stat
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.canary.release.plugins.module_utils._rollout import files as state_files, lock as state_lock, record as rec
from ansible_collections.canary.release.plugins.module_utils._rollout import state as rs

NOW = 1738324800.0  # 2025-01-31T12:00:00Z


@pytest.fixture
def state_dir(tmp_path):
    return str(tmp_path / 'state')


@pytest.fixture
def sleeper():
    """A live process that we started: a lock holder that is still running."""
    process = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def owner_of(pid):
    owner = state_lock.local_identity()
    owner.update(pid=pid, pid_start=state_lock.process_start(pid))
    return owner


def dead_owner():
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()
    owner = owner_of(process.pid)
    owner['pid_start'] = '1'
    return owner


def files(state_dir, service='web'):
    return state_files.StateFiles(state_dir, service)


def snapshot(directory):
    """Every file in the directory with its bytes and inode."""
    if not os.path.isdir(directory):
        return None
    result = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        with open(path, 'rb') as handle:
            result[name] = (handle.read(), os.stat(path).st_ino)
    return result


def started(state_dir, owner, version='1.4.0', **kwargs):
    return rs.begin(state_dir, 'web', version, owner=owner, now=NOW, **kwargs)


# --- begin, resume, refuse, force ------------------------------------------------------------------------------

def test_begin_creates_record_and_lock(state_dir, sleeper):
    owner = owner_of(sleeper.pid)
    result = started(state_dir, owner, previous_version='1.3.2')
    assert result['changed'] and not result['resumed'] and result['next_step'] == 0
    record = result['record']
    assert record == rs.read(state_dir, 'web')['record']
    assert record['service'] == 'web' and record['version'] == '1.4.0' and record['previous_version'] == '1.3.2'
    assert record['status'] == 'running' and record['started_at'] == '2025-01-31T12:00:00Z'
    assert record['step'] is None and record['steps'] == [] and record['run_id'] == result['run_id']
    assert record['events'][0]['message'].startswith('web 1.4.0: rollout started (previous version 1.3.2) by run ')
    lock = files(state_dir).read_lock()
    assert lock == result['lock']
    assert lock['run_id'] == result['run_id'] and lock['pid'] == sleeper.pid and lock['host'] == socket.gethostname()
    assert lock['pid_start'] == state_lock.process_start(sleeper.pid) and lock['started_at'] == '2025-01-31T12:00:00Z'
    assert result['owner'] == {key: lock[key] for key in ('pid', 'host', 'boot_id', 'pid_start')}
    assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
    for name in ('web.json', 'web.lock'):
        assert stat.S_IMODE(os.stat(os.path.join(state_dir, name)).st_mode) == 0o600
    assert sorted(os.listdir(state_dir)) == ['.web.mutex', 'web.json', 'web.lock']  # no temporary file left


def test_same_version_resumes_where_it_stopped(state_dir, sleeper):
    first = started(state_dir, dead_owner())
    rs.record_step(state_dir, 'web', 0, weight=5, verdict='pass', run_id=first['run_id'], now=NOW + 60)
    rs.record_step(state_dir, 'web', 1, weight=25, verdict='continue', run_id=first['run_id'], now=NOW + 120)
    # the first run died without finishing: its lock is stale
    again = rs.begin(state_dir, 'web', '1.4.0', owner=owner_of(sleeper.pid), now=NOW + 300)
    assert again['changed'] and again['resumed'] and again['run_id'] != first['run_id']
    assert again['next_step'] == 1  # step 1 had no final verdict: run it again
    assert again['record']['step'] == 1 and again['record']['weight'] == 25.0
    assert [entry['index'] for entry in again['record']['steps']] == [0, 1]
    assert again['record']['started_at'] == first['record']['started_at']
    assert again['record']['events'][-1]['message'] == 'web 1.4.0: resumed at step 1 (25 %%) by run %s' % again['run_id']
    assert again['taken_over']['run_id'] == first['run_id']
    assert any('took over the stale lock of web' in warning for warning in again['warnings'])
    rs.record_step(state_dir, 'web', 1, weight=25, verdict='pass', run_id=again['run_id'], now=NOW + 400)
    assert rs.read(state_dir, 'web')['next_step'] == 2


def test_begin_twice_in_the_same_run_changes_nothing(state_dir, sleeper):
    owner = owner_of(sleeper.pid)
    first = started(state_dir, owner)
    before = snapshot(state_dir)
    again = started(state_dir, owner, run_id=first['run_id'])
    assert not again['changed'] and not again['resumed'] and again['run_id'] == first['run_id']
    assert snapshot(state_dir) == before


def test_different_version_is_refused_while_one_is_unfinished(state_dir):
    first = started(state_dir, dead_owner())
    rs.record_step(state_dir, 'web', 2, weight=50, run_id=first['run_id'], now=NOW + 60)
    before = snapshot(state_dir)
    with pytest.raises(rs.VersionConflictError) as caught:
        rs.begin(state_dir, 'web', '1.5.0', owner=dead_owner(), now=NOW + 120)
    message = str(caught.value)
    assert 'rollout of web 1.4.0 is unfinished (running at step 2 (50 %)' in message
    assert 'pass force: true to replace it with 1.5.0' in message
    assert caught.value.record['version'] == '1.4.0'
    assert snapshot(state_dir) == before


def test_force_replaces_an_unfinished_rollout(state_dir, sleeper):
    first = started(state_dir, dead_owner(), previous_version='1.3.2')
    rs.record_step(state_dir, 'web', 1, weight=25, run_id=first['run_id'], now=NOW + 60)
    forced = rs.begin(state_dir, 'web', '1.5.0', owner=owner_of(sleeper.pid), force=True, now=NOW + 120)
    record = forced['record']
    assert forced['changed'] and not forced['resumed']
    assert record['version'] == '1.5.0' and record['previous_version'] == '1.3.2' and record['step'] is None
    assert 'replacing the unfinished rollout of 1.4.0 at step 1 (25 %), forced' in record['events'][0]['message']
    assert any('replaced the unfinished rollout of 1.4.0' in warning for warning in forced['warnings'])


def test_previous_version_follows_the_last_outcome(state_dir, sleeper):
    owner = owner_of(sleeper.pid)
    one = started(state_dir, owner, version='1.0', previous_version='0.9')
    rs.finish(state_dir, 'web', 'promoted', run_id=one['run_id'], now=NOW + 1)
    two = started(state_dir, owner, version='1.1')
    assert two['record']['previous_version'] == '1.0'
    rs.finish(state_dir, 'web', 'rolled_back', run_id=two['run_id'], now=NOW + 2)
    three = started(state_dir, owner, version='1.2')
    assert three['record']['previous_version'] == '1.0'  # 1.1 never became stable
    rs.finish(state_dir, 'web', 'aborted', run_id=three['run_id'], now=NOW + 3)
    # the same version again after a rollback is a new rollout
    again = started(state_dir, owner, version='1.2')
    assert again['changed'] and not again['resumed'] and again['record']['steps'] == []


def test_promoted_version_is_left_alone_unless_forced(state_dir, sleeper):
    owner = owner_of(sleeper.pid)
    first = started(state_dir, owner)
    rs.finish(state_dir, 'web', 'promoted', run_id=first['run_id'], now=NOW + 10)
    before = snapshot(state_dir)
    again = started(state_dir, owner)
    assert not again['changed'] and again['already_promoted'] and again['next_step'] is None
    assert again['lock'] is None and snapshot(state_dir) == before
    assert again['message'] == 'web 1.4.0: already promoted on 2025-01-31T12:00:10Z; nothing to do'
    forced = started(state_dir, owner, force=True)
    assert forced['changed'] and forced['record']['status'] == 'running' and forced['lock'] is not None


# --- the lock -----------------------------------------------------------------------------------------------------

def test_live_holder_is_refused_with_a_clear_message(state_dir, sleeper):
    started(state_dir, owner_of(sleeper.pid))
    before = snapshot(state_dir)
    for version in ('1.4.0', '1.5.0'):
        with pytest.raises(rs.LockHeldError) as caught:
            rs.begin(state_dir, 'web', version, owner=owner_of(os.getpid()), force=True, now=NOW + 5)
        assert str(caught.value).startswith('rollout of web already running since 2025-01-31T12:00:00Z, pid %d on host %s'
                                            % (sleeper.pid, socket.gethostname()))
        assert caught.value.holder['pid'] == sleeper.pid
    with pytest.raises(rs.LockHeldError):
        rs.record_step(state_dir, 'web', 0, weight=5, run_id='another-run', now=NOW + 5)
    with pytest.raises(rs.LockHeldError):
        rs.finish(state_dir, 'web', 'rolled_back', now=NOW + 5)  # one-shot: the lock is not free
    assert snapshot(state_dir) == before
    assert rs.read(state_dir, 'web', now=NOW + 5)['lock']['holder_state'] == 'live'


def test_lock_of_a_dead_process_is_stale(state_dir, sleeper):
    first = started(state_dir, dead_owner())
    assert rs.read(state_dir, 'web')['lock']['holder_state'] == 'stale'
    # a one-shot step takes the stale lock over and leaves it free
    result = rs.record_step(state_dir, 'web', 0, weight=5, now=NOW + 5)
    assert result['taken_over']['run_id'] == first['run_id'] and result['lock'] is None
    assert files(state_dir).read_lock() is None


def test_reused_pid_and_reboot_count_as_gone(state_dir, sleeper):
    reused = owner_of(sleeper.pid)
    reused['pid_start'] = str(int(reused['pid_start']) + 1)  # same pid, another process
    started(state_dir, reused)
    assert rs.read(state_dir, 'web')['lock']['holder_state'] == 'stale'
    rebooted = owner_of(sleeper.pid)
    rebooted['boot_id'] = 'another-boot'
    lock = dict(files(state_dir).read_lock(), **rebooted)
    assert state_lock.holder_state(lock, NOW) == ('stale', 'host %s was rebooted since' % socket.gethostname())


def test_holder_on_another_host_needs_break_lock_or_expiry(state_dir, sleeper):
    remote = {'pid': 4242, 'host': 'controller-elsewhere', 'boot_id': 'x', 'pid_start': '1'}
    other = {'pid': 4343, 'host': 'controller-two', 'boot_id': 'y', 'pid_start': '1'}
    first = started(state_dir, remote)
    with pytest.raises(rs.LockHeldError) as caught:
        rs.begin(state_dir, 'web', '1.4.0', owner=owner_of(sleeper.pid), now=NOW + 60)
    assert 'held from host controller-elsewhere' in str(caught.value)
    assert 'pass break_lock: true' in str(caught.value)
    # not refreshed for longer than stale_after: stale
    resumed = rs.begin(state_dir, 'web', '1.4.0', owner=other, stale_after=30, now=NOW + 60)
    assert resumed['resumed'] and resumed['taken_over']['run_id'] == first['run_id']
    # a run the caller knows to be gone (the controller checked it) is replaced; another run id is not
    with pytest.raises(rs.LockHeldError):
        rs.begin(state_dir, 'web', '1.4.0', owner=remote, replaces_run_id=first['run_id'], now=NOW + 61)
    replaced = rs.begin(state_dir, 'web', '1.4.0', owner=owner_of(sleeper.pid), replaces_run_id=resumed['run_id'],
                        now=NOW + 61)
    assert replaced['taken_over']['run_id'] == resumed['run_id']
    assert any('run %s is gone (replaces_run_id)' % resumed['run_id'] in warning for warning in replaced['warnings'])
    # ... but a holder on this host is checked: alive is alive
    with pytest.raises(rs.LockHeldError):
        rs.begin(state_dir, 'web', '1.4.0', owner=remote, replaces_run_id=replaced['run_id'], now=NOW + 62)
    # break_lock takes a lock whose holder may live
    broken = rs.begin(state_dir, 'web', '1.4.0', owner=remote, break_lock=True, now=NOW + 63)
    assert broken['taken_over']['run_id'] == replaced['run_id']
    assert any('broke the lock of web (break_lock)' in warning for warning in broken['warnings'])


def test_finish_releases_the_lock(state_dir, sleeper):
    first = started(state_dir, owner_of(sleeper.pid))
    done = rs.finish(state_dir, 'web', 'rolled_back', reason='error ratio 5.1x', run_id=first['run_id'], now=NOW + 9)
    assert done['changed'] and done['lock'] is None and files(state_dir).read_lock() is None
    record = done['record']
    assert record['status'] == 'rolled_back' and record['finished_at'] == '2025-01-31T12:00:09Z'
    assert record['reason'] == 'error ratio 5.1x'
    assert record['events'][-1]['message'] == 'web 1.4.0: rolled back to the stable version: error ratio 5.1x'
    # idempotent, and the lock is free for the next run
    assert not rs.finish(state_dir, 'web', 'rolled_back', run_id=first['run_id'], now=NOW + 10)['changed']
    with pytest.raises(rs.StateError, match='already finished as rolled_back'):
        rs.finish(state_dir, 'web', 'promoted', now=NOW + 10)
    nxt = rs.begin(state_dir, 'web', '1.5.0', owner=owner_of(os.getpid()), now=NOW + 11)
    assert nxt['changed'] and nxt['taken_over'] is None and not nxt['warnings']


def test_pause_releases_the_lock_and_the_next_begin_resumes(state_dir, sleeper):
    first = started(state_dir, owner_of(sleeper.pid))
    rs.record_step(state_dir, 'web', 1, weight=25, verdict='inconclusive', status='paused', run_id=first['run_id'],
                   now=NOW + 5)
    paused = rs.finish(state_dir, 'web', 'paused', reason='waiting for approval', run_id=first['run_id'], now=NOW + 6)
    assert paused['record']['status'] == 'paused' and paused['record']['finished_at'] is None
    assert paused['message'] == 'web 1.4.0: paused at step 1 (25 %), lock released: waiting for approval'
    assert files(state_dir).read_lock() is None
    assert not rs.finish(state_dir, 'web', 'paused', now=NOW + 7)['changed']
    resumed = rs.begin(state_dir, 'web', '1.4.0', owner=owner_of(os.getpid()), now=NOW + 8)
    assert resumed['resumed'] and not resumed['warnings'] and resumed['record']['status'] == 'running'
    assert resumed['next_step'] == 1


def test_step_needs_the_lock_of_its_run(state_dir, sleeper):
    first = started(state_dir, owner_of(sleeper.pid))
    step = rs.record_step(state_dir, 'web', 0, weight=5, verdict='pass', reason='fine', run_id=first['run_id'],
                          now=NOW + 5)
    assert step['changed'] and step['message'] == 'web 1.4.0: step 0 at 5 %, verdict pass: fine'
    assert step['lock']['refreshed_at'] == '2025-01-31T12:00:05Z'
    assert step['lock']['started_at'] == '2025-01-31T12:00:00Z'
    before = snapshot(state_dir)
    same = rs.record_step(state_dir, 'web', 0, weight=5, verdict='pass', reason='fine', run_id=first['run_id'],
                          now=NOW + 50)
    assert not same['changed'] and snapshot(state_dir) == before
    with pytest.raises(rs.StateError, match='for version 1.4.0, not 1.5.0'):
        rs.record_step(state_dir, 'web', 1, weight=25, version='1.5.0', run_id=first['run_id'], now=NOW + 6)
    with pytest.raises(rs.StateError, match='weight must be a percent'):
        rs.record_step(state_dir, 'web', 1, weight=125, run_id=first['run_id'], now=NOW + 6)
    rs.finish(state_dir, 'web', 'paused', run_id=first['run_id'], now=NOW + 7)
    with pytest.raises(rs.StateError, match='does not hold the lock of web'):
        rs.record_step(state_dir, 'web', 1, weight=25, run_id=first['run_id'], now=NOW + 8)


def test_step_started_at_is_kept_while_the_step_goes_on(state_dir, sleeper):
    first = started(state_dir, owner_of(sleeper.pid))
    run = first['run_id']
    rs.record_step(state_dir, 'web', 0, weight=5, run_id=run, now=NOW + 10)
    rs.record_step(state_dir, 'web', 0, weight=5, verdict='pass', reason='fine', run_id=run, now=NOW + 70)
    rs.record_step(state_dir, 'web', 1, weight=25, run_id=run, now=NOW + 71)
    steps = rs.read(state_dir, 'web')['record']['steps']
    assert steps[0] == {'index': 0, 'weight': 5.0, 'verdict': 'pass', 'reason': 'fine', 'at': '2025-01-31T12:01:10Z',
                        'started_at': '2025-01-31T12:00:10Z'}
    assert steps[1]['started_at'] == steps[1]['at'] == '2025-01-31T12:01:11Z'
    # the same step again at another weight begins again
    again = rs.record_step(state_dir, 'web', 1, weight=30, run_id=run, now=NOW + 80)
    assert again['record']['steps'][1]['started_at'] == '2025-01-31T12:01:20Z'
    # an entry written before started_at existed keeps its 'at' as the start
    record = rs.read(state_dir, 'web')['record']
    assert rec.step_started_at({'weight': 30.0, 'at': 'then'}, 30.0, 'now') == 'then'
    assert rec.step_started_at({'weight': 25.0, 'at': 'then'}, 30.0, 'now') == 'now'
    assert rec.step_started_at(None, 30.0, 'now') == 'now'
    assert record['step'] == 1


@pytest.mark.parametrize('verdict, complete', [
    (None, False), ('continue', False), ('pass', True), ('watched', True), ('approved', True), ('skipped', True),
    ('awaiting_approval', False), ('inconclusive', False), ('fail', False), ('rejected', False)])
def test_which_verdicts_complete_a_step(state_dir, sleeper, verdict, complete):
    first = started(state_dir, owner_of(sleeper.pid))
    result = rs.record_step(state_dir, 'web', 2, weight=50, verdict=verdict, run_id=first['run_id'], now=NOW + 5)
    assert result['next_step'] == (3 if complete else 2)


def test_begin_continues_from_a_newer_copy_of_the_record(tmp_path, sleeper):
    """The controller's state directory is new (AWX): the traffic host's copy says where the rollout is."""
    traffic, controller = str(tmp_path / 'traffic'), str(tmp_path / 'controller')
    first = rs.begin(traffic, 'web', '1.4.0', previous_version='1.3.2', owner=dead_owner(), now=NOW)
    rs.record_step(traffic, 'web', 1, weight=25, verdict='inconclusive', status='paused', run_id=first['run_id'],
                   now=NOW + 60)
    copy = rs.finish(traffic, 'web', 'paused', run_id=first['run_id'], now=NOW + 61)['record']
    resumed = rs.begin(controller, 'web', '1.4.0', owner=owner_of(sleeper.pid), seed_record=copy, now=NOW + 120)
    assert resumed['resumed'] and resumed['seeded'] and resumed['before'] is None and resumed['changed']
    assert resumed['next_step'] == 1 and resumed['record']['previous_version'] == '1.3.2'
    assert resumed['record']['steps'] == copy['steps']
    assert any('this host had no record; continuing from the newer copy' in warning for warning in resumed['warnings'])
    assert rs.read(controller, 'web')['record'] == resumed['record']
    # an older (or the same) seed changes nothing: this host's copy wins
    again = rs.begin(controller, 'web', '1.4.0', owner=owner_of(sleeper.pid), run_id=resumed['run_id'],
                     seed_record=copy, now=NOW + 130)
    assert not again['changed'] and not again['seeded']
    with pytest.raises(rs.StateError, match='seed_record is not a record of service web'):
        rs.begin(controller, 'web', '1.4.0', owner=owner_of(sleeper.pid), seed_record=dict(copy, service='api'))
    with pytest.raises(rs.StateError, match='seed_record is not a rollout record of schema 1'):
        rs.begin(controller, 'web', '1.4.0', owner=owner_of(sleeper.pid), seed_record={'service': 'web'})


# --- events, atomic writes, concurrency, check mode -----------------------------------------------------------

def test_event_always_changes_and_stays_one_line(state_dir, sleeper):
    started(state_dir, owner_of(sleeper.pid))
    one = rs.add_event(state_dir, 'web', 'webhook\n sent', now=NOW + 1)
    two = rs.add_event(state_dir, 'web', 'webhook\n sent', now=NOW + 1)
    assert one['changed'] and two['changed']
    assert two['record']['events'][-2:] == [{'at': '2025-01-31T12:00:01Z', 'message': 'webhook sent'}] * 2
    with pytest.raises(rs.StateError, match='no rollout record for api'):
        rs.add_event(state_dir, 'api', 'hello')


def test_an_event_updates_the_per_host_map_of_the_promotion_or_changes_nothing(state_dir, sleeper):
    started(state_dir, owner_of(sleeper.pid))
    before = rs.read(state_dir, 'web')['record']
    assert 'hosts' not in before
    deploying = [{'host': 's1', 'state': 'deploying', 'batch': 1}, {'host': 's2', 'state': 'deploying', 'batch': 1}]
    rs.add_event(state_dir, 'web', 'batch 1 starts', hosts=deploying, now=NOW + 1)
    after = rs.add_event(state_dir, 'web', 'batch 1 ended', now=NOW + 2, hosts=[
        {'host': 's1', 'state': 'promoted', 'version': 2, 'batch': 1},
        {'host': 's2', 'state': 'unreachable', 'version': '', 'batch': 1, 'message': 'unreachable: refused'}])['record']
    assert after['hosts'] == {
        's1': {'version': '2', 'state': 'promoted', 'batch': 1, 'message': '', 'at': '2025-01-31T12:00:02Z'},
        's2': {'version': None, 'state': 'unreachable', 'batch': 1, 'message': 'unreachable: refused', 'at': '2025-01-31T12:00:02Z'}}
    assert after['events'][-1]['message'] == 'batch 1 ended'
    for bad, error in (([{'state': 'promoted'}], 'every entry of hosts needs a host name'),
                       ([{'host': 's1', 'state': 'done'}], 'the state of host s1 must be one of deploying, promoted'),
                       ([{'host': 's1', 'state': 'failed', 'batch': 0}], 'the batch of host s1 must be a number from 1'),
                       ('s1', 'hosts must be a list')):
        with pytest.raises(rs.StateError, match=error):
            rs.add_event(state_dir, 'web', 'bad', hosts=bad)
    assert rs.read(state_dir, 'web')['record'] == after


def test_events_are_bounded():
    record = rec.new_record('web', '1', None, 'run', NOW)
    for number in range(rec.MAX_EVENTS + 5):
        rec.append_event(record, 'event %d' % number, NOW)
    assert len(record['events']) == rec.MAX_EVENTS and record['events_dropped'] == 5
    assert record['events'][0]['message'] == 'event 5'


def test_records_are_replaced_atomically(state_dir, sleeper):
    started(state_dir, owner_of(sleeper.pid))
    path = files(state_dir).record_path
    inode = os.stat(path).st_ino
    rs.add_event(state_dir, 'web', 'one more')
    assert os.stat(path).st_ino != inode  # a new file renamed over the old one, never rewritten in place
    before = snapshot(state_dir)
    with pytest.raises(ValueError):
        state_files.atomic_write_json(path, {'weight': float('nan')})  # fails while serialising: nothing written
    with pytest.raises(TypeError):
        state_files.atomic_write_json(path, {'bad': object()})
    assert snapshot(state_dir) == before


def _add_events(state_dir, worker, count):
    for number in range(count):
        rs.add_event(state_dir, 'web', 'worker %d event %d' % (worker, number))


def test_concurrent_writers_lose_nothing(state_dir, sleeper):
    started(state_dir, owner_of(sleeper.pid))
    context = multiprocessing.get_context('fork')
    workers = [context.Process(target=_add_events, args=(state_dir, worker, 20)) for worker in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    messages = [event['message'] for event in rs.read(state_dir, 'web')['record']['events']]
    assert len(messages) == 1 + 80
    assert set(messages[1:]) == set('worker %d event %d' % (w, n) for w in range(4) for n in range(20))


def test_two_begins_at_once_one_wins(state_dir, sleeper):
    """Two processes race to begin: the mutex makes exactly one of them take the lock."""
    context = multiprocessing.get_context('fork')
    queue = context.Queue()
    owners = [owner_of(sleeper.pid), owner_of(os.getpid())]

    def race(owner):
        try:
            queue.put(('ok', rs.begin(state_dir, 'web', '1.4.0', owner=owner)['run_id']))
        except rs.LockHeldError as error:
            queue.put(('refused', str(error)))

    workers = [context.Process(target=race, args=(owner,)) for owner in owners]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
    outcomes = sorted(queue.get(timeout=10) for dummy in workers)
    assert [outcome[0] for outcome in outcomes] == ['ok', 'refused']
    assert outcomes[1][1].startswith('rollout of web already running since ')


def test_check_mode_writes_nothing(state_dir, sleeper):
    result = rs.begin(state_dir, 'web', '1.4.0', owner=owner_of(sleeper.pid), check_mode=True, now=NOW)
    assert result['changed'] and result['record']['version'] == '1.4.0'
    assert not os.path.exists(state_dir)  # not even the directory
    first = started(state_dir, owner_of(sleeper.pid))
    before = snapshot(state_dir)
    step = rs.record_step(state_dir, 'web', 0, weight=5, run_id=first['run_id'], check_mode=True, now=NOW + 1)
    assert step['changed'] and step['record']['step'] == 0
    assert rs.add_event(state_dir, 'web', 'x', check_mode=True)['changed']
    done = rs.finish(state_dir, 'web', 'promoted', run_id=first['run_id'], check_mode=True, now=NOW + 2)
    assert done['changed'] and done['record']['status'] == 'promoted' and done['lock'] is None
    assert snapshot(state_dir) == before


# --- bad input and odd files ------------------------------------------------------------------------------------

@pytest.mark.parametrize('service', ['', '../etc', 'a/b', '.hidden', 'x' * 129, 'web app', None])
def test_bad_service_names_are_refused(state_dir, service):
    with pytest.raises(rs.StateError, match='not a valid service name'):
        rs.read(state_dir, service)


def test_unreadable_record_is_reported(state_dir):
    os.makedirs(state_dir)
    with open(os.path.join(state_dir, 'web.json'), 'w') as handle:
        handle.write('{"service": "web", ')
    with pytest.raises(rs.StateError, match='is not valid JSON'):
        rs.read(state_dir, 'web')
    with open(os.path.join(state_dir, 'web.json'), 'w') as handle:
        json.dump({'service': 'web', 'schema': 99}, handle)
    with pytest.raises(rs.StateError, match='record schema 99'):
        rs.read(state_dir, 'web')


def test_default_state_dir():
    assert state_files.default_state_dir({'XDG_STATE_HOME': '/srv/state'}) == '/srv/state/canary-release'
    assert state_files.default_state_dir({}) == os.path.join(os.path.expanduser('~'), '.local', 'state', 'canary-release')


def test_the_run_is_the_outermost_ansible_playbook_ancestor(tmp_path):
    """A real process tree: ansible-playbook -> a forked worker (same command line) -> a module process."""
    module_code = 'from %s import find_controller_pid; print(find_controller_pid())' % state_lock.__name__
    script = tmp_path / 'ansible-playbook'
    script.write_text(textwrap.dedent('''\
        #!%s
        import os, subprocess, sys
        print(os.getpid(), flush=True)
        if os.fork() == 0:
            subprocess.run([sys.executable, '-c', %r], check=True)
            os._exit(0)
        os.wait()
        ''' % (sys.executable, module_code)))
    script.chmod(0o755)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([str(script)], capture_output=True, text=True, env=env, timeout=60, check=True).stdout
    playbook_pid, found = out.split()
    assert found == playbook_pid
    assert state_lock.find_controller_pid() is None  # pytest has no ansible-playbook ancestor
