# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Install a Terraform release binary into an execution environment image (a build step of execution-environment.yml).

    python3 install_terraform.py --version 1.9.8 [--arch amd64] [--dest /usr/local/bin]

Downloads ``terraform_<version>_SHA256SUMS`` and ``terraform_<version>_linux_<arch>.zip`` from HashiCorp's release
site (``--base-url`` for an internal mirror), refuses the zip unless its SHA-256 is the one listed, and writes the
``terraform`` binary with mode 0755. Only the Python standard library (3.6+): it runs with the image's own
interpreter, before or without any pip package, on any base image (no curl or unzip needed).
"""

import argparse
import hashlib
import io
import os
import platform
import sys
import tempfile
import urllib.request
import zipfile

BASE_URL = 'https://releases.hashicorp.com/terraform'
MACHINES = {'x86_64': 'amd64', 'amd64': 'amd64', 'aarch64': 'arm64', 'arm64': 'arm64'}
TIMEOUT = 120


class InstallError(Exception):
    """The release cannot be downloaded, verified or installed."""


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.read()
    except (OSError, ValueError) as error:
        raise InstallError('cannot download %s: %s' % (url, error))


def listed_digest(sums, file_name):
    """The SHA-256 that the SHA256SUMS text lists for ``file_name``."""
    for line in sums.decode('utf-8', 'replace').splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip('*') == file_name:
            return parts[0].lower()
    raise InstallError('%s is not listed in the SHA256SUMS file' % file_name)


def install(version, arch, dest, base_url=BASE_URL):
    """Download, verify and install ``terraform`` into ``dest``; returns the installed path."""
    release = '%s/%s' % (base_url.rstrip('/'), version)
    zip_name = 'terraform_%s_linux_%s.zip' % (version, arch)
    expected = listed_digest(fetch('%s/terraform_%s_SHA256SUMS' % (release, version)), zip_name)
    archive = fetch('%s/%s' % (release, zip_name))
    actual = hashlib.sha256(archive).hexdigest()
    if actual != expected:
        raise InstallError('%s has SHA-256 %s, the SHA256SUMS file lists %s' % (zip_name, actual, expected))
    try:
        binary = zipfile.ZipFile(io.BytesIO(archive)).read('terraform')
    except (zipfile.BadZipFile, KeyError) as error:
        raise InstallError('%s holds no terraform binary: %s' % (zip_name, error))
    os.makedirs(dest, exist_ok=True)
    target = os.path.join(dest, 'terraform')
    handle, temporary = tempfile.mkstemp(dir=dest, prefix='.terraform-')
    try:
        with os.fdopen(handle, 'wb') as out:
            out.write(binary)
        os.chmod(temporary, 0o755)
        os.replace(temporary, target)
    except OSError:
        os.unlink(temporary)
        raise
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--version', required=True, help='Terraform release, for example 1.9.8')
    parser.add_argument('--arch', default=MACHINES.get(platform.machine(), platform.machine()),
                        help='release architecture (default: this machine, %(default)s)')
    parser.add_argument('--dest', default='/usr/local/bin', help='directory of the binary (default: %(default)s)')
    parser.add_argument('--base-url', default=BASE_URL, help='release site or mirror (default: %(default)s)')
    args = parser.parse_args(argv)
    try:
        path = install(args.version, args.arch, args.dest, base_url=args.base_url)
    except InstallError as error:
        print('install_terraform: %s' % error, file=sys.stderr)
        return 1
    print('install_terraform: %s (terraform %s, linux_%s)' % (path, args.version, args.arch))
    return 0


if __name__ == '__main__':
    sys.exit(main())
