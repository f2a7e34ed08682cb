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


# --- the loop inside one task (poll_loop), with a fake clock and a fake source: nothing really sleeps ------------

START = 1700000000.0


class FakeClock:
    """Unix seconds that move only when the loop sleeps or a poll takes time."""

    def __init__(self, now=START + 100.0):
        self.now = now
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


class FakeSource:
    """One analysis per poll: ``verdict_at(elapsed)`` decides the verdict; a poll takes ``cost`` seconds."""

    def __init__(self, clock, verdict_at=lambda elapsed: 'continue', cost=0.0, deadline=None, metrics=None,
                 warnings=('doubtful window',)):
        self.clock = clock
        self.verdict_at = verdict_at
        self.cost = cost
        self.deadline = deadline
        self.metrics = DATA if metrics is None else metrics
        self.warnings = list(warnings)
        self.polls = []

    def __call__(self, now):
        assert now == self.clock()  # the loop passes its clock's time: run_analysis reads at that moment
        elapsed = round(now, 3) - START
        self.polls.append(round(now - START, 6))
        self.clock.now += self.cost
        verdict = self.verdict_at(elapsed)
        if self.deadline is not None and now >= START + self.deadline and verdict == 'continue':
            verdict = 'inconclusive'
        return ({'verdict': verdict, 'reason': '%s: at %g' % (verdict, elapsed), 'elapsed': elapsed,
                 'now': round(now, 3), 'deadline': None if self.deadline is None else START + self.deadline,
                 'metrics': self.metrics}, list(self.warnings))


def loop(source, clock, check_mode=False, **settings):
    return polling.poll_loop(source, settings, clock, clock.sleep, check_mode=check_mode)


def test_one_poll_without_wait_as_before():
    clock = FakeClock()
    source = FakeSource(clock)
    result, warnings = loop(source, clock, polls=4, interval=10, label='web')
    assert source.polls == [100.0] and clock.sleeps == []
    poll = result['poll']
    assert poll['number'] == 5 and poll['made'] == 1 and poll['stopped'] == 'polling' and poll['wait'] == 10
    assert poll['messages'] == [poll['message']] and poll['message'].startswith('web: poll 5 at 100 s: continue')
    assert poll['next_at'] == START + 110 and warnings == ['doubtful window']
    assert 'pause' not in poll


def test_polls_every_interval_until_wait_runs_out_and_hands_the_next_poll_to_the_next_task():
    clock = FakeClock()
    source = FakeSource(clock, cost=0.25)  # the queries' time is absorbed: the polls stay 10 s apart
    result, warnings = loop(source, clock, polls=2, interval=10, wait=30)
    assert source.polls == [100.0, 110.0, 120.0, 130.0]  # the last one exactly wait after the first
    assert clock.sleeps == [9.75, 9.75, 9.75]
    poll = result['poll']
    assert poll['number'] == 6 and poll['made'] == 4 and len(poll['messages']) == 4
    assert [line.split(':')[0] for line in poll['messages']] == ['poll 3 at 100 s', 'poll 4 at 110 s',
                                                                 'poll 5 at 120 s', 'poll 6 at 130 s']
    assert poll['message'] == poll['messages'][-1] and poll['stopped'] == 'polling'
    assert poll['next_at'] == START + 140 and warnings == ['doubtful window']  # each warning once
    assert result['elapsed'] == 130.0  # the result is the last poll's

    # the next task waits for next_at (the overhead between tasks is part of the interval), then polls on
    clock.now += 0.8
    source.polls.clear()
    clock.sleeps.clear()
    result, _warnings = loop(source, clock, polls=poll['number'], interval=10, wait=30, poll_at=poll['next_at'])
    assert source.polls[0] == 140.0 and clock.sleeps[0] == pytest.approx(9.2 - 0.25)
    assert result['poll']['number'] == 10


def test_a_wait_shorter_than_the_interval_makes_one_poll_per_task():
    clock = FakeClock()
    source = FakeSource(clock)
    result, _warnings = loop(source, clock, interval=60, wait=30)
    assert source.polls == [100.0] and clock.sleeps == [] and result['poll']['next_at'] == START + 160


