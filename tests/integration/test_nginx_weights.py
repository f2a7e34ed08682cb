"""canary.release.nginx_weights and nginx_canary_routing through real ansible-playbook runs against a real nginx.

Every test starts its own nginx (tests/support/nginx.py) on free 127.0.0.1 ports: ten backends served by the
same nginx (canary-1, stable-1..9) and a front end proxying to ``upstream app``. Splits are measured by sending
real HTTP requests and counting which backend answered.
"""

import concurrent.futures
import difflib
import os
import shlex
import subprocess
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_routing import render, routing_spec
from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_upstream import ServerChange, apply_server_changes
from tests.support.nginx import NginxServer, find_nginx
from tests.support.nginx_configs import changes_for, config_files
from tests.support.playbook import run_playbook

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_nginx() is None, reason='nginx is not installed'),
]

CANARY = 'canary-1'
STABLE = ['stable-%d' % number for number in range(1, 10)]
BACKENDS = [CANARY] + STABLE


def upstream_text(nginx, directives=()):
    """The hand-written upstream file the module edits (varied on purpose: params, comments, down)."""
    a = nginx.addresses
    lines = ['# App upstream. Weights are set by canary.release.nginx_weights; the rest is ours.\n',
             'upstream app {\n',
             '    zone app 64k;\n']
    lines += ['    %s\n' % directive for directive in directives]
    lines += ['    server %s max_fails=3 fail_timeout=10s;  # the canary\n' % a[CANARY],
              '    server %s weight=2 max_fails=2;\n' % a['stable-1'],
              '    server %s down;  # drained for maintenance\n' % a['stable-2']]
    lines += ['    server %s;\n' % a[name] for name in STABLE[2:]]
    lines += ['    keepalive 8;\n', '}\n']
    return ''.join(lines)


def start(nginx, upstream=None, site=None, extra='# nothing here yet\n', routing=None):
    files = {'extra.conf': extra}
    if routing is not None:
        files['routing.conf'] = routing
    files['upstream.conf'] = upstream if upstream is not None else upstream_text(nginx)
    files['site.conf'] = site if site is not None else nginx.default_site('app')
    nginx.start(files)


@pytest.fixture
def nginx():
    server = NginxServer(BACKENDS)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def running(nginx):
    start(nginx)
    return nginx


def weights_task(nginx, name='weights', **options):
    args = {'path': nginx.path('upstream.conf'), 'upstream': 'app',
            'validate_command': nginx.validate_command, 'reload_command': nginx.reload_command}
    args.update(options)
    return {'name': name, 'canary.release.nginx_weights': args}


def run(tasks, **kwargs):
    result = run_playbook(tasks=tasks, **kwargs)
    if not result.tasks:
        raise AssertionError('ansible-playbook produced no results:\n%s\n%s' % (result.stdout, result.stderr))
    return result


def canary_share(counts):
    total = sum(counts.values())
    assert total and set(counts) <= set(BACKENDS), counts
    return 100.0 * counts[CANARY] / total


def shift_and_measure(nginx, percent, requests=1800):
    before = nginx.worker_pids()
    result = run([weights_task(nginx, canary=[nginx.addresses[CANARY]], canary_percent=percent)])
    task = result.result('weights')
    assert task.get('failed') is not True, task
    if task['changed']:
        nginx.wait_for_workers(before)
    return task, nginx.count_backends(requests)


