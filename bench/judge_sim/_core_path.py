"""Make the collection importable as ``ansible_collections.canary.release`` from a plain checkout."""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ensure_collection_importable():
    try:
        import ansible_collections.canary.release.plugins.module_utils._judge.sequential_counts  # noqa: F401
        return
    except ImportError:
        pass
    for root in (os.path.join(REPO, 'tests', 'output', 'collections'), os.path.join(REPO, 'bench', 'scratch', 'collections')):
        link = os.path.join(root, 'ansible_collections', 'canary', 'release')
        if root.endswith(os.path.join('bench', 'scratch', 'collections')) and not os.path.exists(link):
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(REPO, link)
        if os.path.exists(link):
            sys.path.insert(0, root)
            for name in [name for name in sys.modules if name.startswith('ansible_collections')]:
                del sys.modules[name]
            try:
                import ansible_collections.canary.release.plugins.module_utils._judge.sequential_counts  # noqa: F401,F811
                return
            except ImportError:
                sys.path.remove(root)
    raise ImportError('cannot import ansible_collections.canary.release from %s' % REPO)
