"""Points in time and durations: RFC 3339, unix timestamps, relative forms."""

import datetime

import pytest
from hypothesis import given, strategies as st

from ansible_collections.canary.release.plugins.module_utils.time_spec import (
    TimeSpecError,
    datetime_to_timestamp,
    format_rfc3339,
    parse_duration,
    parse_time,
    to_datetime,
)

NOW = 1714564800.0  # 2024-05-01T12:00:00Z


@pytest.mark.parametrize('text, expected', [
    ('now', NOW),
    ('NOW', NOW),
    ('-15m', NOW - 900),
    ('-2h', NOW - 7200),
    ('now-1h30m', NOW - 5400),
    ('now - 30s', NOW - 30),
    ('+5m', NOW + 300),
    ('now+1d', NOW + 86400),
    ('-1w', NOW - 604800),
    ('-500ms', NOW - 0.5),
    ('-90', NOW - 90),
])
def test_relative_times_count_from_now(text, expected):
    assert parse_time(text, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize('value, expected', [
    (1700000000, 1700000000.0),
    (1700000000.25, 1700000000.25),
    ('1700000000', 1700000000.0),
    ('1700000000.5', 1700000000.5),
    ('2024-05-01T12:00:00Z', NOW),
    ('2024-05-01t12:00:00z', NOW),
    ('2024-05-01T14:00:00+02:00', NOW),
    ('2024-05-01T07:30:00-0430', NOW),
    ('2024-05-01T12:00:00.250Z', NOW + 0.25),
    ('2024-05-01T12:00:00.123456789Z', NOW + 0.123456),
    ('2024-05-01 12:00:00', NOW),
    ('2024-05-01T12:00', NOW),
    ('2024-05-01', NOW - 12 * 3600),
    (datetime.datetime(2024, 5, 1, 12, 0, 0), NOW),
    (datetime.datetime(2024, 5, 1, 14, 0, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2))), NOW),
])
def test_absolute_times(value, expected):
    assert parse_time(value, now=0) == pytest.approx(expected)


def test_now_defaults_to_the_clock():
    before = datetime_to_timestamp(datetime.datetime.now(datetime.timezone.utc))
    assert before - 1 <= parse_time('-0s') <= before + 5


@pytest.mark.parametrize('bad', ['yesterday', '-15x', '15m', '2024-13-01', '2024-05-01T25:00:00Z', '2024-05-01T12:00:00+25:00',
                                 '', '-', 'now-', None, True, float('nan'), 'inf', '1m-'])
def test_invalid_times_raise_time_spec_error(bad):
    with pytest.raises(TimeSpecError):
        parse_time(bad, now=NOW)


def test_time_spec_error_is_a_value_error_naming_the_input():
    with pytest.raises(ValueError, match="'yesterday'"):
        parse_time('yesterday')


@pytest.mark.parametrize('value, seconds', [
    (15, 15.0), (0.5, 0.5), ('15', 15.0), ('30s', 30.0), ('1m', 60.0), ('1h30m', 5400.0), ('500ms', 0.5),
    ('2d', 172800.0), ('1w', 604800.0), ('1.5m', 90.0), ('0s', 0.0),
])
def test_durations(value, seconds):
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize('bad', ['1x', 'm', '1m 30s', '-1m', -5, None, False, '1h-', 'nan', float('inf')])
def test_invalid_durations(bad):
    with pytest.raises(TimeSpecError):
        parse_duration(bad)


def test_format_rfc3339():
    assert format_rfc3339(NOW) == '2024-05-01T12:00:00Z'
    assert format_rfc3339(NOW + 0.25) == '2024-05-01T12:00:00.250000Z'
    assert format_rfc3339(datetime.datetime(2024, 5, 1, 12)) == '2024-05-01T12:00:00Z'
    assert to_datetime(NOW) == datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.timezone.utc)


@given(st.integers(min_value=0, max_value=4102444800 * 1000))
def test_rfc3339_round_trip(milliseconds):
    timestamp = milliseconds / 1000.0
    assert parse_time(format_rfc3339(timestamp)) == pytest.approx(timestamp, abs=1e-6)


@given(st.lists(st.tuples(st.integers(min_value=1, max_value=999), st.sampled_from(['w', 'd', 'h', 'm', 's', 'ms'])),
                min_size=1, max_size=4))
def test_compound_duration_is_the_sum_of_its_parts(parts):
    text = ''.join('%d%s' % part for part in parts)
    factor = {'w': 604800, 'd': 86400, 'h': 3600, 'm': 60, 's': 1, 'ms': 0.001}
    assert parse_duration(text) == pytest.approx(sum(number * factor[unit] for number, unit in parts))
    assert parse_time('-' + text, now=NOW) == pytest.approx(NOW - parse_duration(text))
