# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How a rollout record reads to a human: the summary line at the end of a release and the lines of status.yml."""

from ansible_collections.canary.release.plugins.module_utils._common.audit import by_text
from ansible_collections.canary.release.plugins.module_utils._rollout.promotion import describe_hosts

WORDS = {'promoted': 'promoted', 'rolled_back': 'rolled back', 'paused': 'held', 'aborted': 'aborted',
         'running': 'running'}


def outcome(record, default=None):
    """The outcome a record stands for (``held`` for a paused rollout, else its status); ``default`` without one."""
    if not record:
        return default
    return 'held' if record.get('status') == 'paused' else record.get('status')


def _percent(weight):
    return '-' if weight is None else '%g %%' % weight


def summary(record, service, version):
    """One line: ``web 2: release held at step 1 (50 %), waiting for rollout_approval=approve or reject - <reason>``."""
    if not record:
        return '%s %s: release not recorded' % (service, version)
    status = record.get('status')
    text = '%s %s: release %s' % (service, version, WORDS.get(status, status))
    if status == 'paused':
        text += ' at step %s (%s), waiting for rollout_approval=approve or reject' % (
            record.get('step'), _percent(record.get('weight')))
    if record.get('reason'):
        text += ' - %s' % record['reason']
    return text


def status_lines(read_result, service, host, events=10):
    """The lines ``playbooks/status.yml`` prints for one host's ``rollout_state`` read result."""
    record, lock = read_result.get('record'), read_result.get('lock')
    if not read_result.get('exists') or not record:
        return ['%s on %s: no rollout recorded (%s)' % (service, host, read_result.get('record_path'))]
    step = record.get('step')
    position = 'before the first step' if step is None else 'at step %s (%s %%)' % (step, record.get('weight'))
    lines = ['%s %s on %s: %s %s, previous version %s' % (service, record.get('version'), host, record.get('status'),
                                                          position, record.get('previous_version') or 'unknown')]
    times = 'started %s, updated %s' % (record.get('started_at'), record.get('updated_at'))
    if record.get('finished_at'):
        times += ', finished %s: %s' % (record['finished_at'], record.get('reason') or '-')
        if record.get('finished_by'):
            times += ' [by %s]' % by_text(record['finished_by'])
    lines.append(times)
    if lock:
        lines.append('lock: run %s since %s, pid %s on %s (%s: %s)' % (
            lock.get('run_id'), lock.get('started_at'), lock.get('pid'), lock.get('host'), lock.get('holder_state'),
            lock.get('holder_reason')))
    else:
        lines.append('lock: free')
    for entry in record.get('steps') or []:
        lines.append('step %s at %s %%: %s%s (since %s)%s' % (
            entry.get('index'), entry.get('weight'), entry.get('verdict') or 'no verdict yet',
            (' - %s' % entry['reason']) if entry.get('reason') else '', entry.get('started_at') or entry.get('at'),
            _by_suffix(entry)))
    hosts = describe_hosts(record)
    if hosts:
        lines.append(hosts)
    if events > 0:
        lines.extend('%s %s%s' % (event.get('at'), event.get('message'), _by_suffix(event))
                     for event in (record.get('events') or [])[-events:])
    return lines


def _by_suffix(item):
    """`` [by person alice]`` for a step entry or event that says who decided; nothing for older records."""
    return ' [by %s]' % by_text(item['by']) if item.get('by') else ''
