"""Offline stand-in for the get-pip.py script that ansible-test downloads.

ansible-test bootstraps pip into each sanity virtual environment by running a
script it fetches from the internet.  Where that download is impossible (an
air-gapped runner), ``tools/ensure_get_pip.py`` installs this file in its place.

It bootstraps pip from the interpreter's own bundled wheel (``ensurepip``),
then lets the machine's pip configuration apply again and upgrades to exactly
what ansible-test asked for.
"""

import ensurepip
import os
import subprocess
import sys

IGNORED_OPTIONS = ('--no-setuptools', '--no-wheel')


def main():
    ensurepip.bootstrap(upgrade=True)
    # ensurepip points PIP_CONFIG_FILE at /dev/null so that its own install ignores the
    # machine's configuration; the real install below must see that configuration
    # (index mirrors, CA bundle, constraints).
    os.environ.pop('PIP_CONFIG_FILE', None)
    arguments = [argument for argument in sys.argv[1:] if argument not in IGNORED_OPTIONS]
    command = [sys.executable, '-m', 'pip', 'install', '--upgrade'] + arguments
    sys.exit(subprocess.call(command))


if __name__ == '__main__':
    main()
