# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""galaxy-importer (the code Galaxy runs on every upload) on the built artifact: no error, no warning, every doc.

It runs from .venv-galaxy (tests/galaxy/requirements.txt says why) with tests/galaxy/galaxy-importer.cfg: ansible-doc,
ansible-lint (production profile, offline) and flake8, no ansible-test (it needs a container engine). The tools it
starts are found on PATH: ansible-doc and ansible-lint from .venv, where the ansible package provides the amazon.aws
doc fragments the AWS modules extend (with ansible-core alone ansible-doc fails and Galaxy would show no module doc);
flake8 from .venv-galaxy.
"""

import copy
import json
import os
import pathlib
import re

import pytest

from tests.galaxy.conftest import GALAXY_VENV_BIN, ROOT, VENV_BIN, clean_env, run

CONFIG = ROOT / 'tests' / 'galaxy' / 'galaxy-importer.cfg'
# Plugin types whose every file must come with its docs in the import result (a filter file here holds one filter
# of the file's name).
DOCUMENTED = {'module': 'plugins/modules', 'lookup': 'plugins/lookup', 'filter': 'plugins/filter'}
PROBLEM = re.compile(r'^(WARNING|ERROR|CRITICAL)\b')


@pytest.fixture(scope='module')
def imported(artifact, tmp_path_factory):
    """``(log lines, result)`` of ``python -m galaxy_importer.main ARTIFACT``."""
    work = tmp_path_factory.mktemp('importer')
    env = clean_env(GALAXY_IMPORTER_CONFIG=str(CONFIG),
                    PATH=os.pathsep.join([str(VENV_BIN), str(GALAXY_VENV_BIN), os.environ.get('PATH', '')]))
    done = run([GALAXY_VENV_BIN / 'python', '-m', 'galaxy_importer.main', artifact], cwd=work, env=env)
    (ROOT / 'tests' / 'output' / 'galaxy-importer.log').write_text(done.stdout + done.stderr)
    with open(work / 'importer_result.json') as handle:
        return done.stdout.splitlines(), json.load(handle)


def expected_plugins(members):
    """``{(type, name)}`` of the plugins whose docs Galaxy must show, from the artifact's files."""
    found = set()
    for kind, directory in DOCUMENTED.items():
        for name in members:
            path = pathlib.PurePosixPath(name)
            if str(path.parent) == directory and path.suffix == '.py' and path.name != '__init__.py':
                found.add((kind, path.stem))
    return found


def missing_docs(result, expected):
    """The plugins of ``expected`` without complete docs in the importer's result, each with what it lacks."""
    docs = dict(((entry['content_type'], entry['content_name']), entry.get('doc_strings') or {})
                for entry in result['docs_blob']['contents'])
    problems = []
    for kind, name in sorted(expected):
        strings = docs.get((kind, name)) or {}
        doc = strings.get('doc') or {}
        lacking = [part for part, present in (('doc', doc.get('short_description')), ('examples', strings.get('examples')),
                                              ('return', kind == 'module' or strings.get('return')),
                                              ('options', kind == 'filter' or doc.get('options')))
                   if not present]
        if lacking:
            problems.append('%s %s: no %s' % (kind, name, ', '.join(lacking)))
    return problems


def test_the_import_has_no_error_and_no_warning(imported):
    lines, _result = imported
    assert [line for line in lines if PROBLEM.match(line)] == []
    assert 'Importer processing completed successfully' in lines


def test_ansible_doc_ansible_lint_and_flake8_ran(imported, members):
    lines, _result = imported
    assert 'Getting doc strings via ansible-doc' in lines and not any('ansible-doc not found' in line for line in lines)
    assert any(line.startswith('Linting collection via ansible-lint') for line in lines)
    assert '...ansible-lint run complete' in lines
    linted = [line for line in lines if line.endswith('via flake8...')]
    plugins = [name for name in members if name.startswith('plugins/') and name.endswith('.py')]
    plugins = [name for name in plugins if not name.endswith('__init__.py')]
    assert len(linted) == len(plugins) and not any('flake8 not found' in line for line in lines)


def test_every_module_lookup_and_filter_has_its_docs(imported, members):
    _lines, result = imported
    expected = expected_plugins(members)
    assert len([kind for kind, _name in expected if kind == 'module']) >= 9
    assert len([kind for kind, _name in expected if kind == 'lookup']) >= 2
    assert missing_docs(result, expected) == []


def test_the_aws_modules_have_the_amazon_aws_options(imported):
    """The options of the amazon.aws doc fragments are there: ansible-doc found the collection the module extends."""
    _lines, result = imported
    docs = dict((entry['content_name'], entry['doc_strings']) for entry in result['docs_blob']['contents']
                if entry['content_type'] == 'module')
    for module in ('alb_weights', 'alb_canary_rule', 'cloudwatch_metrics'):
        assert {'region', 'access_key', 'endpoint_url'} <= {option['name'] for option in docs[module]['doc']['options']}, module


def test_a_dropped_doc_would_fail_the_stage(imported, members):
    _lines, result = imported
    broken = copy.deepcopy(result)
    for entry in broken['docs_blob']['contents']:
        if (entry['content_type'], entry['content_name']) in (('module', 'alb_weights'), ('lookup', 'promql')):
            entry['doc_strings'] = None
    assert missing_docs(broken, expected_plugins(members)) == [
        'lookup promql: no doc, examples, return, options', 'module alb_weights: no doc, examples, options']


def test_metadata_license_and_docs(imported, members):
    _lines, result = imported
    assert result['metadata']['license'] == ['GPL-3.0-or-later'] and result['metadata']['license_file'] is None
    assert result['requires_ansible']
    shipped_docs = sorted(pathlib.PurePosixPath(name).name for name in members
                          if name.startswith('docs/') and name.endswith('.md') and name.count('/') == 1)
    assert sorted(entry['name'] for entry in result['docs_blob']['documentation_files']) == shipped_docs
