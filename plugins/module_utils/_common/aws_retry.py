# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one AWS retry of the collection: every AWS call (ELBv2, CloudWatch) goes through :func:`aws_retry`.

``AWSRetry.jittered_backoff`` (amazon.aws) retries ``Throttling``, ``RequestLimitExceeded``,
``TooManyRequestsException`` and the transient ``InternalFailure``/``ServiceUnavailable`` codes with
exponential backoff and full jitter, so many controllers polling at once do not retry in step. Other errors
(``AccessDenied``, a missing listener, ...) are raised at once.
"""

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

# Attempts in all (the first call included), first delay and largest delay in seconds.
RETRIES = 10
DELAY = 1.0
MAX_DELAY = 20.0


def aws_retry(method, retries=RETRIES, delay=DELAY, max_delay=MAX_DELAY):
    """``method`` (a bound boto3 client method) wrapped in ``AWSRetry.jittered_backoff``."""
    return AWSRetry.jittered_backoff(retries=retries, delay=delay, max_delay=max_delay)(method)


def retrying_get_metric_data(client, retries=RETRIES, delay=DELAY, max_delay=MAX_DELAY):
    """``client.get_metric_data`` through :func:`aws_retry`; pass it to ``get_metric_data()``."""
    return aws_retry(client.get_metric_data, retries=retries, delay=delay, max_delay=max_delay)
