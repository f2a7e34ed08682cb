# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Render the fully managed ``http {}``-level snippet behind ``canary.release.nginx_canary_routing``.

The snippet defines, for one weighted upstream (say ``app``):

* ``$<variable>``: the upstream a request goes to. ``app`` normally; the canary-only upstream when the
  request carries the secret header or cookie value (exact, case-sensitive match through a regular expression
  with every non-alphanumeric character escaped) or one of the public forcing values (case-insensitive map
  string), and - when ``trusted_sources`` is given - comes from a trusted address (a ``geo`` block on the
  address nginx sees: ``$remote_addr``, which the real-IP module rewrites when it is configured). The site uses
  ``proxy_pass http://$<variable>;`` (nginx resolves a variable ``proxy_pass`` host against upstream names).
* optionally the canary-only upstream itself, listing the canary servers;
* with ``sticky``: ``$<variable>_sticky_key`` (the sticky cookie, or this request's ``$request_id`` when the
  cookie is missing) and ``$<variable>_set_cookie`` (a ``Set-Cookie`` value for requests without the cookie).
  ``hash $<variable>_sticky_key consistent;`` in the weighted upstream then keeps a user on one side, and the
  weights still decide which share of users lands where (nginx gives each server 160 points per unit of weight
  on the hash ring).

Only characters that cannot open, close or escape nginx syntax are accepted in the public values, and map keys
that nginx would read as map parameters are escaped. Secrets may hold any visible ASCII character (see
``_common/forcing_policy``): they are written as a regular expression literal inside a double-quoted nginx string,
so each is escaped twice (:func:`secret_map_key`), and lines holding a secret end with :data:`SECRET_MARK` so that
:func:`redact` can hide them in diffs.

Which forcing is accepted at all is decided by ``_common/forcing_policy`` before anything is rendered.
"""


import re

from ansible_collections.canary.release.plugins.module_utils._common.forcing_policy import (
    ForcingPolicyError,
    check_forcing,
    check_secret,
    trusted_networks,
)

HEADER_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9-]*\Z')
NAME_RE = re.compile(r'[A-Za-z0-9_]+\Z')
VALUE_RE = re.compile(r'[A-Za-z0-9._:@/+=-]+\Z')
UPSTREAM_RE = re.compile(r'[A-Za-z0-9_.:-]+\Z')
ADDRESS_RE = re.compile(r'[A-Za-z0-9_.:\[\]/@%-]+\Z')
# Words the map block reads as its own parameters; as a literal key they need a leading backslash.
_MAP_PARAMETERS = ('default', 'hostnames', 'include', 'volatile')

DEFAULT_HEADER_NAME = 'X-Canary'
DEFAULT_FORCE_VALUES = ('always',)
DEFAULT_STICKY_COOKIE = 'canary_sticky'
DEFAULT_STICKY_MAX_AGE = 86400
HEADER_LINE = '# Managed by canary.release.nginx_canary_routing: edits to this file are overwritten.\n'


SECRET_MARK = '  # secret\n'
REDACTED_LINE = '    "<secret: not shown>" 1;' + SECRET_MARK
CHANGED_LINE = '    "<secret: not shown, changed>" 1;' + SECRET_MARK


class RoutingError(ValueError):
    """An option of the routing snippet is invalid (or would let anyone force the canary)."""


def _check(pattern, value, what):
    if not isinstance(value, str) or not pattern.match(value):
        raise RoutingError('%s %r is not allowed: use only %s' % (what, value, _describe(pattern)))
    return value


def _describe(pattern):
    return {
        HEADER_RE: 'letters, digits and "-" (starting with a letter or digit)',
        NAME_RE: 'letters, digits and "_"',
        VALUE_RE: 'letters, digits and . _ : @ / + = -',
        UPSTREAM_RE: 'letters, digits and _ . : -',
        ADDRESS_RE: 'letters, digits and _ . : [ ] / @ % -',
    }[pattern]


def default_variable(upstream):
    """``canary_release_<upstream>`` with every character nginx does not allow in a variable name as ``_``."""
    return 'canary_release_' + re.sub(r'[^A-Za-z0-9_]', '_', upstream)


def header_variable(header_name):
    """The nginx variable holding a request header: ``X-Canary`` -> ``$http_x_canary``."""
    return '$http_' + header_name.lower().replace('-', '_')


def _map_key(value):
    if value.lower() in _MAP_PARAMETERS:
        return '\\' + value
    return value


def regex_literal(value):
    """A PCRE pattern matching exactly ``value``: every ASCII character but letters and digits is escaped
    (a backslash before a non-alphanumeric character always means that character, in PCRE and PCRE2)."""
    return ''.join(character if (character.isascii() and character.isalnum()) else '\\' + character
                   for character in value)


def nginx_quote(text):
    """``text`` as a double-quoted nginx string: nginx turns ``\\\\`` into ``\\`` and ``\\"`` into ``"`` and keeps
    every other character (``$`` is not expanded in a map key)."""
    return '"%s"' % text.replace('\\', '\\\\').replace('"', '\\"')


def secret_map_key(secret):
    """The map key matching exactly ``secret``, case-sensitively: ``"~^<escaped>$"``."""
    return nginx_quote('~^%s$' % regex_literal(secret))


def redact(text, previous=None):
    """``text`` with every secret line replaced by a placeholder (for diffs and outputs).

    With ``previous`` (the text it replaces), a secret line that ``previous`` does not have is shown as changed.
    """
    if text is None:
        return None
    old = set(previous.splitlines(True)) if previous else set()
    lines = []
    for line in text.splitlines(True):
        if line.endswith(SECRET_MARK):
            line = REDACTED_LINE if previous is None or line in old else CHANGED_LINE
        lines.append(line)
    return ''.join(lines)


class RoutingSpec(object):
    """Checked options of the snippet; build with :func:`routing_spec`."""

    __slots__ = ('upstream', 'canary_upstream', 'canary_servers', 'variable', 'header_name', 'header_values',
                 'cookie_name', 'cookie_values', 'sticky', 'sticky_cookie', 'sticky_max_age', 'header_secret',
                 'cookie_secret', 'trusted_sources', 'public_forcing')

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values[name])

    def variables(self):
        """The names (with ``$``) and ready-to-paste directives the user's configuration needs."""
        names = {'upstream': '$' + self.variable}
        directives = {'proxy_pass': 'proxy_pass http://$%s;' % self.variable}
        if self.sticky:
            names['sticky_key'] = '$%s_sticky_key' % self.variable
            names['set_cookie'] = '$%s_set_cookie' % self.variable
            directives['hash'] = 'hash $%s_sticky_key consistent;' % self.variable
            directives['add_header'] = 'add_header Set-Cookie $%s_set_cookie always;' % self.variable
        return names, directives