def test_canary_percent_shifts_real_traffic_with_diff_and_idempotency(running):
    nginx = running
    original = nginx.read('upstream.conf').decode()
    a = nginx.addresses
    old_workers = nginx.worker_pids()

    result = run([weights_task(nginx, name='shift', canary=[a[CANARY]], canary_percent=5, backup=True)], diff=True)
    task = result.result('shift')
    assert task['changed'] is True and task['validated'] is True and task['reloaded'] is True
    assert task['weights'] == {'canary': 9, 'stable': 19, 'exact': True}
    assert task['canary_percent'] == 5.0 and task['canary_percent_before'] == 10.0
    assert task['servers_before'][2] == {'address': a['stable-2'], 'weight': 1, 'down': True, 'backup': False}
    assert task['servers_after'][0] == {'address': a[CANARY], 'weight': 9, 'down': False, 'backup': False}
    assert all(server == {'address': a[name], 'weight': 19, 'down': False, 'backup': False}
               for server, name in zip(task['servers_after'][1:], STABLE))
    # Exactly the weight/down tokens changed, nothing else.
    expected = original.replace('%s max_fails=3' % a[CANARY], '%s weight=9 max_fails=3' % a[CANARY])
    expected = expected.replace('%s weight=2 max_fails=2' % a['stable-1'], '%s weight=19 max_fails=2' % a['stable-1'])
    expected = expected.replace('%s down;' % a['stable-2'], '%s weight=19;' % a['stable-2'])
    for name in STABLE[2:]:
        expected = expected.replace('server %s;' % a[name], 'server %s weight=19;' % a[name])
    assert nginx.read('upstream.conf').decode() == expected
    assert task['diff']['before'] == original and task['diff']['after'] == expected
    assert task['diff']['before_header'] == nginx.path('upstream.conf')
    with open(task['backup_file'], encoding='utf-8') as handle:
        assert handle.read() == original

    nginx.wait_for_workers(old_workers)
    counts = nginx.count_backends(1800)
    # Smooth weighted round robin over whole cycles of 180: exactly 5 %, allow half a point.
    assert abs(canary_share(counts) - 5.0) <= 0.5, counts
    assert counts['stable-2'] > 0  # the drained server is back

    workers = nginx.worker_pids()
    again = run([weights_task(nginx, name='again', canary=[a[CANARY]], canary_percent=5)], diff=True)
    repeat = again.result('again')
    assert repeat['changed'] is False and repeat['reloaded'] is False and 'diff' not in repeat
    assert repeat['canary_percent'] == 5.0
    assert nginx.read('upstream.conf').decode() == expected
    assert nginx.worker_pids() == workers  # no reload


def test_steps_to_full_and_back_to_zero(running):
    nginx = running
    for percent, low, high in ((25, 24.5, 25.5), (50, 49.5, 50.5)):
        task, counts = shift_and_measure(nginx, percent)
        assert task['canary_percent'] == percent
        assert low <= canary_share(counts) <= high, counts
    task, counts = shift_and_measure(nginx, 100, requests=300)
    assert task['weights'] == {'canary': 1, 'stable': None, 'exact': True}
    assert all(server['down'] for server in task['servers_after'][1:])
    assert counts == {CANARY: 300}
    task, counts = shift_and_measure(nginx, 0, requests=900)
    assert task['servers_after'][0]['down'] is True and task['canary_percent'] == 0.0
    assert counts[CANARY] == 0 and sum(counts.values()) == 900 and set(counts) == set(STABLE)


def test_check_mode_reports_and_changes_nothing(running):
    nginx = running
    original = nginx.read('upstream.conf')
    workers = nginx.worker_pids()
    result = run([weights_task(nginx, name='preview', canary=[nginx.addresses[CANARY]], canary_percent=50)],
                 check=True, diff=True)
    task = result.result('preview')
    assert task['changed'] is True and task['reloaded'] is False and task['validated'] is False
    assert task['canary_percent'] == 50.0 and task['canary_percent_before'] == 10.0
    assert '+    server %s weight=9 max_fails=3' % nginx.addresses[CANARY] in _unified(task['diff'])
    assert nginx.read('upstream.conf') == original
    assert nginx.worker_pids() == workers
    assert not [name for name in os.listdir(nginx.conf_dir) if name.startswith('.')]  # no lock file either


def _unified(diff):
    return ''.join(difflib.unified_diff(diff['before'].splitlines(True), diff['after'].splitlines(True)))


