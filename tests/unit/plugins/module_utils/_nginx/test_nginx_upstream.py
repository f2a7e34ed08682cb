"""The upstream parser and editor: known answers, errors, a differential test against a port of nginx's own
token reader, and property tests on generated files checked against an independent model of the edit."""

import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_upstream import (
    BlockEnd,
    NginxConfigError,
    ServerChange,
    apply_server_changes,
    list_upstreams,
    parse_upstream,
    statements,
    tokenize,
)
from tests.support.nginx_configs import changes_for, config_files

SAMPLE = '''# the main file
user nobody;
http {
    include mime.types;          # { not a block
    upstream other {
        server 10.0.0.1:8080 weight=3;
    }
    upstream app {
        zone app 64k;
        hash $cookie_canary_sticky consistent;
        server 10.0.0.1:8080 weight=5 max_fails=3 fail_timeout=10s;
        server [::1]:8080 down;
        server unix:/run/app.sock backup;
        server "app.internal:80" # why
            down;
        server 10.0.0.9:80;
        keepalive 8;
    }
    server {
        location / { return 200 "a;}{ \\" # x"; }
        set $a "${b}c";
    }
}
'''


def servers_of(text, name='app'):
    return [server.as_dict() for server in parse_upstream(text, name).servers]


def test_parses_servers_with_effective_weights():
    assert servers_of(SAMPLE) == [
        {'address': '10.0.0.1:8080', 'weight': 5, 'down': False, 'backup': False},
        {'address': '[::1]:8080', 'weight': 1, 'down': True, 'backup': False},
        {'address': 'unix:/run/app.sock', 'weight': 1, 'down': False, 'backup': True},
        {'address': 'app.internal:80', 'weight': 1, 'down': True, 'backup': False},
        {'address': '10.0.0.9:80', 'weight': 1, 'down': False, 'backup': False},
    ]
    assert servers_of(SAMPLE, 'other') == [{'address': '10.0.0.1:8080', 'weight': 3, 'down': False,
                                            'backup': False}]
    assert list_upstreams(SAMPLE) == ['other', 'app']


def test_edits_only_weight_and_down_tokens():
    changed = apply_server_changes(SAMPLE, 'app', {
        '10.0.0.1:8080': ServerChange(weight=7, down=True),
        '[::1]:8080': ServerChange(weight=3, down=False),
        'app.internal:80': ServerChange(weight=2, down=False),
        '10.0.0.9:80': ServerChange(weight=1),
    })
    expected = (SAMPLE
                .replace('server 10.0.0.1:8080 weight=5 max_fails=3 fail_timeout=10s;',
                         'server 10.0.0.1:8080 weight=7 max_fails=3 fail_timeout=10s down;')
                .replace('server [::1]:8080 down;', 'server [::1]:8080 weight=3;')
                # after a comment only the token goes: the newline must stay or ";" would be commented out
                .replace('server "app.internal:80" # why\n            down;',
                         'server "app.internal:80" weight=2 # why\n            ;'))
    assert changed == expected
    # The other upstream's server with the same address is untouched.
    assert 'server 10.0.0.1:8080 weight=3;' in changed


def test_no_change_returns_identical_text():
    changes = dict((s['address'], ServerChange(weight=s['weight'], down=s['down'])) for s in servers_of(SAMPLE))
    assert apply_server_changes(SAMPLE, 'app', changes) == SAMPLE
    assert apply_server_changes(SAMPLE, 'app', {}) == SAMPLE


def test_weight_value_with_leading_zeros_is_kept_when_equal():
    text = 'upstream app { server a:1 weight=007; }'
    assert apply_server_changes(text, 'app', {'a:1': ServerChange(weight=7)}) == text
    assert apply_server_changes(text, 'app', {'a:1': ServerChange(weight=8)}) == 'upstream app { server a:1 weight=8; }'


