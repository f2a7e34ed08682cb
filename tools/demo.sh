#!/usr/bin/env bash
# `make demo`: two canary releases of the sample app on this machine (examples/local/demo.py): version 2 is
# promoted, version 3 (5 % errors) is rolled back by the judge. Every process it starts is stopped at the end, also
# on Ctrl-C. Extra arguments go to the driver, e.g. `tools/demo.sh --keep --workdir /tmp/demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH:/usr/sbin:/sbin"
export ANSIBLE_COLLECTIONS_PATH="$PWD/tests/output/collections"
# exec: the driver gets Ctrl-C and SIGTERM itself and stops what it started.
exec .venv/bin/python -m examples.local.demo "$@"
