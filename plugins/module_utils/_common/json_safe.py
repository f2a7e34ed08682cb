# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Make metric values valid JSON for Ansible results.

Python's ``json`` writes ``NaN`` and ``Infinity``, which are not JSON: AWX, ``jq`` and most consumers reject them,
and in a template ``nan > 0.01`` is silently false. Plugins therefore return non-finite floats as the strings
Prometheus itself uses, ``"NaN"``, ``"+Inf"`` and ``"-Inf"``; ``| float`` turns them back into floats.
"""

import math


def nonfinite_to_string(number):
    """``"NaN"``, ``"+Inf"`` or ``"-Inf"`` for a non-finite float, else ``number`` unchanged."""
    if isinstance(number, float):
        if math.isnan(number):
            return 'NaN'
        if math.isinf(number):
            return '+Inf' if number > 0 else '-Inf'
    return number


def json_safe(value):
    """A copy of ``value`` (dicts, lists, tuples, scalars) with non-finite floats replaced by strings."""
    if isinstance(value, dict):
        return dict((key, json_safe(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return nonfinite_to_string(value)
