# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The state of a release as Prometheus metrics, in the text exposition format (version 0.0.4).

One service's release is one *state*: ``service``, ``version``, ``weight`` (the canary's share of the traffic now,
percent), ``step`` (-1 before the first), ``verdict`` (the latest of :data:`VERDICTS`, or None), ``outcome`` (one of
:data:`OUTCOMES`) and ``timestamp`` (unix time of the last change). :func:`render` writes it as text - the metric
names and labels below are a contract (dashboards query them) - and :func:`parse` reads back what it wrote.

:func:`update` merges what a caller knows (the traffic role knows the weight, the rollout role the record) into the
state already published: a value not given is kept, a new version starts afresh. The timestamp moves only when a
value changes, so an unchanged state is not rewritten (an idempotent task) and the timestamp says when the release
last changed. :func:`publish_textfile` replaces the node_exporter textfile atomically (a temporary file in the same
directory, then rename: the collector never reads half a file); :func:`pushgateway_request` builds the
Pushgateway's PUT (or DELETE) of the same text.
"""

import base64
import os
import re
import socket

from urllib.error import HTTPError, URLError
from urllib.parse import quote

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import Request, SSLValidationError

from ansible_collections.canary.release.plugins.module_utils.durable_files import (
    ConfigFileError,
    atomic_write,
    decode,
    encode,
    fsync_directory,
    read_bytes,
)
from ansible_collections.canary.release.plugins.module_utils._rollout import vocabulary as words

WEIGHT = 'canary_release_canary_weight_percent'
STEP = 'canary_release_step'
VERDICT = 'canary_release_verdict'
OUTCOME = 'canary_release_outcome'
LAST_CHANGE = 'canary_release_last_change_timestamp_seconds'

# (name, help) in the order they are written
METRICS = (
    (WEIGHT, "The canary's share of the traffic now, in percent (0-100)."),
    (STEP, 'Index of the current step of the release (-1 before the first step).'),
    (VERDICT, 'The latest verdict of the release: 1 for that verdict only.'),
    (OUTCOME, 'Where the release stands: 1 for the current outcome only.'),
    (LAST_CHANGE, 'Unix time of the last change of the release state.'),
)
VERDICTS = ('pass', 'fail', 'continue', 'inconclusive', 'watched')
OUTCOMES = ('running', 'held', 'promoted', 'rolled_back', 'aborted')
JOB = 'canary_release'
TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
DEFAULT_MODE = 0o644  # node_exporter runs as its own user and must read the file

# A step's verdict in the record (vocabulary.py) -> the verdict published. A person's approval or rejection counts as
# pass or fail; a step skipped, awaiting approval or not judged yet publishes nothing of its own (the one before it
# stands).
_STEP_VERDICTS = {
    words.PASS: 'pass', words.APPROVED: 'pass', words.WATCHED: 'watched', words.CONTINUE: 'continue',
    words.INCONCLUSIVE: 'inconclusive', words.FAIL: 'fail', words.REJECTED: 'fail',
}
# The rollout role's outcome of a transition (vocabulary.py OUTCOMES) -> the outcome published.
_EVENT_OUTCOMES = {
    words.OUTCOME_RUNNING: 'running', words.OUTCOME_PROMOTING: 'running', words.OUTCOME_HELD: 'held',
    words.OUTCOME_PROMOTED: 'promoted', words.OUTCOME_ALREADY_PROMOTED: 'promoted',
    words.OUTCOME_ROLLED_BACK: 'rolled_back', words.OUTCOME_ABORTED: 'aborted',
}
# A record's status -> the outcome published, when the caller gives no outcome.
_STATUS_OUTCOMES = {
    words.RUNNING: 'running', words.PAUSED: 'held', words.PROMOTED: 'promoted', words.ROLLED_BACK: 'rolled_back',
    words.ABORTED: 'aborted',
}

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')
_UNESCAPES = {'\\\\': '\\', '\\n': '\n', '\\"': '"'}


class MetricsError(Exception):
    """A value that cannot be published, a file that holds another service, a refused push."""


# --- text ---------------------------------------------------------------------------------------------------------

def escape_label_value(value):
    """A label value as the exposition format writes it: backslash, double quote and line feed escaped."""
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def unescape_label_value(text):
    return re.sub(r'\\[\\n"]', lambda match: _UNESCAPES[match.group(0)], text)


def format_value(value):
    """``10`` for 10.0, ``12.5`` for 12.5: integral values without a fraction, others as Python's shortest repr."""
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def _labels(pairs):
    return '{%s}' % ','.join('%s="%s"' % (name, escape_label_value(value)) for name, value in pairs)


