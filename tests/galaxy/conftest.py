# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Stage galaxy: the built artifact as Galaxy and ansible-builder meet it. The artifact is built once per run."""

import os
import pathlib
import subprocess
import sys
import tarfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = pathlib.Path(sys.executable).parent
GALAXY_VENV_BIN = ROOT / '.venv-galaxy' / 'bin'
BUILD_DIR = ROOT / 'tests' / 'output' / 'build'


def run(command, **kwargs):
    """Run ``command``; fail the test with its output when it exits non-zero."""
    kwargs.setdefault('timeout', 600)
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        pytest.fail('%s exited %d\n%s\n%s' % (' '.join(map(str, command)), done.returncode, done.stdout, done.stderr))
    return done


def clean_env(**extra):
    """The environment without this checkout's ANSIBLE_*/CANARY_* settings: tools see the artifact only."""
    env = dict((key, value) for key, value in os.environ.items() if not key.startswith(('ANSIBLE_', 'CANARY_')))
    env.update(extra)
    return env


@pytest.fixture(scope='session')
def galaxy():
    with open(ROOT / 'galaxy.yml') as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope='session')
def artifact(galaxy):
    """The path of the artifact ``ansible-galaxy collection build`` makes from the checkout (as ``make build``)."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    run([VENV_BIN / 'ansible-galaxy', 'collection', 'build', '--force', '--output-path', BUILD_DIR, ROOT],
        env=clean_env())
    path = BUILD_DIR / ('%s-%s-%s.tar.gz' % (galaxy['namespace'], galaxy['name'], galaxy['version']))
    assert path.is_file()
    return path


@pytest.fixture(scope='session')
def members(artifact):
    """``{path: TarInfo}`` of the artifact's files (directories left out)."""
    with tarfile.open(artifact) as archive:
        return dict((info.name, info) for info in archive.getmembers() if not info.isdir())


@pytest.fixture(scope='session')
def installed(artifact, tmp_path_factory):
    """A collections path with the artifact installed, and amazon.aws and community.general of the ansible package."""
    path = tmp_path_factory.mktemp('collections')
    run([VENV_BIN / 'ansible-galaxy', 'collection', 'install', '--offline', '--no-deps', '--force', '-p', path, artifact],
        env=clean_env())
    import ansible_collections  # pylint: disable=import-outside-toplevel
    for namespace, name in (('amazon', 'aws'), ('community', 'general')):
        shipped = [pathlib.Path(entry) / namespace / name for entry in ansible_collections.__path__
                   if (pathlib.Path(entry) / namespace / name / 'MANIFEST.json').is_file()]
        assert shipped, '%s.%s is not installed (the ansible package)' % (namespace, name)
        (path / 'ansible_collections' / namespace).mkdir(parents=True, exist_ok=True)
        (path / 'ansible_collections' / namespace / name).symlink_to(shipped[0])
    return path
