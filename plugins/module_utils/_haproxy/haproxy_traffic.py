# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The ``canary.release.haproxy_weights`` task: check, plan, then set weights at runtime and in the file together.

:func:`set_backend_weights` is the one entry point the module calls. The order makes sure that after a successful
task the running HAProxy and the configuration file agree, and that a failed task changes neither:

1. Check the request on its own (names, weights, percent) - nothing is opened yet.
2. With ``path``: take the lock file beside the configuration file (concurrent runs apply one after the other).
3. Ask the stats socket for its level (``admin`` needed to set weights) and the backend's servers and weights.
4. With ``path``: parse the backend section; its server names must be exactly the runtime's.
5. Plan the weight of every server (the ones asked for; every other server keeps its runtime weight, so the file
   follows the runtime for them too), and the file's new text.
6. Write the new text to a temporary file beside the configuration file and validate it (``haproxy -c -f %s``).
7. Set the changed weights through the Runtime API and read them back. If a command fails or the read-back differs,
   the weights already set are put back and the temporary file is removed: the file was never touched.
8. Back up the file (optional) and rename the temporary file over it.
"""


import os

from ansible_collections.canary.release.plugins.module_utils._common.canary_weights import (
    WeightError,
    check_request_shape,
    effective_canary_percent,
    group_weights,
)
from ansible_collections.canary.release.plugins.module_utils._haproxy.haproxy_config import (
    MAX_WEIGHT,
    HaproxyConfigError,
    apply_weights,
    parse_backend,
)
from ansible_collections.canary.release.plugins.module_utils._haproxy.haproxy_runtime import (
    DEFAULT_TIMEOUT,
    HaproxyRuntimeError,
    RuntimeClient,
    check_name,
    parse_socket,
)
from ansible_collections.canary.release.plugins.module_utils.durable_files import (
    DEFAULT_LOCK_TIMEOUT,
    ConfigFileError,
    FileLock,
    backup_copy,
    commit_temporary,
    decode,
    discard_temporary,
    encode,
    read_bytes,
    resolve_path,
    run_command,
    split_command,
    write_temporary,
)

DEFAULT_VALIDATE_COMMAND = 'haproxy -c -f %s'
DEFAULT_MAX_WEIGHT = MAX_WEIGHT
# Warn when the share reached is further than this (in percentage points) from the share asked for.
UNREACHABLE_WARNING_POINTS = 0.5


class RequestError(ValueError):
    """The task's parameters are invalid on their own (before HAProxy or the file is looked at)."""


class _NoLock(object):
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def _name(value, what):
    try:
        return check_name(value, what)
    except ValueError as error:
        raise RequestError(str(error))


def check_servers(servers):
    """``[(name, weight)]`` from ``[{name, weight}]``: names valid and unique, weights integers from 0 to 256."""
    if not isinstance(servers, (list, tuple)) or not servers:
        raise RequestError('servers must be a non-empty list of {name, weight}')
    checked = []
    for item in servers:
        if not isinstance(item, dict) or set(item) - {'name', 'weight'} or 'name' not in item:
            raise RequestError('each entry of servers must be {name, weight}, got %r' % (item,))
        name = _name(item['name'], 'server')
        weight = item.get('weight')
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise RequestError('weight of server %r must be an integer from 0 to %d (0 drains it), got %r'
                               % (name, MAX_WEIGHT, weight))
        checked.append((name, weight))
    _unique([name for name, dummy in checked], 'servers')
    return checked


def check_canary(canary):
    if not isinstance(canary, (list, tuple)) or not canary:
        raise RequestError('canary must be a non-empty list of server names (the canary group is empty)')
    names = [_name(name, 'canary server') for name in canary]
    _unique(names, 'canary')
    return names


def _unique(names, what):
    seen = set()
    for name in names:
        if name in seen:
            raise RequestError('server %r is listed twice in %s' % (name, what))
        seen.add(name)


