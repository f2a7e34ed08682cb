"""File modes and owners: what a replaced file keeps, what a new file gets (reports here, nginx and state elsewhere)."""

import os
import stat

import pytest

from ansible_collections.canary.release.plugins.module_utils._report.report_files import write_files
from ansible_collections.canary.release.plugins.module_utils.durable_files import replace_file

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='giving a file to another user needs root')


def owner_and_mode(path):
    status = os.stat(str(path))
    return status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)


def test_a_new_file_gets_the_mode_asked_for_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        replace_file(str(tmp_path / 'a'), b'x', 0o600)
        replace_file(str(tmp_path / 'b'), b'x', 0o600, keep_existing=True)
    finally:
        os.umask(old)
    assert owner_and_mode(tmp_path / 'a')[2] == owner_and_mode(tmp_path / 'b')[2] == 0o600


def test_without_keep_existing_the_mode_is_reset(tmp_path):
    path = tmp_path / 'record.json'
    path.write_bytes(b'{}')
    path.chmod(0o644)
    replace_file(str(path), b'{"a": 1}', 0o600)
    assert owner_and_mode(path)[2] == 0o600 and path.read_bytes() == b'{"a": 1}'


@needs_root
def test_a_replaced_file_keeps_owner_group_and_mode(tmp_path):
    path = tmp_path / 'page.html'
    path.write_bytes(b'old')
    os.chown(str(path), 65534, 4)
    path.chmod(0o640)
    replace_file(str(path), b'new', 0o644, keep_existing=True)
    assert owner_and_mode(path) == (65534, 4, 0o640) and path.read_bytes() == b'new'
    assert os.listdir(str(tmp_path)) == ['page.html']  # no temporary file left


def test_report_files_new_ones_are_0644_replaced_ones_keep_their_mode(tmp_path):
    dest = tmp_path / 'reports' / 'web-1.4.0'
    old = os.umask(0o022)
    try:
        write_files(str(dest), [('report.json', b'{}'), ('report.html', b'<p>')])
        (dest / 'report.html').chmod(0o640)
        dest.chmod(0o750)
        write_files(str(dest), [('report.json', b'{"a": 1}'), ('report.html', b'<p>new')])
    finally:
        os.umask(old)
    assert owner_and_mode(dest / 'report.json')[2] == 0o644
    assert owner_and_mode(dest / 'report.html')[2] == 0o640 and (dest / 'report.html').read_bytes() == b'<p>new'
    assert owner_and_mode(dest)[2] == 0o750  # an existing directory is never widened