def test_crlf_line_endings_survive():
    text = 'http {\r\n  upstream app {\r\n    server 1.1.1.1:80 down;\r\n    server 1.1.1.2:80;\r\n  }\r\n}\r\n'
    changed = apply_server_changes(text, 'app', {'1.1.1.1:80': ServerChange(weight=4, down=False),
                                                 '1.1.1.2:80': ServerChange(down=True)})
    assert changed == ('http {\r\n  upstream app {\r\n    server 1.1.1.1:80 weight=4;\r\n'
                       '    server 1.1.1.2:80 down;\r\n  }\r\n}\r\n')


def test_weight_and_down_added_to_bare_server_in_that_order():
    text = 'upstream app{server unix:/s;}'
    assert apply_server_changes(text, 'app', {'unix:/s': ServerChange(weight=9, down=True)}) == \
        'upstream app{server unix:/s weight=9 down;}'


def test_weight_one_is_not_inserted():
    text = 'upstream app { server a:1; }'
    assert apply_server_changes(text, 'app', {'a:1': ServerChange(weight=1, down=False)}) == text


def test_every_down_token_is_removed():
    text = 'upstream app { server a:1 down max_fails=1 down; }'
    assert apply_server_changes(text, 'app', {'a:1': ServerChange(down=False)}) == \
        'upstream app { server a:1 max_fails=1; }'


def test_upstream_in_stream_context_and_quoted_name():
    text = 'stream {\n upstream "db" {\n  server 10.0.0.1:5432;\n }\n}\n'
    assert servers_of(text, 'db')[0]['address'] == '10.0.0.1:5432'


def test_non_ascii_and_odd_bytes_round_trip():
    raw = 'upstream app { server a:1; } # caf\xe9 \udcff\n'
    assert apply_server_changes(raw, 'app', {'a:1': ServerChange(weight=2)}) == \
        'upstream app { server a:1 weight=2; } # caf\xe9 \udcff\n'


def test_include_inside_upstream_is_reported():
    upstream = parse_upstream('upstream app { server a:1; include /etc/nginx/app_servers.conf; }', 'app')
    assert upstream.includes == ['/etc/nginx/app_servers.conf']
    with pytest.raises(NginxConfigError, match='includes /etc/nginx/app_servers.conf'):
        upstream.server('b:2')


@pytest.mark.parametrize('text, name, message', [
    ('upstream other { server a:1; }', 'app', "upstream 'app' is not defined"),
    ('http { upstream app { server a:1; } }\nstream { upstream app { server b:1; } }', 'app',
     r"defined 2 times \(lines 1, 2\)"),
    ('upstream app {\n server a:1;\n server b:1;\n server a:1;\n}', 'app', r"'a:1' appears twice .*lines 2 and 4"),
    ('http {\n upstream app { server a:1; }\n', 'app', r'never closed \(line 1\)'),
    ('upstream app { server a:1; }\n}', 'app', r'unexpected "}" without a matching "{" \(line 2\)'),
    ('upstream app { server a:1 }', 'app', 'unexpected "}"'),
    ('upstream app { server "a:1; }', 'app', 'unterminated quoted string'),
    ("upstream app { server 'a:1; }", 'app', 'unterminated quoted string'),
    ('upstream app { server "a:1"x; }', 'app', 'after a quoted string'),
    ('upstream app { server a:1; ; }', 'app', 'unexpected ";"'),
    ('upstream app { server a:1 weight=0; }', 'app', 'invalid weight'),
    ('upstream app { server a:1 weight=x; }', 'app', 'invalid weight'),
    ('upstream app { server a:1 weight=1 weight=2; }', 'app', 'more than one weight'),
    ('upstream app { server; }', 'app', 'without an address'),
    ('upstream app { server a:1; }\\', 'app', 'backslash'),
    ('upstream app { server a:1', 'app', 'expecting ";" or "}"'),
])
def test_errors(text, name, message):
    with pytest.raises(NginxConfigError, match=message):
        parse_upstream(text, name)