def validate_argv(command, temporary):
    """The validate command as argv with ``%s`` replaced by the file to check; [] for an empty command."""
    argv = split_command(command)
    if not argv:
        return []
    if not any('%s' in part for part in argv):
        raise RequestError('validate_command must contain %%s (the file to check), got %r' % (command,))
    return [part.replace('%s', temporary) for part in argv]


def _unknown_server(name, backend, servers):
    known = [server.name for server in servers]
    shown = ', '.join(known[:20]) + (', ... (%d in all)' % len(known) if len(known) > 20 else '')
    return HaproxyRuntimeError('server %r is not in backend %r (its servers: %s)' % (name, backend, shown or 'none'))


def plan_weights(runtime, backend, explicit=None, canary=None, percent=None, max_weight=DEFAULT_MAX_WEIGHT):
    """``({server name: weight}, GroupWeights or None)``: the weight of every server after the task.

    ``runtime`` is the backend's ``[RuntimeServer]``. Servers the request does not name keep their weight.
    With ``canary``, the stable group is every other server that is not a backup server.
    """
    by_name = dict((server.name, server) for server in runtime)
    targets = dict((server.name, server.weight) for server in runtime)
    if explicit is not None:
        for name, weight in explicit:
            if name not in by_name:
                raise _unknown_server(name, backend, runtime)
            targets[name] = weight
        return targets, None
    for name in canary:
        if name not in by_name:
            raise _unknown_server(name, backend, runtime)
        if by_name[name].backup:
            raise RequestError('canary server %r is a backup server; backup servers get no share of traffic' % name)
    canary_set = set(canary)
    stable = [server.name for server in runtime if server.name not in canary_set and not server.backup]
    weights = group_weights(len(canary), len(stable), percent, max_weight, limit=MAX_WEIGHT)
    for names, weight, down in ((canary, weights.canary_weight, weights.canary_down),
                                (stable, weights.stable_weight, weights.stable_down)):
        for name in names:
            targets[name] = 0 if down else weight
    return targets, weights


def _compare_server_lists(runtime, parsed, backend, path):
    runtime_names = [server.name for server in runtime]
    file_names = [server.name for server in parsed.servers]
    if set(runtime_names) == set(file_names):
        return
    only_runtime = [name for name in runtime_names if name not in set(file_names)]
    only_file = [name for name in file_names if name not in set(runtime_names)]
    parts = []
    if only_runtime:
        parts.append('only in the running HAProxy: %s' % ', '.join(only_runtime[:20]))
    if only_file:
        parts.append('only in the file: %s' % ', '.join(only_file[:20]))
    hint = ''
    if parsed.templates:
        hint = ' (the section has server-template %s, whose servers this module cannot edit in the file)' \
               % ', '.join(parsed.templates)
    raise HaproxyConfigError('backend %r has different servers in %s and in the running HAProxy - %s%s. Reload '
                             'HAProxy with the file, or fix the file, first; nothing was changed'
                             % (backend, path, '; '.join(parts), hint))


def _servers_as_dicts(runtime, weights):
    return [dict(server.as_dict(), weight=weights[server.name]) for server in runtime]


def _percent(runtime, weights, canary):
    servers = [{'name': server.name, 'weight': weights[server.name], 'down': weights[server.name] == 0,
                'backup': server.backup} for server in runtime]
    return effective_canary_percent(servers, canary, key='name')


def _weights_text(runtime, weights):
    return ''.join('server %s weight %d\n' % (server.name, weights[server.name]) for server in runtime)


