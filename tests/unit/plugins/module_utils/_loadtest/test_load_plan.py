"""The load plan: options validated at once, the same rate to each URL, the tool chosen by what it can do."""

import pytest

from ansible_collections.canary.release.plugins.module_utils._loadtest.load_plan import (
    LoadPlanError,
    build_load_plan,
    choose_tool,
    connections_for,
    name_problems,
)

HEY = '/usr/bin/hey'


def with_hey(name):
    return HEY if name == 'hey' else None


def without_hey(name):
    return None


def plan(**options):
    args = dict(name='web', canary_urls=['http://10.0.0.1:8080/'],
                baseline_urls=['http://10.0.0.2:8080/', 'http://10.0.0.3:8080/'], rate=12, duration='5m',
                which=with_hey)
    args.update(options)
    return build_load_plan(**args)


def test_every_url_of_either_arm_gets_the_rate():
    found = plan()
    assert [(target['arm'], target['rate']) for target in found['targets']] == [
        ('canary', 12.0), ('baseline', 12.0), ('baseline', 12.0)]
    assert found['duration'] == 300.0 and found['tool'] == 'hey' and found['tool_path'] == HEY


def test_the_same_options_give_the_same_fingerprint_and_others_another():
    assert plan()['fingerprint'] == plan()['fingerprint']
    assert plan()['fingerprint'] != plan(rate=13)['fingerprint']
    assert plan()['fingerprint'] != plan(headers={'Host': 'web'})['fingerprint']


def test_every_problem_is_named_at_once():
    with pytest.raises(LoadPlanError) as caught:
        plan(name='a b', canary_urls=['10.0.0.1:8080'], baseline_urls=None, rate='fast', duration='-1',
             method='TRACE', headers={'Bad Header': 'x', 'X-Token': 'a\nb'}, body=3, tool='curl', timeout=0)
    problems = caught.value.problems
    assert problems[:4] == ["name: 'a b' must be 1 to 128 letters, digits and . _ @ + -",
                            "canary_urls: '10.0.0.1:8080' is not an http:// or https:// URL with a host",
                            'baseline_urls: give at least one URL (http:// or https://)',
                            "rate: 'fast' is not a number"]
    assert problems[4].startswith('duration: ')
    assert problems[5:] == ['timeout: 0 must be above 0 and at most 300',
                            "method: 'TRACE' is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
                            "headers: 'Bad Header' is not a header name",
                            'headers: the value of X-Token must be a string on one line',
                            'body: must be a string',
                            "tool: 'curl' is not one of auto, hey, python"]
    assert 'a\nb' not in str(caught.value)  # a header's value is never shown


@pytest.mark.parametrize('rate', [0, -1, 1000.5, True])
def test_the_rate_is_bounded(rate):
    with pytest.raises(LoadPlanError):
        plan(rate=rate)


@pytest.mark.parametrize('duration', ['0s', '2d', 'soon'])
def test_the_duration_is_bounded(duration):
    with pytest.raises(LoadPlanError) as caught:
        plan(duration=duration)
    assert caught.value.problems[0].startswith('duration: ')


@pytest.mark.parametrize('name', ['.', '..', '../x', 'a/b', '', 'x' * 129, None])
def test_a_name_cannot_leave_the_state_directory(name):
    assert name_problems(name)


def test_auto_takes_hey_where_it_is_installed_and_able():
    assert choose_tool('auto', 'GET', ['http://a/'], True, with_hey) == ('hey', HEY)
    assert choose_tool('auto', 'GET', ['http://a/'], True, without_hey) == ('python', None)
    assert choose_tool('auto', 'PATCH', ['http://a/'], True, with_hey) == ('python', None)
    assert choose_tool('auto', 'GET', ['https://a/'], True, with_hey) == ('python', None)
    assert choose_tool('auto', 'GET', ['https://a/'], False, with_hey) == ('hey', HEY)
    assert choose_tool('python', 'GET', ['http://a/'], True, with_hey) == ('python', None)


def test_hey_is_refused_when_it_is_missing_or_unable():
    with pytest.raises(LoadPlanError, match='hey is not installed'):
        choose_tool('hey', 'GET', ['http://a/'], True, without_hey)
    with pytest.raises(LoadPlanError, match='hey does not verify certificates'):
        choose_tool('hey', 'GET', ['https://a/'], True, with_hey)


def test_python_connections_keep_up_with_the_rate():
    assert [connections_for(rate) for rate in (0.2, 20, 20.5, 100)] == [1, 1, 2, 5]