def routing_spec(upstream, canary_upstream, canary_servers=None, variable=None, header_name=DEFAULT_HEADER_NAME,
                 header_values=None, cookie_name=None, cookie_values=None, sticky=False,
                 sticky_cookie=DEFAULT_STICKY_COOKIE, sticky_max_age=DEFAULT_STICKY_MAX_AGE, header_secret=None,
                 cookie_secret=None, trusted_sources=None, allow_public_forcing=False):
    """Check every option and return a :class:`RoutingSpec`; raises :class:`RoutingError`.

    ``header_values``/``cookie_values`` None means "not given": ``['always']`` (the old default) when no secret
    is given either, else none. Public values need ``trusted_sources`` or ``allow_public_forcing``.
    """
    _check(UPSTREAM_RE, upstream, 'upstream')
    _check(UPSTREAM_RE, canary_upstream, 'canary_upstream')
    if canary_upstream == upstream:
        raise RoutingError('canary_upstream must differ from upstream %r' % upstream)
    if canary_servers is not None:
        if not canary_servers:
            raise RoutingError('canary_servers, when given, must list at least one server')
        if len(set(canary_servers)) != len(canary_servers):
            raise RoutingError('canary_servers lists a server twice')
        for address in canary_servers:
            _check(ADDRESS_RE, address, 'canary server address')
        canary_servers = list(canary_servers)
    variable = default_variable(upstream) if variable is None else _check(NAME_RE, variable, 'variable')
    if header_name is not None:
        _check(HEADER_RE, header_name, 'header_name')
    if cookie_name is not None:
        _check(NAME_RE, cookie_name, 'cookie_name')
    try:
        networks = trusted_networks(trusted_sources)
        if header_secret is not None:
            if header_name is None:
                raise RoutingError('header_secret needs header_name')
            check_secret(header_secret, 'header_secret')
        if cookie_secret is not None:
            if cookie_name is None:
                raise RoutingError('cookie_secret needs cookie_name')
            check_secret(cookie_secret, 'cookie_secret', cookie=True)
        if header_values is None:
            header_values = list(DEFAULT_FORCE_VALUES) if header_secret is None else []
        if cookie_values is None:
            cookie_values = list(DEFAULT_FORCE_VALUES) if cookie_secret is None else []
        header_values = _values(header_values, 'header_values')
        cookie_values = _values(cookie_values, 'cookie_values')
        if header_secret is not None and header_secret.lower() in [value.lower() for value in header_values]:
            raise RoutingError('header_secret must not also be one of header_values (those are public)')
        if cookie_secret is not None and cookie_secret.lower() in [value.lower() for value in cookie_values]:
            raise RoutingError('cookie_secret must not also be one of cookie_values (those are public)')
        if header_name is not None:
            check_forcing('header %s' % header_name, header_values, networks, allow_public_forcing,
                          DEFAULT_FORCE_VALUES)
        if cookie_name is not None:
            check_forcing('cookie %s' % cookie_name, cookie_values, networks, allow_public_forcing,
                          DEFAULT_FORCE_VALUES)
    except ForcingPolicyError as error:
        raise RoutingError(str(error))
    forced_by_header = header_name is not None and bool(header_values)
    forced_by_cookie = cookie_name is not None and bool(cookie_values)
    public_forcing = not networks and (forced_by_header or forced_by_cookie)
    if sticky:
        _check(NAME_RE, sticky_cookie, 'sticky_cookie')
        if isinstance(sticky_max_age, bool) or not isinstance(sticky_max_age, int) or sticky_max_age < 1:
            raise RoutingError('sticky_max_age must be a positive number of seconds, got %r' % (sticky_max_age,))
    return RoutingSpec(upstream=upstream, canary_upstream=canary_upstream, canary_servers=canary_servers,
                       variable=variable, header_name=header_name, header_values=header_values,
                       cookie_name=cookie_name, cookie_values=cookie_values, sticky=bool(sticky),
                       sticky_cookie=sticky_cookie, sticky_max_age=sticky_max_age, header_secret=header_secret,
                       cookie_secret=cookie_secret, trusted_sources=networks, public_forcing=public_forcing)


