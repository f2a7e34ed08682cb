"""The files the collection writes on a managed host keep the owner, group and mode of the file they replace.

One real nginx and one ansible-playbook run (as root, as in CI, so that ownership can be given away): the upstream
file and the routing snippet belong to ``nobody:adm`` with mode 0640 before the run; after nginx_weights (with a
backup) and nginx_canary_routing changed them, they and the backup still do, and a snippet the module creates is
0600 (it may hold a secret header value). The rollout record, lock and state directory (0600, 0700) and the report
files are checked in the unit tests and by the secrets scan in test_release.py.
"""

import grp
import os
import pwd
import stat

import pytest

from tests.support.nginx import NginxServer, find_nginx
from tests.support.playbook import run_playbook

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_nginx() is None, reason='nginx is not installed'),
    pytest.mark.skipif(os.geteuid() != 0, reason='giving a file to another user needs root'),
]

BACKENDS = ['canary-1', 'stable-1']


def owner_and_mode(path):
    status = os.stat(path)
    return status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)


@pytest.fixture
def nginx():
    server = NginxServer(BACKENDS)
    try:
        yield server
    finally:
        server.cleanup()


def test_nginx_files_keep_owner_group_and_mode_and_new_snippets_are_private(nginx):
    uid, gid = pwd.getpwnam('nobody').pw_uid, grp.getgrnam('adm').gr_gid
    a = nginx.addresses
    upstream = ('upstream app {\n    server %s;  # canary-1\n    server %s;  # stable-1\n}\n'
                % (a['canary-1'], a['stable-1']))
    nginx.start({'routing.conf': '# filled by nginx_canary_routing\n', 'upstream.conf': upstream,
                 'site.conf': nginx.default_site('app')})
    for name in ('upstream.conf', 'routing.conf'):
        os.chown(nginx.path(name), uid, gid)
        os.chmod(nginx.path(name), 0o640)
    commands = {'validate_command': nginx.validate_command, 'reload_command': nginx.reload_command}
    routing = {'upstream': 'app', 'canary_upstream': 'app_canary', 'canary_servers': [a['canary-1']],
               'header_values': [], 'sticky': True}  # no forcing header: only the file is under test
    run = run_playbook(tasks=[
        {'name': 'weights', 'canary.release.nginx_weights': dict(
            commands, path=nginx.path('upstream.conf'), upstream='app', canary=[a['canary-1']],
            canary_percent=25, backup=True)},
        {'name': 'routing', 'canary.release.nginx_canary_routing': dict(
            routing, path=nginx.path('routing.conf'), backup=True, **commands)},
        {'name': 'new snippet', 'canary.release.nginx_canary_routing': dict(
            routing, path=nginx.path('not-included.conf'), validate_command=nginx.validate_command, reload=False)},
    ])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    weights, snippet = run.result('weights'), run.result('routing')
    assert weights['changed'] and snippet['changed'] and run.result('new snippet')['changed']
    assert 'weight=' in nginx.read('upstream.conf').decode()
    kept = (uid, gid, 0o640)
    assert owner_and_mode(nginx.path('upstream.conf')) == kept
    assert owner_and_mode(nginx.path('routing.conf')) == kept
    assert owner_and_mode(weights['backup_file']) == kept and owner_and_mode(snippet['backup_file']) == kept
    assert owner_and_mode(nginx.path('not-included.conf')) == (0, 0, 0o600)
    # nothing else was left in the directory: no temporary file, and the lock files are private
    leftovers = sorted(name for name in os.listdir(nginx.conf_dir) if name.startswith('.'))
    assert all(name.endswith('.canary-release.lock') for name in leftovers), leftovers
    assert all(owner_and_mode(os.path.join(nginx.conf_dir, name))[2] == 0o600 for name in leftovers)
