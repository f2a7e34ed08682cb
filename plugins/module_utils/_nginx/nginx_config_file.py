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


import os
import shlex

from ansible_collections.canary.release.plugins.module_utils.durable_files import (
    COMMAND_TIMEOUT,
    DEFAULT_LOCK_TIMEOUT,
    NEW_FILE_MODE,
    ConfigFileError,
    FileLock,
    atomic_write,
    backup_copy,
    decode,
    encode,
    lock_file_path,
    read_bytes,
    resolve_path,
    run_command,
    split_command,
)

DEFAULT_VALIDATE_COMMAND = 'nginx -t'
DEFAULT_RELOAD_COMMAND = 'nginx -s reload'

# The file machinery lives in durable_files (HAProxy uses it too); these names stay importable from here.
__all__ = ['COMMAND_TIMEOUT', 'DEFAULT_LOCK_TIMEOUT', 'DEFAULT_RELOAD_COMMAND', 'DEFAULT_VALIDATE_COMMAND',
           'NEW_FILE_MODE', 'ConfigFileError', 'FileLock', 'UpdateResult', 'atomic_write', 'backup_copy', 'decode',
           'encode', 'lock_file_path', 'read_bytes', 'resolve_path', 'run_command', 'split_command', 'update_file']


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
