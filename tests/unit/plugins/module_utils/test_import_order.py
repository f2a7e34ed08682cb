# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""plugins/module_utils imports downward only: the families and their order are written here, once.

A file belongs to the family of its package (``_judge/judge.py`` -> ``_judge``); the top-level files are the
``foundation`` (``time_spec``, ``durable_files``) except ``rollout_state``, which is the module face of ``_rollout``.
A file may import from its own family and from the families of lower layers, never from another family of its own
layer or from a higher one; and no group of files may import each other in a circle.
"""

import ast
import os

import pytest

MODULE_UTILS = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'plugins', 'module_utils')
PREFIX = 'ansible_collections.canary.release.plugins.module_utils'

# Lowest first. Families of one layer are independent of each other.
LAYERS = (
    ('foundation',),                  # time_spec, durable_files: the standard library only
    ('_common',),                     # JSON cleaning, the AWS retry, weight arithmetic, forced-canary policy: shared
    ('_sources', '_loadtest'),        # Prometheus and CloudWatch clients, the series shapes they return; the synthetic load
    ('_judge', '_nginx', '_alb', '_haproxy'),  # the judge; the traffic backends
    ('_analysis',),                   # metrics -> plan -> fetch -> judge, and the modules' client set-up
    ('_report',),                     # the rollout report: the analysis' plan and the judge's windows
    ('_rollout',),                    # the release engine (and its module face rollout_state.py)
    ('_observe',),                    # the release's state published as metrics: the engine's words
)
RANK = dict((family, rank) for rank, layer in enumerate(LAYERS) for family in layer)
TOP_LEVEL_FAMILY = {'rollout_state': '_rollout'}


def family_of(module):
    """``_judge`` for ``_judge.judge``; ``foundation`` (or the mapped family) for a top-level file."""
    head = module.split('.')[0]
    if head.startswith('_'):
        return head
    return TOP_LEVEL_FAMILY.get(head, 'foundation')


def collection_imports(path):
    """The module_utils modules (dotted, relative to module_utils) that the file at ``path`` imports."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            rest = node.module[len(PREFIX):].lstrip('.')
            if rest:
                found.add(rest)
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name[len(PREFIX):].lstrip('.') for alias in node.names
                         if alias.name.startswith(PREFIX + '.'))
    return found


def module_graph(root=MODULE_UTILS):
    """``{module: set(imported modules)}`` over every .py file below ``root`` (packages' __init__ included)."""
    graph = {}
    for directory, _dirs, files in os.walk(root):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)[:-3].replace(os.sep, '.')
            if relative.endswith('.__init__'):
                relative = relative[:-len('.__init__')]
            graph[relative] = collection_imports(path)
    return graph


def layer_violations(graph):
    problems = []
    for module, imports in sorted(graph.items()):
        family = family_of(module)
        if family not in RANK:
            problems.append('%s: family %s is not in LAYERS (add it where it belongs)' % (module, family))
            continue
        for imported in sorted(imports):
            target = family_of(imported)
            if target == family:
                continue
            if target not in RANK or RANK[target] >= RANK[family]:
                problems.append('%s (%s) imports %s (%s): only lower layers may be imported'
                                % (module, family, imported, target))
    return problems


def cycles(graph):
    """Every import cycle between modules, each as a list ending where it started."""
    found, state, stack = [], {}, []

    def visit(module):
        state[module] = 'open'
        stack.append(module)
        for imported in sorted(graph.get(module, ())):
            if imported not in graph:
                continue
            if state.get(imported) == 'open':
                found.append(stack[stack.index(imported):] + [imported])
            elif imported not in state:
                visit(imported)
        stack.pop()
        state[module] = 'done'

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_every_family_is_placed_and_imports_downward_only():
    graph = module_graph()
    assert '_judge.judge' in graph and '_analysis.analysis_run' in graph
    assert layer_violations(graph) == []


def test_no_import_cycles():
    assert cycles(module_graph()) == []


def test_imports_resolve_to_files():
    graph = module_graph()
    missing = ['%s imports %s' % (module, imported) for module, imports in graph.items() for imported in imports
               if imported not in graph]
    assert missing == []


@pytest.mark.parametrize('graph, expected', [
    ({'_judge.judge': {'_analysis.analysis_run'}, '_analysis.analysis_run': set()}, 1),   # upward
    ({'_nginx.nginx_traffic': {'_alb.alb_arns'}, '_alb.alb_arns': set()}, 1),             # same layer, other family
    ({'_judge.judge': {'_sources.metric_series'}, '_sources.metric_series': {'time_spec'}, 'time_spec': set()}, 0),
    ({'_mystery.thing': set()}, 1),                                                         # family not placed
])
def test_layer_rule_catches_upward_and_sideways_imports(graph, expected):
    assert len(layer_violations(graph)) == expected


def test_cycle_finder():
    graph = {'_judge.a': {'_judge.b'}, '_judge.b': {'_judge.c'}, '_judge.c': {'_judge.a'}, '_judge.d': {'_judge.a'}}
    assert cycles(graph) == [['_judge.a', '_judge.b', '_judge.c', '_judge.a']]
    assert cycles({'_judge.a': {'_judge.b'}, '_judge.b': set()}) == []
