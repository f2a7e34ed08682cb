# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Starting and stopping the local stack's processes by PID, safely across separate Python processes.

Every process is started in its own session (a Ctrl-C in the terminal reaches only the driver, which then stops
them in order) with its output in a log file. A process is identified by its PID *and* its start time (field 22
of ``/proc/<pid>/stat``), so a PID recorded in ``stack.json`` and reused by the kernel for an unrelated process
is never signalled. Every wait is bounded.
"""

import os
import signal
import socket
import subprocess
import time


class StackError(RuntimeError):
    """Something of the local stack could not be started, reached or stopped."""


def free_ports(count):
    """``count`` distinct TCP ports that were free on 127.0.0.1 a moment ago."""
    sockets = []
    try:
        for dummy in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(('127.0.0.1', 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_until(predicate, timeout, interval=0.05, message='condition'):
    """Call ``predicate`` until it returns a true value (returned) or ``timeout`` seconds pass (StackError)."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # pylint: disable=broad-except
            last_error = error
        if time.monotonic() >= deadline:
            raise StackError('timed out after %.1f s waiting for %s%s'
                             % (timeout, message, ' (last error: %s)' % last_error if last_error else ''))
        time.sleep(interval)


def _stat_fields(pid):
    """Fields of /proc/<pid>/stat after the command name: [state, ppid, ...]; None if there is no such process."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as handle:
            stat = handle.read()
    except OSError:
        return None
    return stat[stat.rindex(b')') + 2:].split()


def start_time(pid):
    """The start time of ``pid`` in clock ticks since boot (an identity together with the PID), or None."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def is_alive(pid, started=None):
    """Whether ``pid`` runs (a zombie does not) and, when ``started`` is given, is the process started then."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in (b'Z', b'X'):
        return False
    return started is None or int(fields[19]) == int(started)


def child_pids(pid):
    """PIDs of the running children of ``pid`` (for example an nginx master's workers)."""
    children = set()
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields and int(fields[1]) == pid and fields[0] not in (b'Z', b'X'):
                children.add(int(entry))
    return children


class ProcessTable:
    """The processes this Python process started (``subprocess.Popen`` objects by PID), to wait on and reap."""

    def __init__(self):
        self.children = {}

    def spawn(self, argv, log_path, cwd=None, env=None):
        """Start ``argv`` in a new session with stdout and stderr appended to ``log_path``; return (pid, start time)."""
        with open(log_path, 'ab') as log:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       cwd=cwd, env=env, start_new_session=True, close_fds=True)
        self.children[process.pid] = process
        return process.pid, start_time(process.pid)

    def exited(self, pid):
        """The exit code of a child of ours that has exited, else None (also for processes we did not start)."""
        process = self.children.get(pid)
        return None if process is None else process.poll()

    def stop(self, pid, started=None, timeout=10.0, sig=signal.SIGTERM):
        """Stop ``pid`` (``sig``, then SIGKILL after ``timeout``) if it is still the process started at ``started``.

        Works for our own children (reaped here) and for processes another invocation started (their PID and
        start time come from stack.json). Returns True when a process was signalled."""
        if not pid:
            return False
        process = self.children.pop(pid, None)
        if process is not None:
            if process.poll() is not None:
                return False
            if started is not None and start_time(pid) != int(started):
                return False
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            return True
        if not is_alive(pid, started):
            return False
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        try:
            wait_until(lambda: not is_alive(pid, started), timeout, message='PID %d to exit' % pid)
        except StackError:
            if is_alive(pid, started):
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda: not is_alive(pid, started), 5, message='PID %d to die' % pid)
        return True

    def reap(self):
        """Collect the exit status of children that exited (for example instances redeployed by another process)."""
        for pid, process in list(self.children.items()):
            if process.poll() is not None:
                del self.children[pid]


def read_log(path, limit=3000):
    """The last ``limit`` characters of a log file ('' if there is none)."""
    try:
        with open(path, encoding='utf-8', errors='replace') as handle:
            return handle.read()[-limit:]
    except OSError:
        return ''
