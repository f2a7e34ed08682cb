"""Make sure ansible-test finds its pip bootstrap script, offline too.

ansible-test looks for ``~/.ansible/test/cache/get_pip_<version>.py`` before it
downloads the script.  This tries the real download first (short timeout); when
it is impossible it installs ``get_pip_offline.py`` under that name.
"""

import os
import re
import shutil
import sys
import urllib.request

import ansible_test

URL = 'https://ci-files.testing.ansible.com/ansible-test/get-pip-{version}.py'
CACHE = '~/.ansible/test/cache/get_pip_{underscored}.py'


def pip_version_wanted():
    """The pip version ansible-test bootstraps into its virtual environments."""
    source_path = os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')
    with open(source_path, encoding='utf-8') as source:
        match = re.search(r"pip='([0-9.]+)'", source.read())
    if not match:
        sys.exit('ensure_get_pip: cannot find the pip version in %s' % source_path)
    return match.group(1)


def main():
    version = pip_version_wanted()
    cache_path = os.path.expanduser(CACHE.format(underscored=version.replace('.', '_')))
    if os.path.exists(cache_path):
        return
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
    try:
        with urllib.request.urlopen(URL.format(version=version), timeout=10) as response:
            content = response.read()
        with open(cache_path + '.download', 'wb') as target:
            target.write(content)
        os.replace(cache_path + '.download', cache_path)
        print('ensure_get_pip: downloaded the pip %s bootstrap script' % version)
    except OSError as error:
        shutil.copyfile(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'get_pip_offline.py'), cache_path)
        print('ensure_get_pip: download impossible (%s); installed the offline stand-in at %s' % (error, cache_path))


if __name__ == '__main__':
    main()
