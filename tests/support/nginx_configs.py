"""Hypothesis strategies for nginx configuration files holding upstream blocks, with a model of each file.

A generated :class:`GeneratedConfig` knows, independently of the parser under test, which servers the target
upstream has (address, weight, down, backup) and how each ``server`` line is laid out, so
:meth:`GeneratedConfig.render` can produce the exact text expected after a set of weight/down changes.

``nginx_valid=True`` restricts the output to what open-source nginx 1.22 accepts with ``nginx -t`` (IP and
unix-socket addresses only, no NGINX Plus parameters, no ``backup`` together with ``hash``).
"""

import dataclasses

from hypothesis import strategies as st

TARGET_NAMES = ('app', 'backend-1', 'my.app', 'u')
OTHER_NAMES = ('other', 'app_canary', 'app2', 'legacy')
PLUS_ONLY_PARAMS = ('resolve', 'route=a', 'service=_http._tcp', 'slow_start=30s', 'drain')


@dataclasses.dataclass
class Param:
    separator: str  # what precedes the token: whitespace, possibly with a comment in it
    text: str
    kind: str  # weight | down | backup | other


@dataclasses.dataclass
class ServerLine:
    address: str
    address_text: str
    separator: str  # between "server" and the address
    params: list
    end: str  # between the last token and ";"

    @property
    def weight(self):
        for param in self.params:
            if param.kind == 'weight':
                return int(param.text.strip('"\'').split('=', 1)[1])
        return 1

    @property
    def down(self):
        return any(param.kind == 'down' for param in self.params)

    @property
    def backup(self):
        return any(param.kind == 'backup' for param in self.params)

    def render(self, change=None):
        """The line's text, or the text the editor must produce for ``change`` = (weight or None, down or None)."""
        weight, down = change if change is not None else (None, None)
        params = [dataclasses.replace(param) for param in self.params]
        inserted = ''
        if weight is not None and weight != self.weight:
            for param in params:
                if param.kind == 'weight':
                    param.text = 'weight=%d' % weight
                    break
            else:
                inserted = ' weight=%d' % weight
        if down is False and self.down:
            kept = []
            for param in params:
                if param.kind != 'down':
                    kept.append(param)
                elif '#' in param.separator:
                    # Whitespace after a comment stays: removing its newline would comment out the rest.
                    kept.append(Param(param.separator, '', 'removed'))
            params = kept
        text = 'server' + self.separator + self.address_text + inserted
        text += ''.join(param.separator + param.text for param in params)
        if down is True and not self.down:
            text += ' down'
        return text + self.end + ';'


@dataclasses.dataclass
class GeneratedConfig:
    name: str
    pieces: list  # str or ServerLine, concatenated in order
    newline: str

    @property
    def servers(self):
        return [piece for piece in self.pieces if isinstance(piece, ServerLine)]

    def render(self, changes=None):
        """The file text; with ``changes`` ({address: (weight, down)}) the text expected after editing."""
        changes = changes or {}
        out = []
        for piece in self.pieces:
            if isinstance(piece, ServerLine):
                out.append(piece.render(changes.get(piece.address)))
            else:
                out.append(piece)
        return ''.join(out)

    @property
    def text(self):
        return self.render()

    def expected(self):
        return [{'address': s.address, 'weight': s.weight, 'down': s.down, 'backup': s.backup}
                for s in self.servers]


def _spaces(newline):
    plain = st.sampled_from([' ', '  ', '\t', ' \t '])
    broken = st.sampled_from(['\n', '\n    ', '\n\t\t', '  \n  ']).map(lambda s: s.replace('\n', newline))
    return st.one_of(plain, broken)


def _separators(newline):
    """Whitespace between tokens, sometimes with a comment (which always ends at a line break)."""
    comment = st.sampled_from(['# note', '#', '# { } ; " \' \\ weight=3 down', '#server 1.2.3.4:80;'])
    with_comment = st.builds(lambda before, text, after: before + text + newline + after,
                             _spaces(newline), comment, st.sampled_from(['', '  ', '\t']))
    return st.one_of(_spaces(newline), _spaces(newline), with_comment)


def _addresses(nginx_valid):
    octet = st.integers(1, 254)
    port = st.integers(1, 65535)
    ipv4 = st.builds(lambda a, b, p: '10.%d.%d.1:%d' % (a, b, p), octet, octet, port)
    ipv6 = st.builds(lambda a, p: '[fd00::%x]:%d' % (a, p), st.integers(1, 0xffff), port)
    unix = st.builds(lambda n: 'unix:/run/app-%d.sock' % n, st.integers(0, 999))
    bare_ip = st.builds(lambda a, b: '192.168.%d.%d' % (a, b), octet, octet)
    kinds = [ipv4, ipv6, unix, bare_ip]
    if not nginx_valid:
        kinds.append(st.builds(lambda n, p: 'app-%d.internal:%d' % (n, p), st.integers(0, 99), port))
    return st.one_of(*kinds)


