# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Ansible side of the modules that read the judge's metrics (``analysis``, ``rollout_report``).

One place for what both need around the plain-Python cores: the module object (Prometheus connection options plus
the AWS ones of ``amazon.aws``) and the client factories the cores call only for the providers their metrics use.
"""

from ansible_collections.amazon.aws.plugins.module_utils.botocore import check_sdk_version_supported
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleBotocoreError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.canary.release.plugins.module_utils.analysis_request import AnalysisRequestError
from ansible_collections.canary.release.plugins.module_utils.cloudwatch_retry import retrying_get_metric_data
from ansible_collections.canary.release.plugins.module_utils.prometheus_api import client_from_options, connection_argument_spec


def metrics_module(argument_spec):
    """An :class:`AnsibleAWSModule` for ``argument_spec`` plus the Prometheus connection options; check mode works.

    boto3 is checked only when a CloudWatch metric needs it (see :func:`client_factories`).
    """
    spec = dict(argument_spec)
    spec.update(connection_argument_spec(url_required=False))
    return AnsibleAWSModule(
        argument_spec=spec,
        mutually_exclusive=[('bearer_token', 'url_username'), ('bearer_token', 'url_password')],
        supports_check_mode=True,
        check_boto3=False,
    )


def client_factories(module):
    """``(prometheus_client, cloudwatch_call)`` factories from the module's options, for the metric cores.

    ``prometheus_client()`` raises :class:`~.analysis_request.AnalysisRequestError` without ``url``;
    ``cloudwatch_call()`` fails the module when boto3/botocore are missing or too old.
    """
    params = module.params

    def prometheus_client():
        if not params['url']:
            raise AnalysisRequestError('url is required when a metric uses provider prometheus')
        return client_from_options(params.get)

    def cloudwatch_call():
        try:
            check_sdk_version_supported(warn=module.warn)
        except AnsibleBotocoreError as error:
            module.fail_json(msg='a metric uses provider cloudwatch: %s' % error)
        return retrying_get_metric_data(module.client('cloudwatch'))

    return prometheus_client, cloudwatch_call
