# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The ``canary.release.nginx_weights`` task: check the request, plan per-server changes, apply them.

:func:`set_upstream_weights` is the one entry point the module calls. It validates everything that does
not depend on the file first, then plans and edits under the file lock (see :mod:`nginx_config_file`), so a
bad request fails before anything is locked or written and an address that is not in the upstream fails
with the file untouched.
"""


import re

from ansible_collections.canary.release.plugins.module_utils._common.canary_weights import (
    DEFAULT_MAX_WEIGHT,
    WeightError,
    check_request_shape,
    effective_canary_percent,
    group_weights,
)
from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_config_file import (
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_RELOAD_COMMAND,
    DEFAULT_VALIDATE_COMMAND,
    ConfigFileError,
    decode,
    read_bytes,
    resolve_path,
    split_command,
    update_file,
)
from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_upstream import (
    NginxConfigError,
    ServerChange,
    apply_server_changes,
    parse_upstream,
)

# Characters that end or open a token in nginx syntax, quote, escape or start a comment or variable.
_FORBIDDEN = re.compile(r'[\s;{}"\'\\#$]|[\x00-\x1f\x7f]')


# Warn when the share reached is further than this (in percentage points) from the share asked for.
UNREACHABLE_WARNING_POINTS = 0.5


class RequestError(ValueError):
    """The task's parameters are invalid on their own (before the file is looked at)."""


def check_address(address, what='address'):
    """Return ``address`` if it is a non-empty string that cannot smuggle nginx syntax; else RequestError."""
    if not isinstance(address, str) or not address:
        raise RequestError('%s must be a non-empty string, got %r' % (what, address))
    bad = _FORBIDDEN.search(address)
    if bad:
        raise RequestError('%s %r contains %r, which is not allowed in an nginx server address'
                           % (what, address, bad.group(0)))
    return address


def check_upstream_name(name):
    return check_address(name, 'upstream name')


def check_servers(servers):
    """``servers`` as ``[(address, weight)]``: weights are integers >= 0, addresses unique and clean."""
    if not isinstance(servers, (list, tuple)) or not servers:
        raise RequestError('servers must be a non-empty list of {address, weight}')
    checked = []
    seen = set()
    for item in servers:
        if not isinstance(item, dict) or set(item) - {'address', 'weight'} or 'address' not in item:
            raise RequestError('each entry of servers must be {address, weight}, got %r' % (item,))
        address = check_address(item['address'])
        weight = item.get('weight')
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise RequestError('weight of %r must be an integer >= 0 (0 means down), got %r' % (address, weight))
        if address in seen:
            raise RequestError('server %r is listed twice in servers' % address)
        seen.add(address)
        checked.append((address, weight))
    return checked


def check_canary(canary):
    if not isinstance(canary, (list, tuple)) or not canary:
        raise RequestError('canary must be a non-empty list of server addresses (the canary group is empty)')
    seen = set()
    for address in canary:
        check_address(address, 'canary address')
        if address in seen:
            raise RequestError('canary address %r is listed twice' % address)
        seen.add(address)
    return list(canary)


def plan_servers(servers):
    """``{address: ServerChange}`` for explicit weights: 0 means ``down``, N means ``weight=N`` and up."""
    return dict((address, ServerChange(down=True) if weight == 0 else ServerChange(weight=weight, down=False))
                for address, weight in servers)


def plan_canary(upstream, canary, percent, max_weight):
    """``({address: ServerChange}, GroupWeights)`` giving the ``canary`` addresses ``percent`` of traffic.

    Stable servers are all other non-backup servers of the upstream; backup servers are left alone.
    """
    by_address = dict((server.address, server) for server in upstream.servers)
    if upstream.includes:
        raise RequestError('upstream %r includes %s; its full server list is not in this file, so the canary '
                           'share cannot be computed. Point path at the file that lists all its servers.'
                           % (upstream.name, ', '.join(upstream.includes)))
    for address in canary:
        if address not in by_address:
            raise NginxConfigError(upstream.unknown_address_message(address))
        if by_address[address].backup:
            raise RequestError('canary server %r is a backup server; backup servers get no share of traffic'
                               % address)
    canary_set = set(canary)
    stable = [server.address for server in upstream.servers
              if server.address not in canary_set and not server.backup]
    weights = group_weights(len(canary), len(stable), percent, max_weight)
    changes = {}
    for addresses, weight, down in ((canary, weights.canary_weight, weights.canary_down),
                                    (stable, weights.stable_weight, weights.stable_down)):
        for address in addresses:
            changes[address] = ServerChange(down=True) if down else ServerChange(weight=weight, down=False)
    return changes, weights


def _servers(upstream):
    return [server.as_dict() for server in upstream.servers]


