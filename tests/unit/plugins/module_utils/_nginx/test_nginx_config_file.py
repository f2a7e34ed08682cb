"""The file-apply core: lock, atomic write, backup, validate/reload with restore. Real files, real commands."""

import multiprocessing
import os
import re
import stat
import sys
import time

import pytest

from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_config_file import (
    ConfigFileError,
    FileLock,
    atomic_write,
    lock_file_path,
    run_command,
    split_command,
    update_file,
)

ORIGINAL = b'upstream app {\r\n    server 10.0.0.1:80;  # caf\xc3\xa9 \xff\r\n}\r\n'


def shell(script):
    """A real command line (argv) that runs ``script`` with /bin/sh."""
    return ['/bin/sh', '-c', script]


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / 'upstream.conf'
    path.write_bytes(ORIGINAL)
    os.chmod(path, 0o640)
    return path


def replace(old, new):
    def transform(text):
        return text.replace(old, new), 'info'
    return transform


def test_unchanged_text_writes_and_runs_nothing(conf, tmp_path):
    marker = tmp_path / 'ran'
    inode = conf.stat().st_ino
    result = update_file(str(conf), lambda text: (text, None), validate_argv=shell('echo v >> %s' % marker),
                         reload_argv=shell('echo r >> %s' % marker))
    assert not result.changed
    assert conf.stat().st_ino == inode
    assert not marker.exists()


def test_change_is_written_atomically_then_validated_then_reloaded(conf, tmp_path):
    marker = tmp_path / 'ran'
    inode = conf.stat().st_ino
    # The validate command sees the new content in place: it copies the file it validates.
    result = update_file(str(conf), replace('10.0.0.1:80;', '10.0.0.1:80 weight=2;'),
                         validate_argv=shell('cat %s > %s.seen; echo v >> %s' % (conf, marker, marker)),
                         reload_argv=shell('echo r >> %s' % marker))
    expected = ORIGINAL.replace(b'10.0.0.1:80;', b'10.0.0.1:80 weight=2;')
    assert result.changed and result.validated and result.reloaded and result.info == 'info'
    assert conf.read_bytes() == expected
    assert (tmp_path / 'ran.seen').read_bytes() == expected
    assert marker.read_text() == 'v\nr\n'
    assert conf.stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640
    assert not [name for name in os.listdir(tmp_path) if name.endswith('.tmp')]


def test_owner_and_group_are_kept(conf):
    if os.geteuid() != 0:
        pytest.skip('changing ownership needs root')
    os.chown(conf, 65534, 65534)
    update_file(str(conf), replace('10.0.0.1:80;', '10.0.0.1:80 down;'))
    assert (conf.stat().st_uid, conf.stat().st_gid) == (65534, 65534)


@pytest.mark.parametrize('step', ['validate', 'reload'])
def test_failed_command_restores_previous_bytes(conf, tmp_path, step):
    marker = tmp_path / 'ran'
    failing = shell('echo "nginx: [emerg] unknown directive \\"bogus\\"" >&2; exit 1')
    fine = shell('echo ok >> %s' % marker)
    with pytest.raises(ConfigFileError) as caught:
        update_file(str(conf), replace('10.0.0.1:80;', '10.0.0.1:80 weight=9;'),
                    validate_argv=failing if step == 'validate' else fine,
                    reload_argv=failing if step == 'reload' else fine)
    error = caught.value
    assert conf.read_bytes() == ORIGINAL
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640
    assert error.restored is True and error.rc == 1
    assert 'unknown directive "bogus"' in str(error) and 'unknown directive' in error.stderr
    assert str(error).startswith(step + ' command')
    # A failed validation never reaches the reload.
    assert marker.exists() == (step == 'reload')


def test_missing_command_fails_and_restores(conf):
    with pytest.raises(ConfigFileError, match='rc 127'):
        update_file(str(conf), replace('10.0.0.1:80;', '10.0.0.1:80 down;'),
                    validate_argv=['/nonexistent/nginx', '-t'])
    assert conf.read_bytes() == ORIGINAL


def test_transform_error_leaves_file_and_lock_free(conf):
    def broken(text):
        raise ValueError('no such server')
    with pytest.raises(ValueError):
        update_file(str(conf), broken)
    assert conf.read_bytes() == ORIGINAL
    update_file(str(conf), replace('10.0.0.1:80;', '10.0.0.1:80 down;'), lock_timeout=0.5)


