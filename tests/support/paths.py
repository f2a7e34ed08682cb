"""Where the checkout, its collection tree and the test virtual environment are."""

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The Makefile links the checkout into <COLLECTIONS_ROOT>/ansible_collections/canary/release and exports it.
COLLECTIONS_ROOT = os.environ.get('CANARY_COLLECTIONS_ROOT', os.path.join(REPO_ROOT, 'tests', 'output', 'collections'))

BIN_DIR = os.path.dirname(sys.executable)
