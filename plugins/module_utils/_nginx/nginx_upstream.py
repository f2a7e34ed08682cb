# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Find one ``upstream`` block in nginx configuration text and edit its servers' weights.

The tokenizer follows nginx's own reader (``ngx_conf_read_token`` in ``src/core/ngx_conf_file.c``):

* words are separated by space, tab, CR and LF; ``;`` ends a directive, ``{`` opens a block,
  ``}`` closes one when it starts a token (inside a word it is an ordinary character);
* ``#`` starts a comment only where a new token could start (``a#b`` is one word);
* ``"..."`` and ``'...'`` are strings; a backslash escapes the next character, inside strings and out;
* ``${`` keeps a ``{`` inside a word (``${var}``);
* a closing quote must be followed by whitespace, ``;``, ``{`` or ``)``.

Offsets are indexes into the text handed in. :mod:`nginx_config_file` decodes files as UTF-8 with
``surrogateescape``, so any byte sequence round-trips exactly and an edit at these offsets changes
exactly the bytes of the edited tokens.

The editor changes only ``weight=N`` and ``down`` tokens of ``server`` directives that sit directly in
the named upstream; every other character stays as it was.
"""


import re

from ansible_collections.canary.release.plugins.module_utils._common.text_edits import splice

# One token per match; the alternatives are tried in order.
_TOKEN_RE = re.compile(r'''
    (?P<space>[ \t\r\n]+)
  | (?P<comment>\#[^\n]*)
  | (?P<dquote>"(?:[^"\\]|\\[\s\S])*")
  | (?P<squote>'(?:[^'\\]|\\[\s\S])*')
  | (?P<unterminated>["'])
  | (?P<punct>[;{}])
  | (?P<word>(?:\\[\s\S]|\$+\{+|[^ \t\r\n;{\\])+)
''', re.VERBOSE)

_SPACE = ' \t\r\n'
_ESCAPES = {'"': '"', "'": "'", '\\': '\\', 't': '\t', 'r': '\r', 'n': '\n'}
_ESCAPE_RE = re.compile(r'\\(.)', re.DOTALL)
_WEIGHT_RE = re.compile(r'weight=([0-9]+)\Z')


class NginxConfigError(ValueError):
    """The text is not well-formed nginx configuration, or the upstream or server asked for is not there."""

    def __init__(self, message, line=None):
        if line is not None:
            message = '%s (line %d)' % (message, line)
        super(NginxConfigError, self).__init__(message)
        self.line = line


def line_of(text, offset):
    """The 1-based line number of ``offset`` in ``text``."""
    return text.count('\n', 0, offset) + 1


class _LineCounter(object):
    """Line numbers for offsets asked in increasing order, in linear time overall."""

    def __init__(self, text):
        self.text = text
        self.offset = 0
        self.line = 1

    def __call__(self, offset):
        if offset < self.offset:
            return line_of(self.text, offset)
        self.line += self.text.count('\n', self.offset, offset)
        self.offset = offset
        return self.line


def _unescape(raw):
    """The value nginx sees for a word: the escapes ``\\" \\' \\\\ \\t \\r \\n`` are resolved, others kept."""
    if '\\' not in raw:
        return raw
    return _ESCAPE_RE.sub(lambda match: _ESCAPES.get(match.group(1), match.group(0)), raw)


class Word(object):
    """One argument of a directive: ``start``/``end`` span the raw token including any quotes."""

    __slots__ = ('start', 'end', 'value', 'quoted', 'removal_start')

    def __init__(self, start, end, value, quoted, removal_start):
        self.start = start
        self.end = end
        self.value = value
        self.quoted = quoted
        # Where deleting this word should start: the whitespace run just before it, unless that run follows a
        # comment (deleting the newline after a comment would pull the rest of the directive into the comment).
        self.removal_start = removal_start


class Statement(object):
    """A directive: its words and the terminator (``;`` or ``{``) at ``terminator_start``."""

    __slots__ = ('words', 'terminator', 'terminator_start')

    def __init__(self, words, terminator, terminator_start):
        self.words = words
        self.terminator = terminator
        self.terminator_start = terminator_start


class BlockEnd(object):
    """A ``}`` at ``start``."""

    __slots__ = ('start',)

    def __init__(self, start):
        self.start = start


def tokenize(text):
    """Yield ``(kind, start, end)`` for every token of ``text``; the tokens cover the text without gaps.

    ``kind`` is one of ``space``, ``comment``, ``word``, ``dquote``, ``squote``, ``;``, ``{``, ``}``.
    Raises :class:`NginxConfigError` where nginx's reader would stop.
    """
    position = 0
    length = len(text)
    after_quote = False
    match_at = _TOKEN_RE.match
    while position < length:
        match = match_at(text, position)
        if match is None:
            # Only a backslash as the very last character gets here.
            raise NginxConfigError('unexpected end of file after a backslash', line=line_of(text, position))
        kind = match.lastgroup
        end = match.end()
        if kind == 'unterminated':
            raise NginxConfigError('unterminated quoted string', line=line_of(text, position))
        if kind == 'punct':
            kind = text[position]
        if after_quote and kind not in ('space', ';', '{') and not (kind == 'word' and text[position] == ')'):
            raise NginxConfigError('unexpected %r after a quoted string' % text[position], line=line_of(text, position))
        after_quote = kind in ('dquote', 'squote')
        yield kind, position, end
        position = end


def statements(text):
    """Yield :class:`Statement` and :class:`BlockEnd` events in file order; checks the braces balance."""
    words = []
    depth = 0
    open_lines = []
    previous_kind = None
    space_start = None
    for kind, start, end in tokenize(text):
        if kind == 'space':
            space_start = start if previous_kind != 'comment' else None
            previous_kind = kind
            continue
        if kind == 'comment':
            previous_kind = kind
            space_start = None
            continue
        if kind in ('word', 'dquote', 'squote'):
            quoted = kind != 'word'
            raw = text[start + 1:end - 1] if quoted else text[start:end]
            removal_start = space_start if (previous_kind == 'space' and space_start is not None) else start
            words.append(Word(start, end, _unescape(raw), quoted, removal_start))
        elif kind == ';':
            if not words:
                raise NginxConfigError('unexpected ";"', line=line_of(text, start))
            yield Statement(words, ';', start)
            words = []
        elif kind == '{':
            if not words:
                raise NginxConfigError('unexpected "{"', line=line_of(text, start))
            yield Statement(words, '{', start)
            words = []
            depth += 1
            open_lines.append(start)
        else:  # '}'
            if words:
                raise NginxConfigError('unexpected "}" (the directive before it has no ";")', line=line_of(text, start))
            if depth == 0:
                raise NginxConfigError('unexpected "}" without a matching "{"', line=line_of(text, start))
            depth -= 1
            open_lines.pop()
            yield BlockEnd(start)
        previous_kind = kind
        space_start = None
    if words:
        raise NginxConfigError('unexpected end of file, expecting ";" or "}"', line=line_of(text, words[0].start))
    if depth:
        raise NginxConfigError('unexpected end of file: the block opened here is never closed',
                               line=line_of(text, open_lines[-1]))


class Server(object):
    """A ``server`` directive directly inside the upstream.

    ``weight`` is nginx's effective weight (1 when no ``weight=`` token is written). ``weight_token`` is the
    ``(start, end)`` span of the ``weight=N`` token or None; ``down_tokens`` lists the spans of ``down`` tokens.
    """

    __slots__ = ('address', 'weight', 'down', 'backup', 'line', 'address_end', 'last_word_end',
                 'weight_token', 'down_tokens', 'down_removals', 'start', 'end')

    def __init__(self, address, weight, down, backup, line, address_end, last_word_end, weight_token,
                 down_tokens, down_removals, start, end):
        self.address = address
        self.weight = weight
        self.down = down
        self.backup = backup
        self.line = line
        self.address_end = address_end
        self.last_word_end = last_word_end
        self.weight_token = weight_token
        self.down_tokens = down_tokens
        self.down_removals = down_removals
        self.start = start
        self.end = end

    def as_dict(self):
        """``{'address', 'weight', 'down', 'backup'}``: what the modules return."""
        return {'address': self.address, 'weight': self.weight, 'down': self.down, 'backup': self.backup}


class Upstream(object):
    """The named upstream block: its servers in file order and any ``include`` directives inside it."""

    __slots__ = ('name', 'servers', 'includes', 'line', 'start', 'end')

    def __init__(self, name, servers, includes, line, start, end):
        self.name = name
        self.servers = servers
        self.includes = includes
        self.line = line
        self.start = start
        self.end = end

    def server(self, address):
        for server in self.servers:
            if server.address == address:
                return server
        raise NginxConfigError(self.unknown_address_message(address))

    def unknown_address_message(self, address):
        known = [server.address for server in self.servers]
        shown = ', '.join(known[:20]) + (', ... (%d in all)' % len(known) if len(known) > 20 else '')
        message = 'server %r is not in upstream %r (its servers: %s)' % (address, self.name, shown or 'none')
        if self.includes:
            message += '; the upstream includes %s, whose servers this module cannot edit' % ', '.join(self.includes)
        return message


def _server_from(statement, line):
    words = statement.words
    if len(words) < 2:
        raise NginxConfigError('"server" directive without an address', line=line)
    address = words[1].value
    weight = 1
    weight_token = None
    down_tokens = []
    down_removals = []
    backup = False
    for word in words[2:]:
        value = word.value
        if value.startswith('weight='):
            if weight_token is not None:
                raise NginxConfigError('server %r has more than one weight' % address, line=line)
            match = _WEIGHT_RE.match(value)
            if match is None or int(match.group(1)) == 0:
                raise NginxConfigError('server %r has an invalid weight %r' % (address, value), line=line)
            weight = int(match.group(1))
            weight_token = (word.start, word.end)
        elif value == 'down':
            down_tokens.append((word.start, word.end))
            down_removals.append((word.removal_start, word.end))
        elif value == 'backup':
            backup = True
    return Server(address, weight, bool(down_tokens), backup, line, words[1].end, words[-1].end, weight_token,
                  down_tokens, down_removals, words[0].start, statement.terminator_start + 1)


def list_upstreams(text):
    """The names of all upstream blocks in ``text``, in file order (a name appears once per definition)."""
    return [name for name, dummy in _upstream_blocks(text, None)]


def _upstream_blocks(text, wanted):
    """Yield ``(name, block)`` per upstream block in ``text``.

    ``block`` is an :class:`Upstream` with its servers for blocks named ``wanted`` (yielded at their closing
    brace) and None for the others (yielded at their opening brace).
    """
    stack = []  # per open block: the Upstream being collected, or None
    line_at = _LineCounter(text)
    for event in statements(text):
        if isinstance(event, BlockEnd):
            block = stack.pop()
            if block is not None:
                block.end = event.start + 1
                yield block.name, block
            continue
        words = event.words
        if event.terminator == '{':
            block = None
            if words[0].value == 'upstream' and len(words) == 2:
                name = words[1].value
                if name == wanted:
                    block = Upstream(name, [], [], line_at(words[0].start), words[0].start, None)
                else:
                    yield name, None
            stack.append(block)
            continue
        parent = stack[-1] if stack else None
        if parent is None:
            continue
        directive = words[0].value
        if directive == 'server':
            parent.servers.append(_server_from(event, line_at(words[0].start)))
        elif directive == 'include':
            parent.includes.append(' '.join(word.value for word in words[1:]))


def parse_upstream(text, name):
    """Parse ``text`` and return the :class:`Upstream` called ``name``.

    Raises :class:`NginxConfigError` when the text is malformed, when no or more than one upstream has that
    name, or when two servers of the upstream have the same address.
    """
    found = [block for block_name, block in _upstream_blocks(text, name) if block is not None]
    if not found:
        raise NginxConfigError('upstream %r is not defined in this file' % name)
    if len(found) > 1:
        raise NginxConfigError('upstream %r is defined %d times (lines %s); refusing to guess which one to edit'
                               % (name, len(found), ', '.join(str(block.line) for block in found)))
    upstream = found[0]
    seen = {}
    for server in upstream.servers:
        if server.address in seen:
            raise NginxConfigError('server %r appears twice in upstream %r (lines %d and %d)'
                                   % (server.address, name, seen[server.address], server.line))
        seen[server.address] = server.line
    return upstream


class ServerChange(object):
    """What one server should become: ``weight`` (int >= 1 or None to keep) and ``down`` (bool or None to keep)."""

    __slots__ = ('weight', 'down')

    def __init__(self, weight=None, down=None):
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int) or weight < 1):
            raise NginxConfigError('a server weight must be an integer >= 1, got %r' % (weight,))
        if down is not None and not isinstance(down, bool):
            raise NginxConfigError('down must be true or false, got %r' % (down,))
        self.weight = weight
        self.down = down

    def __eq__(self, other):
        return isinstance(other, ServerChange) and (self.weight, self.down) == (other.weight, other.down)

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return 'ServerChange(weight=%r, down=%r)' % (self.weight, self.down)


