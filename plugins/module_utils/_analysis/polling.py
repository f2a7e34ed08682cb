# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""When a polling analysis stops, how long it waits before the next poll, and the one line that describes a poll.

The ``canary.release.analysis`` role polls the ``analysis`` module in a loop; the module answers, with every
verdict, whether the loop stops (:func:`stop_reason`), how long to wait (:func:`next_wait`) and what to print
(:func:`describe_poll`). The loop itself (a pause and an include) is all that is left in YAML.

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
    if (verdict == 'continue' and timed and not until_decided
            and (has_data(metrics) or not stop_needs_data)):
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
