"""What a job passes down an AWX workflow (plugins/module_utils/_rollout/workflow.py) and the filters on it."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.canary.release.plugins.filter.status_stats import status_stats as status_filter
from ansible_collections.canary.release.plugins.filter.workflow_stats import workflow_stats as stats_filter
from ansible_collections.canary.release.plugins.module_utils._rollout import workflow

RECORD = {'service': 'web', 'version': '2', 'previous_version': '1', 'status': 'paused', 'step': 0, 'weight': 10.0,
          'run_id': 'r1', 'started_at': '2025-01-31T12:00:00Z', 'updated_at': '2025-01-31T12:05:00Z',
          'finished_at': None, 'reason': None,
          'steps': [{'index': 0, 'weight': 10.0, 'verdict': 'awaiting_approval', 'reason': 'approval gate',
                     'at': '2025-01-31T12:05:00Z', 'started_at': '2025-01-31T12:00:00Z'}],
          'events': [{'at': '2025-01-31T12:00:00Z', 'message': 'web 2: begun'}]}


def read(host, record=None, lock=None):
    return {'item': host, 'exists': record is not None, 'record': record, 'lock': lock,
            'record_path': '/s/%s/web.json' % host}


def test_a_real_run_exports_canary_release_and_a_check_run_only_the_separate_key():
    data = {'service': 'web', 'outcome': 'rolled_back', 'check_mode': True}
    assert workflow.workflow_stats(data) == {'canary_release': {'service': 'web', 'outcome': 'rolled_back',
                                                                'check_mode': False}}
    checked = workflow.workflow_stats(data, check_mode=True)
    assert checked == {'canary_release_check': {'service': 'web', 'outcome': 'rolled_back', 'check_mode': True}}
    assert 'canary_release' not in checked  # a workflow's next node cannot read it as a rollback
    assert data == {'service': 'web', 'outcome': 'rolled_back', 'check_mode': True}  # the input is not modified
    assert stats_filter(data, 'yes') == workflow.workflow_stats(data, True)


@pytest.mark.parametrize('bad', [None, 'rolled_back', ['outcome'], 3])
def test_anything_but_a_dict_is_refused_with_a_clear_error(bad):
    with pytest.raises(ValueError, match='must be a dict, not '):
        workflow.workflow_stats(bad)
    with pytest.raises(AnsibleFilterError, match='^workflow_stats: the data to export for an AWX workflow must be'):
        stats_filter(bad, False)


def test_status_exports_the_record_in_the_shape_of_a_release_export():
    exported = workflow.status_stats([read('localhost', RECORD, lock=None)], 'web')
    assert exported == {
        'service': 'web', 'version': '2', 'previous_version': '1', 'outcome': 'held', 'status': 'paused', 'step': 0,
        'weight': 10.0, 'run_id': 'r1', 'reason': None, 'started_at': '2025-01-31T12:00:00Z',
        'updated_at': '2025-01-31T12:05:00Z', 'finished_at': None,
        'steps': [{'index': 0, 'weight': 10.0, 'verdict': 'awaiting_approval', 'reason': 'approval gate',
                   'started_at': '2025-01-31T12:00:00Z'}],
        'locked': False,
        'hosts': [{'host': 'localhost', 'status': 'paused', 'version': '2', 'updated_at': '2025-01-31T12:05:00Z'}],
        'message': 'web 2: release held at step 0 (10 %), waiting for rollout_approval=approve or reject'}
    assert 'events' not in exported


def test_status_takes_the_newest_copy_and_says_when_the_copies_differ():
    older = dict(RECORD, status='running', updated_at='2025-01-31T12:01:00Z')
    done = dict(RECORD, status='rolled_back', reason='rolled back by hand', updated_at='2025-01-31T12:09:00Z')
    exported = workflow.status_stats([read('localhost', older, lock={'run_id': 'r1'}), read('lb1', done),
                                      read('lb2')], 'web')
    assert (exported['outcome'], exported['status'], exported['locked']) == ('rolled_back', 'rolled_back', False)
    assert exported['message'] == ('web 2: release rolled back - rolled back by hand (the copies differ: 2 running on '
                                   'localhost, 2 rolled_back on lb1; this is the newest, on lb1)')
    assert [entry['status'] for entry in exported['hosts']] == ['running', 'rolled_back', None]
    # equal copies: no remark; the first of equal times wins, and it holds the lock
    same = workflow.status_stats([read('localhost', RECORD, lock={'run_id': 'r1'}), read('lb1', dict(RECORD))], 'web')
    assert same['locked'] is True and '(the copies differ' not in same['message']
    # an unreadable time never wins over a readable one
    garbled = dict(RECORD, status='running', updated_at='yesterday')
    assert workflow.status_stats([read('a', garbled), read('b', RECORD)], 'web')['status'] == 'paused'
    assert workflow.status_stats([read('a', RECORD), read('b', garbled)], 'web')['status'] == 'paused'


def test_status_without_a_record_exports_no_outcome():
    exported = workflow.status_stats([read('localhost'), read('lb1')], 'web')
    assert exported['outcome'] is None and exported['status'] is None and exported['version'] is None
    assert exported['message'] == 'web: no rollout recorded on localhost, lb1'
    assert exported['hosts'] == [{'host': 'localhost', 'status': None, 'version': None, 'updated_at': None},
                                 {'host': 'lb1', 'status': None, 'version': None, 'updated_at': None}]


@pytest.mark.parametrize('bad', [None, {'results': []}, ['localhost']])
def test_status_refuses_what_is_not_a_read_loop(bad):
    with pytest.raises(ValueError, match='results of a rollout_state read loop'):
        workflow.status_stats(bad, 'web')
    with pytest.raises(AnsibleFilterError, match='^status_stats: '):
        status_filter(bad, 'web')