def test_backup_copy_has_previous_content(conf):
    result = update_file(str(conf), replace('10.0.0.1:80;', '10.0.0.1:80 weight=3;'), backup=True)
    assert re.match(re.escape(str(conf)) + r'\.\d+\.\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d~$', result.backup_file)
    with open(result.backup_file, 'rb') as handle:
        assert handle.read() == ORIGINAL


def test_check_mode_reads_only(conf, tmp_path):
    before = sorted(os.listdir(tmp_path))
    result = update_file(str(conf), replace('10.0.0.1:80;', '10.0.0.1:80 weight=3;'), check_mode=True,
                         validate_argv=shell('exit 1'), backup=True)
    assert result.changed and result.after != result.before and result.backup_file is None
    assert conf.read_bytes() == ORIGINAL
    assert sorted(os.listdir(tmp_path)) == before  # not even a lock file


def test_symlink_is_followed_and_kept(conf, tmp_path):
    link = tmp_path / 'enabled.conf'
    link.symlink_to(conf)
    result = update_file(str(link), replace('10.0.0.1:80;', '10.0.0.1:80 down;'))
    assert link.is_symlink()
    assert result.path == str(conf)
    assert b'10.0.0.1:80 down;' in conf.read_bytes()


def test_missing_file_is_an_error_unless_created(tmp_path):
    path = tmp_path / 'snippet.conf'
    with pytest.raises(ConfigFileError, match='does not exist'):
        update_file(str(path), lambda text: ('x;\n', None))
    assert not path.exists()
    with pytest.raises(ConfigFileError):
        update_file(str(path), lambda text: ('x;\n', None), create=True, validate_argv=shell('exit 3'))
    assert not path.exists()  # a file that did not exist is removed again
    result = update_file(str(path), lambda text: ('x;\n', text), create=True)
    assert result.changed and result.before is None and result.info is None
    assert path.read_text() == "x;\n" and stat.S_IMODE(path.stat().st_mode) == 0o600  # may hold a secret header value


def test_directory_is_rejected(tmp_path):
    with pytest.raises(ConfigFileError, match='is a directory'):
        update_file(str(tmp_path), lambda text: (text, None))


def test_atomic_write_new_file_mode(tmp_path):
    path = tmp_path / 'new.conf'
    atomic_write(str(path), b'a', mode=0o600)
    assert path.read_bytes() == b'a' and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_lock_file_is_beside_the_file(conf):
    assert lock_file_path(str(conf)) == os.path.join(os.path.dirname(str(conf)), '.upstream.conf.canary-release.lock')


def test_lock_wait_is_bounded(conf):
    with FileLock(str(conf)):
        started = time.monotonic()
        with pytest.raises(ConfigFileError, match='another run holds'):
            update_file(str(conf), replace('10.0.0.1:80;', '10.0.0.1:80 down;'), lock_timeout=0.3)
        assert 0.3 <= time.monotonic() - started < 5
    assert conf.read_bytes() == ORIGINAL


def _increment(path, start_event, results):
    """Read the counter, wait a little (widening the race window), write counter + 1."""
    start_event.wait(10)

    def transform(text):
        value = int(text)
        time.sleep(0.02)
        return '%d' % (value + 1), None
    try:
        update_file(path, transform, lock_timeout=30)
        results.put('ok')
    except Exception as error:  # pragma: no cover - reported to the parent
        results.put(repr(error))


def test_concurrent_processes_never_lose_an_update(tmp_path):
    path = tmp_path / 'counter'
    path.write_text('0')
    context = multiprocessing.get_context('fork')
    start_event = context.Event()
    results = context.Queue()
    workers = [context.Process(target=_increment, args=(str(path), start_event, results)) for dummy in range(12)]
    for worker in workers:
        worker.start()
    start_event.set()
    outcomes = [results.get(timeout=60) for dummy in workers]
    for worker in workers:
        worker.join(30)
    assert outcomes == ['ok'] * 12
    assert path.read_text() == '12'


def test_split_command():
    assert split_command("nginx -p '/opt/my nginx' -t") == ['nginx', '-p', '/opt/my nginx', '-t']
    assert split_command('') == []
    assert split_command(['a', 1]) == ['a', '1']
    with pytest.raises(ConfigFileError, match='cannot split'):
        split_command('nginx "-t')


def test_run_command_reports_output_and_missing_programs():
    rc, out, err = run_command([sys.executable, '-c', 'import sys; print("o"); sys.stderr.write("e"); sys.exit(4)'])
    assert (rc, out, err) == (4, 'o\n', 'e')
    assert run_command(['/nonexistent/x'])[0] == 127
    assert run_command([sys.executable, '-c', 'import time; time.sleep(5)'], timeout=0.2)[0] == 124
