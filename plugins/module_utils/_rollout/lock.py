# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rollout lock: who holds it, and whether that holder is still alive.

The lock outlives the module process: ``begin`` takes it for a *run* (one ansible-playbook process, identified by
a run id), later operations of the run pass that run id, ``finish`` releases it. The lock file holds the holder's
run id, process id, host, boot id, process start time and since when it holds the lock.

A lock whose holder is gone is stale and is taken over with a warning: the holder ran on this host (same host name,
same boot id) and its process no longer exists or is another process now (start time differs), or the host was
rebooted since. A holder on another host cannot be checked from here; its lock counts as live unless it was not
refreshed for ``stale_after`` seconds (when that is set) or the caller passes ``break_lock``.
"""

import errno
import os
import socket

from ansible_collections.canary.release.plugins.module_utils._rollout.files import StateError
from ansible_collections.canary.release.plugins.module_utils._rollout.record import format_time, parse_time

# Executables whose process is "the run": the outermost one among the module's ancestors holds the lock.
CONTROLLER_NAMES = ('ansible-playbook', 'ansible', 'ansible-console')
OWNER_KEYS = ('pid', 'host', 'boot_id', 'pid_start')


class LockHeldError(StateError):
    """Another live run holds the rollout lock. ``holder`` is its lock information."""

    def __init__(self, message, holder):
        super(LockHeldError, self).__init__(message)
        self.holder = holder


def boot_id():
    try:
        with open('/proc/sys/kernel/random/boot_id') as handle:
            return handle.read().strip() or None
    except (IOError, OSError):
        return None


def _proc_stat(pid):
    """(state, ppid, starttime) of a process from /proc, or None."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as handle:
            stat = handle.read()
    except (IOError, OSError):
        return None
    # The command name is in parentheses and may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(b')') + 2:].split()
    try:
        return fields[0].decode('ascii', 'replace'), int(fields[1]), fields[19].decode('ascii')
    except (IndexError, ValueError):
        return None


def process_start(pid):
    """The start time of a process (clock ticks since boot, as a string), or None when unknown."""
    stat = _proc_stat(pid)
    return stat[2] if stat else None


def _cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return [part.decode('utf-8', 'replace') for part in handle.read().split(b'\0') if part]
    except (IOError, OSError):
        return []


def _is_controller(argv):
    for part in argv[:2]:
        name = os.path.basename(part)
        if name in CONTROLLER_NAMES or name.startswith('ansible-playbook'):
            return True
    return False


def find_controller_pid(start=None, max_hops=64):
    """The outermost ansible-playbook (or ansible) process among the ancestors of ``start`` (default: this one).

    Forked worker processes carry the same command line as their parent, so the outermost one is the run itself.
    None when there is none (the module runs on a remote host, or /proc is not available).
    """
    pid = os.getpid() if start is None else start
    found = None
    for dummy in range(max_hops):
        if pid <= 1:
            break
        if _is_controller(_cmdline(pid)):
            found = pid
        stat = _proc_stat(pid)
        if stat is None:
            break
        pid = stat[1]
    return found


def local_identity():
    """This host: its name and boot id."""
    return {'host': socket.gethostname(), 'boot_id': boot_id()}


def current_owner(pid=None):
    """Who takes the lock: the run's process (``pid``, default the ansible-playbook ancestor), host and boot."""
    if pid is None:
        pid = find_controller_pid()
    owner = local_identity()
    owner['pid'] = pid
    owner['pid_start'] = process_start(pid) if pid else None
    return owner


def normalize_owner(owner):
    """An owner dict with exactly the keys pid, host, boot_id and pid_start (missing ones None)."""
    owner = owner or {}
    pid = owner.get('pid')
    if pid is not None:
        try:
            pid = int(pid)
        except (TypeError, ValueError):
            raise StateError('owner pid %r is not an integer' % (pid,))
    normalized = {'pid': pid, 'host': owner.get('host') or None, 'boot_id': owner.get('boot_id') or None,
                  'pid_start': owner.get('pid_start')}
    if normalized['pid_start'] is not None:
        normalized['pid_start'] = str(normalized['pid_start'])
    return normalized


