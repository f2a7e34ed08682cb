# -*- coding: utf-8 -*-
# Copyright (c) 2026, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Synthetic load for quiet canaries: the same bounded load on the canary and on the baseline during analysis.

* :mod:`.load_plan` - the options validated into a plan (targets, rate per URL, request, time bound), pure;
* :mod:`.load_runner` - sends the plan's requests (``hey`` or a Python loop) until its time bound, a stop signal or
  the end of the play that started it, keeping counts in a status file;
* :mod:`.load_process` - starts the runner as a detached process, stops it by PID, reads its status.
"""
