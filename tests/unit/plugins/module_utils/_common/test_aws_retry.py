"""Throttling is retried with amazon.aws's jittered backoff, by the one retry helper every AWS call uses."""

import botocore.exceptions
import pytest

from ansible_collections.canary.release.plugins.module_utils._sources.cloudwatch_metric_data import get_metric_data
from ansible_collections.canary.release.plugins.module_utils._common.aws_retry import retrying_get_metric_data

QUERY = {'id': 'a', 'namespace': 'N', 'metric_name': 'M', 'stat': 'Sum', 'period': 60}


def client_error(code):
    return botocore.exceptions.ClientError({'Error': {'Code': code, 'Message': code}}, 'GetMetricData')


class FlakyClient:
    def __init__(self, failures):
        self.failures = list(failures)
        self.calls = 0

    def get_metric_data(self, **params):
        self.calls += 1
        if self.failures:
            raise client_error(self.failures.pop(0))
        return {'MetricDataResults': [{'Id': 'a', 'Timestamps': [], 'Values': [], 'StatusCode': 'Complete'}]}


@pytest.mark.parametrize('code', ['Throttling', 'RequestLimitExceeded', 'TooManyRequestsException', 'ServiceUnavailable'])
def test_throttling_is_retried(code):
    client = FlakyClient([code, code])
    data = get_metric_data(retrying_get_metric_data(client, delay=0.01, max_delay=0.02), [QUERY], start='-1h')
    assert client.calls == 3
    assert data['calls'] == 1  # one logical call; the retries are the wrapper's
    assert data['metrics']['a']['status_code'] == 'Complete'


def test_gives_up_after_the_retries():
    client = FlakyClient(['Throttling'] * 10)
    with pytest.raises(botocore.exceptions.ClientError):
        get_metric_data(retrying_get_metric_data(client, retries=3, delay=0.01, max_delay=0.02), [QUERY])
    assert client.calls == 3


def test_other_errors_are_not_retried():
    client = FlakyClient(['AccessDenied'])
    with pytest.raises(botocore.exceptions.ClientError, match='AccessDenied'):
        get_metric_data(retrying_get_metric_data(client, delay=0.01), [QUERY])
    assert client.calls == 1


def test_the_alb_calls_use_the_same_retry():
    from ansible_collections.canary.release.plugins.module_utils._alb.alb_listener import ElbApi

    class FlakyElb:
        calls = 0

        def describe_listeners(self, **params):
            self.calls += 1
            if self.calls < 3:
                raise botocore.exceptions.ClientError({'Error': {'Code': 'Throttling', 'Message': 'slow down'}},
                                                      'DescribeListeners')
            return {'Listeners': []}

    elb = FlakyElb()
    api = ElbApi(elb, delay=0.01, max_delay=0.02)
    assert api.call('describe_listeners', ListenerArns=['x']) == {'Listeners': []}
    assert elb.calls == 3
    assert api.calls == {'DescribeListeners': 1}
