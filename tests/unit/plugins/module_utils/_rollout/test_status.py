"""How a record reads to a human (plugins/module_utils/_rollout/status.py)."""

from ansible_collections.canary.release.plugins.module_utils._rollout import status

RECORD = {'service': 'web', 'version': '2', 'previous_version': '1', 'status': 'paused', 'step': 1, 'weight': 50.0,
          'started_at': 'T0', 'updated_at': 'T2', 'finished_at': None, 'reason': None,
          'steps': [{'index': 0, 'weight': 10.0, 'verdict': 'pass', 'reason': 'ok', 'at': 'T1', 'started_at': 'T0'},
                    {'index': 1, 'weight': 50.0, 'verdict': None, 'reason': None, 'at': 'T2'}],
          'events': [{'at': 'T0', 'message': 'one'}, {'at': 'T2', 'message': 'two'}]}


def test_summary_and_outcome():
    assert status.summary(RECORD, 'web', '2') == \
        'web 2: release held at step 1 (50 %), waiting for rollout_approval=approve or reject'
    done = dict(RECORD, status='rolled_back', reason='step 0 at 10 %, verdict fail: errors')
    assert status.summary(done, 'web', '2') == 'web 2: release rolled back - step 0 at 10 %, verdict fail: errors'
    assert status.summary(None, 'web', '2') == 'web 2: release not recorded'
    assert (status.outcome(RECORD), status.outcome(done), status.outcome(None, 'promote')) == ('held', 'rolled_back', 'promote')


def test_status_lines():
    lock = {'run_id': 'r1', 'started_at': 'T0', 'pid': 7, 'host': 'c', 'holder_state': 'stale', 'holder_reason': 'gone'}
    lines = status.status_lines({'exists': True, 'record': RECORD, 'lock': lock}, 'web', 'lb', events=1)
    assert lines == ['web 2 on lb: paused at step 1 (50.0 %), previous version 1', 'started T0, updated T2',
                     'lock: run r1 since T0, pid 7 on c (stale: gone)', 'step 0 at 10.0 %: pass - ok (since T0)',
                     'step 1 at 50.0 %: no verdict yet (since T2)', 'T2 two']
    finished = dict(RECORD, step=None, finished_at='T3', reason=None, previous_version=None)
    lines = status.status_lines({'exists': True, 'record': finished, 'lock': None}, 'web', 'lb', events=0)
    assert lines[:3] == ['web 2 on lb: paused before the first step, previous version unknown',
                         'started T0, updated T2, finished T3: -', 'lock: free']
    assert status.status_lines({'exists': False, 'record': None, 'record_path': '/s/web.json'}, 'web', 'lb') == \
        ['web on lb: no rollout recorded (/s/web.json)']
