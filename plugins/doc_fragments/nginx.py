# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment(object):

    # How the NGINX modules write, validate and reload a configuration file.
    DOCUMENTATION = r'''
options:
  validate_command:
    description:
      - Command that checks the whole NGINX configuration after the new file is in place, run as an argument
        list split with shell quoting rules but without a shell.
      - It runs after the new file is renamed into place, because C(nginx -t) reads the main configuration and
        everything it includes; a temporary copy elsewhere would not be what NGINX loads.
      - If it fails, the previous content is written back byte for byte and the task fails with its output.
      - An empty string skips validation.
    type: str
    default: nginx -t
  reload_command:
    description:
      - Command that makes NGINX load the new configuration (a graceful reload keeps serving requests).
      - Runs after O(validate_command) succeeded. If it fails, the previous content is written back byte for
        byte and the task fails with its output.
    type: str
    default: nginx -s reload
  reload:
    description:
      - Run O(reload_command) after a change. Nothing is reloaded when nothing changed.
    type: bool
    default: true
  backup:
    description:
      - Copy the file to C(<path>.<pid>.<timestamp>~) before changing it, like M(ansible.builtin.copy) does.
      - Mind that an C(include) with a wildcard such as C(conf.d/*) would also load the copy.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for another run that is changing the same file.
      - Runs are serialised with an exclusive lock on C(.<file name>.canary-release.lock) next to the file,
        held from reading the file until the reload finished, so concurrent runs never lose an update.
    type: float
    default: 60
'''
