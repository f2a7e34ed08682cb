"""The routing snippet renderer: exact output, option checks, the forcing policy, secret escaping (round trip
through nginx's string unescaping and a regular expression engine), redaction, and that the output parses."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_routing import (
    RoutingError,
    default_variable,
    header_variable,
    nginx_quote,
    redact,
    regex_literal,
    render,
    routing_spec,
    secret_map_key,
)
from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_upstream import parse_upstream, statements

EXPECTED = '''# Managed by canary.release.nginx_canary_routing: edits to this file are overwritten.
# Include inside http {}; route with: proxy_pass http://$canary_release_app;

# 1 when the client address nginx sees ($remote_addr, as rewritten by the real-IP module
# when it is configured) is in trusted_sources: only then may a request force the canary.
geo $canary_release_app_trusted {
    default 0;
    10.1.0.0/16 1;
    2001:db8::/48 1;
}

# 1 when the header X-Canary has a public value (case-insensitive).
map $http_x_canary $canary_release_app_by_header {
    default 0;
    "always" 1;
}

# 1 when the cookie beta has a public value (case-insensitive).
map $cookie_beta $canary_release_app_by_cookie {
    default 0;
    "yes" 1;
    "\\default" 1;
}

# The upstream for this request: app by weight, or app_canary when forced from a trusted address.
map "$canary_release_app_trusted$canary_release_app_by_header$canary_release_app_by_cookie" $canary_release_app {
    default app;
    "101" app_canary;
    "110" app_canary;
    "111" app_canary;
}

# Canary servers only: forced requests go here.
upstream app_canary {
    hash $canary_release_app_sticky_key consistent;
    server 10.0.0.10:8080;
    server unix:/run/canary.sock;
}

# Stickiness: put "hash $canary_release_app_sticky_key consistent;" in upstream app and
# "add_header Set-Cookie $canary_release_app_set_cookie always;" where it is proxied.
map $cookie_canary_sticky $canary_release_app_sticky_key {
    "" $request_id;
    default $cookie_canary_sticky;
}
map $cookie_canary_sticky $canary_release_app_set_cookie {
    "" "canary_sticky=$request_id; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax";
    default "";
}
'''


def full_spec(**overrides):
    options = dict(upstream='app', canary_upstream='app_canary',
                   canary_servers=['10.0.0.10:8080', 'unix:/run/canary.sock'], cookie_name='beta',
                   cookie_values=['yes', 'default'], sticky=True, trusted_sources=['10.1.0.0/16', '2001:db8::/48'])
    options.update(overrides)
    return routing_spec(**options)


def test_full_snippet_exact_text():
    text = render(full_spec())
    assert text == EXPECTED
    assert render(full_spec()) == text  # deterministic: a second run is idempotent
    # It parses, and the canary-only upstream lists exactly the canary servers.
    list(statements(text))
    assert [s.address for s in parse_upstream(text, 'app_canary').servers] == ['10.0.0.10:8080',
                                                                               'unix:/run/canary.sock']


def test_no_forcing_still_defines_the_variable():
    text = render(routing_spec('app', 'app_canary', header_values=[]))
    assert 'geo' not in text
    assert 'map "" $canary_release_app {\n    default app;\n}\n' in text
    assert 'upstream' not in text.replace('# The upstream', '')
    assert 'sticky' not in text


def test_variables_and_directives():
    names, directives = full_spec(variable='route').variables()
    assert names == {'upstream': '$route', 'sticky_key': '$route_sticky_key', 'set_cookie': '$route_set_cookie'}
    assert directives == {'proxy_pass': 'proxy_pass http://$route;', 'hash': 'hash $route_sticky_key consistent;',
                          'add_header': 'add_header Set-Cookie $route_set_cookie always;'}
    assert routing_spec('app', 'c', header_values=[]).variables()[1] == {'proxy_pass': 'proxy_pass http://$canary_release_app;'}


def test_names():
    assert default_variable('my-app.v2') == 'canary_release_my_app_v2'
    assert header_variable('X-Canary-Force') == '$http_x_canary_force'


@pytest.mark.parametrize('overrides, message', [
    ({'canary_upstream': 'app'}, 'must differ'),
    ({'upstream': 'app {'}, 'upstream'),
    ({'canary_servers': []}, 'at least one'),
    ({'canary_servers': ['10.0.0.1:80', '10.0.0.1:80']}, 'twice'),
    ({'canary_servers': ['10.0.0.1:80; include x']}, 'canary server address'),
    ({'variable': 'a-b'}, 'variable'),
    ({'header_name': 'X Canary'}, 'header_name'),
    ({'header_name': '-X'}, 'header_name'),
    ({'cookie_name': 'beta-tester'}, 'cookie_name'),
    ({'header_values': ['a"b']}, 'header_values'),
    ({'header_values': ['~^.*']}, 'header_values'),
    ({'header_values': ['a', 'A']}, 'twice'),
    ({'cookie_values': ['$host']}, 'cookie_values'),
    ({'cookie_values': ['a;b']}, 'cookie_values'),
    ({'sticky_cookie': 'a b'}, 'sticky_cookie'),
    ({'sticky_max_age': 0}, 'sticky_max_age'),
    ({'sticky_max_age': True}, 'sticky_max_age'),
])
def test_bad_options(overrides, message):
    with pytest.raises(RoutingError, match=message):
        full_spec(**overrides)


SECRET = 'k7Qm2xR9vT4pL8wZ'
COOKIE_SECRET = 'Zx9-Qw8_Er7.Ty6!'


def test_secrets_only_exact_text_and_redaction():
    spec = routing_spec('app', 'app_canary', header_secret=SECRET, cookie_name='beta', cookie_secret=COOKIE_SECRET)
    assert not spec.public_forcing
    text = render(spec)
    assert 'geo' not in text
    assert ('# 1 when the header X-Canary has the secret value (exact, case-sensitive).\n'
            'map $http_x_canary $canary_release_app_by_header {\n'
            '    default 0;\n'
            '    "~^k7Qm2xR9vT4pL8wZ$" 1;  # secret\n'
            '}\n') in text
    assert '    "~^Zx9\\\\-Qw8\\\\_Er7\\\\.Ty6\\\\!$" 1;  # secret\n' in text
    assert '"always"' not in text  # a secret replaces the old default value
    shown = redact(text)
    assert SECRET not in shown and 'Qw8' not in shown
    assert shown.count('"<secret: not shown>" 1;  # secret') == 2
    # Against the text it replaces: an unchanged secret line stays "not shown", a new one is "changed".
    rotated = render(routing_spec('app', 'app_canary', header_secret=SECRET[::-1], cookie_name='beta',
                                  cookie_secret=COOKIE_SECRET))
    shown = redact(rotated, text)
    assert shown.count('<secret: not shown, changed>') == 1 and shown.count('<secret: not shown>') == 1
    assert redact(None) is None
    list(statements(text))


def test_secret_with_trusted_sources_needs_both():
    text = render(routing_spec('app', 'app_canary', header_secret=SECRET, trusted_sources=['127.0.0.1']))
    assert 'geo $canary_release_app_trusted {\n    default 0;\n    127.0.0.1/32 1;\n}\n' in text
    assert ('map "$canary_release_app_trusted$canary_release_app_by_header" $canary_release_app {\n'
            '    default app;\n    "11" app_canary;\n}\n') in text


def test_the_old_default_is_refused_with_what_to_set():
    with pytest.raises(RoutingError) as caught:
        routing_spec('app', 'app_canary')
    message = str(caught.value)
    assert 'header X-Canary' in message and "old default value 'always'" in message
    for option in ('header_secret', 'trusted_sources', 'allow_public_forcing'):
        assert option in message
    # Each way out works.
    assert routing_spec('app', 'app_canary', trusted_sources=['10.0.0.0/8']).header_values == ['always']
    assert routing_spec('app', 'app_canary', header_secret=SECRET).header_values == []
    assert routing_spec('app', 'app_canary', header_values=[]).header_values == []
    public = routing_spec('app', 'app_canary', allow_public_forcing=True)
    assert public.public_forcing and public.header_values == ['always']
    assert not routing_spec('app', 'app_canary', allow_public_forcing=True, header_values=[]).public_forcing


@pytest.mark.parametrize('overrides, message', [
    ({'cookie_name': 'beta', 'header_values': []}, 'cookie beta from any address is refused'),
    ({'cookie_name': 'beta', 'cookie_values': ['yes'], 'header_values': []}, 'cookie_secret'),
    ({'header_values': ['yes'], 'header_secret': SECRET}, 'from any address is refused'),
    ({'header_secret': 'always'}, 'header_secret is not an acceptable secret: it has 6'),
    ({'header_secret': 'canarycanary1234'}, 'guessable'),
    ({'header_secret': SECRET, 'header_name': None}, 'needs header_name'),
    ({'cookie_secret': COOKIE_SECRET, 'header_values': []}, 'needs cookie_name'),
    ({'cookie_name': 'b', 'cookie_secret': 'k7Qm2xR9;vT4pL8wZ', 'header_values': []}, 'cookie value may not'),
    ({'header_secret': SECRET, 'header_values': [SECRET.upper()], 'trusted_sources': ['10.0.0.0/8']},
     'must not also be one of header_values'),
    ({'trusted_sources': ['0.0.0.0/0']}, 'wider than /8'),
    ({'trusted_sources': ['10.0.0.1/8']}, 'host bits'),
])
def test_unsafe_forcing_is_refused(overrides, message):
    options = dict(upstream='app', canary_upstream='app_canary')
    options.update(overrides)
    with pytest.raises(RoutingError, match=re.escape(message)) as caught:
        routing_spec(**options)
    for option in ('header_secret', 'cookie_secret'):
        secret = options.get(option)
        if secret and len(secret) > 6:
            assert secret not in str(caught.value)


def nginx_unquote(token):
    """What nginx's configuration parser makes of a double-quoted string (ngx_conf_read_token): the quotes go,
    backslash-quote, backslash-apostrophe and backslash-backslash lose the backslash, backslash-t/r/n become
    control characters, anything else after a backslash keeps it."""
    assert token.startswith('"') and token.endswith('"')
    body = token[1:-1]
    out = []
    index = 0
    while index < len(body):
        character = body[index]
        if character == '\\' and index + 1 < len(body):
            following = body[index + 1]
            if following in '"\'\\':
                out.append(following)
                index += 2
                continue
            if following in 'trn':
                out.append({'t': '\t', 'r': '\r', 'n': '\n'}[following])
                index += 2
                continue
        elif character == '"':
            raise AssertionError('unescaped quote ends the token early: %r' % token)
        out.append(character)
        index += 1
    return ''.join(out)


VISIBLE = st.characters(min_codepoint=0x21, max_codepoint=0x7e)


@given(secret=st.text(VISIBLE, min_size=1, max_size=64), other=st.text(VISIBLE, max_size=64))
def test_secret_map_key_round_trip(secret, other):
    key = secret_map_key(secret)
    pattern = nginx_unquote(key)
    assert pattern.startswith('~^') and pattern.endswith('$')
    regex = re.compile(pattern[1:])  # "~": case-sensitive
    assert regex.match(secret)
    assert bool(regex.match(other)) == (other == secret)
    assert not regex.match(secret + 'x') and not regex.match('x' + secret)
    if secret.lower() != secret.upper():
        assert not regex.match(secret.swapcase())


@given(st.text(VISIBLE, max_size=64))
def test_quoting_and_regex_literal(text):
    assert nginx_unquote(nginx_quote(text)) == text
    assert re.fullmatch(regex_literal(text), text)
