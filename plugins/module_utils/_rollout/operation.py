# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One request of ``canary.release.rollout_state``: its argument spec and what it does, for the module (on any
host) and for its action plugin (which runs it in the worker process when the state host is the controller itself,
sparing a module run per engine turn).

:func:`perform` takes the validated parameters and returns ``(result, warnings)``, or raises
:class:`OperationFailed` with the message and the extra fields of the failure (``problems``, ``holder``,
``record``) - the module's ``fail_json`` and the action plugin's failed result carry the same.
"""

import json

from ansible_collections.canary.release.plugins.module_utils._rollout.engine import EngineError, hold_mode_for
from ansible_collections.canary.release.plugins.module_utils._rollout.plan import (
    REQUIRE_PASS,
    PlanError,
    build_plan,
    check_plan,
    describe_plan,
)
from ansible_collections.canary.release.plugins.module_utils._rollout.record import who
from ansible_collections.canary.release.plugins.module_utils._rollout.state import (
    LockHeldError,
    StateError,
    VersionConflictError,
    add_event,
    advance,
    begin,
    finish,
    hook,
    read,
    record_step,
)

ARGUMENT_SPEC = dict(
    operation=dict(type='str', required=True,
                   choices=['begin', 'step', 'event', 'finish', 'read', 'plan', 'advance', 'hook']),
    service=dict(type='str', required=True),
    state_dir=dict(type='path'),
    version=dict(type='str'),
    previous_version=dict(type='str'),
    run_id=dict(type='str'),
    replaces_run_id=dict(type='str'),
    seed_record=dict(type='dict'),
    force=dict(type='bool', default=False),
    break_lock=dict(type='bool', default=False),
    lock_stale_after=dict(type='int', default=0),
    owner=dict(type='dict', options=dict(
        pid=dict(type='int'),
        host=dict(type='str'),
        boot_id=dict(type='str'),
        pid_start=dict(type='str'),
    )),
    step=dict(type='int'),
    weight=dict(type='float'),
    verdict=dict(type='str'),
    reason=dict(type='str'),
    status=dict(type='str', choices=['running', 'paused', 'promoted', 'rolled_back', 'aborted']),
    event=dict(type='raw'),
    steps=dict(type='list', elements='raw'),
    preset=dict(type='str', default=''),
    pause=dict(type='raw', default=60),
    analysis=dict(type='bool', default=True),
    require_pass=dict(type='bool', default=REQUIRE_PASS, no_log=False),
    max_duration=dict(type='str', default='30m'),
    steps_order=dict(type='str', choices=['increasing', 'any'], default='increasing'),
    plan=dict(type='dict'),
    approval=dict(type='str', choices=['', 'approve', 'reject'], default=''),
    approval_mode=dict(type='str', choices=['auto', 'prompt', 'end'], default='auto'),
    awx=dict(type='bool', default=False),
    record=dict(type='dict'),
    hook=dict(type='str', choices=['before_canary', 'before_promote', 'after_promote', 'after_rollback']),
    hook_status=dict(type='str', choices=['start', 'ok', 'failed']),
    hook_tasks=dict(type='str', default=''),
    by=dict(type='dict', default={}),
    hosts=dict(type='list', elements='dict'),
)

REQUIRED_IF = [
    ('operation', 'begin', ('version',)),
    ('operation', 'step', ('step',)),
    ('operation', 'event', ('event',)),
    ('operation', 'finish', ('status',)),
    ('operation', 'advance', ('version', 'run_id', 'plan', 'event')),
    ('operation', 'hook', ('hook', 'hook_status')),
]


class OperationFailed(Exception):
    """The request failed: ``msg`` and the extra fields of the failed result (``details``); nothing was written."""

    def __init__(self, msg, **details):
        super(OperationFailed, self).__init__(msg)
        self.msg = msg
        self.details = details


def _record_text(record):
    return '' if record is None else json.dumps(record, indent=2, sort_keys=True) + '\n'


def _run(params, check_mode):
    operation = params['operation']
    if operation == 'plan':
        plan = build_plan(params['steps'], pause=params['pause'], analysis=params['analysis'],
                          require_pass=params['require_pass'], max_duration=params['max_duration'],
                          steps_order=params['steps_order'], preset=params['preset'])
        warnings = ['rollout of %s: %s' % (params['service'], warning) for warning in plan['warnings']]
        return {'changed': False, 'plan': plan, 'warnings': warnings,
                'message': '%s: %s' % (params['service'], describe_plan(plan))}
    where = dict(state_dir=params['state_dir'], service=params['service'])
    try:
        by = who(params['by'])
    except ValueError as error:
        raise OperationFailed('by: %s' % error)
    if operation == 'read':
        return read(stale_after=params['lock_stale_after'], **where)
    if operation == 'event':
        if not isinstance(params['event'], str):
            raise OperationFailed('event must be the event text (a string) with operation=event')
        return add_event(message=params['event'], version=params['version'], run_id=params['run_id'],
                         check_mode=check_mode, by=by, hosts=params['hosts'], **where)
    holder = dict(run_id=params['run_id'], owner=params['owner'], break_lock=params['break_lock'],
                  stale_after=params['lock_stale_after'], check_mode=check_mode)
    holder.update(where)
    if operation == 'advance':
        if not isinstance(params['event'], dict):
            raise OperationFailed('event must be a dict with kind (begun, deployed, traffic_set, judged, waited, '
                                  'decided or held) with operation=advance, got %r' % (params['event'],))
        return advance(version=params['version'], plan=check_plan(params['plan']), event=params['event'],
                       approval=params['approval'], hold_mode=hold_mode_for(params['approval_mode'], params['awx']),
                       record=params['record'] if check_mode else None, by=by, **holder)
    if operation == 'hook':
        return hook(version=params['version'], point=params['hook'], status=params['hook_status'],
                    reason=params['reason'] or '', tasks=params['hook_tasks'],
                    record=params['record'] if check_mode else None, **holder)
    if operation == 'begin':
        return begin(version=params['version'], previous_version=params['previous_version'], force=params['force'],
                     replaces_run_id=params['replaces_run_id'], seed_record=params['seed_record'], **holder)
    if operation == 'step':
        return record_step(step=params['step'], weight=params['weight'], verdict=params['verdict'],
                           reason=params['reason'], status=params['status'], version=params['version'], **holder)
    return finish(status=params['status'], reason=params['reason'], version=params['version'], by=by, **holder)


def perform(params, check_mode=False, diff=False):
    """``(result, warnings)`` of the request ``params`` (validated against :data:`ARGUMENT_SPEC`); with ``diff`` a
    change adds the record before and after (``diff``). Raises :class:`OperationFailed`."""
    try:
        result = _run(params, check_mode)
    except PlanError as error:
        raise OperationFailed('rollout of %s: %s' % (params['service'], error), problems=error.problems)
    except EngineError as error:
        raise OperationFailed(str(error))
    except LockHeldError as error:
        raise OperationFailed(str(error), holder=error.holder)
    except VersionConflictError as error:
        raise OperationFailed(str(error), record=error.record)
    except StateError as error:
        raise OperationFailed(str(error))
    except (IOError, OSError) as error:
        raise OperationFailed('rollout state of %s: %s' % (params['service'], error))
    warnings = result.pop('warnings')
    if diff and result['changed']:
        result['diff'] = {'before': _record_text(result['before']), 'after': _record_text(result['record']),
                          'before_header': result['record_path'], 'after_header': result['record_path']}
    return result, warnings
