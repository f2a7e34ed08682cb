# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""examples/execution-environment: ``ansible-builder create`` makes a build context of it (no container engine here),
whose introspection step, run on the installed artifact as the image build would, finds the collection's Python and
system requirements; the charts opt-in and ``dependencies.exclude`` of docs/awx.md do what it says; the Terraform
build step installs a verified binary."""

import hashlib
import http.server
import io
import os
import shlex
import shutil
import subprocess
import sys
import threading
import zipfile

import pytest
import yaml

from tests.galaxy.conftest import ROOT, VENV_BIN, clean_env, run

EXAMPLE = ROOT / 'examples' / 'execution-environment'
INSTALLER = EXAMPLE / 'install_terraform.py'


def create(tmp_path, change=None):
    """``ansible-builder create`` of the example (modified by ``change(definition)``); returns the context dir."""
    source = tmp_path / 'definition'
    shutil.copytree(EXAMPLE, source)
    if change:
        path = source / 'execution-environment.yml'
        definition = yaml.safe_load(path.read_text())
        change(definition)
        path.write_text(yaml.safe_dump(definition))
    context = tmp_path / 'context'
    run([VENV_BIN / 'ansible-builder', 'create', '-f', source / 'execution-environment.yml', '-c', context,
         '--output-filename', 'Containerfile'], env=clean_env())
    return context


def introspect(context, collections, tmp_path):
    """Run the Containerfile's introspect step on ``collections``; returns (pip lines, bindep lines) it writes."""
    lines = [line for line in (context / 'Containerfile').read_text().splitlines() if 'introspect.py introspect' in line]
    assert len(lines) == 1
    words = shlex.split(lines[0])
    options = [word.replace('/tmp/src/', '%s/' % tmp_path) for word in words[words.index('introspect') + 1:]]
    build = context / '_build'
    run([sys.executable, build / 'scripts' / 'introspect.py', 'introspect', collections] + options, cwd=build,
        env=clean_env())
    return tuple((tmp_path / name).read_text().splitlines() if (tmp_path / name).exists() else []
                 for name in ('requirements.txt', 'bindep.txt'))


def test_the_context_has_the_collections_and_the_terraform_step(tmp_path):
    context = create(tmp_path)
    containerfile = (context / 'Containerfile').read_text()
    requirements = yaml.safe_load((context / '_build' / 'requirements.yml').read_text())
    assert [entry['name'] for entry in requirements['collections']] == ['canary.release', 'amazon.aws', 'community.general']
    final = containerfile.split('FROM base AS final', 1)[1]
    steps = yaml.safe_load((EXAMPLE / 'execution-environment.yml').read_text())['additional_build_steps']['append_final']
    assert all(step in final for step in steps) and 'terraform version' in final
    assert (context / '_build' / 'terraform' / 'install_terraform.py').read_bytes() == INSTALLER.read_bytes()


def test_the_image_gets_the_collections_requirements_and_no_matplotlib(tmp_path, installed):
    pip, bindep = introspect(create(tmp_path), installed, tmp_path)
    ours = [line for line in pip if line.endswith('# from collection canary.release')]
    assert [line.split()[0] for line in ours] == ['boto3>=1.34.0', 'botocore>=1.34.0']
    assert not any(line.lower().startswith('matplotlib') for line in pip)
    assert 'python3 [platform:dpkg platform:rpm]  # from collection canary.release' in bindep


def test_charts_are_an_opt_in(tmp_path, installed):
    pip, _bindep = introspect(create(tmp_path, lambda d: d['dependencies'].update(python=['matplotlib>=3.8'])),
                              installed, tmp_path)
    assert 'matplotlib>=3.8  # from collection user' in pip


def test_exclude_drops_boto3_of_every_collection(tmp_path, installed):
    exclude = {'python': ['boto3', 'botocore']}
    pip, bindep = introspect(create(tmp_path, lambda d: d['dependencies'].update(exclude=exclude)), installed, tmp_path)
    assert not any(line.startswith(('boto3', 'botocore')) for line in pip)      # canary.release's and amazon.aws's
    assert 'python3 [platform:dpkg platform:rpm]  # from collection canary.release' in bindep


class Release(http.server.BaseHTTPRequestHandler):
    """HashiCorp's release layout, for one fake Terraform release (``files``: name -> bytes)."""

    files = {}

    def do_GET(self):  # pylint: disable=invalid-name
        body = self.files.get(self.path.rsplit('/', 1)[-1])
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b'')

    def log_message(self, *args):
        pass


@pytest.fixture
def release():
    binary = b'#!/bin/sh\necho "Terraform v9.9.9"\n'
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, 'w') as handle:
        handle.writestr('terraform', binary)
    zipped = archive.getvalue()
    Release.files = {'terraform_9.9.9_linux_amd64.zip': zipped,
                     'terraform_9.9.9_SHA256SUMS': ('%s  terraform_9.9.9_linux_amd64.zip\n'
                                                    % hashlib.sha256(zipped).hexdigest()).encode()}
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Release)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield 'http://127.0.0.1:%d/terraform' % server.server_address[1]
    server.shutdown()
    server.server_close()


def install(base_url, dest):
    return subprocess.run([sys.executable, INSTALLER, '--version', '9.9.9', '--arch', 'amd64', '--dest', dest,
                           '--base-url', base_url], capture_output=True, text=True, timeout=60, check=False)


def test_the_terraform_step_installs_the_verified_binary(release, tmp_path):
    done = install(release, tmp_path / 'bin')
    assert done.returncode == 0, done.stderr
    terraform = tmp_path / 'bin' / 'terraform'
    assert os.stat(terraform).st_mode & 0o777 == 0o755
    assert subprocess.run([terraform], capture_output=True, text=True, check=True).stdout == 'Terraform v9.9.9\n'


def test_the_terraform_step_refuses_a_zip_that_does_not_match_its_checksum(release, tmp_path):
    Release.files['terraform_9.9.9_linux_amd64.zip'] += b'tampered'
    done = install(release, tmp_path / 'bin')
    assert done.returncode == 1 and 'the SHA256SUMS file lists' in done.stderr
    assert not (tmp_path / 'bin' / 'terraform').exists()
