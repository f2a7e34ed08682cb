# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Points in time and durations as users write them in playbooks.

Plain Python, shared by the Prometheus and CloudWatch clients.

A point in time (:func:`parse_time`) is one of

* ``now``;
* a relative form: ``-15m``, ``-1h30m``, ``now-15m``, ``+5m``, ``now+2h`` (units ``ms``, ``s``, ``m``, ``h``,
  ``d``, ``w``; a bare number after the sign is seconds);
* a unix timestamp in seconds: ``1700000000``, ``1700000000.5``, or the same as a string;
* an RFC 3339 / ISO 8601 date-time: ``2024-05-01T12:00:00Z``, ``2024-05-01T12:00:00.123+02:00``,
  ``2024-05-01 12:00:00`` (no offset means UTC), ``2024-05-01`` (midnight UTC);
* a ``datetime.datetime`` (naive means UTC).

It is returned as a float number of seconds since the epoch. A duration (:func:`parse_duration`) is a number of
seconds or a string such as ``30s``, ``1m``, ``1h30m``, ``500ms``, and is returned as float seconds.
"""

import datetime
import math
import re
import time as _time

UNIT_SECONDS = {
    'ms': 0.001,
    's': 1.0,
    'm': 60.0,
    'h': 3600.0,
    'd': 86400.0,
    'w': 604800.0,
}

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

_DURATION_PART = re.compile(r'(\d+(?:\.\d+)?)(ms|s|m|h|d|w)')
_NUMBER = re.compile(r'^[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$')
_RELATIVE = re.compile(r'^(?:now)?\s*([+-])\s*(.+)$')
_ISO = re.compile(
    r'^(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})'
    r'(?:[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?'
    r'(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)?)?$'
)


class TimeSpecError(ValueError):
    """A time or duration that cannot be understood."""


def parse_duration(value):
    """Return ``value`` (number of seconds, or ``30s``/``1m``/``1h30m``/``500ms``) as float seconds, > 0 not required."""
    if isinstance(value, bool) or value is None:
        raise TimeSpecError('invalid duration %r: expected seconds or a string such as 30s, 5m, 1h30m' % (value,))
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        if _NUMBER.match(text):
            seconds = float(text)
        else:
            seconds = _parse_duration_units(text)
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise TimeSpecError('invalid duration %r: must be a finite number of seconds >= 0' % (value,))
    return seconds


def _parse_duration_units(text):
    position = 0
    seconds = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(text):
        raise TimeSpecError('invalid duration %r: expected seconds or a string such as 30s, 5m, 1h30m (units: %s)'
                            % (text, ', '.join(sorted(UNIT_SECONDS, key=UNIT_SECONDS.get))))
    return seconds


def parse_time(value, now=None):
    """Return the point in time ``value`` as float unix seconds; relative forms count from ``now`` (default: the clock)."""
    if now is None:
        now = _time.time()
    elif isinstance(now, datetime.datetime):
        now = datetime_to_timestamp(now)
    if isinstance(value, bool) or value is None:
        raise TimeSpecError('invalid time %r: expected now, -15m, a unix timestamp or an RFC 3339 date-time' % (value,))
    if isinstance(value, datetime.datetime):
        return datetime_to_timestamp(value)
    if isinstance(value, (int, float)):
        return _finite(float(value), value)
    text = str(value).strip()
    if text.lower() == 'now':
        return float(now)
    if _NUMBER.match(text):
        return _finite(float(text), value)
    relative = _RELATIVE.match(text.lower())
    if relative:
        try:
            offset = parse_duration(relative.group(2).strip())
        except TimeSpecError:
            raise TimeSpecError('invalid relative time %r: expected a form such as -15m, now-1h, +30s' % (value,))
        return float(now) + (offset if relative.group(1) == '+' else -offset)
    return datetime_to_timestamp(_parse_iso(text, value))


def _finite(number, original):
    if math.isnan(number) or math.isinf(number):
        raise TimeSpecError('invalid time %r: not a finite number' % (original,))
    return number


def _parse_iso(text, original):
    match = _ISO.match(text)
    if not match:
        raise TimeSpecError('invalid time %r: expected now, a relative time (-15m, now-1h), a unix timestamp '
                            'or an RFC 3339 / ISO 8601 date-time (2024-05-01T12:00:00Z)' % (original,))
    parts = match.groupdict()
    fraction = parts['fraction'] or ''
    microsecond = int((fraction + '000000')[:6]) if fraction else 0
    offset = parts['offset']
    if offset is None or offset in ('Z', 'z'):
        tzinfo = datetime.timezone.utc
    else:
        sign = -1 if offset[0] == '-' else 1
        digits = offset[1:].replace(':', '')
        hours = int(digits[:2])
        minutes = int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            raise TimeSpecError('invalid time %r: bad UTC offset %s' % (original, offset))
        tzinfo = datetime.timezone(sign * datetime.timedelta(hours=hours, minutes=minutes))
    try:
        return datetime.datetime(int(parts['year']), int(parts['month']), int(parts['day']),
                                 int(parts['hour'] or 0), int(parts['minute'] or 0), int(parts['second'] or 0),
                                 microsecond, tzinfo=tzinfo)
    except ValueError as error:
        raise TimeSpecError('invalid time %r: %s' % (original, error))


def datetime_to_timestamp(value):
    """Unix seconds of a ``datetime`` (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return (value - _EPOCH).total_seconds()


def to_datetime(timestamp):
    """The timezone-aware UTC ``datetime`` of unix seconds ``timestamp``."""
    return _EPOCH + datetime.timedelta(seconds=float(timestamp))


def format_rfc3339(value):
    """``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` in UTC for unix seconds or a ``datetime`` (naive means UTC)."""
    if isinstance(value, datetime.datetime):
        value = datetime_to_timestamp(value)
    moment = to_datetime(value)
    if moment.microsecond:
        return moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')
