"""The task core's checks and planning: everything that is refused before HAProxy or the file is touched, and the
canary weights (exact integer maths from the shared core, HAProxy's 0-256 range)."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.canary.release.plugins.module_utils._common.canary_weights import WeightError
from ansible_collections.canary.release.plugins.module_utils._haproxy.haproxy_runtime import (
    HaproxyRuntimeError,
    RuntimeServer,
)
from ansible_collections.canary.release.plugins.module_utils._haproxy.haproxy_traffic import (
    RequestError,
    check_canary,
    check_servers,
    plan_weights,
    set_backend_weights,
    validate_argv,
)


def fleet(stable=9, backup=0):
    servers = [RuntimeServer('canary-1', '10.0.0.1:80', 1, 1)]
    servers += [RuntimeServer('stable-%d' % index, '10.0.1.%d:80' % index, 1, 1) for index in range(1, stable + 1)]
    servers += [RuntimeServer('spare-%d' % index, '10.0.2.%d:80' % index, 1, 1, backup=True)
                for index in range(1, backup + 1)]
    return servers


@pytest.mark.parametrize('percent, canary, stable', [(5, 9, 19), (10, 1, 1), (25, 3, 1), (50, 9, 1), (0, 0, 1),
                                                     (100, 1, 0), (0.1, 1, 111)])
def test_canary_weights_for_one_in_ten(percent, canary, stable):
    targets, groups = plan_weights(fleet(backup=1), 'app', canary=['canary-1'], percent=percent)
    assert targets['canary-1'] == canary
    assert all(targets['stable-%d' % index] == stable for index in range(1, 10))
    assert targets['spare-1'] == 1  # backup servers keep their weight


def test_explicit_weights_keep_the_others():
    targets, groups = plan_weights(fleet(stable=2), 'app', explicit=[('stable-1', 0)])
    assert targets == {'canary-1': 1, 'stable-1': 0, 'stable-2': 1} and groups is None


@given(st.integers(1, 5), st.integers(1, 40), st.integers(0, 1000).map(lambda tenths: Fraction(tenths, 10)))
def test_share_is_the_closest_reachable_and_weights_in_range(n_canary, n_stable, percent):
    servers = [RuntimeServer('c%d' % index, 'x', 1, 1) for index in range(n_canary)]
    servers += [RuntimeServer('s%d' % index, 'x', 1, 1) for index in range(n_stable)]
    targets, groups = plan_weights(servers, 'app', canary=['c%d' % index for index in range(n_canary)],
                                   percent=str(float(percent)))
    assert all(0 <= weight <= 256 for weight in targets.values())
    canary_total = sum(targets['c%d' % index] for index in range(n_canary))
    share = Fraction(canary_total, sum(targets.values())) * 100
    assert float(share) == pytest.approx(groups.effective_percent)
    if groups.exact:
        assert share == percent


def test_unknown_or_backup_canary():
    with pytest.raises(HaproxyRuntimeError, match=r"server 'nope' is not in backend 'app' \(its servers: canary-1"):
        plan_weights(fleet(), 'app', canary=['nope'], percent=5)
    with pytest.raises(HaproxyRuntimeError, match="server 'x' is not in backend"):
        plan_weights(fleet(), 'app', explicit=[('x', 1)])
    with pytest.raises(RequestError, match='is a backup server'):
        plan_weights(fleet(backup=1), 'app', canary=['spare-1'], percent=5)
    with pytest.raises(WeightError, match='every server'):
        plan_weights(fleet(stable=0), 'app', canary=['canary-1'], percent=5)


@pytest.mark.parametrize('servers, message', [
    ([], 'non-empty list'),
    ([{'name': 'a'}], 'must be an integer from 0 to 256'),
    ([{'name': 'a', 'weight': 257}], 'must be an integer from 0 to 256'),
    ([{'name': 'a', 'weight': -1}], 'must be an integer from 0 to 256'),
    ([{'name': 'a', 'weight': True}], 'must be an integer from 0 to 256'),
    ([{'name': 'a', 'weight': 1}, {'name': 'a', 'weight': 2}], 'listed twice'),
    ([{'name': 'a;show', 'weight': 1}], 'not a valid HAProxy name'),
    ([{'address': 'a', 'weight': 1}], '{name, weight}'),
])
def test_bad_servers(servers, message):
    with pytest.raises(RequestError, match=None) as caught:
        check_servers(servers)
    assert message in str(caught.value)


def test_bad_canary():
    with pytest.raises(RequestError, match='canary group is empty'):
        check_canary([])
    with pytest.raises(RequestError, match='listed twice'):
        check_canary(['a', 'a'])


@pytest.mark.parametrize('options, error, message', [
    ({'backend': 'a b'}, RequestError, 'not a valid HAProxy name'),
    ({'socket': 'nowhere'}, RequestError, 'neither a path'),
    ({'canary_percent': 101}, WeightError, 'between 0 and 100'),
    ({'canary_percent': None}, RequestError, 'canary needs canary_percent'),
    ({'max_weight': 257}, WeightError, 'from 1 to 256'),
    ({'servers': [{'name': 'a', 'weight': 1}]}, RequestError, 'mutually exclusive'),
    ({'canary': None}, RequestError, 'needs either servers or canary'),
    ({'state': 'absent'}, RequestError, 'present or query'),
    ({'path': '/nonexistent/haproxy.cfg'}, Exception, 'does not exist'),
])
def test_refused_before_anything_is_opened(tmp_path, options, error, message):
    """The socket does not exist: each of these fails on the request itself, before any connection."""
    arguments = dict(backend='app', socket=str(tmp_path / 'missing.sock'), canary=['canary-1'], canary_percent=5)
    arguments.update(options)
    with pytest.raises(error) as caught:
        set_backend_weights(**arguments)
    assert message in str(caught.value)


def test_validate_command_needs_the_placeholder():
    assert validate_argv('haproxy -c -f %s', '/x/.t') == ['haproxy', '-c', '-f', '/x/.t']
    assert validate_argv('', '/x/.t') == []
    with pytest.raises(RequestError, match='must contain %s'):
        validate_argv('haproxy -c -f /etc/haproxy/haproxy.cfg', '/x/.t')