def set_upstream_weights(path, upstream, servers=None, canary=None, canary_percent=None,
                         max_weight=DEFAULT_MAX_WEIGHT, state='present', check_mode=False,
                         validate_command=DEFAULT_VALIDATE_COMMAND, reload_command=DEFAULT_RELOAD_COMMAND,
                         reload=True, backup=False, lock_timeout=DEFAULT_LOCK_TIMEOUT):
    """Do what one ``nginx_weights`` task asks and return its result dict (without ``diff``).

    The result has ``changed``, ``path`` (the real file), ``upstream``, ``servers_before``, ``servers_after``
    (lists of ``{address, weight, down, backup}``), and with ``canary``: ``canary_percent`` (effective, after),
    ``canary_percent_before``; with ``canary_percent``: ``weights`` ``{canary, stable, exact}`` and ``warnings``
    when the share reached is more than half a point off; ``backup_file``
    when a backup was made; ``validated``/``reloaded``; and ``before_text``/``after_text`` for a diff.
    Raises RequestError, WeightError, NginxConfigError or ConfigFileError; the file is then as it was.
    """
    check_upstream_name(upstream)
    check_request_shape(state, servers, canary, canary_percent, max_weight, error=RequestError)
    if canary is not None:
        canary = check_canary(canary)
    if state == 'query':
        return _query(path, upstream, canary)
    explicit = None if canary is not None else plan_servers(check_servers(servers))
    validate_argv = split_command(validate_command)
    reload_argv = split_command(reload_command) if reload else []

    def transform(text):
        parsed = parse_upstream(text, upstream)
        weights = None
        if explicit is not None:
            changes = explicit
        else:
            changes, weights = plan_canary(parsed, canary, canary_percent, max_weight)
        new_text = apply_server_changes(text, upstream, changes, upstream=parsed)
        after = parse_upstream(new_text, upstream) if new_text != text else parsed
        _verify(after, changes)
        return new_text, (parsed, after, weights)

    outcome = update_file(path, transform, check_mode=check_mode, validate_argv=validate_argv,
                          reload_argv=reload_argv, backup=backup, lock_timeout=lock_timeout)
    before, after, weights = outcome.info
    result = {
        'changed': outcome.changed,
        'path': outcome.path,
        'upstream': upstream,
        'servers_before': _servers(before),
        'servers_after': _servers(after),
        'validated': outcome.validated,
        'reloaded': outcome.reloaded,
        'before_text': outcome.before,
        'after_text': outcome.after,
    }
    if outcome.backup_file:
        result['backup_file'] = outcome.backup_file
    if canary is not None:
        result['canary_percent_before'] = effective_canary_percent(before.servers, canary)
        result['canary_percent'] = effective_canary_percent(after.servers, canary)
        result['weights'] = {'canary': weights.canary_weight, 'stable': weights.stable_weight,
                             'exact': weights.exact}
        if abs(weights.effective_percent - float(canary_percent)) > UNREACHABLE_WARNING_POINTS:
            result['warnings'] = [
                'canary_percent %s is not reachable with max_weight %d for %d canary and %d stable servers; '
                'the canary gets %.4g %%. Raise max_weight (up to 1000) or change the group sizes.'
                % (canary_percent, max_weight, len(canary), _stable_count(before, canary),
                   weights.effective_percent)]
    return result


def _stable_count(upstream, canary):
    canary = set(canary)
    return sum(1 for server in upstream.servers if server.address not in canary and not server.backup)


def _verify(upstream, changes):
    """Re-parsed result must show exactly the requested weights and down flags (a guard against editor bugs)."""
    for server in upstream.servers:
        change = changes.get(server.address)
        if change is None:
            continue
        if (change.weight is not None and server.weight != change.weight) or \
                (change.down is not None and server.down != change.down):
            raise NginxConfigError('internal error: server %r came out as weight %d down %s'
                                   % (server.address, server.weight, server.down))


def _query(path, upstream, canary):
    real = resolve_path(path)
    data = read_bytes(real)
    if data is None:
        raise ConfigFileError('%s does not exist' % real)
    text = decode(data)
    parsed = parse_upstream(text, upstream)
    if canary is not None:
        for address in canary:
            parsed.server(address)
    servers = _servers(parsed)
    result = {'changed': False, 'path': real, 'upstream': upstream, 'servers_before': servers,
              'servers_after': servers, 'validated': False, 'reloaded': False,
              'before_text': text, 'after_text': text}
    if canary is not None:
        percent = effective_canary_percent(parsed.servers, canary)
        result['canary_percent_before'] = percent
        result['canary_percent'] = percent
    return result


__all__ = ['RequestError', 'WeightError', 'NginxConfigError', 'ConfigFileError', 'set_upstream_weights',
           'check_address', 'check_servers', 'check_canary', 'plan_servers', 'plan_canary',
           'DEFAULT_VALIDATE_COMMAND', 'DEFAULT_RELOAD_COMMAND']
