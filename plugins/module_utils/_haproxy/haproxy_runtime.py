# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HAProxy's Runtime API (the stats socket): read a backend's servers and set their weights, without a reload.

One connection per request in non-interactive mode: the request is one line (several commands separated by
``;``), HAProxy answers every command with its output followed by an empty line and closes the connection.

* ``show cli level`` -> ``admin``, ``operator`` or ``user``; ``set server`` needs ``admin``.
* ``show servers state <backend>`` -> a version line, a ``# be_id be_name srv_id srv_name ...`` header and one
  line per server with, among others, ``srv_uweight`` (the weight in effect, as set by ``set server ... weight``)
  and ``srv_iweight`` (the weight the configuration gave it). An unknown backend answers ``Can't find backend.``
* ``show stat <backend> 4 -1`` -> CSV with one row per server; its ``bck`` column says which are backup servers.
* ``set server <backend>/<server> weight <0-256>`` -> nothing on success, a one-line message otherwise.

The parsers are plain functions of the text so that they are unit-tested on recorded answers.
"""


import errno
import re
import socket as socket_module
import time

DEFAULT_TIMEOUT = 10.0
MAX_ANSWER_BYTES = 64 * 1024 * 1024
# srv_admin_state bits of maintenance: forced, inherited, resolution and host-name maintenance (server.h).
ADMIN_MAINTENANCE = 0x01 | 0x02 | 0x20 | 0x40
# What HAProxy accepts in proxy and server names (invalid_char() in src/tools.c). Nothing else reaches a command.
NAME_RE = re.compile(r'[A-Za-z0-9_.:-]+\Z')
_HOST_PORT_RE = re.compile(r'(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>[0-9]{1,5})\Z')


class HaproxyRuntimeError(Exception):
    """The stats socket cannot be reached, refused a command or answered something unexpected."""


class RuntimeServer(object):
    """A server of a backend as the Runtime API reports it."""

    __slots__ = ('name', 'address', 'weight', 'initial_weight', 'backup', 'operational', 'maintenance')

    def __init__(self, name, address, weight, initial_weight, backup=False, operational=True, maintenance=False):
        self.name = name
        self.address = address
        self.weight = weight
        self.initial_weight = initial_weight
        self.backup = backup
        self.operational = operational
        self.maintenance = maintenance

    def as_dict(self):
        return {'name': self.name, 'address': self.address, 'weight': self.weight, 'backup': self.backup,
                'operational': self.operational, 'maintenance': self.maintenance}


def check_name(name, what):
    """``name`` if HAProxy would accept it as a proxy or server name; otherwise ValueError."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError('%s %r is not a valid HAProxy name: use letters, digits and . _ - : only' % (what, name))
    return name


def parse_socket(value):
    """``('unix', path)`` for a path, ``('tcp', (host, port))`` for ``host:port`` or ``[v6]:port``; else ValueError.

    A value with a ``/`` is a path (also ``unix@/path``); ``ipv4@host:port`` and ``ipv6@[addr]:port`` are accepted
    as HAProxy writes them.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError('socket must be the path of a stats socket or host:port, got %r' % (value,))
    value = value.strip()
    for prefix in ('unix@', 'ipv4@', 'ipv6@', 'tcp@'):
        if value.startswith(prefix):
            value = value[len(prefix):]
            break
    if '/' in value:
        return 'unix', value
    match = _HOST_PORT_RE.match(value)
    if match is None or not 0 < int(match.group('port')) < 65536:
        raise ValueError('socket %r is neither a path (with a /) nor host:port' % (value,))
    return 'tcp', (match.group('v6') or match.group('host'), int(match.group('port')))


def split_answers(text, count):
    """The answers of ``count`` commands sent as one ``;``-separated request: each ends with an empty line."""
    answers = []
    current = []
    for line in text.split('\n')[:-1]:  # what follows the last newline is not a finished line
        if len(answers) == count:
            break
        if line == '':
            answers.append('\n'.join(current))
            current = []
        else:
            current.append(line)
    if len(answers) != count:
        raise HaproxyRuntimeError('expected %d answers from the stats socket, got %d: %r' % (count, len(answers), text))
    return answers


def parse_servers_state(text, backend):
    """``[RuntimeServer]`` (without backup flags) from ``show servers state <backend>``'s answer."""
    lines = text.strip('\n').split('\n')
    if lines and lines[0].strip().lower().startswith("can't find backend"):
        raise HaproxyRuntimeError("backend %r is not defined in HAProxy (the stats socket answered: %s)"
                                  % (backend, lines[0].strip()))
    header = None
    servers = []
    for line in lines:
        if line.startswith('#'):
            header = line[1:].split()
            continue
        if header is None:
            continue  # the format version line before the header
        fields = dict(zip(header, line.split()))
        try:
            if fields.get('be_name') != backend:
                continue
            address = fields['srv_addr']
            if fields.get('srv_port') not in (None, '0'):
                address = ('[%s]' % address if ':' in address else address) + ':' + fields['srv_port']
            admin_state = int(fields['srv_admin_state'])
            servers.append(RuntimeServer(fields['srv_name'], address, int(fields['srv_uweight']),
                                         int(fields['srv_iweight']), operational=fields['srv_op_state'] != '0',
                                         maintenance=bool(admin_state & ADMIN_MAINTENANCE)))
        except (KeyError, ValueError):
            raise HaproxyRuntimeError('cannot read "show servers state" line %r' % line)
    if header is None:
        raise HaproxyRuntimeError('unexpected answer to "show servers state %s": %r' % (backend, text[:500]))
    return servers


