"""Who may force the canary: the secret rule, trusted source networks, and the refusal of public forcing."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._common.forcing_policy import (
    ForcingPolicyError,
    check_forcing,
    check_secret,
    secret_bits,
    secret_problem,
    trusted_networks,
)

GOOD = '3f9c2a7be14d5068e0b1a4c97d2f63b8'  # openssl rand -hex 16


@pytest.mark.parametrize('value', [
    GOOD,
    'k7Qm2xR9vT4pL8wZ',
    'a"b\\c$d.e~f[g]h(i)j{k}',
    'k7Qm2xR9vT4pL8wZ',  # 16 different characters: exactly 64 bits
    'correct-horse-battery-staple',
    '!' + 'Aa1Bb2Cc3Dd4Ee5F' * 8,  # 129 - 1 = 128 characters
])
def test_acceptable_secrets(value):
    value = value[:128]
    assert secret_problem(value) is None
    assert check_secret(value, 'header_secret') == value


@pytest.mark.parametrize('value, words', [
    ('always', 'it has 6 characters; it needs 16 to 128'),
    ('a' * 129, 'needs 16 to 128'),
    ('abcdefgh 1234567', 'visible ASCII'),
    ('abcdefgh\t1234567', 'visible ASCII'),
    ('abcdefgh*1234567', 'wildcards'),
    ('abcdefgh?1234567', 'wildcards'),
    ('alwaysalwaysalways', 'only 5 different characters'),
    ('AaAaBbBbCcCcDdDdEeEe', 'only 5 different characters'),  # letter case ignored, like the ALB
    ('aabbccddeeffgghh', 'guessable'),  # 16 letters, 8 different: 48 bits
    ('012345678901234567', 'guessable'),  # 18 digits: 58 bits
    ('canarycanary1234', 'about 48 bits'),  # repetition
    ('CanaryRelease2024!', 'guessable'),
    ('deadbeefdeadbeef', 'only 5 different'),
    ('caf\u00e9caf\u00e9-1234567890', 'visible ASCII'),
    (None, 'must be a string'),
])
def test_refused_secrets_never_quote_the_value(value, words):
    with pytest.raises(ForcingPolicyError, match=words.replace('*', r'\*').replace('?', r'\?')) as caught:
        check_secret(value, 'header_secret')
    assert 'header_secret is not an acceptable secret' in str(caught.value)
    if value and len(value) > 3:
        assert value not in str(caught.value)


def test_cookie_secrets_exclude_cookie_delimiters():
    for character in '",;\\':
        value = 'k7Qm2xR9' + character + 'vT4pL8wZ'
        assert secret_problem(value) is None
        assert 'cookie value may not contain' in secret_problem(value, cookie=True)


def test_secret_bits():
    assert round(secret_bits('k7Qm2xR9vT4pL8wZ'), 1) == 64.0  # 16 different: H = 4
    assert round(secret_bits('abcdefghijklmnopq'), 1) == round(17 * 4.08746, 1)  # H = log2(17) < log2(26)
    assert round(secret_bits('canarycanary1234'), 1) == 48.0
    assert round(secret_bits('0' * 40), 1) == 0.0
    assert secret_bits('') == 0.0
    assert secret_bits('ABCdef') == secret_bits('abcdef')  # letter case ignored


def test_trusted_networks_are_checked_and_normalised():
    assert trusted_networks(None) == []
    assert trusted_networks(['127.0.0.1', '10.0.0.0/8', '2001:db8::/32', '::1', ' 192.0.2.0/24 ']) == [
        '127.0.0.1/32', '10.0.0.0/8', '2001:db8::/32', '::1/128', '192.0.2.0/24']


@pytest.mark.parametrize('sources, words', [
    ('10.0.0.0/8', 'must be a list'),
    (['10.0.0.1/8'], 'has host bits set'),
    (['10.0.0.0/33'], 'not a network'),
    (['example.com'], 'not a network'),
    ([10], 'not a CIDR'),
    (['0.0.0.0/0'], 'wider than /8'),
    (['8.0.0.0/7'], 'wider than /8'),
    (['::/0'], 'wider than /16'),
    (['2000::/3'], 'wider than /16'),
    (['10.0.0.0/8', '10.1.0.0/16'], 'overlaps'),
    (['::1', '::1/128'], 'overlaps'),
])
def test_bad_trusted_networks(sources, words):
    with pytest.raises(ForcingPolicyError, match=words):
        trusted_networks(sources)


def test_public_values_need_trusted_sources_or_an_explicit_risk():
    check_forcing('header X-Canary', [], [], False)  # nothing public: nothing to refuse
    check_forcing('header X-Canary', ['always'], ['10.0.0.0/8'], False)
    check_forcing('header X-Canary', ['always'], [], True)
    with pytest.raises(ForcingPolicyError) as caught:
        check_forcing('header X-Canary', ['always'], [], False, ('always',))
    message = str(caught.value)
    assert 'old default value' in message and 'header_secret' in message and 'trusted_sources' in message
    assert 'allow_public_forcing' in message
    with pytest.raises(ForcingPolicyError, match='cookie_secret') as caught:
        check_forcing('cookie beta', ['yes'], [], False, ('always',))
    assert 'not secret' in str(caught.value)
