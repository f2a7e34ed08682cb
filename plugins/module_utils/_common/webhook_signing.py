# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Sign a webhook event: HMAC-SHA256 over ``<timestamp>.<body>``, sent as two headers.

The sender serialises the event once, signs exactly those bytes and sends exactly those bytes:

* ``X-Canary-Release-Timestamp: <unix seconds>``
* ``X-Canary-Release-Signature: sha256=<lower-case hex HMAC-SHA256(secret, "<timestamp>.<body>")>``

The ``sha256=`` prefix is GitHub's (``X-Hub-Signature-256``); the timestamp inside the signed text, checked
against a tolerance by the receiver, is how Slack makes a captured request useless later (a replay). Secret,
timestamp and body are encoded as UTF-8. :func:`verify` is the receiving side's check (constant-time compare).
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = 'X-Canary-Release-Signature'
TIMESTAMP_HEADER = 'X-Canary-Release-Timestamp'
SCHEME = 'sha256='
DEFAULT_TOLERANCE = 300


class SigningError(ValueError):
    """The event cannot be signed (no secret, a body that is not text, a bad timestamp)."""


def _bytes(value, what):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode('utf-8')
    raise SigningError('%s must be a string, not %s' % (what, type(value).__name__))


def signature(secret, timestamp, body):
    """``sha256=<hex>``: HMAC-SHA256 under ``secret`` of ``<timestamp>.<body>``."""
    key = _bytes(secret, 'the secret')
    if not key:
        raise SigningError('the secret is empty')
    message = _bytes(str(int(timestamp)), 'the timestamp') + b'.' + _bytes(body, 'the body')
    return SCHEME + hmac.new(key, message, hashlib.sha256).hexdigest()


def signature_headers(secret, body, timestamp=None):
    """The two headers for ``body``, signed now (or at ``timestamp``, unix seconds)."""
    if timestamp is None:
        timestamp = time.time()
    try:
        timestamp = int(timestamp)
    except (TypeError, ValueError):
        raise SigningError('the timestamp must be unix seconds, not %r' % (timestamp,))
    return {SIGNATURE_HEADER: signature(secret, timestamp, body), TIMESTAMP_HEADER: str(timestamp)}


def verify(secret, body, timestamp_header, signature_header, now=None, tolerance=DEFAULT_TOLERANCE):
    """Whether the headers sign ``body`` (bytes as received) under ``secret`` within ``tolerance`` seconds of now."""
    try:
        timestamp = int(timestamp_header)
    except (TypeError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance or not isinstance(signature_header, str):
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected.encode('ascii'), signature_header.encode('utf-8', 'replace'))