def server_edits(server, change):
    """The ``(start, end, replacement)`` edits that make ``server`` match ``change``; empty when it already does."""
    edits = []
    if change.weight is not None and change.weight != server.weight:
        replacement = 'weight=%d' % change.weight
        if server.weight_token is not None:
            edits.append((server.weight_token[0], server.weight_token[1], replacement))
        else:
            # No token means weight 1 and change.weight != 1 here: write it right after the address.
            edits.append((server.address_end, server.address_end, ' ' + replacement))
    if change.down is True and not server.down:
        edits.append((server.last_word_end, server.last_word_end, ' down'))
    elif change.down is False and server.down:
        for start, end in server.down_removals:
            edits.append((start, end, ''))
    return edits


def apply_server_changes(text, name, changes, upstream=None):
    """Return ``text`` with the servers of upstream ``name`` changed as ``changes`` says.

    ``changes`` maps an address (as written in the file) to a :class:`ServerChange`. Only ``weight=`` and
    ``down`` tokens change: a weight value is replaced, `` weight=N`` is inserted after the address when the
    server has no weight token, `` down`` is appended after the last parameter, and a ``down`` token is removed
    with the whitespace before it. ``upstream`` may be passed when the caller already parsed ``text``.
    """
    if upstream is None:
        upstream = parse_upstream(text, name)
    by_address = dict((server.address, server) for server in upstream.servers)
    edits = []
    for address, change in changes.items():
        server = by_address.get(address)
        if server is None:
            raise NginxConfigError(upstream.unknown_address_message(address))
        edits.extend(server_edits(server, change))
    if not edits:
        return text
    return splice(text, edits, NginxConfigError)