def test_explicit_weights_and_query(running):
    nginx = running
    a = nginx.addresses
    before = nginx.worker_pids()
    result = run([
        weights_task(nginx, name='set', servers=[{'address': a[CANARY], 'weight': 3},
                                                 {'address': a['stable-1'], 'weight': 0},
                                                 {'address': a['stable-2'], 'weight': '1'}]),
        weights_task(nginx, name='query', state='query', canary=[a[CANARY]]),
    ])
    task = result.result('set')
    assert task['changed'] is True and 'canary_percent' not in task
    after = dict((server['address'], server) for server in task['servers_after'])
    assert after[a[CANARY]]['weight'] == 3
    assert after[a['stable-1']] == {'address': a['stable-1'], 'weight': 2, 'down': True, 'backup': False}
    assert after[a['stable-2']]['down'] is False
    query = result.result('query')
    assert query['changed'] is False and query['servers_after'] == task['servers_after']
    assert query['canary_percent'] == pytest.approx(100 * 3 / 11)
    nginx.wait_for_workers(before)
    counts = nginx.count_backends(1100)
    assert counts['stable-1'] == 0
    assert abs(canary_share(counts) - 100 * 3 / 11) <= 0.5, counts


BAD_INPUTS = [
    # (case, module arguments overriding the defaults, expected part of the message)
    ('missing file', {'path': '/nonexistent/upstream.conf', 'canary': ['C'], 'canary_percent': 5}, 'does not exist'),
    ('missing upstream', {'upstream': 'nope', 'canary': ['C'], 'canary_percent': 5}, "upstream 'nope' is not defined"),
    ('unknown address', {'servers': [{'address': '10.9.9.9:80', 'weight': 2}]}, "'10.9.9.9:80' is not in upstream"),
    ('unknown canary', {'canary': ['10.9.9.9:80'], 'canary_percent': 5}, "'10.9.9.9:80' is not in upstream"),
    ('percent above', {'canary': ['C'], 'canary_percent': 100.5}, 'between 0 and 100'),
    ('percent below', {'canary': ['C'], 'canary_percent': -1}, 'between 0 and 100'),
    ('percent nan', {'canary': ['C'], 'canary_percent': 'nan'}, 'finite'),
    ('percent text', {'canary': ['C'], 'canary_percent': 'five'}, 'float'),
    ('empty canary', {'canary': [], 'canary_percent': 5}, 'canary group is empty'),
    ('all canary', {'canary': 'ALL', 'canary_percent': 5}, 'every server of the upstream is in the canary group'),
    ('both modes', {'servers': [{'address': 'C', 'weight': 1}], 'canary': ['C'], 'canary_percent': 5},
     'mutually exclusive'),
    ('neither mode', {}, 'servers, canary'),
    ('percent without canary', {'servers': [{'address': 'C', 'weight': 1}], 'canary_percent': 5},
     'canary_percent goes with canary'),
    ('canary without percent', {'canary': ['C']}, 'canary needs canary_percent'),
    ('fractional weight', {'servers': [{'address': 'C', 'weight': 2.5}]}, 'cannot be converted to an int'),
    ('text weight', {'servers': [{'address': 'C', 'weight': 'heavy'}]}, 'cannot be converted to an int'),
    ('negative weight', {'servers': [{'address': 'C', 'weight': -1}]}, 'must be an integer >= 0'),
    ('duplicate server', {'servers': [{'address': 'C', 'weight': 1}, {'address': 'C', 'weight': 2}]},
     'listed twice'),
    ('max_weight zero', {'canary': ['C'], 'canary_percent': 5, 'max_weight': 0}, 'max_weight'),
    ('semicolon', {'servers': [{'address': 'C; include /etc/passwd', 'weight': 1}]}, "contains ';'"),
    ('brace', {'servers': [{'address': 'C}', 'weight': 1}]}, "contains '}'"),
    ('open brace', {'canary': ['C{'], 'canary_percent': 5}, "contains '{'"),
    ('newline', {'canary': ['C\nserver 10.6.6.6:80'], 'canary_percent': 5}, "contains '\\n'"),
    ('quote', {'servers': [{'address': 'C"', 'weight': 1}]}, 'contains \'"\''),
    ('single quote', {'servers': [{'address': "C'", 'weight': 1}]}, 'contains "\'"'),
    ('space', {'servers': [{'address': 'C weight=1000', 'weight': 1}]}, "contains ' '"),
    ('upstream injection', {'upstream': 'app { }', 'canary': ['C'], 'canary_percent': 5}, "contains ' '"),
]