def set_backend_weights(backend, socket, path=None, servers=None, canary=None, canary_percent=None,
                        max_weight=DEFAULT_MAX_WEIGHT, state='present', check_mode=False,
                        validate_command=DEFAULT_VALIDATE_COMMAND, backup=False, lock_timeout=DEFAULT_LOCK_TIMEOUT,
                        timeout=DEFAULT_TIMEOUT):
    """Do what one ``haproxy_weights`` task asks and return its result dict (without ``diff``).

    Raises RequestError, WeightError, HaproxyRuntimeError, HaproxyConfigError or ConfigFileError; then neither the
    running HAProxy nor the file was changed (``restored`` on the error says when weights had to be put back).
    """
    _name(backend, 'backend')
    try:
        parse_socket(socket)
    except ValueError as error:
        raise RequestError(str(error))
    check_request_shape(state, servers, canary, canary_percent, max_weight, MAX_WEIGHT, RequestError)
    if canary is not None:
        canary = check_canary(canary)
    explicit = check_servers(servers) if servers is not None and state == 'present' else None
    real = None
    if path:
        real = resolve_path(path)
        if read_bytes(real) is None:
            raise ConfigFileError('%s does not exist' % real)
        if state == 'present' and validate_command:
            validate_argv(validate_command, real)  # checks the %s before anything happens
    client = RuntimeClient(socket, timeout)
    lock = FileLock(real, lock_timeout) if real and state == 'present' and not check_mode else _NoLock()
    with lock:
        return _run(client, backend, real, explicit, canary, canary_percent, max_weight, state, check_mode,
                    validate_command, backup)


def _run(client, backend, real, explicit, canary, canary_percent, max_weight, state, check_mode, validate_command,
         backup):
    if state == 'present':
        client.require_admin()
    runtime = client.servers(backend)
    if not runtime:
        raise HaproxyRuntimeError('backend %r has no servers' % backend)
    before = dict((server.name, server.weight) for server in runtime)
    text = parsed = None
    if real is not None:
        text = decode(read_bytes(real) or b'')
        parsed = parse_backend(text, backend)
    if canary is not None:
        for name in canary:
            if name not in before:
                raise _unknown_server(name, backend, runtime)
    if state == 'query':
        return _query_result(client, backend, real, runtime, before, parsed, text, canary)
    if parsed is not None:
        _compare_server_lists(runtime, parsed, backend, real)
    targets, groups = plan_weights(runtime, backend, explicit, canary, canary_percent, max_weight)
    runtime_changes = [(server.name, targets[server.name]) for server in runtime
                       if server.weight != targets[server.name]]
    new_text = text
    if parsed is not None:
        new_text = apply_weights(text, backend, targets, backend=parsed)
        written = parse_backend(new_text, backend).weights() if new_text != text else parsed.weights()
        if written != targets:
            raise HaproxyConfigError('internal error: the edited file would say %r, not %r' % (written, targets))
    result = {
        'changed': bool(runtime_changes) or new_text != text,
        'runtime_changed': bool(runtime_changes),
        'file_changed': new_text != text,
        'backend': backend,
        'socket': client.socket,
        'path': real,
        'servers_before': _servers_as_dicts(runtime, before),
        'servers_after': _servers_as_dicts(runtime, targets),
        'weights_before': before,
        'weights': targets,
        'validated': False,
        'verified': False,
        'before_text': _weights_text(runtime, before),
        'after_text': _weights_text(runtime, targets),
        'file_before': text,
        'file_after': new_text,
    }
    if canary is not None:
        result['canary_percent_before'] = _percent(runtime, before, canary)
        result['canary_percent'] = _percent(runtime, targets, canary)
        result['group_weights'] = {'canary': 0 if groups.canary_down else groups.canary_weight,
                                   'stable': 0 if groups.stable_down else groups.stable_weight,
                                   'exact': groups.exact}
        if abs(groups.effective_percent - float(canary_percent)) > UNREACHABLE_WARNING_POINTS:
            result['warnings'] = [
                'canary_percent %s is not reachable with max_weight %d for %d canary and %d stable servers; the '
                'canary gets %.4g %%. Raise max_weight (up to %d) or change the group sizes.'
                % (canary_percent, max_weight, len(canary),
                   sum(1 for server in runtime if server.name not in set(canary) and not server.backup),
                   groups.effective_percent, MAX_WEIGHT)]
    if check_mode or not result['changed']:
        result['verified'] = not check_mode
        return result
    _apply(client, backend, real, runtime, before, targets, runtime_changes, new_text if new_text != text else None,
           validate_command, backup, result)
    return result


