# -*- coding: utf-8 -*-
# Copyright (c) 2026, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A load as a detached process: start it, stop it by PID, read its status.

Files in ``state_dir``, per load name: ``<name>.pid.json`` (the runner's PID, its start time in ``/proc`` - so a
PID the system gave to another process since is never signalled - and the plan's fingerprint) and
``<name>.status.json`` (the runner's counts, :mod:`.load_runner`).

The runner never outlives what bounds it: its ``duration``; SIGTERM (``stop``); and, when the module runs on the
controller, the ``ansible-playbook`` process among its ancestors (:func:`playbook_pid`): when that process ends -
the play finished, failed, or was killed - the runner stops within a second. On a host without such an ancestor
(a load host reached over SSH) only the duration and ``stop`` bound it.
"""

import json
import os
import signal
import time

from ansible_collections.canary.release.plugins.module_utils._loadtest.load_runner import LoadRunner, process_alive

START_TIMEOUT = 5.0
STOP_TIMEOUT = 20.0


class LoadProcessError(RuntimeError):
    """The load could not be started, stopped or read."""


def _paths(state_dir, name):
    return os.path.join(state_dir, name + '.pid.json'), os.path.join(state_dir, name + '.status.json')


def _read_json(path):
    try:
        with open(path, encoding='utf-8') as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _start_time(pid):
    """The process' start time in clock ticks since boot (field 22 of /proc/<pid>/stat), None when it is gone."""
    try:
        with open('/proc/%d/stat' % pid, encoding='utf-8') as handle:
            return handle.read().rsplit(')', 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _command_line(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return [part.decode('utf-8', 'replace') for part in handle.read().split(b'\0') if part]
    except OSError:
        return []


def _parent(pid):
    try:
        with open('/proc/%d/stat' % pid, encoding='utf-8') as handle:
            return int(handle.read().rsplit(')', 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def playbook_pid(pid=None):
    """The PID of the ``ansible-playbook`` process that (indirectly) started process ``pid`` (this one by
    default), the outermost one; None when there is none (the module runs on a remote host)."""
    found = None
    current = _parent(pid or os.getpid())
    while current > 1:
        if any(os.path.basename(part) == 'ansible-playbook' for part in _command_line(current)[:2]):
            found = current
        current = _parent(current)
    return found


def running_load(state_dir, name):
    """The pid record of load ``name`` when its runner still runs (same PID and start time), else None."""
    pid_path, dummy = _paths(state_dir, name)
    record = _read_json(pid_path)
    if not isinstance(record, dict) or not isinstance(record.get('pid'), int):
        return None
    if not process_alive(record['pid']) or _start_time(record['pid']) != record.get('start_time'):
        return None
    return record


def read_status(state_dir, name):
    """The runner's last status (None when it never wrote one)."""
    return _read_json(_paths(state_dir, name)[1])


def start_load(plan, state_dir, watch_pid):
    """Start ``plan`` as a detached runner (double fork, own session, stdio on /dev/null); returns its pid
    record once it runs. The caller stopped any other load of the same name first."""
    pid_path, status_path = _paths(state_dir, plan['name'])
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    for path in (pid_path, status_path):
        if os.path.exists(path):
            os.unlink(path)
    child = os.fork()
    if child == 0:
        _become_runner(plan, pid_path, status_path, watch_pid)
    os.waitpid(child, 0)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        record = running_load(state_dir, plan['name'])
        if record is not None and read_status(state_dir, plan['name']) is not None:
            return record
        time.sleep(0.05)
    raise LoadProcessError('the load %s did not start within %g s' % (plan['name'], START_TIMEOUT))


def _become_runner(plan, pid_path, status_path, watch_pid):
    """In the first child: a new session, a second fork (the runner is nobody's child to wait for), then run."""
    try:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for descriptor in (0, 1, 2):
            os.dup2(devnull, descriptor)
        os.closerange(3, 65536)
        record = {'pid': os.getpid(), 'start_time': _start_time(os.getpid()), 'fingerprint': plan['fingerprint'],
                  'watch_pid': watch_pid, 'started_at': time.time()}
        temporary = pid_path + '.tmp'
        with open(temporary, 'w', encoding='utf-8') as handle:
            json.dump(record, handle)
        os.replace(temporary, pid_path)
        LoadRunner(plan, status_path, watch_pid=watch_pid).run()
    finally:
        os._exit(0)


def stop_load(state_dir, name):
    """Stop load ``name`` (SIGTERM, then wait for its final status); returns ``(was_running, status)``."""
    record = running_load(state_dir, name)
    if record is None:
        return False, read_status(state_dir, name)
    os.kill(record['pid'], signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and running_load(state_dir, name) is not None:
        time.sleep(0.05)
    if running_load(state_dir, name) is not None:
        os.kill(record['pid'], signal.SIGKILL)
        raise LoadProcessError('the load %s did not stop within %g s after SIGTERM; it was killed'
                               % (name, STOP_TIMEOUT))
    return True, read_status(state_dir, name)
