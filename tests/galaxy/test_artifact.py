# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the artifact holds: everything a user of the installed collection needs, and none of the checkout's harness."""

import fnmatch
import subprocess
import tarfile

import yaml

from tests.galaxy.conftest import ROOT

MAX_BYTES = 400 * 1000
# Shipped in full: every file git tracks below these must be in the artifact.
SHIPPED = ('plugins', 'roles', 'playbooks', 'meta', 'changelogs/changelog.yaml', 'terraform/modules', 'examples/execution-environment',
           'examples/awx/workflow.yml', 'dashboards/canary_release.json', 'COPYING', 'README.md', 'CHANGELOG.rst', 'requirements.txt', 'bindep.txt')
# Only run from a checkout, or generated there (galaxy.yml says why): never in the artifact.
NOT_SHIPPED = ('bench/*', 'tools/*', 'molecule/*', '.config/*', 'docs/*', 'changelogs/fragments/*', 'examples/local/*',
               'examples/awx/project/*',
               'dashboards/*.py', 'dashboards/*.png', 'tests/*', 'Makefile', 'pytest.ini', '.venv*', '*/__pycache__/*', '*.pyc',
               '*.tfstate', '*.tfstate.*', '*/.terraform/*', '*.tar.gz')
SHIPPED_TESTS = 'tests/sanity/*'


def test_the_artifact_is_small(artifact):
    size = artifact.stat().st_size
    assert size < MAX_BYTES, '%s is %d bytes, more than %d: see galaxy.yml build_ignore' % (artifact.name, size, MAX_BYTES)


def test_copying_is_the_full_gpl3_text(members, artifact):
    with tarfile.open(artifact) as archive:
        text = archive.extractfile(members['COPYING']).read()
    assert text == (ROOT / 'COPYING').read_bytes()
    assert b'GNU GENERAL PUBLIC LICENSE' in text and b'Version 3, 29 June 2007' in text
    assert b'END OF TERMS AND CONDITIONS' in text and b'How to Apply These Terms to Your New Programs' in text


def test_nothing_of_the_checkout_harness_is_shipped(members):
    harness = [name for name in members if any(fnmatch.fnmatch(name, pattern) for pattern in NOT_SHIPPED)]
    unwanted = sorted(name for name in harness if not fnmatch.fnmatch(name, SHIPPED_TESTS))
    assert unwanted == []


def test_everything_a_user_needs_is_shipped(members):
    tracked = subprocess.run(['git', 'ls-files', '-z', '--'] + list(SHIPPED), cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split('\0')
    assert len(tracked) > 150  # git listed the tree (not an empty answer)
    assert sorted(name for name in tracked if name and name not in members) == []


def test_the_files_ansible_builder_reads_are_shipped(members, artifact):
    with tarfile.open(artifact) as archive:
        definition = yaml.safe_load(archive.extractfile(members['meta/execution-environment.yml']))
    dependencies = definition['dependencies']
    assert {dependencies['python'], dependencies['system']} <= set(members)