def process_alive(pid, pid_start=None):
    """Whether process ``pid`` exists on this host (and, when ``pid_start`` is known, is still the same process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as error:
        if error.errno == errno.ESRCH:
            return False
        if error.errno != errno.EPERM:
            raise
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc: the signal check is all there is
    if stat[0] in ('Z', 'X'):
        return False
    return pid_start is None or stat[2] == str(pid_start)


def holder_state(lock, now, stale_after=0, local=None):
    """``(state, why)``: state ``live``, ``stale`` (its holder is gone) or ``unknown`` (another host, not expired)."""
    local = local or local_identity()
    host = lock.get('host')
    pid = lock.get('pid')
    same_host = host is not None and host == local.get('host')
    if same_host and lock.get('boot_id') and local.get('boot_id') and lock['boot_id'] != local['boot_id']:
        return 'stale', 'host %s was rebooted since' % host
    if same_host and pid:
        if process_alive(int(pid), lock.get('pid_start')):
            return 'live', 'pid %s on %s is running' % (pid, host)
        return 'stale', 'pid %s on %s is no longer running' % (pid, host)
    refreshed = parse_time(lock.get('refreshed_at') or lock.get('started_at'))
    if stale_after and refreshed is not None and now - refreshed > stale_after:
        return 'stale', 'not refreshed for %d seconds (more than %s)' % (now - refreshed, stale_after)
    if same_host:
        return 'unknown', 'the holder process is not known'
    return 'unknown', 'held from host %s, which cannot be checked from %s' % (host, local.get('host'))


def lock_owner(lock):
    """The owner part of a lock (pid, host, boot_id, pid_start), what ``owner`` takes; None without a lock."""
    if lock is None:
        return None
    return dict((key, lock.get(key)) for key in OWNER_KEYS)


def describe_holder(lock):
    return 'since %s, pid %s on host %s (run %s, version %s)' % (
        lock.get('started_at'), lock.get('pid'), lock.get('host'), lock.get('run_id'), lock.get('version'))


def check_lock(service, lock, run_id, now, stale_after, break_lock, local, warnings, replaces_run_id=None):
    """Decide whether the caller (run ``run_id``) may act while ``lock`` exists: its own lock or no lock, yes; a
    stale one (or one held by ``replaces_run_id``, a run the caller knows is gone) is taken over with a warning, and
    so is any with ``break_lock``; a live or unknown holder is refused (:class:`LockHeldError`). Returns the
    taken-over lock (or None)."""
    if lock is None or (run_id and lock.get('run_id') == run_id):
        return None
    state, why = holder_state(lock, now, stale_after, local)
    if state == 'unknown' and replaces_run_id and lock.get('run_id') == replaces_run_id:
        state, why = 'stale', 'run %s is gone (replaces_run_id)' % replaces_run_id
    if state == 'stale':
        warnings.append('took over the stale lock of %s: %s; it was held %s'
                        % (service, why, describe_holder(lock)))
        return lock
    if break_lock:
        warnings.append('broke the lock of %s (break_lock): %s; it was held %s' % (service, why, describe_holder(lock)))
        return lock
    hint = ''
    if state == 'unknown':
        hint = ' (%s; if that run is gone, pass break_lock: true)' % why
    raise LockHeldError('rollout of %s already running %s%s' % (service, describe_holder(lock), hint), lock)


def new_lock(service, run_id, version, owner, now, since=None):
    """The lock of run ``run_id`` held by ``owner`` (since ``since``, default now), refreshed now."""
    stamp = format_time(now)
    lock = {'service': service, 'run_id': run_id, 'version': version}
    lock.update(normalize_owner(owner))
    lock['started_at'] = since or stamp
    lock['refreshed_at'] = stamp
    return lock


def refreshed_lock(service, lock_before, taken_over, run_id, record, owner, now):
    """The lock after a write: refreshed for its holder; a taken-over lock passes to the caller's run, or is
    released by a one-shot call (no run id); a one-shot call on a free lock leaves it free."""
    if lock_before is None:
        return None
    if taken_over is not None:
        if not run_id:
            return None
        return new_lock(service, run_id, record['version'], owner if owner is not None else current_owner(), now)
    lock = dict(lock_before)
    lock['refreshed_at'] = format_time(now)
    return lock
