# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The files of one service in a state directory: the record, the lock and the per-service mutex.

Files in ``state_dir`` (created with mode 0700; files are 0600):

* ``<service>.json``: the record, one JSON document (see ``record.new_record`` for the schema), replaced
  atomically on every change (temporary file in the same directory, ``fsync``, ``rename``, ``fsync`` of the
  directory), so a reader or a crash never sees half a record;
* ``<service>.lock``: present while a run holds the rollout lock (see :mod:`.lock`);
* ``.<service>.mutex``: an ``flock`` held for the few milliseconds of one operation, so that two operations
  (two ansible-playbook runs calling ``begin`` at the same moment) never interleave their read-modify-write.
"""

import contextlib
import errno
import fcntl
import json
import os
import re
import time

from ansible_collections.canary.release.plugins.module_utils._rollout.record import SCHEMA_VERSION
from ansible_collections.canary.release.plugins.module_utils.durable_files import fsync_directory, replace_file

DEFAULT_MUTEX_TIMEOUT = 30.0
STATE_DIR_NAME = 'canary-release'
SERVICE_PATTERN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$')


class StateError(Exception):
    """The operation cannot be done; nothing was written."""


def default_state_dir(environ=None):
    """``$XDG_STATE_HOME/canary-release``, or ``~/.local/state/canary-release`` of the user running this."""
    environ = os.environ if environ is None else environ
    base = environ.get('XDG_STATE_HOME') or os.path.join(os.path.expanduser('~'), '.local', 'state')
    return os.path.join(base, STATE_DIR_NAME)


def validate_service(service):
    if not isinstance(service, str) or not SERVICE_PATTERN.match(service):
        raise StateError('service %r is not a valid service name: use 1 to 128 letters, digits and . _ @ + -, '
                         'starting with a letter or digit' % (service,))
    return service


def validate_version(version, what='version'):
    if not isinstance(version, str) or not version.strip() or len(version) > 256 or '\n' in version or '\r' in version:
        raise StateError('%s %r must be a non-empty string of one line, at most 256 characters' % (what, version))
    return version


def atomic_write_json(path, document):
    """Replace ``path`` with ``document`` as JSON: temporary file beside it, fsync, rename, fsync the directory.

    The document is serialised before anything is created, so an unserialisable document leaves no trace.
    """
    data = (json.dumps(document, indent=2, sort_keys=False, allow_nan=False) + '\n').encode('utf-8')
    replace_file(path, data, 0o600)
    fsync_directory(os.path.dirname(path))


def read_json(path):
    """The JSON document in ``path``, or None when the file does not exist."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError) as error:
        if error.errno == errno.ENOENT:
            return None
        raise StateError('cannot read %s: %s' % (path, error.strerror))
    try:
        document = json.loads(data.decode('utf-8'))
    except ValueError as error:
        raise StateError('%s is not valid JSON (%s); move it away to start over' % (path, error))
    if not isinstance(document, dict):
        raise StateError('%s does not hold a JSON object; move it away to start over' % path)
    return document


class StateFiles(object):
    """The files of one service in one state directory."""

    def __init__(self, state_dir, service, mutex_timeout=DEFAULT_MUTEX_TIMEOUT):
        self.state_dir = os.path.abspath(os.path.expanduser(state_dir or default_state_dir()))
        self.service = validate_service(service)
        self.record_path = os.path.join(self.state_dir, '%s.json' % service)
        self.lock_path = os.path.join(self.state_dir, '%s.lock' % service)
        self.mutex_path = os.path.join(self.state_dir, '.%s.mutex' % service)
        self.mutex_timeout = mutex_timeout

    def read_record(self):
        record = read_json(self.record_path)
        if record is None:
            return None
        if record.get('service') != self.service:
            raise StateError('%s holds the record of service %r, not %r' % (self.record_path, record.get('service'),
                                                                            self.service))
        if not isinstance(record.get('schema'), int) or record['schema'] > SCHEMA_VERSION:
            raise StateError('%s has record schema %r; this canary.release reads schema %d or older'
                             % (self.record_path, record.get('schema'), SCHEMA_VERSION))
        return record

    def read_lock(self):
        return read_json(self.lock_path)

    def write_record(self, record):
        atomic_write_json(self.record_path, record)

    def write_lock(self, lock):
        atomic_write_json(self.lock_path, lock)

    def remove_lock(self):
        try:
            os.unlink(self.lock_path)
        except OSError as error:
            if error.errno != errno.ENOENT:
                raise StateError('cannot remove %s: %s' % (self.lock_path, error.strerror))
        fsync_directory(self.state_dir)

    def ensure_directory(self):
        try:
            os.makedirs(self.state_dir, 0o700)
        except OSError as error:
            if error.errno != errno.EEXIST or not os.path.isdir(self.state_dir):
                raise StateError('cannot create the state directory %s: %s' % (self.state_dir, error.strerror))

    @contextlib.contextmanager
    def mutex(self, check_mode=False):
        """Serialise one operation against every other on this service. Check mode reads without it."""
        if check_mode:
            yield
            return
        self.ensure_directory()
        try:
            fd = os.open(self.mutex_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise StateError('cannot open %s: %s' % (self.mutex_path, error.strerror))
        try:
            deadline = time.monotonic() + self.mutex_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except (IOError, OSError) as error:
                    if error.errno not in (errno.EAGAIN, errno.EACCES):
                        raise StateError('cannot lock %s: %s' % (self.mutex_path, error.strerror))
                    if time.monotonic() >= deadline:
                        raise StateError('%s stayed locked for %s seconds' % (self.mutex_path, self.mutex_timeout))
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