def test_bad_inputs_fail_clearly_and_touch_nothing(running):
    nginx = running
    a = nginx.addresses
    original = nginx.read('upstream.conf')
    workers = nginx.worker_pids()

    def concrete(value):
        if value == 'C':
            return a[CANARY]
        if value == 'ALL':
            return [a[name] for name in BACKENDS]
        if isinstance(value, str) and value.startswith('C'):
            return a[CANARY] + value[1:]
        if isinstance(value, list):
            return [concrete(item) for item in value]
        if isinstance(value, dict):
            return dict((key, concrete(item) if key == 'address' else item) for key, item in value.items())
        return value

    tasks = []
    for case, options, dummy in BAD_INPUTS:
        task = weights_task(nginx, name=case, **dict((key, concrete(value)) for key, value in options.items()))
        task['ignore_errors'] = True
        tasks.append(task)
    result = run(tasks)
    for case, dummy, message in BAD_INPUTS:
        task = result.result(case)
        assert task.get('failed') is True, (case, task)
        assert message in task['msg'], (case, task['msg'])
    assert nginx.read('upstream.conf') == original
    assert nginx.worker_pids() == workers
    assert nginx.count_backends(100)[CANARY] == 10  # still serving the original 1:2:7 split


def test_duplicate_upstream_and_duplicate_server_in_file(nginx):
    a = nginx.addresses
    upstream = upstream_text(nginx) + 'upstream app_b {\n    server %s;\n    server %s;\n}\n' % (
        a[CANARY], a['stable-1'])
    start(nginx, upstream=upstream)
    duplicated = upstream.replace('upstream app_b', 'upstream app')
    dup_server = upstream.replace('server %s;\n}' % a['stable-1'], 'server %s;\n    server %s;\n}' % (
        a['stable-1'], a[CANARY]))
    for text, message in ((duplicated, "upstream 'app' is defined 2 times"),
                          (dup_server, "'%s' appears twice in upstream 'app_b'" % a[CANARY])):
        nginx.write('upstream.conf', text)
        upstream_name = 'app' if text is duplicated else 'app_b'
        task = dict(weights_task(nginx, name='t', upstream=upstream_name, canary=[a[CANARY]], canary_percent=5),
                    ignore_errors=True)
        outcome = run([task]).result('t')
        assert outcome['failed'] is True and message in outcome['msg'], outcome['msg']
        assert nginx.read('upstream.conf').decode() == text


def test_failed_validation_or_reload_restores_the_file(running):
    nginx = running
    original = nginx.read('upstream.conf')
    workers = nginx.worker_pids()
    nginx.write('extra.conf', 'this_is_not_a_directive on;\n')
    result = run([
        dict(weights_task(nginx, name='broken include', canary=[nginx.addresses[CANARY]], canary_percent=50),
             ignore_errors=True),
        dict(weights_task(nginx, name='reload refused', canary=[nginx.addresses[CANARY]], canary_percent=50,
                          validate_command='', reload_command='/bin/sh -c "echo reload refused >&2; exit 3"'),
             ignore_errors=True),
    ])
    broken = result.result('broken include')
    assert broken['failed'] is True and broken['restored'] is True
    assert 'unknown directive "this_is_not_a_directive"' in broken['msg']
    assert 'extra.conf' in broken['msg'] and broken['rc'] == 1
    refused = result.result('reload refused')
    assert refused['failed'] is True and refused['restored'] is True and refused['rc'] == 3
    assert 'reload refused' in refused['msg'] and refused['msg'].startswith('reload command')
    assert nginx.read('upstream.conf') == original
    nginx.write('extra.conf', '# fixed\n')
    assert nginx.worker_pids() == workers
    assert nginx.count_backends(100)[CANARY] == 10


