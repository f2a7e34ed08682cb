"""Run real ``ansible-playbook`` processes against this collection and read their results.

Results come from the ``ansible.posix.json``-free built-in ``json`` callback: every task's
per-host result is returned as plain data so tests assert on what modules returned.
"""

import dataclasses
import json
import os
import subprocess
import tempfile

import yaml

from tests.support.paths import BIN_DIR, COLLECTIONS_ROOT


@dataclasses.dataclass
class PlaybookRun:
    returncode: int
    stdout: str
    stderr: str
    tasks: list  # [{'name': task name, 'result': the localhost result dict}]

    def result(self, name):
        """The result of the task with this name (the last one if it ran more than once)."""
        found = [task['result'] for task in self.tasks if task['name'] == name]
        if not found:
            raise KeyError('no task named %r ran; tasks: %r' % (name, [task['name'] for task in self.tasks]))
        return found[-1]


def playbook_env(extra_env=None):
    env = dict(os.environ)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS_ROOT,
        'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.json',
        'ANSIBLE_CALLBACK_RESULT_FORMAT': 'json',
        'ANSIBLE_HOST_KEY_CHECKING': 'False',
        'ANSIBLE_RETRY_FILES_ENABLED': 'False',
        'ANSIBLE_LOCALHOST_WARNING': 'False',
        'ANSIBLE_INVENTORY_UNPARSED_WARNING': 'False',
        'ANSIBLE_PYTHON_INTERPRETER': os.path.join(BIN_DIR, 'python'),
        'PATH': BIN_DIR + os.pathsep + env.get('PATH', ''),
    })
    env.update(extra_env or {})
    return env


def run_playbook(tasks=None, playbook=None, extra_vars=None, check=False, diff=False, extra_env=None,
                 extra_args=(), timeout=300):
    """Run a play of ``tasks`` on localhost (or a whole ``playbook`` file) and return a PlaybookRun."""
    with tempfile.TemporaryDirectory(prefix='canary-playbook-') as workdir:
        if playbook is None:
            playbook = os.path.join(workdir, 'play.yml')
            play = [{'name': 'test play', 'hosts': 'localhost', 'connection': 'local',
                     'gather_facts': False, 'tasks': tasks}]
            with open(playbook, 'w', encoding='utf-8') as handle:
                yaml.safe_dump(play, handle, sort_keys=False)
        command = [os.path.join(BIN_DIR, 'ansible-playbook'), '-i', 'localhost,', playbook]
        if extra_vars:
            vars_file = os.path.join(workdir, 'extra_vars.json')
            with open(vars_file, 'w', encoding='utf-8') as handle:
                json.dump(extra_vars, handle)
            command += ['-e', '@' + vars_file]
        if check:
            command.append('--check')
        if diff:
            command.append('--diff')
        command += list(extra_args)
        completed = subprocess.run(command, env=playbook_env(extra_env), capture_output=True, text=True,
                                   timeout=timeout, check=False)
    return PlaybookRun(completed.returncode, completed.stdout, completed.stderr, task_results(completed.stdout))


def task_results(stdout):
    # ansible.builtin.pause prints "Pausing for N seconds" to stdout ahead of the json callback's document.
    if not stdout.startswith('{') and '\n{' in stdout:
        stdout = stdout[stdout.index('\n{') + 1:]
    try:
        document = json.loads(stdout)
    except ValueError:
        return []
    tasks = []
    for play in document.get('plays', []):
        for task in play.get('tasks', []):
            for result in task.get('hosts', {}).values():
                tasks.append({'name': task['task']['name'], 'result': result})
    return tasks