def test_unknown_address_is_an_error_listing_the_servers():
    with pytest.raises(NginxConfigError, match=r"'9.9.9.9:80' is not in upstream 'app' .*10.0.0.1:8080"):
        apply_server_changes(SAMPLE, 'app', {'9.9.9.9:80': ServerChange(weight=2)})


@pytest.mark.parametrize('weight', [0, -1, 2.5, True, '3'])
def test_server_change_rejects_bad_weights(weight):
    with pytest.raises(NginxConfigError):
        ServerChange(weight=weight)


def test_large_upstream_is_edited_quickly():
    lines = ['upstream app {\n    zone app 1m;\n']
    lines += ['    server 10.%d.%d.%d:8080 max_fails=3;\n' % (i // 65536, i // 256 % 256, i % 256)
              for i in range(10000)]
    lines.append('}\n')
    text = ''.join(lines)
    upstream = parse_upstream(text, 'app')
    changes = dict((s.address, ServerChange(weight=19 if n else 9)) for n, s in enumerate(upstream.servers))
    started = time.perf_counter()
    changed = apply_server_changes(text, 'app', changes)
    elapsed = time.perf_counter() - started
    after = parse_upstream(changed, 'app')
    assert [s.weight for s in after.servers[:3]] == [9, 19, 19]
    assert elapsed < 1.0, elapsed


# --- differential test against nginx's token reader -------------------------------------------------------


def nginx_reference(text):
    """A line-by-line port of ngx_conf_read_token + the block handling of ngx_conf_parse (nginx 1.22).

    Returns a list of events ('stmt', [values], ';' or '{') / ('end',), or the string 'error'.
    """
    events = []
    args = []
    depth = 0
    i = 0
    n = len(text)
    ws = ' \t\r\n'

    def reset():
        return dict(last_space=True, need_space=False, sharp=False, quoted=False, s_quoted=False,
                    d_quoted=False, variable=False, start=0)

    state = reset()

    def unescape(raw):
        out = []
        j = 0
        while j < len(raw):
            if raw[j] == '\\' and j + 1 < len(raw):
                nxt = raw[j + 1]
                if nxt in '"\'\\':
                    j += 1
                elif nxt in 'trn':
                    out.append({'t': '\t', 'r': '\r', 'n': '\n'}[nxt])
                    j += 2
                    continue
            out.append(raw[j])
            j += 1
        return ''.join(out)

    while True:
        if i >= n:
            if args or not state['last_space']:
                return 'error'
            if depth:
                return 'error'
            return events
        ch = text[i]
        i += 1
        if ch == '\n' and state['sharp']:
            state['sharp'] = False
        if state['sharp']:
            continue
        if state['quoted']:
            state['quoted'] = False
            continue
        if state['need_space']:
            if ch in ws:
                state['last_space'] = True
                state['need_space'] = False
                continue
            if ch == ';':
                events.append(('stmt', args, ';'))
                args, state = [], reset()
                continue
            if ch == '{':
                events.append(('stmt', args, '{'))
                depth += 1
                args, state = [], reset()
                continue
            if ch == ')':
                state['last_space'] = True
                state['need_space'] = False
            else:
                return 'error'
        if state['last_space']:
            state['start'] = i - 1
            if ch in ws:
                continue
            if ch in ';{':
                if not args:
                    return 'error'
                events.append(('stmt', args, ch))
                if ch == '{':
                    depth += 1
                args, state = [], reset()
                continue
            if ch == '}':
                if args or depth == 0:
                    return 'error'
                depth -= 1
                events.append(('end',))
                state = reset()
                continue
            if ch == '#':
                state['sharp'] = True
                continue
            state['last_space'] = False
            if ch == '\\':
                state['quoted'] = True
            elif ch == '"':
                state['start'] += 1
                state['d_quoted'] = True
            elif ch == "'":
                state['start'] += 1
                state['s_quoted'] = True
            elif ch == '$':
                state['variable'] = True
            continue
        if ch == '{' and state['variable']:
            continue
        state['variable'] = False
        if ch == '\\':
            state['quoted'] = True
            continue
        if ch == '$':
            state['variable'] = True
            continue
        found = False
        if state['d_quoted']:
            if ch == '"':
                state['d_quoted'] = False
                state['need_space'] = True
                found = True
        elif state['s_quoted']:
            if ch == "'":
                state['s_quoted'] = False
                state['need_space'] = True
                found = True
        elif ch in ws or ch in ';{':
            state['last_space'] = True
            found = True
        if found:
            args = args + [unescape(text[state['start']:i - 1])]
            if ch == ';':
                events.append(('stmt', args, ';'))
                args, state = [], reset()
            elif ch == '{':
                events.append(('stmt', args, '{'))
                depth += 1
                args, state = [], reset()


def ours(text):
    try:
        return [('end',) if isinstance(event, BlockEnd) else
                ('stmt', [word.value for word in event.words], event.terminator) for event in statements(text)]
    except NginxConfigError:
        return 'error'


NGINX_ALPHABET = st.sampled_from(list(' \t\r\n;{}#"\'\\$)') + ['a', 'b', 'server', 'weight=2', 'down', 'n', 't',
                                                               'upstream', '\n', ' '])


def test_reference_port_sanity():
    assert nginx_reference('a "b c" d\\;e ${x}y;\nf { g; }') == [
        ('stmt', ['a', 'b c', 'd\\;e', '${x}y'], ';'), ('stmt', ['f'], '{'), ('stmt', ['g'], ';'), ('end',)]
    assert nginx_reference('a "b"c;') == 'error'
    assert nginx_reference('a#b;') == [('stmt', ['a#b'], ';')]


@settings(max_examples=2000, deadline=None)
@given(st.lists(NGINX_ALPHABET, max_size=40).map(''.join))
@example('${{;')  # found by this test: nginx keeps a word going over every "{" after a "$"
def test_tokenizer_agrees_with_nginx_reader(text):
    assert ours(text) == nginx_reference(text)


@settings(max_examples=150, deadline=None)
@given(config_files())
def test_generated_files_agree_with_nginx_reader(config):
    assert ours(config.text) == nginx_reference(config.text)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_tokens_cover_the_text_without_gaps(text):
    try:
        tokens = list(tokenize(text))
    except NginxConfigError:
        return
    assert ''.join(text[start:end] for dummy, start, end in tokens) == text
    assert all(end > start for dummy, start, end in tokens)


# --- property tests on generated upstream files --------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_files())
def test_parse_matches_the_generated_model_and_round_trips(config):
    text = config.text
    upstream = parse_upstream(text, config.name)
    assert [server.as_dict() for server in upstream.servers] == config.expected()
    unchanged = dict((s.address, ServerChange(weight=s.weight, down=s.down)) for s in upstream.servers)
    assert apply_server_changes(text, config.name, unchanged) == text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_edits_match_the_model_exactly(data):
    config = data.draw(config_files())
    changes = data.draw(changes_for(config))
    text = config.text
    edited = apply_server_changes(text, config.name, dict(
        (address, ServerChange(weight=weight, down=down)) for address, (weight, down) in changes.items()))
    # Byte for byte what the model says: only weight/down tokens differ, everything else is the same.
    assert edited == config.render(changes)
    after = dict((s.address, s.as_dict()) for s in parse_upstream(edited, config.name).servers)
    for before in config.expected():
        weight, down = changes.get(before['address'], (None, None))
        expected = dict(before)
        if weight is not None:
            expected['weight'] = weight
        if down is not None:
            expected['down'] = down
        assert after[before['address']] == expected
    # Editing again with the same request changes nothing.
    assert apply_server_changes(edited, config.name, dict(
        (address, ServerChange(weight=weight, down=down)) for address, (weight, down) in changes.items())) == edited