def render(state):
    """The text of ``state``: every metric's HELP and TYPE lines, then its sample (none for a verdict not known)."""
    base = (('service', state['service']), ('version', state['version']))
    samples = {
        WEIGHT: [(base, state['weight'] or 0)],
        STEP: [(base, state['step'])],
        VERDICT: [(base + (('verdict', state['verdict']),), 1)] if state.get('verdict') else [],
        OUTCOME: [(base + (('outcome', state['outcome']),), 1)],
        LAST_CHANGE: [(base, state['timestamp'])],
    }
    lines = []
    for name, text in METRICS:
        lines.append('# HELP %s %s' % (name, text))
        lines.append('# TYPE %s gauge' % name)
        lines.extend('%s%s %s' % (name, _labels(labels), format_value(value)) for labels, value in samples[name])
    return '\n'.join(lines) + '\n'


def parse(text):
    """The state in a text :func:`render` wrote, or None when ``text`` is None or holds none of its samples.

    Raises :class:`MetricsError` when the samples name more than one service or version.
    """
    if not text:
        return None
    state = {}
    found = set()
    for line in text.split('\n'):  # only a line feed ends a line: a label value may hold \r
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, labels, value = match.group(1), match.group(2), match.group(3)
        pairs = dict((key, unescape_label_value(raw)) for key, raw in _LABEL.findall(labels))
        for key in ('service', 'version'):
            if key in state and key in pairs and state[key] != pairs[key]:
                raise MetricsError('the metrics file holds more than one %s (%r and %r)' % (key, state[key], pairs[key]))
            if key in pairs:
                state[key] = pairs[key]
        try:
            number = float(value)
        except ValueError:
            continue
        found.add(name)
        if name == WEIGHT:
            state['weight'] = number
        elif name == STEP:
            state['step'] = int(number)
        elif name == VERDICT and number == 1:
            state['verdict'] = pairs.get('verdict')
        elif name == OUTCOME and number == 1:
            state['outcome'] = pairs.get('outcome')
        elif name == LAST_CHANGE:
            state['timestamp'] = number
    if not found or 'service' not in state:
        return None
    return state


# --- the values -------------------------------------------------------------------------------------------------

def from_record(record, outcome=None):
    """What a rollout record (and the rollout role's outcome of the transition) says: a dict of known values.

    ``weight`` is the record's while the release is unfinished (running or paused); a record rolled back or promoted
    keeps its last step's weight, but the canary has none: the rollback and promote roles finish the record only
    after the traffic role drained it to 0 % and read 0 back. An aborted release's weight is not known (kept).
    """
    record = record or {}
    values = {}
    if record.get('version') not in (None, ''):
        values['version'] = str(record['version'])
    status = record.get('status')
    if status in words.UNFINISHED:
        values['step'] = -1 if record.get('step') is None else record['step']
        if record.get('weight') is not None:
            values['weight'] = record['weight']
    else:
        if record.get('step') is not None:
            values['step'] = record['step']
        if status in (words.ROLLED_BACK, words.PROMOTED):
            values['weight'] = 0
    for entry in sorted(record.get('steps') or [], key=lambda item: item.get('index', -1), reverse=True):
        if entry.get('verdict') in _STEP_VERDICTS:
            values['verdict'] = _STEP_VERDICTS[entry['verdict']]
            break
    if outcome:
        if outcome not in _EVENT_OUTCOMES:
            raise MetricsError('unknown outcome %r (one of %s)' % (outcome, ', '.join(sorted(_EVENT_OUTCOMES))))
        values['outcome'] = _EVENT_OUTCOMES[outcome]
    elif status in _STATUS_OUTCOMES:
        values['outcome'] = _STATUS_OUTCOMES[status]
    return values


def _checked(values):
    weight, step = values.get('weight'), values.get('step')
    if weight is not None and not 0 <= float(weight) <= 100:
        raise MetricsError('the canary weight must be from 0 to 100 percent, got %r' % (weight,))
    if step is not None and int(step) < -1:
        raise MetricsError('the step must be -1 (before the first) or an index from 0, got %r' % (step,))
    if values.get('verdict') not in (None,) + VERDICTS:
        raise MetricsError('unknown verdict %r (one of %s)' % (values['verdict'], ', '.join(VERDICTS)))
    if values.get('outcome') not in (None,) + OUTCOMES:
        raise MetricsError('unknown outcome %r (one of %s)' % (values['outcome'], ', '.join(OUTCOMES)))
    return values