@st.composite
def _server_line(draw, address, newline, nginx_valid, allow_backup):
    separators = _separators(newline)
    params = []
    kinds = ['weight', 'down', 'other', 'other'] + (['backup'] if allow_backup else [])
    chosen = draw(st.lists(st.sampled_from(kinds), max_size=5))
    used = set()
    for kind in chosen:
        if kind in ('weight', 'down', 'backup') and kind in used:
            continue
        used.add(kind)
        if kind == 'weight':
            value = draw(st.integers(1, 1000))
            text = draw(st.sampled_from(['weight=%d', 'weight=%03d', '"weight=%d"'])) % value
        elif kind == 'down':
            text = draw(st.sampled_from(['down', 'down', "'down'"]))
        elif kind == 'backup':
            text = 'backup'
        else:
            others = ['max_fails=3', 'fail_timeout=10s', 'max_conns=100', 'max_fails=0']
            if not nginx_valid:
                others += list(PLUS_ONLY_PARAMS) + ['"weightless"', 'weight_x=1', 'downtime']
            text = draw(st.sampled_from(others))
        params.append(Param(draw(separators), text, kind))
    if 'backup' in used and 'down' in used and nginx_valid:
        params = [param for param in params if param.kind != 'backup']
    quoted = draw(st.booleans()) and not address.startswith('unix') and draw(st.booleans())
    address_text = '"%s"' % address if quoted else address
    end = draw(st.sampled_from(['', '', ' ', newline + '    ', ' # end' + newline]))
    return ServerLine(address, address_text, draw(_spaces(newline)), params, end)


def _statement(text, newline):
    return text.replace('\n', newline)


@st.composite
def config_files(draw, nginx_valid=False, http_preamble=''):
    """A :class:`GeneratedConfig`: a whole file with the target upstream somewhere inside it."""
    newline = draw(st.sampled_from(['\n', '\n', '\r\n']))
    name = draw(st.sampled_from(TARGET_NAMES))
    balancing = draw(st.sampled_from(['', 'least_conn;', 'hash $cookie_sticky consistent;',
                                      'hash $remote_addr;', 'random two least_conn;']))
    allow_backup = balancing in ('', 'least_conn;')
    addresses = draw(st.lists(_addresses(nginx_valid), min_size=1, max_size=12, unique=True))
    servers = [draw(_server_line(address, newline, nginx_valid, allow_backup)) for address in addresses]
    if nginx_valid and all(server.backup or server.down for server in servers):
        # nginx accepts it, but keep at least one primary server up so the file makes sense.
        servers[0].params = [param for param in servers[0].params if param.kind not in ('backup', 'down')]
    body_directives = ['zone %s_zone 64k;' % name.replace('.', '_').replace('-', '_'), 'keepalive 16;',
                       '# a comment with server 10.9.9.9:80 weight=5 down;', 'keepalive_timeout 60s;']
    if balancing:
        body_directives.append(balancing)
    body = []
    for directive in draw(st.lists(st.sampled_from(body_directives), max_size=4, unique=True)):
        body.append(('directive', directive))
    for server in servers:
        body.insert(draw(st.integers(0, len(body))), ('server', server))
    pieces = []
    indent = draw(st.sampled_from(['    ', '\t', '']))
    name_text = draw(st.sampled_from(['%s', '%s', '"%s"'])) % name
    pieces.append('upstream%s%s%s{%s' % (draw(_spaces(newline)), name_text, draw(st.sampled_from([' ', '', newline])),
                                         newline))
    for kind, item in body:
        pieces.append(indent)
        pieces.append(item if kind == 'server' else _statement(item, newline))
        pieces.append(newline)
    pieces.append('}' + newline)
    other_blocks = [
        'upstream %s {\n    server 10.0.0.1:80 weight=2;\n    server 10.0.0.2:80 down;\n}\n',
        'server {\n    listen 127.0.0.1:1;\n    location / {\n        return 200 "a;}{ # \\" \' $host";\n    }\n}\n',
        'map $http_x_canary $forced {\n    default 0;\n    "always" 1;\n    \'~^b\' 1;\n}\n',
        '# upstream %s { server 1.1.1.1; }\n',
        'geo $remote_addr $inside {\n    default 0;\n    127.0.0.1 1;\n}\n',
        'log_format canary \'$remote_addr "$request" ${status}x\';\n',
    ]
    chosen = draw(st.lists(st.sampled_from(range(len(other_blocks))), max_size=4, unique=True))
    names = draw(st.permutations(OTHER_NAMES))
    rendered_others = [_statement(other_blocks[index] % names[position] if '%s' in other_blocks[index]
                                  else other_blocks[index], newline)
                       for position, index in enumerate(chosen)]
    position = draw(st.integers(0, len(rendered_others)))
    inner = rendered_others[:position] + pieces + rendered_others[position:]
    wrap = 'http' if nginx_valid else draw(st.sampled_from(['', 'http', 'stream']))
    if wrap:
        head = '# generated' + newline + ('events { }' + newline if nginx_valid else '') + wrap + ' {' + newline
        head += _statement(http_preamble, newline)
        return GeneratedConfig(name, [head] + inner + ['}' + newline], newline)
    return GeneratedConfig(name, inner, newline)


@st.composite
def changes_for(draw, config):
    """{address: (weight or None, down or None)} for a random subset of the config's servers."""
    chosen = draw(st.lists(st.sampled_from([s.address for s in config.servers]), unique=True))
    changes = {}
    for address in chosen:
        weight = draw(st.one_of(st.none(), st.integers(1, 1000), st.sampled_from([1, 2])))
        down = draw(st.one_of(st.none(), st.booleans()))
        changes[address] = (weight, down)
    return changes
