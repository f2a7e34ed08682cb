# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Who may force the canary: the rule shared by ``nginx_canary_routing`` and ``alb_canary_rule``.

A request is forced to the canary by a header (or, on NGINX, a cookie). Anyone on the Internet can send any
header, so a forcing value is only acceptable when it is either

* a **secret** (``header_secret`` / ``cookie_secret``) that passes :func:`check_secret`, or
* **restricted to trusted sources** (``trusted_sources``: CIDRs checked by :func:`trusted_networks`),

or the user explicitly accepts public forcing (``allow_public_forcing``). When both a secret and trusted
sources are given, a request needs both (the right value *and* a trusted address).

The secret rule (documented in docs/nginx.md and docs/alb.md):

* 16 to 128 characters, visible ASCII (``!`` to ``~``), neither ``*`` nor ``?`` (ALB reads them as wildcards);
  a cookie secret also excludes ``"``, ``,``, ``;`` and ``\\`` (not allowed in a cookie value, RFC 6265);
* at least 8 different characters, letter case ignored;
* an estimated strength of at least 64 bits: length x min(log2(alphabet), H), where the alphabet counts 26 if
  the value has letters, 10 if it has digits and 32 if it has other symbols, and H is the Shannon entropy of
  the value's own characters (bits per character). Letter case is ignored throughout, as the ALB compares
  header values without case. Repetition lowers H: ``canarycanary1234`` scores 48 and is refused.
  ``openssl rand -hex 20`` (40 characters) always passes (about 125), ``openssl rand -base64 24`` too; 20
  random letters and digits pass 999 times in 1000 (a refused one: generate another); 16 random letters and
  digits usually do not (H of 16 random characters is about 3.7, not the alphabet's 5.2).

The rule catches obvious mistakes (a word, a repeated pattern, a short value); it cannot recognise a phrase
from a dictionary, so generate the value.
"""


import collections
import ipaddress
import math

MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 128
MIN_DISTINCT_CHARACTERS = 8
MIN_SECRET_BITS = 64
# Networks wider than this are not "trusted sources" but a large part of the Internet.
MIN_PREFIX = {4: 8, 6: 16}
COOKIE_FORBIDDEN = '",;\\'
WILDCARDS = '*?'


class ForcingPolicyError(ValueError):
    """A forcing option is unsafe or invalid. Messages never contain the secret itself."""


def secret_bits(value):
    """The estimated strength of ``value`` in bits (see the module docstring)."""
    if not value:
        return 0.0
    folded = value.lower()
    alphabet = 0
    if any(character.isalpha() for character in folded):
        alphabet += 26
    if any(character.isdigit() for character in folded):
        alphabet += 10
    if any(not character.isalnum() for character in folded):
        alphabet += 32
    counts = collections.Counter(folded)
    shannon = -sum(count / len(folded) * math.log2(count / len(folded)) for count in counts.values())
    return len(folded) * min(math.log2(alphabet), shannon)


def secret_problem(value, cookie=False):
    """Why ``value`` is not an acceptable secret, or None. The answer never quotes the value."""
    if not isinstance(value, str):
        return 'it must be a string'
    if not MIN_SECRET_LENGTH <= len(value) <= MAX_SECRET_LENGTH:
        return 'it has %d characters; it needs %d to %d' % (len(value), MIN_SECRET_LENGTH, MAX_SECRET_LENGTH)
    for character in value:
        if not '!' <= character <= '~':
            return 'it may contain only visible ASCII characters (no spaces or control characters)'
        if character in WILDCARDS:
            return 'it may not contain "*" or "?" (the ALB reads them as wildcards)'
        if cookie and character in COOKIE_FORBIDDEN:
            return 'a cookie value may not contain %s' % ' '.join(COOKIE_FORBIDDEN)
    distinct = len(set(value.lower()))
    if distinct < MIN_DISTINCT_CHARACTERS:
        return 'it has only %d different characters (letter case ignored); it needs %d' % (
            distinct, MIN_DISTINCT_CHARACTERS)
    bits = secret_bits(value)
    if bits < MIN_SECRET_BITS:
        return ('it is guessable (about %d bits by the rule; it needs %d: use more characters, fewer repeated ones, '
                'or more kinds of them)' % (bits, MIN_SECRET_BITS))
    return None


def check_secret(value, what, cookie=False):
    """``value`` when it passes the secret rule; raises :class:`ForcingPolicyError` naming ``what``."""
    problem = secret_problem(value, cookie=cookie)
    if problem:
        raise ForcingPolicyError('%s is not an acceptable secret: %s. Generate one, for example with '
                                 '"openssl rand -hex 20".' % (what, problem))
    return value


def trusted_networks(sources, what='trusted_sources'):
    """Check CIDRs (IPv4 and IPv6) and return them normalised (``10.0.0.1`` -> ``10.0.0.1/32``), in order.

    Host bits set (``10.0.0.1/8``), duplicates, overlaps and networks wider than /8 (IPv4) or /16 (IPv6) are
    refused.
    """
    if sources is None:
        return []
    if isinstance(sources, str) or not isinstance(sources, (list, tuple)):
        raise ForcingPolicyError('%s must be a list of CIDRs' % what)
    networks = []
    for source in sources:
        if not isinstance(source, str):
            raise ForcingPolicyError('%s: %r is not a CIDR' % (what, source))
        try:
            network = ipaddress.ip_network(source.strip(), strict=True)
        except ValueError as error:
            raise ForcingPolicyError('%s: %r is not a network in CIDR notation (%s)' % (what, source, error))
        if network.prefixlen < MIN_PREFIX[network.version]:
            raise ForcingPolicyError(
                '%s: %s is wider than /%d and would trust a large part of the Internet; list the networks '
                'of your testers, offices or VPN (or set allow_public_forcing, which is dangerous)'
                % (what, network, MIN_PREFIX[network.version]))
        for other in networks:
            if network.version == other.version and network.overlaps(other):
                raise ForcingPolicyError('%s: %s overlaps %s; list each network once' % (what, network, other))
        networks.append(network)
    return [network.with_prefixlen for network in networks]


def check_forcing(what, public_values, networks, allow_public_forcing, default_values=()):
    """Refuse forcing that anyone could use: public values without trusted sources or allow_public_forcing.

    ``what`` names the source ('header X-Canary'), ``public_values`` are the values that are not secrets.
    """
    if not public_values or networks or allow_public_forcing:
        return
    if list(public_values) == list(default_values):
        hint = ('the old default value %s is now refused because anyone can send it' %
                ', '.join(repr(value) for value in public_values))
    else:
        hint = 'these values are not secret (they are logged and compared without letter case)'
    raise ForcingPolicyError(
        'forcing the canary by %s from any address is refused: %s. Set a secret value (%s) of at least %d '
        'characters, or trusted_sources (the networks allowed to force the canary), or both; an empty list '
        'disables this forcing. allow_public_forcing: true accepts the risk (dangerous: anyone who learns the '
        'value reaches the canary).' % (what, hint, _secret_option(what), MIN_SECRET_LENGTH))


def _secret_option(what):
    return 'cookie_secret' if what.startswith('cookie') else 'header_secret'


PUBLIC_FORCING_WARNING = ('allow_public_forcing is set: any client that sends %s reaches the canary, from any '
                          'address. Use a secret value or trusted_sources for anything but a test system.')
