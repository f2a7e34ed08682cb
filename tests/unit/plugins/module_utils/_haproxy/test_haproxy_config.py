"""The backend section parser and weight editor: known answers, errors, and property tests on generated files
checked against an independent model of the edit (and, where haproxy is installed, against ``haproxy -c``)."""

import os
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.canary.release.plugins.module_utils._haproxy.haproxy_config import (
    HaproxyConfigError,
    apply_weights,
    parse_backend,
    split_line,
)
from tests.support.haproxy import find_haproxy

SAMPLE = '''global
    stats socket /run/haproxy/admin.sock level admin   # the runtime API

defaults
    mode http
    default-server weight 4 check
    timeout connect 1s
    timeout client 5s
    timeout server 5s

backend other
    server a 10.0.0.1:80 weight 3

backend app   # our app
    balance roundrobin
    server canary-1 10.0.0.10:8080 weight 9 maxconn 100 # the canary
    server "stable-1" 10.0.0.11:8080
\tserver stable-2\t10.0.0.12:8080 backup
    default-server weight 2
    server stable-3 10.0.0.13:8080 cookie s3 weight '007'
    server stable-4 10.0.0.14:8080 # weight 200 is a comment
    # server ghost 10.0.0.99:8080
    server-template extra 3 app.internal:8080

listen stats
    bind :8404
'''


def weights_of(text, name='app'):
    return parse_backend(text, name).weights()


def test_parses_servers_with_effective_weights():
    backend = parse_backend(SAMPLE, 'app')
    assert [server.as_dict() for server in backend.servers] == [
        {'name': 'canary-1', 'address': '10.0.0.10:8080', 'weight': 9, 'backup': False},
        {'name': 'stable-1', 'address': '10.0.0.11:8080', 'weight': 4, 'backup': False},  # from defaults
        {'name': 'stable-2', 'address': '10.0.0.12:8080', 'weight': 4, 'backup': True},
        {'name': 'stable-3', 'address': '10.0.0.13:8080', 'weight': 7, 'backup': False},
        {'name': 'stable-4', 'address': '10.0.0.14:8080', 'weight': 2, 'backup': False},   # the section's default-server
    ]
    assert backend.templates == ['extra']
    assert weights_of(SAMPLE, 'other') == {'a': 3}


def test_edits_only_weight_values_and_inserts_missing_ones():
    new = apply_weights(SAMPLE, 'app', {'canary-1': 1, 'stable-1': 19, 'stable-2': 4, 'stable-3': 7, 'stable-4': 0})
    expected = SAMPLE.replace('weight 9 maxconn', 'weight 1 maxconn')
    expected = expected.replace('"stable-1" 10.0.0.11:8080\n', '"stable-1" 10.0.0.11:8080 weight 19\n')
    expected = expected.replace('10.0.0.14:8080 # weight', '10.0.0.14:8080 weight 0 # weight')
    assert new == expected
    assert weights_of(new) == {'canary-1': 1, 'stable-1': 19, 'stable-2': 4, 'stable-3': 7, 'stable-4': 0}
    assert weights_of(new, 'other') == {'a': 3}


def test_equal_weights_leave_the_text_identical():
    assert apply_weights(SAMPLE, 'app', {'stable-3': 7, 'stable-1': 4}) is SAMPLE


def test_quoted_weight_is_replaced_with_its_quotes():
    text = 'backend app\n    server a 1.2.3.4:80 weight "5" check\r\n'
    assert apply_weights(text, 'app', {'a': 6}) == 'backend app\n    server a 1.2.3.4:80 6 check\r\n'.replace(
        ':80 6', ':80 weight 6')


def test_named_defaults_and_from():
    text = ('defaults base\n    default-server weight 8\n'
            'defaults other\n    mode http\n'
            'backend app from base\n    server a 1.2.3.4:80\n'
            'backend b\n    server a 1.2.3.4:80\n')
    assert weights_of(text) == {'a': 8}
    assert weights_of(text, 'b') == {'a': 1}  # the last defaults section before it has no default-server weight


def test_listen_section_counts_as_a_backend():
    assert weights_of('listen app\n    bind :80\n    server a 1.2.3.4:80 weight 2\n') == {'a': 2}


def test_split_line_quotes_escapes_and_comments():
    line = 'server a\\ b "x y"\'z\' #c'
    assert [word.value for word in split_line(line, 0, len(line), 1)] == ['server', 'a b', 'x yz']
    line = 'server "a#b" x\\#y'
    assert [word.value for word in split_line(line, 0, len(line), 1)] == ['server', 'a#b', 'x#y']


@pytest.mark.parametrize('text, name, message', [
    ('backend b\n', 'app', "backend 'app' is not defined in the file (its backend and listen sections: b)"),
    ('backend app\nbackend app\n', 'app', "backend 'app' is defined 2 times (lines 1, 2)"),
    ('backend app\n    server a 1:80\n    server a 2:80\n', 'app', "server 'a' appears twice"),
    ('backend app\n    server a 1:80 weight 257\n', 'app', 'integers from 0 to 256'),
    ('backend app\n    server a 1:80 weight "$W"\n', 'app', "weight '$W'"),
    ('backend app\n    server a 1:80 weight 1 weight 2\n', 'app', 'more than one "weight"'),
    ('backend app\n    server a 1:80 weight\n', 'app', '"weight" without a value'),
    ('backend app\n    server a\n', 'app', 'without a name and an address'),
    ('backend app\n.if defined(X)\n    server a 1:80\n.endif\n', 'app', 'conditional blocks'),
    ('backend app\n    server a "1:80\n', 'app', 'unterminated quoted string (line 2)'),
])
def test_errors(text, name, message):
    with pytest.raises(HaproxyConfigError, match=None) as caught:
        parse_backend(text, name)
    assert message in str(caught.value)