def parse_backup_flags(text, backend):
    """``{server name: bool}`` from ``show stat <backend> 4 -1``'s CSV (its ``bck`` column)."""
    lines = [line for line in text.split('\n') if line]
    if not lines or not lines[0].startswith('# '):
        raise HaproxyRuntimeError('unexpected answer to "show stat %s 4 -1": %r' % (backend, text[:500]))
    header = lines[0][2:].split(',')
    try:
        name_at, server_at, backup_at = header.index('pxname'), header.index('svname'), header.index('bck')
    except ValueError:
        raise HaproxyRuntimeError('"show stat" has no pxname, svname or bck column')
    flags = {}
    for line in lines[1:]:
        fields = line.split(',')
        if len(fields) > backup_at and fields[name_at] == backend and fields[server_at] not in ('FRONTEND', 'BACKEND'):
            flags[fields[server_at]] = fields[backup_at] == '1'
    return flags


class RuntimeClient(object):
    """The Runtime API of one HAProxy, at ``socket`` (a path or ``host:port``)."""

    def __init__(self, socket, timeout=DEFAULT_TIMEOUT):
        self.socket = socket
        self.kind, self.target = parse_socket(socket)
        self.timeout = timeout

    def _connect(self):
        try:
            if self.kind == 'unix':
                connection = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM)
                connection.settimeout(self.timeout)
                try:
                    connection.connect(self.target)
                except BaseException:
                    connection.close()
                    raise
                return connection
            return socket_module.create_connection(self.target, timeout=self.timeout)
        except (OSError, socket_module.timeout) as error:
            raise HaproxyRuntimeError(self._connect_message(error))

    def _connect_message(self, error):
        number = getattr(error, 'errno', None)
        if self.kind == 'unix' and number == errno.ENOENT:
            return 'stats socket %s does not exist (is HAProxy running, with "stats socket %s level admin" in ' \
                   'its global section?)' % (self.target, self.target)
        if number == errno.ECONNREFUSED:
            return 'nothing accepts connections on the stats socket %s (is HAProxy running?)' % self.socket
        if number in (errno.EACCES, errno.EPERM):
            return 'no permission to use the stats socket %s (run as its owner, or with become)' % self.socket
        return 'cannot connect to the stats socket %s: %s' % (self.socket, getattr(error, 'strerror', None) or error)

    def request(self, line):
        """Send one request line, return the whole answer (HAProxy closes the connection after it)."""
        if '\n' in line or '\r' in line:
            raise HaproxyRuntimeError('internal error: a request must be one line')
        connection = self._connect()
        deadline = time.monotonic() + self.timeout
        chunks = []
        size = 0
        try:
            connection.sendall(line.encode('ascii') + b'\n')
            while True:
                if time.monotonic() > deadline:
                    raise HaproxyRuntimeError('the stats socket %s did not finish answering %r within %s s'
                                              % (self.socket, line[:100], self.timeout))
                chunk = connection.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise HaproxyRuntimeError('the answer to %r is larger than %d bytes' % (line[:100], size))
        except (OSError, socket_module.timeout) as error:
            if isinstance(error, HaproxyRuntimeError):
                raise
            raise HaproxyRuntimeError('the stats socket %s failed during %r: %s' % (self.socket, line[:100], error))
        finally:
            connection.close()
        return b''.join(chunks).decode('utf-8', 'replace')

    def commands(self, commands):
        """Send ``commands`` as one request; return one answer (without its final empty line) per command."""
        if not commands:
            return []
        return split_answers(self.request('; '.join(commands)), len(commands))

    def level(self):
        """``admin``, ``operator`` or ``user``: what this socket allows."""
        answer = self.commands(['show cli level'])[0].strip()
        if answer not in ('admin', 'operator', 'user'):
            raise HaproxyRuntimeError('cannot tell the level of the stats socket %s ("show cli level" answered %r; '
                                      'HAProxy 2.0 or later is needed)' % (self.socket, answer))
        return answer

    def require_admin(self):
        level = self.level()
        if level != 'admin':
            raise HaproxyRuntimeError('the stats socket %s is at level %s; setting weights needs level admin '
                                      '("stats socket ... level admin" in the global section)' % (self.socket, level))

    def servers(self, backend):
        """``[RuntimeServer]`` of ``backend`` in HAProxy's order, with their weights and backup flags."""
        check_name(backend, 'backend')
        state, stat = self.commands(['show servers state %s' % backend, 'show stat %s 4 -1' % backend])
        servers = parse_servers_state(state, backend)
        flags = parse_backup_flags(stat, backend)
        for server in servers:
            server.backup = flags.get(server.name, False)
        return servers

    def set_weights(self, backend, weights):
        """Send ``set server <backend>/<name> weight <w>`` for every ``(name, weight)`` of ``weights`` (a list).

        Returns ``[(name, weight, error message or None)]`` in the same order: HAProxy carries on after a
        command fails, so the caller learns exactly which weights were set.
        """
        check_name(backend, 'backend')
        commands = []
        for name, weight in weights:
            check_name(name, 'server')
            commands.append('set server %s/%s weight %d' % (backend, name, weight))
        answers = self.commands(commands)
        return [(name, weight, answer.strip() or None) for (name, weight), answer in zip(weights, answers)]
