# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""GetMetricData with throttling retried, for the cloudwatch_metrics module and the cloudwatch lookup.

``AWSRetry.jittered_backoff`` (amazon.aws) retries ``Throttling``, ``RequestLimitExceeded``,
``TooManyRequestsException`` and the transient ``InternalFailure``/``ServiceUnavailable`` codes with
exponential backoff and full jitter, so many controllers polling at once do not retry in step.
"""

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

RETRIES = 8
DELAY = 1.0
MAX_DELAY = 20.0


def retrying_get_metric_data(client, retries=RETRIES, delay=DELAY, max_delay=MAX_DELAY):
    """``client.get_metric_data`` wrapped in ``AWSRetry.jittered_backoff``; pass it to ``get_metric_data()``."""
    return AWSRetry.jittered_backoff(retries=retries, delay=delay, max_delay=max_delay)(client.get_metric_data)
