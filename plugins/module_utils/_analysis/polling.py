# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""When a polling analysis stops, how long it waits before the next poll, and the one line that describes a poll.

The ``canary.release.analysis`` role polls the ``analysis`` module in a loop; the module answers, with every
verdict, whether the loop stops (:func:`stop_reason`), how long to wait (:func:`next_wait`) and what to print
(:func:`describe_poll`). With its ``wait`` option the module keeps polling inside one task (:func:`poll_loop`),
so that a decision ends the task at once and Ansible's per-task overhead is paid once per task, not once per poll;
the role's include loop only strings the tasks together.

The stop rule, in order:

``decided``
    ``fail`` or ``inconclusive`` at once; ``pass`` once the step's time (``stop_after`` seconds after the analysis
    start) is over, or at once without ``stop_after``.
``time``
    still undecided (``continue``) at the end of the step's time, unless ``until_decided`` - and only with data from
    every metric, unless ``stop_needs_data`` is false: a step without data waits for the data, a decision or the
    deadline (which the judge turns into ``inconclusive``).
``check_mode``
    check mode polls once and never waits.
``polls``
    ``max_polls`` polls were made (0: no limit).
``polling``
    otherwise: poll again.
"""

import math

# Added to a pause that aims at the end of the step's time or at the deadline: the poll after it must not land a
# hair before it (the module rounds its clock to the millisecond).
ON_TIME_MARGIN = 0.001

STOP_REASONS = ('decided', 'time', 'check_mode', 'polls', 'polling')


def has_data(metrics):
    """Whether every metric reported data (no metric has the status ``no_data``)."""
    return all(metric.get('status') != 'no_data' for metric in metrics or [])


def _timed(elapsed, stop_after):
    return stop_after is not None and elapsed >= stop_after


def stop_reason(verdict, elapsed, metrics, polls, stop_after=None, until_decided=False, stop_needs_data=True,
                max_polls=0, check_mode=False):
    """Why the loop stops after this poll (one of ``STOP_REASONS``; ``polling`` means it does not).

    ``polls`` counts the polls made, this one included; ``stop_after`` is None when the loop has no time of its own.
    """
    timed = _timed(elapsed, stop_after)
    if verdict in ('fail', 'inconclusive') or (verdict == 'pass' and (timed or stop_after is None)):
        return 'decided'
    may_stop = has_data(metrics) or not stop_needs_data
    if verdict == 'continue' and timed and not until_decided and may_stop:
        return 'time'
    if check_mode:
        return 'check_mode'
    if max_polls > 0 and polls >= max_polls:
        return 'polls'
    return 'polling'


def next_wait(interval, elapsed, now, deadline, stop_after=None):
    """Seconds to wait before the next poll: the interval, shortened to reach the end of the step's time or the
    deadline on time (rounded up), at least 1."""
    candidates = [interval]
    if stop_after is not None and stop_after - elapsed > 0:
        candidates.append(int(math.ceil(stop_after - elapsed)))
    if deadline is not None and deadline - now > 0:
        candidates.append(int(math.ceil(deadline - now)))
    return max(int(min(candidates)), 1)


def next_pause(interval, elapsed, now, deadline, stop_after=None):
    """Exact seconds from this poll to the next (not rounded, no minimum): the interval, shortened to reach the end
    of the step's time or the deadline on time."""
    candidates = [float(interval)]
    if stop_after is not None and stop_after - elapsed > 0:
        candidates.append(stop_after - elapsed + ON_TIME_MARGIN)
    if deadline is not None and deadline - now > 0:
        candidates.append(deadline - now + ON_TIME_MARGIN)
    return max(min(candidates), 0.0)


def _poll_note(reason, verdict, elapsed, metrics, stop_after):
    if reason == 'polling' and verdict == 'pass':
        return ', holding until %d s' % int(stop_after)
    if reason == 'polling' and _timed(elapsed, stop_after):
        return ', waiting for a decision' if has_data(metrics) else ', waiting for data'
    if reason == 'time':
        return ', undecided at the end of its time'
    if reason == 'check_mode':
        return ', check mode (one poll, no waiting)'
    return ''


def _describe_metric(metric):
    evidence = metric.get('evidence') or {}
    text = '%s %s' % (metric.get('name'), metric.get('status'))
    if evidence.get('canary_requests') is not None:
        text += ' canary %d/%d baseline %d/%d' % (
            int(evidence.get('canary_errors') or 0), int(evidence['canary_requests']),
            int(evidence.get('baseline_errors') or 0), int(evidence.get('baseline_requests') or 0))
    elif evidence.get('last_value') is not None:
        text += ' last %s' % (evidence['last_value'],)
    return text


def describe_poll(label, polls, reason, verdict, verdict_reason, elapsed, metrics, stop_after=None):
    """One line per poll: ``<label>: poll 3 at 12 s: continue, waiting for data - errors no_data | <reason>``."""
    return '%spoll %d at %d s: %s%s - %s | %s' % (
        ('%s: ' % label) if label else '', polls, int(elapsed), verdict,
        _poll_note(reason, verdict, elapsed, metrics, stop_after),
        ', '.join(_describe_metric(metric) for metric in metrics or []), verdict_reason)