def _apply(client, backend, real, runtime, before, targets, runtime_changes, new_text, validate_command, backup,
           result):
    temporary = None
    if new_text is not None:
        temporary = write_temporary(real, encode(new_text))
        try:
            _validate(validate_command, temporary, real)
        except BaseException:
            discard_temporary(temporary)
            raise
        result['validated'] = bool(validate_command)
    try:
        applied = []
        if runtime_changes:
            outcome = client.set_weights(backend, runtime_changes)
            applied = [(name, weight) for name, weight, error in outcome if error is None]
            failed = [(name, error) for name, weight, error in outcome if error is not None]
            if failed:
                restored = _restore(client, backend, before, applied)
                raise HaproxyRuntimeError(
                    'HAProxy refused to set the weight of %s; %s; the file was not changed'
                    % ('; '.join('%s: %s' % item for item in failed), restored))
            after = dict((server.name, server.weight) for server in client.servers(backend))
            if after != targets:
                restored = _restore(client, backend, before, applied)
                raise HaproxyRuntimeError('read back after setting the weights, HAProxy has %r instead of %r; %s; '
                                          'the file was not changed' % (after, targets, restored))
        result['verified'] = True
        if temporary is not None:
            if backup:
                result['backup_file'] = backup_copy(real)
            try:
                commit_temporary(temporary, real)
            except ConfigFileError as error:
                temporary = None
                raise ConfigFileError('%s; %s' % (error, _restore(client, backend, before, applied)))
            temporary = None
    finally:
        if temporary is not None:
            discard_temporary(temporary)


def _validate(command, temporary, real):
    argv = validate_argv(command, temporary) if command else []
    if not argv:
        return
    rc, stdout, stderr = run_command(argv, cwd=os.path.dirname(real))
    if rc != 0:
        output = (stderr.strip() or stdout.strip() or '(no output)')
        raise ConfigFileError('validate command %s failed with rc %d on the new content of %s (checked as %s); '
                              'nothing was changed. Output: %s' % (' '.join(argv), rc, real, temporary, output),
                              command=argv, rc=rc, stdout=stdout, stderr=stderr, restored=False)


def _restore(client, backend, before, applied):
    """Put back the weights of ``applied`` servers; return a phrase for the error message."""
    if not applied:
        return 'no weight had been changed'
    back = [(name, before[name]) for name, dummy in applied]
    try:
        failed = [name for name, dummy, error in client.set_weights(backend, back) if error is not None]
    except HaproxyRuntimeError as error:
        return 'putting back the weights of %s FAILED: %s' % (', '.join(name for name, dummy in back), error)
    if failed:
        return 'putting back the weights of %s FAILED' % ', '.join(failed)
    return 'the weights already set (%s) were put back' % ', '.join(name for name, dummy in back)


def _query_result(client, backend, real, runtime, weights, parsed, text, canary):
    result = {'changed': False, 'runtime_changed': False, 'file_changed': False, 'backend': backend,
              'socket': client.socket, 'path': real, 'servers_before': _servers_as_dicts(runtime, weights),
              'servers_after': _servers_as_dicts(runtime, weights), 'weights_before': weights, 'weights': weights,
              'validated': False, 'verified': False, 'before_text': '', 'after_text': '', 'file_before': text,
              'file_after': text}
    if parsed is not None:
        result['file_weights'] = parsed.weights()
        result['in_step'] = result['file_weights'] == weights
    if canary is not None:
        result['canary_percent'] = result['canary_percent_before'] = _percent(runtime, weights, canary)
    return result


__all__ = ['RequestError', 'WeightError', 'HaproxyConfigError', 'HaproxyRuntimeError', 'ConfigFileError',
           'set_backend_weights', 'plan_weights', 'check_servers', 'check_canary', 'DEFAULT_VALIDATE_COMMAND',
           'DEFAULT_MAX_WEIGHT']
