"""Webhook signatures: a known answer, what the receiver's check accepts and rejects, and the filter's errors."""

import hashlib
import hmac
import os
import time

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.canary.release.plugins.filter.webhook_signature import webhook_signature
from ansible_collections.canary.release.plugins.module_utils._common.webhook_signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SigningError,
    signature,
    signature_headers,
    verify,
)

BODY = '{"text": "canary.release: web 1.4.0: step 0 at 10 %"}'
SECRET = 's3cret-\u00e9'  # non-ASCII: encoded as UTF-8


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(SECRET.encode('utf-8'), b'1700000000.' + BODY.encode('utf-8'), hashlib.sha256).hexdigest()
    assert signature(SECRET, 1700000000, BODY) == 'sha256=' + expected
    # a fixed known answer, so that a change of the scheme cannot pass unnoticed
    assert signature('key', 1, '{}') == 'sha256=' + hmac.new(b'key', b'1.{}', hashlib.sha256).hexdigest()


def test_the_headers_carry_the_signed_timestamp():
    headers = signature_headers(SECRET, BODY, timestamp=1700000000.9)
    assert headers == {TIMESTAMP_HEADER: '1700000000', SIGNATURE_HEADER: signature(SECRET, 1700000000, BODY)}
    assert sorted(headers) == ['X-Canary-Release-Signature', 'X-Canary-Release-Timestamp']


def test_without_a_timestamp_the_headers_are_signed_now():
    headers = signature_headers(SECRET, BODY)
    assert verify(SECRET, BODY.encode('utf-8'), headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])


@pytest.mark.parametrize('change', ['body', 'secret', 'timestamp', 'old', 'future', 'missing', 'garbage'])
def test_the_receiver_rejects_anything_but_the_signed_request_within_the_tolerance(change):
    headers = signature_headers(SECRET, BODY, timestamp=1000)
    body, secret, stamp, sig, now = BODY, SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], 1100
    assert verify(secret, body, stamp, sig, now=now)
    if change == 'body':
        body = BODY.replace('10 %', '100 %')
    elif change == 'secret':
        secret = 'other'
    elif change == 'timestamp':
        stamp = '1001'  # the signature covers the timestamp: a replay cannot refresh it
    elif change == 'old':
        now = 1000 + 301
    elif change == 'future':
        now = 1000 - 301
    elif change == 'missing':
        stamp, sig = None, None
    else:
        sig = 'sha256=' + 'z' * 64
    assert not verify(secret, body, stamp, sig, now=now)


@pytest.mark.parametrize('secret, body, timestamp', [('', BODY, 1), (None, BODY, 1), ('k', {'text': 'x'}, 1),
                                                     ('k', BODY, 'yesterday')])
def test_nothing_is_signed_without_a_secret_a_text_body_or_unix_seconds(secret, body, timestamp):
    with pytest.raises(SigningError):
        signature_headers(secret, body, timestamp)
    with pytest.raises(AnsibleFilterError, match='^webhook_signature: '):
        webhook_signature(body, secret, timestamp)


def test_the_filter_returns_the_headers():
    assert webhook_signature(BODY, SECRET, 1700000000) == signature_headers(SECRET, BODY, 1700000000)


def test_the_receivers_check_in_the_docs_accepts_our_events_and_nothing_else():
    docs = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', '..', 'docs', 'webhooks.md')
    with open(docs, encoding='utf-8') as handle:
        snippet = handle.read().split('```python\n', 1)[1].split('```', 1)[0]
    namespace = {}
    exec(compile(snippet, 'docs/webhooks.md', 'exec'), namespace)  # pylint: disable=exec-used
    check = namespace['is_canary_release_event']
    body = BODY.encode('utf-8')
    headers = signature_headers(SECRET, BODY)
    assert check(SECRET.encode('utf-8'), body, headers)
    assert not check(SECRET.encode('utf-8'), body + b' ', headers)
    assert not check(b'other', body, headers)
    assert not check(SECRET.encode('utf-8'), body, signature_headers(SECRET, BODY, time.time() - 301))
    assert not check(SECRET.encode('utf-8'), body, dict(headers, **{TIMESTAMP_HEADER: '\u00b2'}))
    assert not check(SECRET.encode('utf-8'), body, dict(headers, **{SIGNATURE_HEADER: 'sha256=\u00e9'}))
    assert not check(SECRET.encode('utf-8'), body, {})
