# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Helpers that make file replacements survive a crash."""


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


def replace_file(path, data, mode):
    """Replace ``path`` with the bytes ``data``: a temporary file beside it, fsync, ``mode``, rename.

    Readers see the old content or the new one, never a part. The temporary file is removed on any failure.
    The caller fsyncs the directory (:func:`fsync_directory`) once its renames are done.
    """
    directory, name = os.path.split(path)
    fd, temporary = tempfile.mkstemp(prefix='.%s.' % name, suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.rename(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