def test_concurrent_runs_are_serialised_and_both_land(running):
    nginx = running
    a = nginx.addresses
    log = os.path.join(nginx.prefix, 'validate.log')
    # A slow validation holds the lock for a second; the log shows whether two runs ever overlapped.
    script = 'echo start $(date +%%s.%%N) >> %s; sleep 1; %s && echo end $(date +%%s.%%N) >> %s' % (
        log, nginx.validate_command, log)
    slow_validate = '/bin/sh -c %s' % shlex.quote(script)

    def one(address, weight):
        return run([weights_task(nginx, name='edit', validate_command=slow_validate,
                                 servers=[{'address': address, 'weight': weight}])]).result('edit')

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(one, a['stable-3'], 5)
        second = pool.submit(one, a['stable-4'], 7)
        results = [first.result(timeout=120), second.result(timeout=120)]
    assert all(result['changed'] and result['reloaded'] for result in results), results
    text = nginx.read('upstream.conf').decode()
    assert 'server %s weight=5;' % a['stable-3'] in text and 'server %s weight=7;' % a['stable-4'] in text
    with open(log, encoding='utf-8') as handle:
        events = [line.split() for line in handle.read().splitlines()]
    assert [kind for kind, dummy in events] == ['start', 'end', 'start', 'end'], events
    assert float(events[2][1]) >= float(events[1][1])  # the second began after the first finished


def routing_site(nginx):
    return nginx.default_site('$canary_release_app',
                              extra_location='        add_header Set-Cookie $canary_release_app_set_cookie always;\n')


def test_forced_canary_by_header_and_cookie_and_sticky_users(nginx):
    a = nginx.addresses
    upstream = upstream_text(nginx, directives=['hash $canary_release_app_sticky_key consistent;'])
    # The site and upstream use the snippet's variables, so nginx cannot start before the module wrote it.
    nginx.configure({'extra.conf': '\n', 'routing.conf': '', 'upstream.conf': upstream,
                     'site.conf': routing_site(nginx)})
    assert nginx.test_config()[0] != 0
    # Public values (X-Canary: always, beta=yes) only from the trusted client address 127.0.0.1.
    routing_args = {'path': nginx.path('routing.conf'), 'upstream': 'app', 'canary_upstream': 'app_canary',
                    'canary_servers': [a[CANARY]], 'cookie_name': 'beta', 'cookie_values': ['yes'],
                    'trusted_sources': ['127.0.0.1/32'],
                    'sticky': True, 'validate_command': nginx.validate_command, 'reload': False}
    result = run([{'name': 'routing', 'canary.release.nginx_canary_routing': routing_args},
                  {'name': 'routing again', 'canary.release.nginx_canary_routing': routing_args}], diff=True)
    routing = result.result('routing')
    assert routing['changed'] is True and routing['validated'] is True
    assert routing['variables'] == {'upstream': '$canary_release_app', 'sticky_key': '$canary_release_app_sticky_key',
                                    'set_cookie': '$canary_release_app_set_cookie'}
    assert routing['directives']['hash'] == 'hash $canary_release_app_sticky_key consistent;'
    assert routing['diff']['before'] == '' and routing['diff']['after'] == nginx.read('routing.conf').decode()
    assert result.result('routing again')['changed'] is False
    nginx.start()

    # 50 %: stickiness makes the split per user (hash key), and the weights still decide it.
    workers = nginx.worker_pids()
    shifted = run([weights_task(nginx, name='shift', canary=[a[CANARY]], canary_percent=50)]).result('shift')
    assert shifted['weights'] == {'canary': 9, 'stable': 1, 'exact': True}
    assert 'hash $canary_release_app_sticky_key consistent;' in nginx.read('upstream.conf').decode()
    nginx.wait_for_workers(workers)

    forced = nginx.count_backends(200, headers={'X-Canary': 'always'})
    assert forced == {CANARY: 200}
    assert nginx.count_backends(50, headers={'X-Canary': 'ALWAYS'}) == {CANARY: 50}  # case-insensitive
    assert nginx.count_backends(200, headers={'Cookie': 'other=1; beta=yes'}) == {CANARY: 200}
    # From an untrusted address the same header and cookie are ignored: weighted, like any request.
    untrusted = nginx.count_backends(400, headers={'X-Canary': 'always', 'Cookie': 'beta=yes'}, source='127.0.0.2')
    assert 20 <= canary_share(untrusted) <= 80, untrusted
    # A sticky cookie does not override forcing, and unrelated values do not force.
    assert nginx.count_backends(50, headers={'Cookie': 'canary_sticky=abc; beta=yes'}) == {CANARY: 50}

    # New users (no cookie): hashed on their request id; the share of users on the canary follows the weights.
    first = nginx.count_backends(2000, headers={'X-Canary': 'never', 'Cookie': 'beta=no'})
    assert 40 <= canary_share(first) <= 60, first

    # Each user keeps the backend of its first answer, using the cookie that answer set.
    for dummy in range(20):
        status, backend, headers = nginx.request()
        cookie = dict(headers)['Set-Cookie'].split(';')[0]
        assert cookie.startswith('canary_sticky=')
        follow = nginx.count_backends(10, headers={'Cookie': cookie})
        assert follow == {backend: 10}, (backend, follow)
        assert 'Set-Cookie' not in dict(nginx.request(headers={'Cookie': cookie})[2])

    # Back to 5 %: still weighted (hash ring points are 160 per unit of weight), the header still forces.
    workers = nginx.worker_pids()
    run([weights_task(nginx, name='shift', canary=[a[CANARY]], canary_percent=5)])
    nginx.wait_for_workers(workers)
    assert 2 <= canary_share(nginx.count_backends(2000)) <= 9  # measured 4.6-6.2 over 12 port layouts
    assert nginx.count_backends(20, headers={'X-Canary': 'always'}) == {CANARY: 20}

    # Forcing switched off: the header is ignored.
    workers = nginx.worker_pids()
    off = run([{'name': 'off', 'canary.release.nginx_canary_routing': dict(
        routing_args, header_values=[], cookie_name=None, reload=True, reload_command=nginx.reload_command)}])
    assert off.result('off')['reloaded'] is True
    nginx.wait_for_workers(workers)
    assert canary_share(nginx.count_backends(500, headers={'X-Canary': 'always'})) < 50


