# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Find one ``backend`` (or ``listen``) section in HAProxy configuration text and edit its servers' weights.

HAProxy's configuration is line based (``parse_line`` in ``src/tools.c``): a line is split into words at spaces
and tabs; ``"..."`` and ``'...'`` quote, a backslash escapes the next character outside single quotes, and ``#``
outside quotes starts a comment. A line whose first word is a section keyword (``global``, ``defaults``,
``backend``, ...) starts a section that lasts until the next one.

The editor changes only the value of the ``weight`` keyword of ``server`` lines directly in the named section,
or inserts `` weight N`` right after a server's address when the line has no ``weight``. Offsets index the text
handed in; files are decoded with ``surrogateescape`` (see ``durable_files``), so every other byte stays as it was.

A server without ``weight`` gets its weight from the last ``default-server ... weight N`` before it in the section,
else from the ``default-server`` of the ``defaults`` section the proxy inherits from (``from <name>``, or the last
``defaults`` section before it), else 1. That is the weight this module compares with.
"""


import re

from ansible_collections.canary.release.plugins.module_utils._common.text_edits import splice

MAX_WEIGHT = 256
SECTION_KEYWORDS = frozenset((
    'global', 'defaults', 'frontend', 'backend', 'listen', 'peers', 'resolvers', 'userlist', 'mailers', 'program',
    'http-errors', 'ring', 'cache', 'fcgi-app', 'log-forward', 'crt-store', 'traces', 'acme',
))
PROXY_KEYWORDS = ('backend', 'listen')
CONDITIONALS = ('.if', '.elif', '.else', '.endif')
_WEIGHT_RE = re.compile(r'[0-9]+\Z')
_LINE_RE = re.compile(r'[^\n]*\n|[^\n]+')


class HaproxyConfigError(ValueError):
    """The text is not usable HAProxy configuration, or the backend or server asked for is not there."""

    def __init__(self, message, line=None):
        if line is not None:
            message = '%s (line %d)' % (message, line)
        super(HaproxyConfigError, self).__init__(message)
        self.line = line


class Word(object):
    """One word of a line: ``start``/``end`` span the raw text (quotes included), ``value`` is unquoted."""

    __slots__ = ('start', 'end', 'value')

    def __init__(self, start, end, value):
        self.start = start
        self.end = end
        self.value = value


def split_line(text, start, end, number):
    """The words of the line ``text[start:end]`` (without its newline) as :class:`Word` with absolute offsets.

    Stops at a ``#`` outside quotes. Raises :class:`HaproxyConfigError` on an unterminated quote.
    """
    words = []
    position = start
    while position < end:
        char = text[position]
        if char in ' \t\r':
            position += 1
            continue
        if char == '#':
            break
        word_start = position
        value = []
        quote = None
        while position < end:
            char = text[position]
            if quote is None and char in ' \t\r#':
                break
            if char == '\\' and quote != "'" and position + 1 < end:
                value.append(text[position + 1])
                position += 2
                continue
            if char in '"\'' and quote in (None, char):
                quote = None if quote else char
            else:
                value.append(char)
            position += 1
        if quote is not None:
            raise HaproxyConfigError('unterminated quoted string', line=number)
        words.append(Word(word_start, position, ''.join(value)))
    return words


class Line(object):
    """A configuration line that has words: its number (1-based) and words."""

    __slots__ = ('number', 'words')

    def __init__(self, number, words):
        self.number = number
        self.words = words

    @property
    def keyword(self):
        return self.words[0].value


def lines(text):
    """Yield a :class:`Line` for every line of ``text`` that has at least one word."""
    for number, match in enumerate(_LINE_RE.finditer(text), 1):
        end = match.end() - 1 if match.group(0).endswith('\n') else match.end()
        words = split_line(text, match.start(), end, number)
        if words:
            yield Line(number, words)


class Section(object):
    """A section: its keyword, name (or None), ``from`` name, first line and the lines in it."""

    __slots__ = ('keyword', 'name', 'parent', 'line', 'body')

    def __init__(self, keyword, name, parent, line):
        self.keyword = keyword
        self.name = name
        self.parent = parent
        self.line = line
        self.body = []


def sections(text):
    """The sections of ``text`` in file order (lines before the first section are dropped)."""
    found = []
    for line in lines(text):
        if line.keyword in SECTION_KEYWORDS:
            values = [word.value for word in line.words]
            name = values[1] if len(values) > 1 and values[1] != 'from' else None
            parent = values[values.index('from') + 1] if 'from' in values[1:-1] else None
            found.append(Section(line.keyword, name, parent, line.number))
        elif found:
            found[-1].body.append(line)
    return found


def _weight_of(words, what, number):
    """``(weight, Word of its value)`` from a server or default-server line, or ``(None, None)``."""
    found = [index for index, word in enumerate(words) if word.value == 'weight']
    if not found:
        return None, None
    if len(found) > 1:
        raise HaproxyConfigError('%s has more than one "weight" keyword' % what, line=number)
    if found[0] + 1 >= len(words):
        raise HaproxyConfigError('%s has "weight" without a value' % what, line=number)
    word = words[found[0] + 1]
    if not _WEIGHT_RE.match(word.value) or int(word.value) > MAX_WEIGHT:
        raise HaproxyConfigError('%s has weight %r; this module handles integers from 0 to %d only'
                                 % (what, word.value, MAX_WEIGHT), line=number)
    return int(word.value), word


def _default_weight(lines_):
    weight = None
    for line in lines_:
        if line.keyword == 'default-server':
            value = _weight_of(line.words, 'default-server', line.number)[0]
            if value is not None:
                weight = value
    return weight


class Server(object):
    """A ``server`` line of the backend.

    ``weight`` is HAProxy's weight for it (from the line, a ``default-server`` or 1); ``weight_word`` is the
    :class:`Word` of the line's own weight value or None; ``address_end`` is where `` weight N`` is inserted.
    """

    __slots__ = ('name', 'address', 'weight', 'weight_word', 'backup', 'line', 'address_end')

    def __init__(self, name, address, weight, weight_word, backup, line, address_end):
        self.name = name
        self.address = address
        self.weight = weight
        self.weight_word = weight_word
        self.backup = backup
        self.line = line
        self.address_end = address_end

    def as_dict(self):
        return {'name': self.name, 'address': self.address, 'weight': self.weight, 'backup': self.backup}


class Backend(object):
    """The named backend (or listen) section: its servers in file order and its ``server-template`` prefixes."""

    __slots__ = ('name', 'keyword', 'line', 'servers', 'templates')

    def __init__(self, name, keyword, line, servers, templates):
        self.name = name
        self.keyword = keyword
        self.line = line
        self.servers = servers
        self.templates = templates

    def weights(self):
        return dict((server.name, server.weight) for server in self.servers)


def parse_backend(text, name):
    """Parse ``text`` and return the :class:`Backend` called ``name`` (a ``backend`` or ``listen`` section).

    Raises :class:`HaproxyConfigError` when there is no such section or more than one, when two servers have the
    same name, when a weight is not an integer from 0 to 256 or is given twice, or when the section has
    conditional blocks (``.if``: which servers exist would depend on the condition).
    """
    all_sections = sections(text)
    found = [section for section in all_sections if section.keyword in PROXY_KEYWORDS and section.name == name]
    if not found:
        known = sorted(set(section.name for section in all_sections
                           if section.keyword in PROXY_KEYWORDS and section.name))
        raise HaproxyConfigError('backend %r is not defined in the file (its backend and listen sections: %s)'
                                 % (name, ', '.join(known) or 'none'))
    if len(found) > 1:
        raise HaproxyConfigError('backend %r is defined %d times (lines %s)'
                                 % (name, len(found), ', '.join(str(section.line) for section in found)))
    section = found[0]
    inherited = _inherited_default_weight(all_sections, section)
    servers = []
    templates = []
    seen = {}
    for index, line in enumerate(section.body):
        keyword = line.keyword
        if keyword in CONDITIONALS:
            raise HaproxyConfigError('backend %r has conditional blocks (%s); which servers it has depends on them, '
                                     'so this module does not edit it' % (name, keyword), line=line.number)
        if keyword == 'server-template' and len(line.words) > 1:
            templates.append(line.words[1].value)
        if keyword != 'server':
            continue
        words = line.words
        if len(words) < 3:
            raise HaproxyConfigError('"server" line without a name and an address', line=line.number)
        server_name = words[1].value
        if server_name in seen:
            raise HaproxyConfigError('server %r appears twice in backend %r (lines %d and %d)'
                                     % (server_name, name, seen[server_name], line.number), line=line.number)
        seen[server_name] = line.number
        weight, weight_word = _weight_of(words[3:], 'server %r' % server_name, line.number)
        if weight is None:
            weight = _default_weight(section.body[:index])
            weight = (inherited if weight is None else weight)
            weight = 1 if weight is None else weight
        backup = any(word.value == 'backup' for word in words[3:])
        servers.append(Server(server_name, words[2].value, weight, weight_word, backup, line.number, words[2].end))
    return Backend(name, section.keyword, section.line, servers, templates)


def _inherited_default_weight(all_sections, section):
    """The ``default-server`` weight of the ``defaults`` section that ``section`` inherits from, or None."""
    position = all_sections.index(section)
    defaults = None
    if section.parent is not None:
        named = [other for other in all_sections[:position]
                 if other.keyword == 'defaults' and other.name == section.parent]
        defaults = named[-1] if named else None
    else:
        earlier = [other for other in all_sections[:position] if other.keyword == 'defaults']
        defaults = earlier[-1] if earlier else None
    if defaults is None:
        return None
    weight = _default_weight(defaults.body)
    if weight is None and defaults.parent is not None:
        return _inherited_default_weight(all_sections, defaults)
    return weight


def weight_edits(server, weight):
    """The ``(start, end, replacement)`` edits that give ``server`` the weight ``weight`` (none if it has it)."""
    if server.weight == weight:
        return []
    if server.weight_word is not None:
        return [(server.weight_word.start, server.weight_word.end, str(weight))]
    return [(server.address_end, server.address_end, ' weight %d' % weight)]


def apply_weights(text, name, weights, backend=None):
    """Return ``text`` with the servers of backend ``name`` given ``weights`` (``{server name: weight}``).

    Only weight values change (or `` weight N`` is inserted after the address). ``backend`` may be passed when
    the caller already parsed ``text``.
    """
    if backend is None:
        backend = parse_backend(text, name)
    by_name = dict((server.name, server) for server in backend.servers)
    edits = []
    for server_name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise HaproxyConfigError('weight of server %r must be an integer from 0 to %d, got %r'
                                     % (server_name, MAX_WEIGHT, weight))
        server = by_name.get(server_name)
        if server is None:
            raise HaproxyConfigError('server %r is not in backend %r of the file (its servers: %s)'
                                     % (server_name, name, ', '.join(sorted(by_name)) or 'none'))
        edits.extend(weight_edits(server, weight))
    if not edits:
        return text
    return splice(text, edits, HaproxyConfigError)
