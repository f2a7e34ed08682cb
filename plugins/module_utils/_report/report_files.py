# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Write the files of a report into a directory, only those whose bytes differ, each replaced atomically.

A file is written to a temporary file beside it, flushed, ``fsync``-ed and renamed over the old one (then the
directory is ``fsync``-ed), so a reader never sees half a report. A file whose current bytes are the new bytes is
left alone, which makes re-running a report with the same content report no change.

A file that is replaced keeps its mode, owner and group; a new file gets :data:`FILE_MODE` (0644) and a new
directory 0755 (both less the umask): a report holds no secret (the integration suite's secrets scan checks it) and
is meant to be read - published by a web server, attached to a ticket. To keep reports private, create the
directory with mode 0700 (or 0750 and a group) before the first release: it is never widened.
"""

import os

from ansible_collections.canary.release.plugins.module_utils.durable_files import fsync_directory, replace_file

FILE_MODE = 0o644
DIRECTORY_MODE = 0o755


class ReportFilesError(Exception):
    """The directory or a file cannot be written (nothing after the failing file was written)."""


def _current(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def write_files(dest, files, check_mode=False):
    """Write ``files`` (``[(name, bytes)]``) into directory ``dest`` (created when missing).

    Returns ``[{name, path, changed, size}]`` in the order given. With ``check_mode`` nothing is created or written;
    ``changed`` says what would change.
    """
    dest = os.path.abspath(os.path.expanduser(dest))
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise ReportFilesError('dest %s exists and is not a directory' % dest)
    if not check_mode:
        try:
            os.makedirs(dest, DIRECTORY_MODE, exist_ok=True)
        except OSError as error:
            raise ReportFilesError('cannot create %s: %s' % (dest, error.strerror or error))
    results = []
    written = False
    for name, data in files:
        path = os.path.join(dest, name)
        changed = _current(path) != data
        if changed and not check_mode:
            try:
                replace_file(path, data, FILE_MODE, keep_existing=True)
            except OSError as error:
                raise ReportFilesError('cannot write %s: %s' % (path, error.strerror or error))
            written = True
        results.append({'name': name, 'path': path, 'changed': changed, 'size': len(data)})
    if written:
        fsync_directory(dest)
    return results
