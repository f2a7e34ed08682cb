# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Helpers that make file replacements survive a crash and keep the replaced file's mode, owner and group."""


import os
import tempfile


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


def replace_file(path, data, mode, keep_existing=False):
    """Replace ``path`` with the bytes ``data``: a temporary file beside it, fsync, mode, rename.

    The new file gets ``mode``; with ``keep_existing``, a file that is replaced keeps its mode, owner and group
    (:func:`take_over`) and only a new file gets ``mode``. The temporary file is created with mode 0600, so the
    data is never readable by others on the way. Readers see the old content or the new one, never a part. The
    temporary file is removed on any failure. The caller fsyncs the directory (:func:`fsync_directory`) once its
    renames are done.
    """
    directory, name = os.path.split(path)
    current = existing_stat(path) if keep_existing else None
    fd, temporary = tempfile.mkstemp(prefix='.%s.' % name, suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            if current is None:
                os.fchmod(handle.fileno(), mode)
            else:
                take_over(handle.fileno(), current)
            os.fsync(handle.fileno())
        os.rename(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
