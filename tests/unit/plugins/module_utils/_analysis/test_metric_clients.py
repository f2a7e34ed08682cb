# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The connection option: one dict for the Prometheus and AWS options, top-level options given in the task win."""

import json

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.canary.release.plugins.module_utils._analysis import metric_clients
from ansible_collections.canary.release.plugins.module_utils._analysis.metric_clients import (
    CONNECTION_KEYS,
    connection_option_spec,
    merge_connection,
)
from ansible_collections.canary.release.plugins.module_utils._sources.prometheus_api import connection_argument_spec


def test_the_keys_are_the_top_level_options():
    prometheus = set(connection_argument_spec()) - {'method'}
    aws = {'region', 'endpoint_url', 'profile', 'access_key', 'secret_key', 'session_token', 'validate_certs'}
    assert set(CONNECTION_KEYS) == prometheus | aws
    spec = connection_option_spec()['connection']['options']
    assert all('default' not in option for option in spec.values())


def test_the_secrets_are_no_log():
    spec = connection_option_spec()
    secret = {'connection': {'url': 'http://p:9090', 'bearer_token': 'tok-123', 'url_password': 'pw-456',
                             'secret_key': 'sk-789', 'session_token': 'st-000', 'access_key': 'AKIA-public'}}
    result = ArgumentSpecValidator(spec).validate(secret)
    assert result.error_messages == []
    assert {'tok-123', 'pw-456', 'sk-789', 'st-000'} <= result._no_log_values
    assert 'AKIA-public' not in result._no_log_values and 'http://p:9090' not in result._no_log_values
    flags = dict((key, option.get('no_log')) for key, option in spec['connection']['options'].items())
    secrets = sorted(key for key, value in flags.items() if value)
    assert secrets == ['bearer_token', 'secret_key', 'session_token', 'url_password']


def test_given_top_level_options_win_and_the_dict_beats_defaults():
    params = {'url': None, 'timeout': 30.0, 'validate_certs': True, 'region': 'env-region', 'headers': {},
              'connection': {'url': 'http://p:9090', 'timeout': 5.0, 'validate_certs': False, 'region': 'eu-west-1',
                             'headers': {'X-Scope-OrgID': 'a'}, 'bearer_token': None}}
    taken = merge_connection(params, given={'timeout'})
    assert params['url'] == 'http://p:9090' and params['validate_certs'] is False and params['region'] == 'eu-west-1'
    assert params['timeout'] == 30.0                       # given in the task: the top level wins
    assert params['headers'] == {'X-Scope-OrgID': 'a'} and 'bearer_token' not in taken
    assert taken == ['headers', 'region', 'url', 'validate_certs']


def test_given_options_come_from_the_raw_arguments(monkeypatch):
    raw = {'ANSIBLE_MODULE_ARGS': {'aws_region': 'x', 'timeout': 3, 'connection': {'url': 'http://p'},
                                   '_ansible_check_mode': False}}
    monkeypatch.setattr(metric_clients, '_load_params', lambda: raw['ANSIBLE_MODULE_ARGS'])
    assert metric_clients.given_options({'aws_region': 'region'}) == {'region', 'timeout', 'connection'}
    assert json.dumps(raw)   # unchanged, serialisable


def test_load_params_is_the_one_ansible_documents():
    assert metric_clients._load_params is basic._load_params


@pytest.mark.parametrize('module_name', ['analysis', 'rollout_report'])
def test_both_modules_document_connection(module_name):
    import importlib
    module = importlib.import_module('ansible_collections.canary.release.plugins.modules.%s' % module_name)
    assert 'canary.release.metrics_connection' in module.DOCUMENTATION
