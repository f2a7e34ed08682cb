"""The routing snippet renderer: exact output, option checks, and that the output parses as nginx config."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_routing import (
    RoutingError,
    default_variable,
    header_variable,
    render,
    routing_spec,
)
from ansible_collections.canary.release.plugins.module_utils._nginx.nginx_upstream import parse_upstream, statements

EXPECTED = '''# Managed by canary.release.nginx_canary_routing: edits to this file are overwritten.
# Include inside http {}; route with: proxy_pass http://$canary_release_app;

# 1 when the header X-Canary forces the canary (case-insensitive exact match).
map $http_x_canary $canary_release_app_by_header {
    default 0;
    "always" 1;
}

# 1 when the cookie beta forces the canary (case-insensitive exact match).
map $cookie_beta $canary_release_app_by_cookie {
    default 0;
    "yes" 1;
    "\\default" 1;
}

# The upstream for this request: app by weight, or app_canary when forced.
map "$canary_release_app_by_header$canary_release_app_by_cookie" $canary_release_app {
    default app;
    "01" app_canary;
    "10" app_canary;
    "11" app_canary;
}

# Canary servers only: forced requests go here.
upstream app_canary {
    hash $canary_release_app_sticky_key consistent;
    server 10.0.0.10:8080;
    server unix:/run/canary.sock;
}

# Stickiness: put "hash $canary_release_app_sticky_key consistent;" in upstream app and
# "add_header Set-Cookie $canary_release_app_set_cookie always;" where it is proxied.
map $cookie_canary_sticky $canary_release_app_sticky_key {
    "" $request_id;
    default $cookie_canary_sticky;
}
map $cookie_canary_sticky $canary_release_app_set_cookie {
    "" "canary_sticky=$request_id; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax";
    default "";
}
'''


def full_spec(**overrides):
    options = dict(upstream='app', canary_upstream='app_canary',
                   canary_servers=['10.0.0.10:8080', 'unix:/run/canary.sock'], cookie_name='beta',
                   cookie_values=['yes', 'default'], sticky=True)
    options.update(overrides)
    return routing_spec(**options)


def test_full_snippet_exact_text():
    text = render(full_spec())
    assert text == EXPECTED
    assert render(full_spec()) == text  # deterministic: a second run is idempotent
    # It parses, and the canary-only upstream lists exactly the canary servers.
    list(statements(text))
    assert [s.address for s in parse_upstream(text, 'app_canary').servers] == ['10.0.0.10:8080',
                                                                               'unix:/run/canary.sock']


def test_no_forcing_still_defines_the_variable():
    text = render(routing_spec('app', 'app_canary', header_values=[]))
    assert 'map "" $canary_release_app {\n    default app;\n}\n' in text
    assert 'upstream' not in text.replace('# The upstream', '')
    assert 'sticky' not in text


def test_variables_and_directives():
    names, directives = full_spec(variable='route').variables()
    assert names == {'upstream': '$route', 'sticky_key': '$route_sticky_key', 'set_cookie': '$route_set_cookie'}
    assert directives == {'proxy_pass': 'proxy_pass http://$route;', 'hash': 'hash $route_sticky_key consistent;',
                          'add_header': 'add_header Set-Cookie $route_set_cookie always;'}
    assert routing_spec('app', 'c').variables()[1] == {'proxy_pass': 'proxy_pass http://$canary_release_app;'}


def test_names():
    assert default_variable('my-app.v2') == 'canary_release_my_app_v2'
    assert header_variable('X-Canary-Force') == '$http_x_canary_force'


@pytest.mark.parametrize('overrides, message', [
    ({'canary_upstream': 'app'}, 'must differ'),
    ({'upstream': 'app {'}, 'upstream'),
    ({'canary_servers': []}, 'at least one'),
    ({'canary_servers': ['10.0.0.1:80', '10.0.0.1:80']}, 'twice'),
    ({'canary_servers': ['10.0.0.1:80; include x']}, 'canary server address'),
    ({'variable': 'a-b'}, 'variable'),
    ({'header_name': 'X Canary'}, 'header_name'),
    ({'header_name': '-X'}, 'header_name'),
    ({'cookie_name': 'beta-tester'}, 'cookie_name'),
    ({'header_values': ['a"b']}, 'header_values'),
    ({'header_values': ['~^.*']}, 'header_values'),
    ({'header_values': ['a', 'A']}, 'twice'),
    ({'cookie_values': ['$host']}, 'cookie_values'),
    ({'cookie_values': ['a;b']}, 'cookie_values'),
    ({'sticky_cookie': 'a b'}, 'sticky_cookie'),
    ({'sticky_max_age': 0}, 'sticky_max_age'),
    ({'sticky_max_age': True}, 'sticky_max_age'),
])
def test_bad_options(overrides, message):
    with pytest.raises(RoutingError, match=message):
        full_spec(**overrides)