def test_poll_at_waits_at_most_one_interval():
    clock = FakeClock()
    source = FakeSource(clock)
    loop(source, clock, interval=10, poll_at=START + 104.5)
    assert clock.sleeps == [4.5] and source.polls == [104.5]
    loop(source, clock, interval=10, poll_at=START + 999)
    assert clock.sleeps == [4.5, 10.0]
    loop(source, clock, interval=10, poll_at=START + 1)  # already due
    assert clock.sleeps == [4.5, 10.0]


@pytest.mark.parametrize('verdict', ['fail', 'inconclusive'])
@pytest.mark.parametrize('decided_after', [0.0, 0.4, 7.5, 9.99, 10.0, 23.2])
def test_fail_and_inconclusive_end_the_task_at_the_poll_that_sees_them(verdict, decided_after):
    clock = FakeClock()
    source = FakeSource(clock, verdict_at=lambda elapsed: verdict if elapsed >= 100 + decided_after else 'continue',
                        cost=0.2)
    result, _warnings = loop(source, clock, interval=10, wait=300, stop_after=200)
    deciding = source.polls[-1]
    assert result['verdict'] == verdict and result['poll']['stopped'] == 'decided'
    assert 0 <= deciding - (100 + decided_after) <= 10  # never more than one interval late
    assert clock.now == pytest.approx(START + deciding + 0.2)  # no sleep after the deciding poll
    assert result['poll']['next_at'] is None
    assert result['poll']['made'] == len(source.polls) and ': %s - ' % verdict in result['poll']['message']


def test_a_pass_is_held_to_the_step_end_and_the_poll_lands_on_it():
    clock = FakeClock()
    source = FakeSource(clock, verdict_at=lambda elapsed: 'pass')
    result, _warnings = loop(source, clock, interval=10, wait=300, stop_after=125)
    assert source.polls == [100.0, 110.0, 120.0, pytest.approx(125.001)]
    assert result['poll']['stopped'] == 'decided' and result['poll']['made'] == 4
    assert [', holding until 125 s' in line for line in result['poll']['messages']] == [True, True, True, False]


def test_undecided_stops_at_the_step_end_with_data_and_waits_for_data_without():
    clock = FakeClock()
    result, _warnings = loop(FakeSource(clock), clock, interval=10, wait=300, stop_after=115)
    assert result['poll']['stopped'] == 'time' and result['elapsed'] == pytest.approx(115.001)

    clock = FakeClock()
    source = FakeSource(clock, metrics=NO_DATA)
    result, _warnings = loop(source, clock, interval=10, wait=40, stop_after=115)
    assert source.polls == [100.0, 110.0, pytest.approx(115.001), pytest.approx(125.001), pytest.approx(135.001)]
    assert result['poll']['stopped'] == 'polling' and 'waiting for data' in result['poll']['message']


def test_the_deadline_is_reached_on_time():
    clock = FakeClock()
    source = FakeSource(clock, deadline=117)
    result, _warnings = loop(source, clock, interval=10, wait=300)
    assert source.polls == [100.0, 110.0, pytest.approx(117.001)]
    assert result['verdict'] == 'inconclusive' and result['poll']['stopped'] == 'decided'


def test_max_polls_counts_the_polls_of_earlier_tasks():
    clock = FakeClock()
    source = FakeSource(clock)
    result, _warnings = loop(source, clock, interval=1, wait=60, polls=3, max_polls=5)
    assert len(source.polls) == 2 and result['poll']['number'] == 5 and result['poll']['stopped'] == 'polls'


def test_check_mode_and_a_replay_poll_once_and_never_wait():
    clock = FakeClock()
    source = FakeSource(clock)
    result, _warnings = loop(source, clock, check_mode=True, interval=10, wait=300, poll_at=START + 105)
    assert source.polls == [100.0] and clock.sleeps == [] and result['poll']['stopped'] == 'check_mode'
    result, _warnings = loop(source, clock, interval=10, wait=300, poll_at=START + 105, end_time='2024-05-01T12:00:00Z')
    assert source.polls == [100.0, 100.0] and clock.sleeps == [] and result['poll']['made'] == 1


def test_next_pause_is_exact():
    assert polling.next_pause(10, elapsed=5, now=1000, deadline=None) == 10.0
    assert polling.next_pause(10, elapsed=57.2, now=1000, deadline=None, stop_after=60) == pytest.approx(2.801)
    assert polling.next_pause(10, elapsed=5, now=1000, deadline=1004.5) == pytest.approx(4.501)
    assert polling.next_pause(10, elapsed=70, now=1000, deadline=999, stop_after=60) == 10.0
