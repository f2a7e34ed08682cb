"""The analysis loop's stop rule, wait and progress line (plugins/module_utils/_analysis/polling.py)."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._analysis import polling

DATA = [{'name': 'errors', 'status': 'continue',
         'evidence': {'canary_errors': 3.0, 'canary_requests': 120.7, 'baseline_errors': 9, 'baseline_requests': 480}}]
NO_DATA = [{'name': 'errors', 'status': 'no_data', 'evidence': {}}]


@pytest.mark.parametrize('verdict', ['fail', 'inconclusive'])
def test_fail_and_inconclusive_stop_at_once(verdict):
    assert polling.stop_reason(verdict, 1, DATA, 1, stop_after=60) == 'decided'


def test_a_pass_holds_until_the_step_time_is_over_or_stops_at_once_without_one():
    assert polling.stop_reason('pass', 10, DATA, 1, stop_after=60) == 'polling'
    assert polling.stop_reason('pass', 60, DATA, 2, stop_after=60) == 'decided'
    assert polling.stop_reason('pass', 1, DATA, 1) == 'decided'


def test_undecided_stops_on_time_only_with_data_and_not_until_decided():
    assert polling.stop_reason('continue', 61, DATA, 5, stop_after=60) == 'time'
    assert polling.stop_reason('continue', 61, NO_DATA, 5, stop_after=60) == 'polling'
    assert polling.stop_reason('continue', 61, NO_DATA, 5, stop_after=60, stop_needs_data=False) == 'time'
    assert polling.stop_reason('continue', 61, DATA, 5, stop_after=60, until_decided=True) == 'polling'
    assert polling.stop_reason('continue', 10, DATA, 1, stop_after=60) == 'polling'


def test_check_mode_and_max_polls():
    assert polling.stop_reason('continue', 1, DATA, 1, stop_after=60, check_mode=True) == 'check_mode'
    assert polling.stop_reason('continue', 1, DATA, 3, max_polls=3) == 'polls'
    assert polling.stop_reason('continue', 1, DATA, 2, max_polls=3) == 'polling'
    assert polling.stop_reason('fail', 1, DATA, 1, check_mode=True) == 'decided'


def test_the_wait_reaches_the_step_end_and_the_deadline_on_time():
    assert polling.next_wait(10, elapsed=5, now=1000, deadline=None) == 10
    assert polling.next_wait(10, elapsed=57.2, now=1000, deadline=None, stop_after=60) == 3
    assert polling.next_wait(10, elapsed=5, now=1000, deadline=1004.5) == 5
    assert polling.next_wait(10, elapsed=70, now=1000, deadline=999, stop_after=60) == 10
    assert polling.next_wait(10, elapsed=59.99, now=1000, deadline=1000.01, stop_after=60) == 1


def test_the_progress_line():
    line = polling.describe_poll('web 2: step 0 at 10 %', 3, 'polling', 'continue', 'continue: not yet', 12.9, DATA)
    assert line == ('web 2: step 0 at 10 %: poll 3 at 12 s: continue - errors continue canary 3/120 baseline 9/480'
                    ' | continue: not yet')
    assert polling.describe_poll('', 1, 'polling', 'continue', 'r', 70, NO_DATA, stop_after=60) == \
        'poll 1 at 70 s: continue, waiting for data - errors no_data | r'
    assert ', waiting for a decision - ' in polling.describe_poll('', 1, 'polling', 'continue', 'r', 70, DATA, 60)
    assert ', holding until 60 s - ' in polling.describe_poll('', 1, 'polling', 'pass', 'r', 7, DATA, 60)
    assert ', undecided at the end of its time - ' in polling.describe_poll('', 1, 'time', 'continue', 'r', 61, DATA, 60)
    assert ', check mode (one poll, no waiting) - ' in polling.describe_poll('', 1, 'check_mode', 'pass', 'r', 1, DATA)
    threshold = [{'name': 'p99', 'status': 'pass', 'evidence': {'last_value': 0.25}}]
    assert polling.describe_poll('', 1, 'decided', 'fail', 'r', 1, threshold) == 'poll 1 at 1 s: fail - p99 pass last 0.25 | r'
