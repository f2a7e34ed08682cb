"""The Runtime API parsers on answers recorded from HAProxy 2.6, the socket forms and the name rule."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._haproxy.haproxy_runtime import (
    HaproxyRuntimeError,
    RuntimeClient,
    check_name,
    parse_backup_flags,
    parse_servers_state,
    parse_socket,
    split_answers,
)

STATE = ('1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight '
         'srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state '
         'srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port '
         'srv_check_addr srv_agent_addr srv_agent_port\n'
         '3 app 1 canary-1 127.0.0.1 2 0 7 5 7 1 0 2 0 0 0 0 - 19001 - 0 0 - - 0\n'
         '3 app 2 stable-1 ::1 0 1 3 3 7 1 0 2 0 0 0 0 - 19002 - 0 0 - - 0\n'
         '3 app 3 stable-2 10.0.0.3 2 0 0 3 7 1 0 2 0 0 0 0 - 0 - 0 0 - - 0\n\n')
STAT = ('# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,'
        'weight,act,bck,chkfail\n'
        'app,canary-1,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,7,1,0,\n'
        'app,stable-1,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,3,1,0,\n'
        'app,stable-2,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,0,0,1,\n'
        'app,BACKEND,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,7,1,1,\n\n')


def test_servers_state():
    servers = parse_servers_state(STATE, 'app')
    assert [server.as_dict() for server in servers] == [
        {'name': 'canary-1', 'address': '127.0.0.1:19001', 'weight': 7, 'backup': False, 'operational': True,
         'maintenance': False},
        {'name': 'stable-1', 'address': '[::1]:19002', 'weight': 3, 'backup': False, 'operational': False,
         'maintenance': True},
        {'name': 'stable-2', 'address': '10.0.0.3', 'weight': 0, 'backup': False, 'operational': True,
         'maintenance': False},
    ]
    assert servers[0].initial_weight == 5


def test_unknown_backend_and_garbage():
    with pytest.raises(HaproxyRuntimeError, match="backend 'nope' is not defined in HAProxy"):
        parse_servers_state("Can't find backend.\n\n", 'nope')
    with pytest.raises(HaproxyRuntimeError, match='unexpected answer'):
        parse_servers_state('Unknown command.\n\n', 'app')
    with pytest.raises(HaproxyRuntimeError, match='cannot read'):
        parse_servers_state('1\n# be_name srv_name\napp x\n', 'app')


def test_backup_flags():
    assert parse_backup_flags(STAT, 'app') == {'canary-1': False, 'stable-1': False, 'stable-2': True}
    with pytest.raises(HaproxyRuntimeError):
        parse_backup_flags('No such proxy.\n', 'app')


def test_split_answers():
    assert split_answers('\nNo such server.\n\n\n', 3) == ['', 'No such server.', '']
    assert split_answers('admin\n\n', 1) == ['admin']
    with pytest.raises(HaproxyRuntimeError, match='expected 2 answers'):
        split_answers('\n', 2)


@pytest.mark.parametrize('value, parsed', [
    ('/run/haproxy/admin.sock', ('unix', '/run/haproxy/admin.sock')),
    ('unix@/run/a.sock', ('unix', '/run/a.sock')),
    ('127.0.0.1:9999', ('tcp', ('127.0.0.1', 9999))),
    ('ipv4@127.0.0.1:9999', ('tcp', ('127.0.0.1', 9999))),
    ('[::1]:9999', ('tcp', ('::1', 9999))),
    ('lb1.internal:9999', ('tcp', ('lb1.internal', 9999))),
])
def test_socket_forms(value, parsed):
    assert parse_socket(value) == parsed


@pytest.mark.parametrize('value', ['', 'admin.sock', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', 'a b:1', None])
def test_bad_socket_forms(value):
    with pytest.raises(ValueError):
        parse_socket(value)


@pytest.mark.parametrize('name', ['app', 'app-1', 'a.b_c:d'])
def test_names_haproxy_accepts(name):
    assert check_name(name, 'server') == name


@pytest.mark.parametrize('name', ['', 'a b', 'a;b', 'a/b', 'a\nshow', 'é', 5])
def test_names_haproxy_refuses_never_reach_a_command(name):
    with pytest.raises(ValueError, match='not a valid HAProxy name'):
        check_name(name, 'server')


def test_missing_socket_is_a_clear_error(tmp_path):
    with pytest.raises(HaproxyRuntimeError, match='does not exist'):
        RuntimeClient(str(tmp_path / 'none.sock')).level()
