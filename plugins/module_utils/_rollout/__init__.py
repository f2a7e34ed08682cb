# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The release engine: the rollout record, its lock, the step plan and the state machine of a release.

Read it top to bottom, each file importing only the ones above it:

* :mod:`.vocabulary` - the words (record statuses, step verdicts, events, actions, outcomes), defined once;
* :mod:`.record` - the record schema and pure transforms of a record (no files), times, positions, messages;
* :mod:`.plan` - the step list validated once into a plan;
* :mod:`.engine` - the state machine: one pure function from (record, plan, event) to the next action;
* :mod:`.files` and :mod:`.lock` - the record and lock files, the per-service mutex, lock holders;
* :mod:`.state` - the operations on the files (begin, record_step, add_event, finish, read, advance).
"""
