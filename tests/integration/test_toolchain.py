"""The toolchain itself: the collection artifact and the offline pip bootstrap stand-in."""

import os
import subprocess
import sys
import tarfile

import pytest

from tests.support.paths import BIN_DIR, REPO_ROOT

pytestmark = pytest.mark.integration


def test_galaxy_build_holds_the_collection_and_nothing_else(tmp_path):
    subprocess.run([os.path.join(BIN_DIR, 'ansible-galaxy'), 'collection', 'build', '--force',
                    '--output-path', str(tmp_path), REPO_ROOT], check=True, capture_output=True)
    artifact = tmp_path / 'canary-release-0.1.0.tar.gz'
    with tarfile.open(artifact) as archive:
        names = archive.getnames()
    assert 'MANIFEST.json' in names and 'galaxy.yml' not in names
    assert any(name.startswith('plugins/modules/') for name in names)
    leaked = [name for name in names
              if name.startswith(('.venv', 'tests/output', '.git/', 'bench/scratch')) or '__pycache__' in name]
    assert leaked == []


def test_offline_get_pip_stand_in_bootstraps_the_requested_pip(tmp_path):
    """Run the stand-in the way ansible-test runs get-pip.py, in a venv that has no pip."""
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    python = str(venv / 'bin' / 'python')
    wanted = '24.2'
    completed = subprocess.run(
        [python, os.path.join(REPO_ROOT, 'tools', 'get_pip_offline.py'), '--disable-pip-version-check',
         'pip==' + wanted, '--no-setuptools', '--no-wheel'],
        capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    version = subprocess.run([python, '-m', 'pip', '--version'], capture_output=True, text=True, check=True).stdout
    assert version.startswith('pip %s ' % wanted)