def test_unknown_server_and_bad_weight_are_refused():
    with pytest.raises(HaproxyConfigError, match="server 'nope' is not in backend 'app' of the file"):
        apply_weights(SAMPLE, 'app', {'nope': 1})
    for weight in (-1, 257, True, 1.5):
        with pytest.raises(HaproxyConfigError, match='integer from 0 to 256'):
            apply_weights(SAMPLE, 'app', {'canary-1': weight})


# --- generated files against an independent model ----------------------------------------------------------------

NAMES = st.text('abcxyz019_.-', min_size=1, max_size=6)
SPACE = st.sampled_from([' ', '  ', '\t', ' \t'])
EOL = st.sampled_from(['\n', '\r\n'])
PARAMS = st.lists(st.sampled_from(['check', 'backup', 'maxconn 10', 'cookie c1', 'inter 2s', 'rise 2',
                                   'slowstart 10s']), max_size=3)


@st.composite
def server_lines(draw, name):
    """``(pieces, own weight or None)``: pieces render the line; pieces[1] is where a weight is inserted."""
    sep = draw(SPACE)
    address = draw(st.sampled_from(['10.0.0.1:80', '[::1]:8080', 'localhost:80', 'unix@/run/a.sock']))
    before = draw(PARAMS)
    after = draw(PARAMS)
    weight = draw(st.none() | st.integers(0, 256))
    weight_text = None
    if weight is not None:
        weight_text = draw(st.sampled_from(['%d', '0%d', '"%d"', "'%d'"])) % weight
    comment = draw(st.sampled_from(['', ' # weight 3', '  #x', ' #']))
    head = draw(st.sampled_from(['    ', '\t', '']))
    quoted_name = draw(st.sampled_from(['%s', '"%s"'])) % name
    tail_params = ''.join(sep + param for param in before)
    weight_part = (sep + 'weight' + sep + '\x00W\x00') if weight is not None else ''
    tail = tail_params + weight_part + ''.join(sep + param for param in after) + comment + draw(EOL)
    return head + 'server' + sep + quoted_name + sep + address, tail, weight, weight_text


@st.composite
def config_files(draw):
    """``(text pieces, model)``: a file with a ``backend app`` section and the model of its servers."""
    names = draw(st.lists(NAMES, min_size=1, max_size=8, unique=True))
    defaults_weight = draw(st.none() | st.integers(0, 256))
    parts = ['global\n    maxconn 100\n\n', 'defaults\n    mode http\n    timeout connect 1s\n'
             '    timeout client 1s\n    timeout server 1s\n']
    if defaults_weight is not None:
        parts.append('    default-server weight %d\n' % defaults_weight)
    parts.append('\nbackend other\n    server %s 10.9.9.9:80 weight 5\n\nbackend app\n' % names[0])
    parts.append(draw(st.sampled_from(['', '    balance roundrobin\n', '    # comment\n\n'])))
    current_default = defaults_weight
    model = []
    for name in names:
        if draw(st.booleans()):
            current_default = draw(st.integers(0, 256))
            parts.append('    default-server weight %d check\n' % current_default)
        head, tail, weight, weight_text = draw(server_lines(name))
        effective = weight if weight is not None else (1 if current_default is None else current_default)
        model.append((name, head, tail, weight_text, effective))
        parts.append(model[-1])
    parts.append('\nfrontend fe\n    bind 127.0.0.1:1\n    default_backend app\n')
    return parts


def render(parts, targets=None):
    """The file text; with ``targets``, what the editor must produce (the model of the edit)."""
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        name, head, tail, weight_text, effective = part
        target = None if targets is None else targets[name]
        if weight_text is not None:
            value = weight_text if target is None or target == effective else str(target)
            out.append(head + tail.replace('\x00W\x00', value))
        elif target is not None and target != effective:
            out.append(head + ' weight %d' % target + tail)
        else:
            out.append(head + tail)
    return ''.join(out)


@given(config_files(), st.data())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_generated_files_parse_and_edit_like_the_model(parts, data):
    text = render(parts)
    servers = [part for part in parts if not isinstance(part, str)]
    assert weights_of(text) == dict((name, effective) for name, dummy, dummy, dummy, effective in servers)
    targets = dict((name, data.draw(st.integers(0, 256))) for name, dummy, dummy, dummy, dummy in servers)
    edited = apply_weights(text, 'app', targets)
    assert edited == render(parts, targets)
    assert weights_of(edited) == targets
    assert apply_weights(edited, 'app', targets) == edited  # idempotent
    assert weights_of(edited, 'other') == weights_of(text, 'other')


@pytest.mark.skipif(find_haproxy() is None, reason='haproxy is not installed')
@given(config_files(), st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_files_before_and_after_an_edit_pass_haproxy_check(parts, data):
    servers = [part for part in parts if not isinstance(part, str)]
    targets = dict((name, data.draw(st.integers(0, 256))) for name, dummy, dummy, dummy, dummy in servers)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, 'haproxy.cfg')
        for text in (render(parts), apply_weights(render(parts), 'app', targets)):
            with open(path, 'w', encoding='utf-8', newline='') as handle:
                handle.write(text)
            completed = subprocess.run([find_haproxy(), '-c', '-f', path], capture_output=True, text=True,
                                       timeout=30, check=False)
            assert completed.returncode == 0, completed.stdout + completed.stderr + text
