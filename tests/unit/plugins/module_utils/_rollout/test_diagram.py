"""docs/rollout.md shows the engine's state diagram as engine.mermaid() draws it: the picture cannot drift."""

import os
import re

from ansible_collections.canary.release.plugins.module_utils._rollout import engine

DOC = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', '..', 'docs', 'rollout.md')
REGENERATE = '''docs/rollout.md is out of date with the engine's TRANSITIONS. Regenerate the block with:

  .venv/bin/python - <<'PY'
  import re, sys
  sys.path[:0] = ['tests/output/collections']
  from ansible_collections.canary.release.plugins.module_utils._rollout import engine
  text = open('docs/rollout.md').read()
  block = '## State diagram' + text.split('## State diagram', 1)[1]
  new = re.sub(r'```mermaid\\n.*?```', lambda m: '```mermaid\\n' + engine.mermaid() + '```', block, count=1, flags=re.S)
  open('docs/rollout.md', 'w').write(text.replace(block, new))
  PY
'''


def diagram_in_docs():
    with open(DOC) as handle:
        text = handle.read()
    assert '\n## State diagram\n' in text, 'docs/rollout.md has no "## State diagram" section'
    section = text.split('\n## State diagram\n', 1)[1]
    match = re.search(r'```mermaid\n(.*?)```', section, re.S)
    assert match, 'the "State diagram" section of docs/rollout.md has no ```mermaid block'
    return match.group(1)


def test_the_docs_show_the_generated_diagram():
    assert diagram_in_docs() == engine.mermaid(), REGENERATE


def test_the_diagram_names_every_state_once_reachable():
    drawn = set(re.findall(r'^\s+(\S+) --> (\S+)', engine.mermaid(), re.M))
    states = set(state for pair in drawn for state in pair) - set(['[*]'])
    assert states == set(engine.STATES)
