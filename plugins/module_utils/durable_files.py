# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Replacing files so that a crash leaves the old or the new content, never a part, and the replaced file keeps its
mode, owner and group; plus what the configuration-file writers (NGINX, HAProxy) share: the lock file beside a
file, reading and decoding any bytes, a backup copy, and running a command without a shell.

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

DEFAULT_LOCK_TIMEOUT = 60.0
NEW_FILE_MODE = 0o600
COMMAND_TIMEOUT = 120.0
ENCODING = 'utf-8'
ERRORS = 'surrogateescape'


class ConfigFileError(Exception):
    """Reading, locking, writing, validating or reloading a configuration file failed.

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


def fsync_directory(directory):
    """Flush a directory's entries (a rename into it) to disk; best effort where the platform refuses."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def existing_stat(path):
    """``os.stat(path)``, or None when there is no such file."""
    try:
        return os.stat(path)
    except OSError:
        return None


def take_over(fd, current):
    """Give the open file ``fd`` the permission bits, owner and group of ``current`` (an ``os.stat`` result).

    Only root may give a file to another user: a writer that is not root keeps the group when it is one of its
    own groups, and its own user. The mode is always kept (applied after the owner, which may clear set-id bits).
    """
    try:
        os.fchown(fd, current.st_uid, current.st_gid)
    except OSError:
        try:
            os.fchown(fd, -1, current.st_gid)
        except OSError:
            pass
    os.fchmod(fd, current.st_mode & 0o7777)


def _temporary_beside(path, data, mode, current, suffix):
    """Write ``data`` to a new temporary file (created 0600) in ``path``'s directory, fsynced; return its name.

    It gets the mode, owner and group of ``current`` (an ``os.stat`` result, :func:`take_over`) or, when that is
    None, ``mode``. Raises OSError, the temporary file removed.
    """
    directory, name = os.path.split(path)
    fd, temporary = tempfile.mkstemp(prefix='.%s.' % name, suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            if current is None:
                os.fchmod(handle.fileno(), mode)
            else:
                take_over(handle.fileno(), current)
            os.fsync(handle.fileno())
    except BaseException:
        discard_temporary(temporary)
        raise
    return temporary


def discard_temporary(temporary):
    """Remove a temporary file that is not going to be used; best effort."""
    try:
        os.unlink(temporary)
    except OSError:
        pass


def replace_file(path, data, mode, keep_existing=False):
    """Replace ``path`` with the bytes ``data``: a temporary file beside it, fsync, mode, rename.

    The new file gets ``mode``; with ``keep_existing``, a file that is replaced keeps its mode, owner and group
    (:func:`take_over`) and only a new file gets ``mode``. The temporary file is created with mode 0600, so the
    data is never readable by others on the way. Readers see the old content or the new one, never a part. The
    temporary file is removed on any failure. The caller fsyncs the directory (:func:`fsync_directory`) once its
    renames are done.
    """
    temporary = _temporary_beside(path, data, mode, existing_stat(path) if keep_existing else None, '.tmp')
    try:
        os.rename(temporary, path)
    except BaseException:
        discard_temporary(temporary)
        raise


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


def write_temporary(path, data, mode=None):
    """Write ``data`` to a new temporary file beside ``path`` and return its name; ``path`` is not touched.

    The temporary file gets the mode, owner and group of the existing ``path`` (:func:`take_over`), or ``mode``
    (default :data:`NEW_FILE_MODE`, 0600) when there is no such file, and is fsynced. It is created with mode 0600,
    so the data is never readable by others on the way, in the same directory, so that :func:`commit_temporary`
    never renames across file systems. Its name starts with a dot and ends with ``.canary-release.tmp``: directory
    includes by extension (``*.conf``, ``*.cfg``) do not load it. Raises :class:`ConfigFileError`.
    """
    try:
        return _temporary_beside(path, data, NEW_FILE_MODE if mode is None else mode, existing_stat(path),
                                 '.canary-release.tmp')
    except (IOError, OSError) as error:
        raise ConfigFileError('cannot write %s: %s' % (path, getattr(error, 'strerror', None) or error))


def commit_temporary(temporary, path):
    """Rename ``temporary`` over ``path`` and fsync the directory; on failure the temporary file is removed."""
    try:
        os.rename(temporary, path)
    except OSError as error:
        discard_temporary(temporary)
        raise ConfigFileError('cannot write %s: %s' % (path, error.strerror))
    fsync_directory(os.path.dirname(path))


def atomic_write(path, data, mode=None):
    """Replace ``path`` with ``data`` by rename, keeping the existing file's mode, owner and group.

    A new file gets ``mode`` (default :data:`NEW_FILE_MODE`, 0600: a routing snippet may hold a secret header
    value; the server reads its configuration as root, or as the user that runs it and wrote the file). See
    :func:`write_temporary`.
    """
    commit_temporary(write_temporary(path, data, mode), path)


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


def run_command(argv, timeout=COMMAND_TIMEOUT, cwd=None):
    """Run ``argv`` without a shell (in ``cwd``); return ``(rc, stdout, stderr)``. A missing program gives rc 127."""
    try:
        completed = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                                   check=False, cwd=cwd)
    except OSError as error:
        return 127, '', 'cannot run %s: %s' % (argv[0], error.strerror or error)
    except subprocess.TimeoutExpired:
        return 124, '', '%s did not finish within %s seconds' % (argv[0], timeout)
    return completed.returncode, decode(completed.stdout), decode(completed.stderr)
