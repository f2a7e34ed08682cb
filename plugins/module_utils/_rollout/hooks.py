# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Hooks: task files the ``canary.release.rollout`` role runs at the points of a release where database and API
changes belong (docs/changes.md). What a hook's start, success or failure means is decided here, once:

* ``before_canary`` - after the lock is taken, before the canary gets the new version or any traffic (an expand
  migration, a compatibility check that must pass). A failure ends the release ``aborted``: nothing moved.
* ``before_promote`` - every step is done, before the stable hosts get the new version. A failure is handled as a
  failed step: the canary is rolled back, no traffic moves up.
* ``after_promote`` - the new version runs everywhere (a contract migration). A failure is reported (an event, the
  run fails), not rolled back: the old version is gone and rolling back would not undo the migration.
* ``after_rollback`` - the canary is out of rotation and the record rolled back (undo an expand, switch a flag
  off). A failure is reported; the release is rolled back either way.

Every hook writes ``start`` and then ``ok`` or ``failed`` as events of the record, ``by`` the hook (engine).
"""

from ansible_collections.canary.release.plugins.module_utils._rollout.record import (
    ENGINE,
    actor,
    finished,
    prefix,
    with_event,
)
from ansible_collections.canary.release.plugins.module_utils._rollout.vocabulary import (
    ABORTED,
    DONE,
    OUTCOME_ABORTED,
    PROMOTED,
    ROLLBACK,
    ROLLED_BACK,
    RUNNING,
)

BEFORE_CANARY = 'before_canary'
BEFORE_PROMOTE = 'before_promote'
AFTER_PROMOTE = 'after_promote'
AFTER_ROLLBACK = 'after_rollback'
HOOK_POINTS = (BEFORE_CANARY, BEFORE_PROMOTE, AFTER_PROMOTE, AFTER_ROLLBACK)

START = 'start'
OK = 'ok'
FAILED = 'failed'
HOOK_STATUSES = (START, OK, FAILED)

# What a failed hook leads to (``decision``): abort the release, roll the canary back, or report it.
ABORT = 'abort'
REPORT = 'report'
GO_ON = 'continue'
ON_FAILURE = {
    BEFORE_CANARY: ABORT,
    BEFORE_PROMOTE: ROLLBACK,
    AFTER_PROMOTE: REPORT,
    AFTER_ROLLBACK: REPORT,
}

# The record status each hook point expects (a hook run at another point of the release is refused).
EXPECTED_STATUS = {
    BEFORE_CANARY: (RUNNING,),
    BEFORE_PROMOTE: (RUNNING,),
    AFTER_PROMOTE: (PROMOTED,),
    AFTER_ROLLBACK: (ROLLED_BACK,),
}


class HookError(Exception):
    """The hook report makes no sense for the record; nothing was written."""


def hook_outcome(record, point, status, now, reason='', tasks='', check_mode=False):
    """Record that the ``point`` hook (its task file ``tasks``) started, passed or failed, and decide what follows.

    Returns ``{'record', 'message', 'decision', 'action', 'finish'}``: ``decision`` is ``continue`` (start, ok),
    or for a failure :data:`ON_FAILURE` of the point; ``action`` replaces the engine's action for the role
    (``done`` with outcome ``aborted``, or ``rollback`` with its reason; None otherwise); ``finish`` is the status the
    record was finished with (``aborted``) or None. A ``before_canary`` hook must run before any step (no
    traffic has moved); check mode (a record nothing was written to) skips the status check of the ``after_``
    points.
    """
    if point not in HOOK_POINTS:
        raise HookError('hook must be one of %s, got %r' % (', '.join(HOOK_POINTS), point))
    if status not in HOOK_STATUSES:
        raise HookError('hook status must be one of %s, got %r' % (', '.join(HOOK_STATUSES), status))
    if not isinstance(record, dict) or 'status' not in record:
        raise HookError('no rollout record: the %s hook runs after begin' % point)
    expected = EXPECTED_STATUS[point]
    if record.get('status') not in expected and not (check_mode and point in (AFTER_PROMOTE, AFTER_ROLLBACK)):
        raise HookError('%s: the %s hook does not apply: the rollout is %s, not %s'
                        % (prefix(record), point, record.get('status'), ' or '.join(expected)))
    if point == BEFORE_CANARY and record.get('step') is not None:
        raise HookError('%s: the %s hook runs before any traffic, but the rollout is at step %s'
                        % (prefix(record), point, record['step']))
    by = actor(ENGINE, 'hook %s' % point, tasks or None)
    words = {START: 'started', OK: 'ok', FAILED: 'FAILED'}[status]
    message = '%s: hook %s %s%s' % (prefix(record), point, words, (' (%s)' % tasks) if tasks else '')
    if status == FAILED:
        message += ': %s' % (' '.join(str(reason or 'no message').split()))
    after = with_event(record, message, now, by)
    result = {'record': after, 'message': message, 'decision': GO_ON, 'action': None, 'finish': None}
    if status != FAILED:
        return result
    decision = ON_FAILURE[point]
    result['decision'] = decision
    why = 'the %s hook failed%s: %s' % (point, (' (%s)' % tasks) if tasks else '',
                                        ' '.join(str(reason or 'no message').split()))
    if decision == ABORT:
        after, finish_message = finished(after, ABORTED, why + ' - no traffic moved', now, by)
        result.update(record=after, finish=ABORTED, message='%s; %s' % (message, finish_message),
                      action={'kind': DONE, 'outcome': OUTCOME_ABORTED, 'reason': why + ' - no traffic moved',
                              'label': prefix(record)})
    elif decision == ROLLBACK:
        result['action'] = {'kind': ROLLBACK, 'reason': why + ' - no traffic moved up', 'label': prefix(record),
                            'by': by}
    return result