SECRET = 'k7Qm2xR9vT4pL8wZ3nB6'
# Every character that means something to nginx or to a regular expression.
NASTY_SECRET = 'a"b\'c\\d$e{f}g;h#i~j^k.l+m(n)o[p]q|r/s`t%u&v<w>x=yZ0'


def test_forced_canary_restricted_to_trusted_sources_and_secret(nginx):
    """With real requests: the header from an untrusted client address (127.0.0.2) lands on stable, from a trusted
    one (127.0.0.1/32) on the canary; a wrong secret lands on stable; a secret alone works from anywhere. The
    secret is in no output of a -vvv run with --diff."""
    a = nginx.addresses
    # app has only stable servers, so any canary answer was forced.
    no_forcing = render(routing_spec('app', 'app_canary', canary_servers=[a[CANARY]], header_values=[]))
    start(nginx, upstream=nginx.upstream_block('app', [(name, '') for name in STABLE]), routing=no_forcing,
          site=nginx.default_site('$canary_release_app'))
    base = {'path': nginx.path('routing.conf'), 'upstream': 'app', 'canary_upstream': 'app_canary',
            'canary_servers': [a[CANARY]], 'validate_command': nginx.validate_command,
            'reload_command': nginx.reload_command}

    def apply(name, **options):
        workers = nginx.worker_pids()
        run_ = run([{'name': name, 'canary.release.nginx_canary_routing': dict(base, **options)}], diff=True,
                   extra_args=['-vvv'])
        task = run_.result(name)
        assert task.get('failed') is not True, task
        if task['changed']:
            nginx.wait_for_workers(workers)
        return run_, task

    def forced(headers, source=None):
        counts = nginx.count_backends(20, headers=headers, source=source)
        assert set(counts) <= set(BACKENDS), counts
        if counts == {CANARY: 20}:
            return True
        assert CANARY not in counts, counts
        return False

    # 1. A secret and trusted sources: a request needs both.
    both, task = apply('both', header_secret=SECRET, trusted_sources=['127.0.0.1/32'])
    output = both.stdout + both.stderr
    assert SECRET not in output  # -vvv and --diff included
    assert 'ESTABLISH LOCAL CONNECTION' in output and '<secret: not shown, changed>' in output  # really -vvv
    assert task['invocation']['module_args']['header_secret'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
    assert '<secret: not shown, changed>' in task['diff']['after'] and 'geo $canary_release_app_trusted' in task['diff']['after']
    assert SECRET in nginx.read('routing.conf').decode()
    assert forced({'X-Canary': SECRET})
    assert not forced({'X-Canary': SECRET}, source='127.0.0.2')
    assert not forced({'X-Canary': SECRET[:-1] + 'x'})  # wrong secret
    assert not forced({'X-Canary': SECRET.lower()})  # exact: letter case counts
    assert not forced({'X-Canary': 'always'})
    assert not forced({})

    # 2. Only a secret (one that needs escaping everywhere): it forces from any address, nothing else does.
    dummy, task = apply('secret only', header_secret=NASTY_SECRET)
    assert task['changed']
    assert forced({'X-Canary': NASTY_SECRET}, source='127.0.0.2')
    assert forced({'X-Canary': NASTY_SECRET})
    assert not forced({'X-Canary': NASTY_SECRET[:-1]}, source='127.0.0.2')
    assert not forced({'X-Canary': NASTY_SECRET.upper()}, source='127.0.0.2')
    assert not forced({'X-Canary': 'a"b'}, source='127.0.0.2')
    assert not forced({'X-Canary': '.*'}, source='127.0.0.2')  # regular expression characters are literal
    assert not forced({'X-Canary': 'always'}, source='127.0.0.2')

    # 3. Only trusted sources with the public default value: X-Canary: always from 127.0.0.1 only.
    dummy, task = apply('trusted only', trusted_sources=['127.0.0.1/32', '::1/128'])
    assert forced({'X-Canary': 'always'})
    assert not forced({'X-Canary': 'always'}, source='127.0.0.2')
    assert not forced({'X-Canary': NASTY_SECRET})
    again = run([{'name': 'again', 'canary.release.nginx_canary_routing': dict(
        base, trusted_sources=['127.0.0.1/32', '::1/128'])}]).result('again')
    assert again['changed'] is False

    # 4. Behind a proxy, with the real-IP module: the geo block sees the address it found. 127.0.0.2 is our
    # proxy (set_real_ip_from); a client it forwards for 127.0.0.1 is trusted, anyone else's claim is not.
    nginx.write('extra.conf', 'set_real_ip_from 127.0.0.2/32;\nreal_ip_header X-Forwarded-For;\n')
    nginx.reload()
    proxied = {'X-Canary': 'always', 'X-Forwarded-For': '127.0.0.1'}
    assert forced(proxied, source='127.0.0.2')
    assert not forced(dict(proxied, **{'X-Forwarded-For': '127.0.0.9'}), source='127.0.0.2')
    assert not forced(proxied, source='127.0.0.3')  # not our proxy: its X-Forwarded-For is ignored


def test_routing_bad_input_and_failed_validation_restore(nginx):
    start(nginx, routing='# old snippet\n')
    workers = nginx.worker_pids()
    common = {'path': nginx.path('routing.conf'), 'validate_command': nginx.validate_command,
              'reload_command': nginx.reload_command}
    result = run([
        {'name': 'bad value', 'ignore_errors': True, 'canary.release.nginx_canary_routing': dict(
            common, upstream='app', canary_upstream='app_canary', header_values=['always"; }'])},
        {'name': 'bad cookie', 'ignore_errors': True, 'canary.release.nginx_canary_routing': dict(
            common, upstream='app', canary_upstream='app_canary', cookie_name='beta-tester')},
        # The snippet would define upstream "app" a second time: nginx -t fails, the old snippet comes back.
        {'name': 'clash', 'ignore_errors': True, 'canary.release.nginx_canary_routing': dict(
            common, upstream='other', canary_upstream='app', canary_servers=[nginx.addresses[CANARY]],
            trusted_sources=['127.0.0.1/32'])},
        # Yesterday's default (X-Canary: always from anywhere) and a guessable secret: refused, nothing written.
        {'name': 'old default', 'ignore_errors': True, 'canary.release.nginx_canary_routing': dict(
            common, upstream='app', canary_upstream='app_canary', canary_servers=[nginx.addresses[CANARY]])},
        {'name': 'guessable secret', 'ignore_errors': True, 'canary.release.nginx_canary_routing': dict(
            common, upstream='app', canary_upstream='app_canary', header_secret='canarycanary1234')},
        {'name': 'beta cookie', 'ignore_errors': True, 'canary.release.nginx_canary_routing': dict(
            common, upstream='app', canary_upstream='app_canary', header_values=[], cookie_name='beta',
            cookie_values=['yes'])},
    ])
    assert 'not allowed' in result.result('bad value')['msg']
    assert 'not allowed' in result.result('bad cookie')['msg']
    clash = result.result('clash')
    assert clash['failed'] is True and clash['restored'] is True
    assert 'duplicate upstream "app"' in clash['msg']
    old_default = result.result('old default')
    assert old_default['failed'] is True and not old_default.get('changed')
    assert "old default value 'always'" in old_default['msg'] and 'header_secret' in old_default['msg']
    assert 'trusted_sources' in old_default['msg'] and 'allow_public_forcing' in old_default['msg']
    assert 'not an acceptable secret' in result.result('guessable secret')['msg']
    assert 'canarycanary1234' not in result.stdout + result.stderr
    assert 'cookie_secret' in result.result('beta cookie')['msg']
    assert nginx.read('routing.conf') == b'# old snippet\n'
    assert nginx.worker_pids() == workers


def test_map_parameter_words_are_literal_values(nginx):
    """A forcing value spelled like a map parameter ("default") matches only that value in real nginx."""
    snippet = render(routing_spec('app', 'app_canary', canary_servers=[nginx.addresses[CANARY]],
                                  header_values=['default', 'hostnames', 'yes'], allow_public_forcing=True))
    start(nginx, routing=snippet, site=nginx.default_site('$canary_release_app'))
    assert nginx.count_backends(20, headers={'X-Canary': 'default'}) == {CANARY: 20}
    assert nginx.count_backends(20, headers={'X-Canary': 'Hostnames'}) == {CANARY: 20}
    assert nginx.count_backends(100)[CANARY] == 10  # no header: weighted 1:2:7
    assert nginx.count_backends(100, headers={'X-Canary': 'defaults'})[CANARY] == 10


def test_generated_configs_stay_valid_for_real_nginx_after_edits(tmp_path):
    """Generated upstream files and their edited versions pass ``nginx -t``: the generator and the editor
    produce what nginx itself accepts, not only what our parser accepts."""
    temp = tmp_path / 'tmp'
    temp.mkdir()
    preamble = ''.join('%s_temp_path %s/%s;\n' % (kind, temp, kind)
                       for kind in ('client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'))
    checked = []

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data):
        config = data.draw(config_files(nginx_valid=True, http_preamble=preamble))
        changes = data.draw(changes_for(config))
        edited = apply_server_changes(config.text, config.name, dict(
            (address, ServerChange(weight, down)) for address, (weight, down) in changes.items()))
        assert edited == config.render(changes)
        for text in (config.text, edited):
            path = tmp_path / 'nginx.conf'
            path.write_text(text, newline='')
            completed = subprocess.run(
                [find_nginx(), '-p', str(tmp_path), '-c', str(path), '-e', str(tmp_path / 'error.log'),
                 '-g', 'pid %s;' % (tmp_path / 'nginx.pid'), '-t', '-q'],
                capture_output=True, text=True, timeout=30, check=False)
            assert completed.returncode == 0, (completed.stderr, text)
        checked.append(config)

    started = time.monotonic()
    check()
    assert len(checked) >= 25 and time.monotonic() - started < 60
