# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Restart the sample app of a local fleet host with another version. Runs on the host: inside its network namespace.

The app is the one process listening on ``--port`` in this network namespace (``ss``). It is stopped (SIGTERM,
SIGKILL after 5 s) and started again with its command line unchanged but for ``--app-version``, in a new session
with no inherited descriptors (a child holding the SSH session's pipes would keep Ansible waiting), its output
appended to where the old process wrote it. Prints one JSON object: namespace, stopped and started PID, argv.

    python restart_app.py --port 8080 --app-version 2
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time


def listening_pid(port):
    listing = subprocess.run(['ss', '-Hltnp', 'sport = :%d' % port], capture_output=True, text=True, check=True).stdout
    pids = sorted(set(int(pid) for pid in re.findall(r'pid=([0-9]+)', listing)))
    if len(pids) != 1:
        sys.exit('restart_app: expected one process listening on port %d, found %r' % (port, pids))
    return pids[0]


def has_ended(pid):
    """Gone, or a zombie its parent has not reaped yet."""
    try:
        with open('/proc/%d/stat' % pid, encoding='utf-8') as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except OSError:
        return True


def stop(pid):
    for sig, seconds in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if has_ended(pid):
                return
            time.sleep(0.05)
    sys.exit('restart_app: process %d did not end' % pid)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--port', type=int, required=True, help='the port the app listens on')
    parser.add_argument('--app-version', required=True, help='the version to run')
    args = parser.parse_args()

    old_pid = listening_pid(args.port)
    with open('/proc/%d/cmdline' % old_pid, 'rb') as handle:
        argv = handle.read().decode().split('\0')[:-1]
    if '--app-version' not in argv:
        sys.exit('restart_app: process %d is not the sample app: %r' % (old_pid, argv))
    argv[argv.index('--app-version') + 1] = args.app_version
    log = os.readlink('/proc/%d/fd/1' % old_pid)
    stop(old_pid)
    with open(log if log.startswith('/') else os.devnull, 'ab') as output:
        started = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   close_fds=True, start_new_session=True, cwd='/')
    namespace = subprocess.run(['ip', 'netns', 'identify'], capture_output=True, text=True, check=True).stdout.strip()
    print(json.dumps({'namespace': namespace, 'stopped': old_pid, 'started': started.pid, 'argv': argv}))


if __name__ == '__main__':
    main()
