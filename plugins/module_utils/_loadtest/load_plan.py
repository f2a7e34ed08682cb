# -*- coding: utf-8 -*-
# Copyright (c) 2026, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The plan of a synthetic load, validated before anything starts (plain Python).

Every instance gets the same load: ``rate`` requests per second to each of the canary's and the baseline's URLs
(one URL per instance), for at most ``duration`` seconds - so at most about ``rate * duration`` requests per URL.
The judge compares the arms' error rates, so the synthetic requests count on both sides alike, and a baseline of
more instances than the canary gets proportionally more, as organic traffic would give it.
"""

import hashlib
import json
import re
import shutil
from urllib.parse import urlsplit

from ansible_collections.canary.release.plugins.module_utils.time_spec import TimeSpecError, parse_duration

METHODS = ('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS')
HEY_METHODS = ('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS')
TOOLS = ('auto', 'hey', 'python')
MAX_RATE = 1000.0          # requests per second per URL
MAX_DURATION = 86400.0     # a day
# One Python connection keeps up with about this many requests per second to a fast local service.
PYTHON_RATE_PER_CONNECTION = 20.0
_NAME = re.compile(r'^[A-Za-z0-9_.@+-]{1,128}$')
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class LoadPlanError(ValueError):
    """The load's options are invalid; ``problems`` lists every problem, the message joins them."""

    def __init__(self, problems):
        super(LoadPlanError, self).__init__('; '.join(problems))
        self.problems = list(problems)


def name_problems(name):
    """The problem with a load's ``name`` (it names files in the state directory), or an empty list."""
    if not isinstance(name, str) or not _NAME.match(name) or name in ('.', '..'):
        return ['name: %r must be 1 to 128 letters, digits and . _ @ + -' % (name,)]
    return []


def _urls(name, urls, problems):
    if not isinstance(urls, (list, tuple)) or not urls:
        problems.append('%s: give at least one URL (http:// or https://)' % name)
        return []
    found = []
    for url in urls:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ('http', 'https') or not parts.hostname:
            problems.append('%s: %r is not an http:// or https:// URL with a host' % (name, url))
            continue
        found.append(url)
    return found


def _number(name, value, low, high, problems):
    try:
        number = float(value)
    except (TypeError, ValueError):
        problems.append('%s: %r is not a number' % (name, value))
        return None
    if isinstance(value, bool) or not low < number <= high:
        problems.append('%s: %r must be above %g and at most %g' % (name, value, low, high))
        return None
    return number


def _headers(headers, problems):
    if not isinstance(headers, dict):
        problems.append('headers: must be a mapping of header names to values')
        return {}
    for header, value in headers.items():
        if not isinstance(header, str) or not _HEADER_NAME.match(header):
            problems.append('headers: %r is not a header name' % (header,))
        elif not isinstance(value, str) or '\r' in value or '\n' in value:
            # the value is not shown: it may be a token
            problems.append('headers: the value of %s must be a string on one line' % header)
    return dict((str(key), str(value)) for key, value in headers.items())


def choose_tool(tool, method, urls, validate_certs, which=shutil.which):
    """``('hey', path)`` or ``('python', None)`` for ``tool``. ``auto`` takes hey where it is installed and can
    do what is asked: hey has no PATCH and never verifies certificates, so a PATCH, or an https URL with
    ``validate_certs``, goes to the Python loop (and ``hey`` is refused for them)."""
    unable = []
    if method not in HEY_METHODS:
        unable.append('hey cannot send %s' % method)
    if validate_certs and any(url.startswith('https:') for url in urls):
        unable.append('hey does not verify certificates (set validate_certs false to use it on https URLs)')
    if tool == 'hey' and unable:
        raise LoadPlanError(['tool: %s' % '; '.join(unable)])
    if tool in ('auto', 'hey') and not unable:
        path = which('hey')
        if path:
            return 'hey', path
        if tool == 'hey':
            raise LoadPlanError(['tool: hey is not installed on this host (use tool auto or python)'])
    return 'python', None


def build_load_plan(name, canary_urls, baseline_urls, rate, duration, method='GET', headers=None, body='',
                    timeout=10, tool='auto', validate_certs=True, which=shutil.which):
    """The validated plan, or :class:`LoadPlanError` naming every problem at once.

    Returns ``{'name', 'targets': [{'arm', 'url', 'rate'}], 'rate', 'duration', 'method', 'headers', 'body',
    'timeout', 'tool', 'tool_path', 'validate_certs', 'fingerprint'}``; ``fingerprint`` identifies the load (the
    same options give the same fingerprint, so starting it again changes nothing).
    """
    problems = name_problems(name)
    arms = [('canary', _urls('canary_urls', canary_urls, problems)),
            ('baseline', _urls('baseline_urls', baseline_urls, problems))]
    per_url = _number('rate', rate, 0.0, MAX_RATE, problems)
    seconds = None
    try:
        seconds = parse_duration(duration)
        if not 0 < seconds <= MAX_DURATION:
            problems.append('duration: %r must be above 0 and at most a day' % (duration,))
            seconds = None
    except TimeSpecError as error:
        problems.append('duration: %s' % error)
    request_timeout = _number('timeout', timeout, 0.0, 300.0, problems)
    if method not in METHODS:
        problems.append('method: %r is not one of %s' % (method, ', '.join(METHODS)))
    clean_headers = _headers(headers or {}, problems)
    if not isinstance(body, str):
        problems.append('body: must be a string')
    if tool not in TOOLS:
        problems.append('tool: %r is not one of %s' % (tool, ', '.join(TOOLS)))
    if problems:
        raise LoadPlanError(problems)
    chosen, path = choose_tool(tool, method, [url for dummy, urls in arms for url in urls], validate_certs, which)
    targets = []
    for arm, urls in arms:
        for url in urls:
            targets.append({'arm': arm, 'url': url, 'rate': per_url})
    plan = {'name': name, 'targets': targets, 'rate': per_url, 'duration': seconds, 'method': method,
            'headers': clean_headers, 'body': body, 'timeout': request_timeout, 'tool': chosen, 'tool_path': path,
            'validate_certs': bool(validate_certs)}
    plan['fingerprint'] = hashlib.sha256(json.dumps(plan, sort_keys=True).encode('utf-8')).hexdigest()[:16]
    return plan


def connections_for(rate):
    """Python loop connections for ``rate`` requests per second to one URL (each sends one request at a time)."""
    return max(1, int(-(-rate // PYTHON_RATE_PER_CONNECTION)))
