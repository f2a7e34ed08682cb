# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How the audit trail of a rollout record reads: who or what made a decision (``by``, written by the release
engine in ``_rollout/record.py``), as ``status.yml`` and the rollout report print it."""


def by_text(by):
    """``judge``, ``person alice``, ``engine deadline``: who decided, in one word or two; ``-`` for records written
    before the audit trail (no ``by``)."""
    if not isinstance(by, dict) or not by.get('kind'):
        return '-'
    if by['kind'] == 'judge':
        return 'judge'
    return '%s %s' % (by['kind'], by.get('name') or 'unknown')
