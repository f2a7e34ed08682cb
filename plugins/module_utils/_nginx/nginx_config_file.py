# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Change an nginx configuration file safely: lock, read, transform, atomic write, validate, reload, or restore.

:func:`update_file` is the whole procedure:

1. Take an exclusive ``fcntl.flock`` on ``<dir>/.<name>.canary-release.lock`` (a separate file, because the
   configuration file itself is replaced by rename and a lock on it would be lost). Everything below runs
   while the lock is held, so two concurrent runs against the same file never lose each other's update.
2. Read the file and call ``transform(text)``; if the text comes back unchanged nothing else happens.
3. Optionally copy the file to a timestamped backup beside it (the same naming as Ansible's ``backup``).
4. Write the new text to a temporary file in the same directory, give it the old file's mode, owner and
   group (a new file gets mode 0600), ``fsync`` it, ``rename`` it over the file and ``fsync`` the directory.
5. Run the validate command, then the reload command (argv lists, no shell). They run *after* the new file
   is in place because ``nginx -t`` checks the whole configuration, which reads the file through its
   ``include`` directives; a temporary copy elsewhere would not be what nginx loads.
6. If either command fails, write the previous bytes back the same atomic way (or remove the file if it did
   not exist before) and raise :class:`ConfigFileError` with the command's output.

Files are decoded as UTF-8 with ``surrogateescape``: any bytes round-trip unchanged.
"""


import errno
import fcntl
import os
import shlex
import shutil
import subprocess
import tempfile
import time

from ansible_collections.canary.release.plugins.module_utils.durable_files import fsync_directory, take_over

DEFAULT_LOCK_TIMEOUT = 60.0
NEW_FILE_MODE = 0o600
DEFAULT_VALIDATE_COMMAND = 'nginx -t'
DEFAULT_RELOAD_COMMAND = 'nginx -s reload'
COMMAND_TIMEOUT = 120.0
ENCODING = 'utf-8'
ERRORS = 'surrogateescape'


class ConfigFileError(Exception):
    """Reading, locking, writing, validating or reloading failed.

    ``command``/``rc``/``stdout``/``stderr`` describe a failed validate or reload command; ``restored`` is
    True when the previous content was put back.
    """

    def __init__(self, message, command=None, rc=None, stdout='', stderr='', restored=None):
        super(ConfigFileError, self).__init__(message)
        self.command = command
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.restored = restored


class UpdateResult(object):
    """What :func:`update_file` did. ``before`` is None when the file did not exist."""

    __slots__ = ('path', 'changed', 'before', 'after', 'backup_file', 'validated', 'reloaded', 'info')

    def __init__(self, path, changed, before, after, info, backup_file=None, validated=False, reloaded=False):
        self.path = path
        self.changed = changed
        self.before = before
        self.after = after
        self.info = info
        self.backup_file = backup_file
        self.validated = validated
        self.reloaded = reloaded


def decode(data):
    return data.decode(ENCODING, ERRORS)


def encode(text):
    return text.encode(ENCODING, ERRORS)


def split_command(command):
    """A command line as an argv list (``shlex`` rules, no shell); a list is returned as a list of strings."""
    if command is None:
        return []
    if isinstance(command, (list, tuple)):
        return [str(part) for part in command]
    try:
        return shlex.split(command)
    except ValueError as error:
        raise ConfigFileError('cannot split command %r: %s' % (command, error))


def resolve_path(path):
    """The real file behind ``path`` (a symlink is followed, so the link itself is never replaced)."""
    real = os.path.realpath(path)
    if os.path.isdir(real):
        raise ConfigFileError('%s is a directory, not a configuration file' % path)
    return real


def lock_file_path(path):
    """``<dir>/.<name>.canary-release.lock`` for the real file behind ``path``."""
    directory, name = os.path.split(resolve_path(path))
    return os.path.join(directory, '.%s.canary-release.lock' % name)


class FileLock(object):
    """Exclusive ``flock`` on the lock file of ``path``; waits up to ``timeout`` seconds (polling)."""

    def __init__(self, path, timeout=DEFAULT_LOCK_TIMEOUT, poll_interval=0.05):
        self.lock_path = lock_file_path(path)
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._fd = None

    def acquire(self):
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise ConfigFileError('cannot open lock file %s: %s' % (self.lock_path, error.strerror))
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise ConfigFileError('cannot lock %s: %s' % (self.lock_path, error.strerror))
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise ConfigFileError('another run holds %s; gave up after %s seconds'
                                          % (self.lock_path, self.timeout))
                time.sleep(self.poll_interval)
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
        return False


def read_bytes(path):
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except IOError as error:
        if error.errno == errno.ENOENT:
            return None
        raise ConfigFileError('cannot read %s: %s' % (path, error.strerror))


def atomic_write(path, data, mode=None):
    """Replace ``path`` with ``data`` by rename, keeping the existing file's mode, owner and group.

    A new file gets ``mode`` (default :data:`NEW_FILE_MODE`, 0600: a routing snippet may hold a secret header
    value; nginx reads its configuration as root, or as the user that runs it and wrote the file). The temporary
    file is created in the same directory (so the rename never crosses file systems) with mode 0600.
    """
    directory, name = os.path.split(path)
    try:
        current = os.stat(path)
    except OSError:
        current = None
    try:
        fd, temporary = tempfile.mkstemp(prefix='.%s.' % name, suffix='.canary-release.tmp', dir=directory)
    except OSError as error:
        raise ConfigFileError('cannot create a temporary file in %s: %s' % (directory, error.strerror))
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            if current is not None:
                take_over(handle.fileno(), current)
            else:
                os.fchmod(handle.fileno(), NEW_FILE_MODE if mode is None else mode)
            os.fsync(handle.fileno())
        os.rename(temporary, path)
    except (IOError, OSError) as error:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise ConfigFileError('cannot write %s: %s' % (path, getattr(error, 'strerror', error)))
    fsync_directory(directory)


def backup_copy(path):
    """Copy ``path`` to ``<path>.<pid>.<YYYY-MM-DD@HH:MM:SS>~`` (Ansible's backup name) and return the copy.

    The copy has the mode, owner, group and times of the original; it is created with mode 0600 and gets the
    original's mode only once it is complete, so a restricted file is never readable by others through its backup.
    """
    destination = '%s.%s.%s~' % (path, os.getpid(), time.strftime('%Y-%m-%d@%H:%M:%S', time.localtime()))
    created = False
    try:
        with open(path, 'rb') as source:
            current = os.fstat(source.fileno())
            fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            created = True
            with os.fdopen(fd, 'wb') as handle:
                shutil.copyfileobj(source, handle)
                handle.flush()
                take_over(handle.fileno(), current)
                os.fsync(handle.fileno())
        os.utime(destination, ns=(current.st_atime_ns, current.st_mtime_ns))
    except (IOError, OSError) as error:
        if created:
            try:
                os.unlink(destination)
            except OSError:
                pass
        raise ConfigFileError('cannot back up %s to %s: %s' % (path, destination, error))
    return destination


def run_command(argv, timeout=COMMAND_TIMEOUT):
    """Run ``argv`` without a shell; return ``(rc, stdout, stderr)``. A missing program gives rc 127."""
    try:
        completed = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                                   check=False)
    except OSError as error:
        return 127, '', 'cannot run %s: %s' % (argv[0], error.strerror or error)
    except subprocess.TimeoutExpired:
        return 124, '', '%s did not finish within %s seconds' % (argv[0], timeout)
    return completed.returncode, decode(completed.stdout), decode(completed.stderr)


def _restore(path, before_bytes):
    if before_bytes is None:
        os.unlink(path)
    else:
        atomic_write(path, before_bytes)


def update_file(path, transform, check_mode=False, validate_argv=(), reload_argv=(), backup=False,
                lock_timeout=DEFAULT_LOCK_TIMEOUT, create=False, command_timeout=COMMAND_TIMEOUT):
    """Change ``path`` with ``transform`` and make nginx load it; see the module docstring for the steps.

    ``transform(text)`` returns ``(new_text, info)``; ``text`` is None for a missing file when ``create`` is
    True (otherwise a missing file is an error). ``info`` is handed back in the result. In check mode the file
    is read and transformed but nothing is locked, written or run.
    """
    real = resolve_path(path)
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        raise ConfigFileError('%s does not exist (no directory %s)' % (path, directory))
    if not create and not os.path.exists(real):
        raise ConfigFileError('%s does not exist' % real)
    if check_mode:
        return _transform(real, transform, create)
    with FileLock(real, lock_timeout):
        result = _transform(real, transform, create)
        if not result.changed:
            return result
        before_bytes = None if result.before is None else encode(result.before)
        if backup and before_bytes is not None:
            result.backup_file = backup_copy(real)
        atomic_write(real, encode(result.after))
        for step, argv in (('validate', list(validate_argv)), ('reload', list(reload_argv))):
            if not argv:
                continue
            rc, stdout, stderr = run_command(argv, command_timeout)
            if rc != 0:
                restored = True
                restore_message = 'the previous content was restored'
                try:
                    _restore(real, before_bytes)
                except (ConfigFileError, OSError) as error:
                    restored = False
                    restore_message = 'restoring the previous content FAILED: %s' % error
                output = (stderr.strip() or stdout.strip() or '(no output)')
                raise ConfigFileError('%s command %s failed with rc %d; %s. Output: %s'
                                      % (step, ' '.join(shlex.quote(part) for part in argv), rc,
                                         restore_message, output),
                                      command=argv, rc=rc, stdout=stdout, stderr=stderr, restored=restored)
            if step == 'validate':
                result.validated = True
            else:
                result.reloaded = True
        return result


def _transform(real, transform, create):
    data = read_bytes(real)
    if data is None and not create:
        raise ConfigFileError('%s does not exist' % real)
    before = None if data is None else decode(data)
    after, info = transform(before)
    return UpdateResult(real, after != before, before, after, info)
