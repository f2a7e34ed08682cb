"""The nginx_weights task core on real files (validation/reload commands disabled or real shell commands)."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._common.canary_weights import WeightError
from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_config_file import ConfigFileError
from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_traffic import (
    RequestError,
    check_address,
    set_upstream_weights,
)
from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_upstream import NginxConfigError

TEXT = '''upstream app {
    hash $cookie_canary_sticky consistent;
    server 10.0.0.1:80;            # canary
    server 10.0.0.2:80 weight=4;
    server 10.0.0.3:80 max_fails=1;
    server 10.0.0.9:80 backup;
}
'''


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / 'app.conf'
    path.write_text(TEXT)
    return path


def apply(conf, **options):
    options.setdefault('validate_command', '')
    options.setdefault('reload', False)
    return set_upstream_weights(str(conf), 'app', **options)


def test_canary_split_leaves_backup_servers_alone(conf):
    result = apply(conf, canary=['10.0.0.1:80'], canary_percent=20)
    # 1 canary vs 2 stable (the backup server is not stable): 20 % -> 1 : 2 -> weights 1 and 2.
    assert result['weights'] == {'canary': 1, 'stable': 2, 'exact': True}
    assert result['canary_percent'] == 20.0
    assert result['canary_percent_before'] == pytest.approx(100 / 6)
    assert conf.read_text() == TEXT.replace('10.0.0.2:80 weight=4', '10.0.0.2:80 weight=2').replace(
        '10.0.0.3:80 max_fails=1', '10.0.0.3:80 weight=2 max_fails=1')
    assert result['servers_after'][3] == {'address': '10.0.0.9:80', 'weight': 1, 'down': False, 'backup': True}


def test_check_mode_and_idempotency(conf):
    preview = apply(conf, canary=['10.0.0.1:80'], canary_percent=50, check_mode=True)
    assert preview['changed'] and conf.read_text() == TEXT
    assert preview['after_text'] != TEXT and preview['canary_percent'] == 50.0
    first = apply(conf, canary=['10.0.0.1:80'], canary_percent=50)
    second = apply(conf, canary=['10.0.0.1:80'], canary_percent=50)
    assert first['changed'] and not second['changed']
    assert first['after_text'] == preview['after_text'] == conf.read_text()


def test_explicit_servers_zero_means_down_and_keeps_weight(conf):
    result = apply(conf, servers=[{'address': '10.0.0.2:80', 'weight': 0}, {'address': '10.0.0.1:80', 'weight': 3}])
    assert '10.0.0.2:80 weight=4 down;' in conf.read_text()
    assert '10.0.0.1:80 weight=3;' in conf.read_text()
    assert 'canary_percent' not in result
    back = apply(conf, servers=[{'address': '10.0.0.2:80', 'weight': 4}])
    assert back['changed'] and '10.0.0.2:80 weight=4;' in conf.read_text()


def test_query_reports_without_touching(conf, tmp_path):
    result = apply(conf, state='query', canary=['10.0.0.1:80'])
    assert not result['changed'] and result['canary_percent'] == pytest.approx(100 / 6)
    assert [s['address'] for s in result['servers_before']] == ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80',
                                                                '10.0.0.9:80']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['app.conf']


def test_validation_failure_restores(conf):
    with pytest.raises(ConfigFileError) as caught:
        apply(conf, canary=['10.0.0.1:80'], canary_percent=5, validate_command='/bin/sh -c "echo bad >&2; exit 1"')
    assert caught.value.restored and 'bad' in str(caught.value)
    assert conf.read_text() == TEXT


@pytest.mark.parametrize('options, error, message', [
    ({'canary': ['10.0.0.9:80'], 'canary_percent': 5}, RequestError, 'backup server'),
    ({'canary': ['10.0.0.7:80'], 'canary_percent': 5}, NginxConfigError, 'is not in upstream'),
    ({'canary': ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'], 'canary_percent': 5}, WeightError,
     'every server of the upstream is in the canary group'),
    ({'canary': ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'], 'canary_percent': 0}, WeightError, 'no stable server'),
    ({'canary': ['10.0.0.1:80', '10.0.0.1:80'], 'canary_percent': 5}, RequestError, 'listed twice'),
    ({'canary': [], 'canary_percent': 5}, RequestError, 'canary group is empty'),
    ({'canary': ['10.0.0.1:80'], 'canary_percent': 101}, WeightError, 'between 0 and 100'),
    ({'canary': ['10.0.0.1:80']}, RequestError, 'needs canary_percent'),
    ({}, RequestError, 'needs either servers or canary'),
    ({'servers': [{'address': '10.0.0.1:80', 'weight': 1}], 'canary': ['10.0.0.1:80']}, RequestError,
     'mutually exclusive'),
    ({'servers': [{'address': '10.0.0.1:80', 'weight': True}]}, RequestError, 'integer >= 0'),
    ({'servers': [{'address': '10.0.0.1:80', 'weight': 1.5}]}, RequestError, 'integer >= 0'),
    ({'servers': [{'address': '10.0.0.1:80'}]}, RequestError, 'integer >= 0'),
    ({'servers': [{'address': '10.0.0.1:80', 'weight': 1, 'down': True}]}, RequestError, '{address, weight}'),
    ({'servers': []}, RequestError, 'non-empty list'),
    ({'state': 'absent', 'canary': ['10.0.0.1:80'], 'canary_percent': 5}, RequestError, 'present or query'),
    ({'state': 'query', 'servers': [{'address': '10.0.0.1:80', 'weight': 1}]}, RequestError, 'takes no servers'),
])
def test_bad_requests_leave_file_untouched(conf, tmp_path, options, error, message):
    with pytest.raises(error, match=message):
        apply(conf, **options)
    assert conf.read_text() == TEXT


def test_upstream_with_include_cannot_take_a_canary_share(tmp_path):
    path = tmp_path / 'app.conf'
    path.write_text('upstream app { server 10.0.0.1:80; include more_servers.conf; }\n')
    with pytest.raises(RequestError, match='includes more_servers.conf'):
        set_upstream_weights(str(path), 'app', canary=['10.0.0.1:80'], canary_percent=5, validate_command='',
                             reload=False)
    # Explicit weights for servers in this file still work.
    result = set_upstream_weights(str(path), 'app', servers=[{'address': '10.0.0.1:80', 'weight': 2}],
                                  validate_command='', reload=False)
    assert result['changed']


@pytest.mark.parametrize('address', ['a;b', 'a{', 'a}', 'a\nb', 'a"', "a'", 'a b', 'a\tb', 'a\\b', 'a#b', '$a',
                                     '', 'a\x00', None, 5])
def test_addresses_that_could_inject_config_are_refused(address):
    with pytest.raises(RequestError):
        check_address(address)


@pytest.mark.parametrize('address', ['10.0.0.5:8080', '[::1]:8080', 'unix:/run/app.sock', 'app.internal:80',
                                     '[fd00::1]', 'app-1_a.example.com'])
def test_valid_addresses(address):
    assert check_address(address) == address


def test_unreachable_share_warns(tmp_path):
    path = tmp_path / 'big.conf'
    servers = ''.join('    server 10.0.%d.%d:80;\n' % (i // 250, i % 250) for i in range(1000))
    path.write_text('upstream app {\n%s}\n' % servers)
    result = set_upstream_weights(str(path), 'app', canary=['10.0.0.0:80'], canary_percent=50, validate_command='',
                                  reload=False)
    assert result['weights'] == {'canary': 100, 'stable': 1, 'exact': False}
    assert result['canary_percent'] == pytest.approx(100 * 100 / 1099)
    assert 'not reachable with max_weight 100 for 1 canary and 999 stable servers' in result['warnings'][0]
    near = set_upstream_weights(str(path), 'app', canary=['10.0.0.0:80'], canary_percent=5, validate_command='',
                                reload=False)
    assert 'warnings' not in near and abs(near['canary_percent'] - 5) < 0.5
