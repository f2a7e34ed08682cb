# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ``canary.release.rollout_state``: the controller's own record without a module run.

The rollout role asks the release engine once or twice per step (operation ``advance``) and keeps the record on the
controller by default (``delegate_to: localhost``). A module run costs about a quarter of a second of Python start-up
and payload there; when the request would run on the controller anyway - a local connection, no ``become``, no task
``environment`` (the default state directory follows ``XDG_STATE_HOME`` and ``HOME``) - this plugin performs it in
the worker process with the same argument spec and the same core (``module_utils/_rollout/operation.py``), so the
result, the failure and the files written are the module's. Anything else (a state host over SSH, ``become``) runs
the module as usual.
"""

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase

from ansible_collections.canary.release.plugins.module_utils._rollout.operation import (
    ARGUMENT_SPEC,
    REQUIRED_IF,
    OperationFailed,
    perform,
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def _runs_on_the_controller(self):
        local = getattr(self._connection, 'transport', None) == 'local'
        return local and not self._play_context.become and not any(self._task.environment or [])

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        if not self._runs_on_the_controller():
            result.update(self._execute_module(module_name='canary.release.rollout_state', task_vars=task_vars))
            return result
        validated = ArgumentSpecValidator(ARGUMENT_SPEC, required_if=REQUIRED_IF).validate(self._task.args)
        if validated.error_messages:
            msg = validated.errors.msg
            if isinstance(validated.errors[0], UnsupportedError):
                msg = 'Unsupported parameters for (canary.release.rollout_state) module: %s' % msg
            result.update(failed=True, msg=msg)
            return result
        try:
            outcome, warnings = perform(validated.validated_parameters, check_mode=self._play_context.check_mode,
                                        diff=self._play_context.diff)
        except OperationFailed as error:
            result.update(error.details)
            result.update(failed=True, msg=error.msg)
            return result
        result.update(outcome)
        if warnings:
            result['warnings'] = warnings  # shown as the module's are
        return result