def _values(values, what):
    values = list(values or [])
    for value in values:
        _check(VALUE_RE, value, 'a value in ' + what)
    if len(set(value.lower() for value in values)) != len(values):
        raise RoutingError('%s lists a value twice (matching is case-insensitive)' % what)
    return values


def render(spec):
    """The snippet text for ``spec`` (deterministic: the same spec always renders the same bytes)."""
    variable = spec.variable
    lines = [HEADER_LINE,
             '# Include inside http {}; route with: proxy_pass http://$%s;\n' % variable]
    forced = []
    if spec.header_name is not None and (spec.header_values or spec.header_secret is not None):
        forced.append(('%s_by_header' % variable, header_variable(spec.header_name), spec.header_values,
                       spec.header_secret, 'header %s' % spec.header_name))
    if spec.cookie_name is not None and (spec.cookie_values or spec.cookie_secret is not None):
        forced.append(('%s_by_cookie' % variable, '$cookie_' + spec.cookie_name, spec.cookie_values,
                       spec.cookie_secret, 'cookie %s' % spec.cookie_name))
    trusted = bool(forced and spec.trusted_sources)
    if trusted:
        lines.append('\n# 1 when the client address nginx sees ($remote_addr, as rewritten by the real-IP module\n'
                     '# when it is configured) is in trusted_sources: only then may a request force the canary.\n')
        lines.append('geo $%s_trusted {\n    default 0;\n' % variable)
        for network in spec.trusted_sources:
            lines.append('    %s 1;\n' % network)
        lines.append('}\n')
    for name, source, values, secret, label in forced:
        kinds = []
        if secret is not None:
            kinds.append('the secret value (exact, case-sensitive)')
        if values:
            kinds.append('a public value (case-insensitive)')
        lines.append('\n# 1 when the %s has %s.\n' % (label, ' or '.join(kinds)))
        lines.append('map %s $%s {\n    default 0;\n' % (source, name))
        for value in values:
            lines.append('    "%s" 1;\n' % _map_key(value))
        if secret is not None:
            lines.append('    %s 1;%s' % (secret_map_key(secret), SECRET_MARK))
        lines.append('}\n')
    lines.append('\n# The upstream for this request: %s by weight, or %s when forced%s.\n'
                 % (spec.upstream, spec.canary_upstream, ' from a trusted address' if trusted else ''))
    if forced:
        names = (['%s_trusted' % variable] if trusted else []) + [entry[0] for entry in forced]
        source = '"%s"' % ''.join('$' + name for name in names)
        lines.append('map %s $%s {\n    default %s;\n' % (source, variable, spec.upstream))
        for key in _forcing_keys(len(forced)):
            lines.append('    "%s%s" %s;\n' % ('1' if trusted else '', key, spec.canary_upstream))
        lines.append('}\n')
    else:
        lines.append('map "" $%s {\n    default %s;\n}\n' % (variable, spec.upstream))
    if spec.canary_servers is not None:
        lines.append('\n# Canary servers only: forced requests go here.\nupstream %s {\n' % spec.canary_upstream)
        if spec.sticky:
            lines.append('    hash $%s_sticky_key consistent;\n' % variable)
        for address in spec.canary_servers:
            lines.append('    server %s;\n' % address)
        lines.append('}\n')
    if spec.sticky:
        cookie = '$cookie_' + spec.sticky_cookie
        lines.append('\n# Stickiness: put "hash $%s_sticky_key consistent;" in upstream %s and\n'
                     '# "add_header Set-Cookie $%s_set_cookie always;" where it is proxied.\n'
                     % (variable, spec.upstream, variable))
        lines.append('map %s $%s_sticky_key {\n    "" $request_id;\n    default %s;\n}\n'
                     % (cookie, variable, cookie))
        lines.append('map %s $%s_set_cookie {\n    "" "%s=$request_id; Path=/; Max-Age=%d; HttpOnly; SameSite=Lax";\n'
                     '    default "";\n}\n' % (cookie, variable, spec.sticky_cookie, spec.sticky_max_age))
    return ''.join(lines)


def _forcing_keys(count):
    """Every combination of 0/1 flags with at least one 1, e.g. ``10 01 11`` for two sources."""
    keys = []
    for number in range(1, 2 ** count):
        keys.append(''.join('1' if number & (1 << (count - 1 - position)) else '0' for position in range(count)))
    return keys