# The settings of a polling loop, with the module's defaults (the module passes its options).
LOOP_DEFAULTS = {'polls': 0, 'interval': 10, 'stop_after': None, 'until_decided': False, 'stop_needs_data': True,
                 'max_polls': 0, 'label': '', 'wait': 0, 'poll_at': None, 'end_time': None}


def poll_state(settings, result, number, check_mode=False):
    """Where a polling loop stands after poll ``number`` (counted over the whole loop) whose analysis is
    ``result``: ``number``, ``stopped``, ``has_data``, ``wait`` (whole seconds, at least 1, for a loop of tasks that
    waits between them), ``message`` (the progress line) and ``pause`` (exact seconds to the next poll)."""
    settings = dict(LOOP_DEFAULTS, **settings)
    metrics = result.get('metrics') or []
    reason = stop_reason(result['verdict'], result['elapsed'], metrics, number, settings['stop_after'],
                         settings['until_decided'], settings['stop_needs_data'], settings['max_polls'], check_mode)
    return {'number': number, 'stopped': reason, 'has_data': has_data(metrics),
            'wait': next_wait(settings['interval'], result['elapsed'], result['now'], result.get('deadline'),
                              settings['stop_after']),
            'message': describe_poll(settings['label'], number, reason, result['verdict'], result['reason'],
                                     result['elapsed'], metrics, settings['stop_after']),
            'pause': next_pause(settings['interval'], result['elapsed'], result['now'], result.get('deadline'),
                                settings['stop_after'])}


def poll_loop(poll, settings, clock, sleep, check_mode=False):
    """Poll until the stop rule says stop or ``settings['wait']`` runs out: ``(result, warnings)``.

    ``poll(now)`` runs one analysis at clock time ``now`` and returns ``(result, warnings)`` (the module passes
    :func:`~.analysis_run.run_analysis`); ``clock()`` returns unix seconds and ``sleep(seconds)`` waits (the
    module passes ``time.time`` and ``time.sleep``; tests pass a fake clock). ``settings`` holds the loop's options
    (:data:`LOOP_DEFAULTS`): ``polls`` made before this task, ``interval``, the stop rule's ``stop_after``,
    ``until_decided``, ``stop_needs_data`` and ``max_polls``, the ``label`` of the progress lines, ``wait`` (seconds
    this task may go on polling) and ``poll_at`` (when the first poll is due, from the task before).

    * The first poll waits for ``poll_at`` (at most ``interval`` seconds), so that the polls of a loop of tasks
      stay ``interval`` apart; then it polls at once.
    * After a poll, the loop ends at once when the stop rule stops it (``fail`` and ``inconclusive`` at once, a
      ``pass`` at the end of the step's time, ...). Otherwise the next poll is due :func:`next_pause` seconds after
      this one (the interval, shortened to reach the end of the step's time or the deadline on time), so no
      decision waits more than one interval; the loop sleeps until then and polls again - unless that poll would
      come more than ``wait`` seconds after the task's first poll: then it returns, and ``poll.next_at`` says when
      the next task's first poll is due.
    * One poll, and no waiting at all: ``wait`` 0 (``poll_at`` is still honoured), check mode, or a fixed
      ``end_time`` (a replay: every poll would give the same answer).

    ``result`` is the last poll's, with ``poll``: :func:`poll_state` of the last poll (``number`` counts every poll of
    the loop: ``polls`` + the polls made here) plus ``made`` (polls made in this task), ``messages`` (one progress
    line per poll made here, oldest first; ``message`` is the last) and ``next_at`` (unix seconds when the next poll
    is due, null once the loop stopped). ``warnings`` are every poll's, each once.
    """
    settings = dict(LOOP_DEFAULTS, **dict((key, value) for key, value in settings.items() if value is not None))
    interval = float(settings['interval'])
    wait = max(float(settings['wait'] or 0), 0.0)
    once = check_mode or settings['end_time'] not in (None, '')
    if not once and settings['poll_at'] is not None:
        delay = min(float(settings['poll_at']) - clock(), interval)
        if delay > 0:
            sleep(delay)
    number = int(settings['polls'] or 0)
    first = None
    messages = []
    warnings = []
    while True:
        now = clock()
        if first is None:
            first = now
        result, found = poll(now)
        for warning in found:
            if warning not in warnings:
                warnings.append(warning)
        number += 1
        state = poll_state(settings, result, number, check_mode)
        messages.append(state['message'])
        pause = state.pop('pause')
        next_at = now + pause
        if state['stopped'] != 'polling' or once or wait <= 0 or next_at - first > wait:
            break
        delay = next_at - clock()
        if delay > 0:
            sleep(delay)
    state.update(made=len(messages), messages=messages,
                 next_at=round(next_at, 3) if state['stopped'] == 'polling' else None)
    result['poll'] = state
    return result, warnings
