# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Ansible side of the modules that read the judge's metrics (``analysis``, ``rollout_report``).

One place for what both need around the plain-Python cores: the module object (Prometheus connection options, the
AWS ones of ``amazon.aws`` and ``connection``, all of them in one dict), and the client factories the cores call
only for the providers their metrics use.

``connection`` (documented by the ``canary.release.metrics_connection`` doc fragment) holds any of
:data:`CONNECTION_KEYS`, under the names of the top-level options, so a role or ``module_defaults`` can pass one
variable. A top-level option given in the task wins over the same key of the dict; the dict wins over a default
and over the AWS environment variables (``AWS_REGION``, ...). Its secrets are ``no_log``.
"""

from ansible.module_utils.basic import _load_params

from ansible_collections.amazon.aws.plugins.module_utils.botocore import check_sdk_version_supported
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleBotocoreError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.canary.release.plugins.module_utils._common.aws_retry import retrying_get_metric_data
from ansible_collections.canary.release.plugins.module_utils._sources.prometheus_api import client_from_options, connection_argument_spec
from ansible_collections.canary.release.plugins.module_utils._analysis.analysis_request import AnalysisRequestError

# The keys of ``connection``: the Prometheus connection options (their spec without defaults, aliases and
# ``required``) and the AWS ones, by their top-level names; an unset key leaves its option alone.
CONNECTION_SPEC = dict(
    (key, dict((name, value) for name, value in option.items() if name in ('type', 'no_log')))
    for key, option in connection_argument_spec(url_required=False).items() if key != 'method')
CONNECTION_SPEC.update(
    region=dict(type='str'),
    endpoint_url=dict(type='str'),
    profile=dict(type='str'),
    access_key=dict(type='str', no_log=False),
    secret_key=dict(type='str', no_log=True),
    session_token=dict(type='str', no_log=True),
)
CONNECTION_KEYS = tuple(CONNECTION_SPEC)


def connection_option_spec():
    """The argument spec of the ``connection`` option (no defaults inside: an unset key leaves the option alone)."""
    return dict(connection=dict(type='dict', options=dict((key, dict(spec)) for key, spec in CONNECTION_SPEC.items())))


def merge_connection(params, given):
    """Copy the keys of ``params['connection']`` into ``params`` unless the option was ``given`` in the task.

    ``given`` is the set of top-level option names the task set (aliases resolved). Returns the keys taken from
    ``connection``.
    """
    taken = []
    for key, value in sorted((params.get('connection') or {}).items()):
        if key in CONNECTION_SPEC and value is not None and key not in given:
            params[key] = value
            taken.append(key)
    return taken


def given_options(aliases):
    """The option names the task set itself (not filled in by a default or an environment fallback).

    Read from the module's raw arguments (``ansible.module_utils.basic._load_params``, which the module object
    read before); ``aliases`` maps an alias to its option name.
    """
    raw = _load_params()
    return set(aliases.get(name, name) for name in raw if not name.startswith('_ansible_'))


def metrics_module(argument_spec):
    """An :class:`AnsibleAWSModule` for ``argument_spec`` plus the Prometheus connection options and
    ``connection`` (merged into the options, see :func:`merge_connection`); check mode works.

    boto3 is checked only when a CloudWatch metric needs it (see :func:`client_factories`).
    """
    spec = dict(argument_spec)
    spec.update(connection_argument_spec(url_required=False))
    spec.update(connection_option_spec())
    module = AnsibleAWSModule(
        argument_spec=spec,
        mutually_exclusive=[('bearer_token', 'url_username'), ('bearer_token', 'url_password')],
        supports_check_mode=True,
        check_boto3=False,
    )
    if module.params.get('connection'):
        merge_connection(module.params, given_options(module._module.aliases))
    return module


def client_factories(module):
    """``(prometheus_client, cloudwatch_call)`` factories from the module's options, for the metric cores.

    ``prometheus_client()`` raises :class:`~.analysis_request.AnalysisRequestError` without ``url``;
    ``cloudwatch_call()`` fails the module when boto3/botocore are missing or too old.
    """
    params = module.params

    def prometheus_client():
        if not params['url']:
            raise AnalysisRequestError('url is required when a metric uses provider prometheus (set url or '
                                       'connection.url)')
        return client_from_options(params.get)

    def cloudwatch_call():
        try:
            check_sdk_version_supported(warn=module.warn)
        except AnsibleBotocoreError as error:
            module.fail_json(msg='a metric uses provider cloudwatch: %s' % error)
        return retrying_get_metric_data(module.client('cloudwatch'))

    return prometheus_client, cloudwatch_call
