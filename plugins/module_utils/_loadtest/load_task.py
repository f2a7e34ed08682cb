# -*- coding: utf-8 -*-
# Copyright (c) 2026, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the ``loadtest`` module does for each ``state``: ``started``, ``stopped`` or ``query`` (plain Python)."""

import os

from ansible_collections.canary.release.plugins.module_utils._loadtest.load_plan import (LoadPlanError,
                                                                                         build_load_plan,
                                                                                         name_problems)
from ansible_collections.canary.release.plugins.module_utils._loadtest.load_process import (
    playbook_pid,
    read_status,
    running_load,
    start_load,
    stop_load,
)

DEFAULT_STATE_DIR = '~/.cache/canary-release/loadtest'


def _summary(status):
    """The counts a task returns (without the request's headers or body)."""
    status = status or {}
    return {'tool': status.get('tool'), 'requests': status.get('requests', 0),
            'transport_errors': status.get('transport_errors', 0), 'seconds': status.get('seconds', 0.0),
            'ended': status.get('ended'), 'targets': status.get('targets', [])}


def _message(name, state, status):
    counts = _summary(status)
    arms = {}
    for target in counts['targets']:
        arms[target['arm']] = arms.get(target['arm'], 0) + target['requests']
    sent = ', '.join('%s %d' % (arm, arms[arm]) for arm in sorted(arms)) or 'none yet'
    ended = (' (ended: %s)' % counts['ended']) if counts['ended'] else ''
    return 'load %s: %s, requests sent: %s%s' % (name, state, sent, ended)


def load_task(params, check_mode):
    """``params`` as the module has them; returns the module's result (``changed``, ``state``, counts, message).
    Raises :class:`.load_plan.LoadPlanError` (nothing started or stopped) or :class:`.load_process.LoadProcessError`."""
    name = params['name']
    if name_problems(name):
        raise LoadPlanError(name_problems(name))
    state_dir = os.path.expanduser(params['state_dir'] or DEFAULT_STATE_DIR)
    if params['state'] == 'started':
        plan = build_load_plan(name, params['canary_urls'], params['baseline_urls'], params['rate'],
                               params['duration'], method=params['method'], headers=params['headers'],
                               body=params['body'], timeout=params['timeout'], tool=params['tool'],
                               validate_certs=params['validate_certs'])
        current = running_load(state_dir, name)
        if current is not None and current.get('fingerprint') == plan['fingerprint']:
            status = read_status(state_dir, name)
            return dict(_summary(status), changed=False, state='running', pid=current['pid'],
                        message=_message(name, 'running', status))
        if check_mode:
            return dict(_summary(None), changed=True, state='running', pid=None, tool=plan['tool'],
                        message='load %s: would start (check mode), %g req/s to each URL for at most %g s'
                                % (name, plan['rate'], plan['duration']))
        if current is not None:
            stop_load(state_dir, name)
        record = start_load(plan, state_dir, playbook_pid() if params['watch_playbook'] else None)
        return dict(_summary(read_status(state_dir, name)), changed=True, state='running', pid=record['pid'],
                    watched_pid=record['watch_pid'],
                    message='load %s: started with %s, %g req/s to each URL for at most %g s%s'
                            % (name, plan['tool'], plan['rate'], plan['duration'],
                               ', stops with ansible-playbook %d' % record['watch_pid'] if record['watch_pid']
                               else ''))
    if params['state'] == 'stopped':
        current = running_load(state_dir, name)
        if current is None:
            status = read_status(state_dir, name)
            return dict(_summary(status), changed=False, state='stopped', pid=None,
                        message=_message(name, 'not running', status))
        if check_mode:
            status = read_status(state_dir, name)
            return dict(_summary(status), changed=True, state='stopped', pid=current['pid'],
                        message='load %s: would stop (check mode)' % name)
        dummy, status = stop_load(state_dir, name)
        return dict(_summary(status), changed=True, state='stopped', pid=current['pid'],
                    message=_message(name, 'stopped', status))
    current = running_load(state_dir, name)
    status = read_status(state_dir, name)
    state = 'running' if current is not None else 'stopped'
    return dict(_summary(status), changed=False, state=state, pid=current['pid'] if current else None,
                message=_message(name, state, status))