def update(previous, service, version, values, now):
    """The state to publish: ``previous`` (the published state, or None) with ``values`` (None values ignored).

    A release of another version starts from a fresh state (weight 0, step -1, no verdict, running). The timestamp
    is ``now`` when any value differs from ``previous``, else the previous timestamp.
    """
    if not service:
        raise MetricsError('the service label must not be empty')
    if previous is not None and previous.get('service') != service:
        raise MetricsError('the metrics file holds service %r, not %r: give every service a file of its own'
                           % (previous.get('service'), service))
    given = _checked(dict((key, value) for key, value in (values or {}).items() if value is not None))
    version = str(version or given.pop('version', None) or (previous or {}).get('version') or '')
    given.pop('version', None)
    if not version:
        raise MetricsError('the version label must not be empty: set the version or give a rollout record')
    fresh = {'service': service, 'version': version, 'weight': 0.0, 'step': -1, 'verdict': None, 'outcome': 'running'}
    base = previous if previous is not None and previous.get('version') == version else fresh
    state = dict((key, base.get(key, fresh[key])) for key in fresh)
    state.update((key, given[key]) for key in ('weight', 'step', 'verdict', 'outcome') if key in given)
    state['weight'] = float(state['weight'] or 0)
    state['step'] = int(state['step'])
    unchanged = previous is not None and previous.get('timestamp') is not None and all(
        previous.get(key) == state[key] for key in fresh)
    state['timestamp'] = previous['timestamp'] if unchanged else float(int(now))
    return state


# --- the textfile -----------------------------------------------------------------------------------------------

def read_textfile(path):
    """``(text, state)`` of the file at ``path``; ``(None, None)`` when there is no such file."""
    try:
        data = read_bytes(path)
    except ConfigFileError as error:
        raise MetricsError(str(error))
    if data is None:
        return None, None
    text = decode(data)
    return text, parse(text)


def publish_textfile(path, text, mode=DEFAULT_MODE):
    """Replace the file at ``path`` with ``text`` atomically (temporary file beside it, fsync, rename)."""
    if not path.endswith('.prom'):
        raise MetricsError('%s: the textfile collector reads only files whose name ends in .prom' % path)
    try:
        atomic_write(path, encode(text), mode)
    except ConfigFileError as error:
        raise MetricsError(str(error))


def remove_textfile(path):
    """Remove the file at ``path``; True when there was one."""
    try:
        os.unlink(path)
    except OSError as error:
        if not os.path.exists(path):
            return False
        raise MetricsError('cannot remove %s: %s' % (path, error.strerror))
    fsync_directory(os.path.dirname(path) or '.')
    return True


# --- the Pushgateway --------------------------------------------------------------------------------------------

def _path_label(name, value):
    """``/name/value``, or ``/name@base64/<url-safe base64>`` for a value a URL path cannot carry (empty, a slash)."""
    if value and '/' not in value:
        return '/%s/%s' % (name, quote(value, safe=''))
    encoded = base64.urlsafe_b64encode(value.encode('utf-8')).decode('ascii')
    return '/%s@base64/%s' % (name, encoded or '=')


def pushgateway_group_url(base_url, service):
    """``<base_url>/metrics/job/canary_release/service/<service>``: the service's group on the Pushgateway."""
    return base_url.rstrip('/') + '/metrics' + _path_label('job', JOB) + _path_label('service', service)


def pushgateway_request(base_url, service, text=None, token=None):
    """``(method, url, data, headers)`` that replace the service's group with ``text`` (PUT), or delete it (None)."""
    headers = {}
    if token:
        headers['Authorization'] = 'Bearer %s' % token
    url = pushgateway_group_url(base_url, service)
    if text is None:
        return 'DELETE', url, None, headers
    headers['Content-Type'] = TEXT_CONTENT_TYPE
    return 'PUT', url, encode(text), headers


def push(base_url, service, text=None, username=None, password=None, token=None, timeout=10.0, validate_certs=True):
    """Send :func:`pushgateway_request` through ``ansible.module_utils.urls``; return the HTTP status.

    Raises :class:`MetricsError` (without the password or token) when the Pushgateway cannot be reached or answers
    with anything but 2xx.
    """
    method, url, data, headers = pushgateway_request(base_url, service, text, token)
    try:
        response = Request().open(method, url, data=data, headers=headers, timeout=timeout,
                                  validate_certs=validate_certs, url_username=username, url_password=password,
                                  force_basic_auth=bool(username), follow_redirects='safe')
        return response.getcode()
    except HTTPError as error:
        raise MetricsError('the Pushgateway refused the %s of %s: HTTP %s %s' % (method, url, error.code, error.reason))
    except (URLError, SSLValidationError, UrlsConnectionError, socket.timeout, OSError, ValueError) as error:
        raise MetricsError('cannot reach the Pushgateway at %s: %s' % (url, getattr(error, 'reason', error)))
