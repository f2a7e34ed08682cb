"""Jobs and workflows run the way AWX runs them, short of an AWX server.

AWX runs every job with ansible-runner in a fresh private data directory: ``project/`` (the project's checkout),
``inventory/`` (the job's inventory), ``env/extravars`` (its extra variables, with AWX's own ``awx_*`` variables),
``env/envvars``, ``env/settings`` and ``env/cmdline`` (``--check`` for a job of type ``check``). The ``set_stats`` data
of the playbook (``per_host: false``) comes back as the ``artifact_data`` of its ``playbook_on_stats`` event and
becomes the job's artifacts.

In a workflow AWX gives a node's job as extra variables (awx/main/models/workflow.py, ``WorkflowJobNode
.get_job_kwargs``): the node's ``extra_data`` (accepted only when the job template prompts for variables), updated
with the artifacts of the node's ancestors, updated with the workflow job's extra variables (its survey's answers).
An approval node passes its ancestors' artifacts on; approving follows its success nodes, denying (or a timeout) its
failure nodes. :class:`Workflow` walks a workflow defined in the ``awx.awx.workflow_job_template`` module format.
"""

import concurrent.futures
import dataclasses
import itertools
import json
import os
import shutil
import signal
import threading

import ansible_runner
import jinja2.nativetypes
import yaml

from tests.support.paths import BIN_DIR, COLLECTIONS_ROOT

JOB_TIMEOUT = 240
_JOB_IDS = itertools.count(1001)


@dataclasses.dataclass
class Job:
    """One finished job: what AWX would show of it."""
    id: int
    template: str
    job_type: str
    extra_vars: dict
    status: str      # successful, failed, error, timeout (ansible-runner's; AWX shows the same words)
    rc: int
    artifacts: dict  # the artifact_data of the playbook_on_stats event: the job's set_stats data
    events: list
    slices: list = dataclasses.field(default_factory=list)  # a sliced job template's jobs (this is their workflow job)

    def failed_messages(self):
        return [event['event_data']['res'].get('msg') for event in self.events
                if event.get('event') == 'runner_on_failed' and not event['event_data'].get('ignore_errors')]

    def stdout(self):
        return '\n'.join(event.get('stdout', '') for event in self.events if event.get('stdout'))


def render(value, variables, depth=8):
    """``value`` with every ``{{ ... }}`` string rendered from ``variables`` (native types: a list stays a list),
    as ansible-playbook templates a module's arguments from the play's variables - again while the result holds a
    template (a variable whose value is a template, as a play's vars may be), at most ``depth`` times."""
    if isinstance(value, dict):
        return dict((key, render(item, variables, depth)) for key, item in value.items())
    if isinstance(value, list):
        return [render(item, variables, depth) for item in value]
    if isinstance(value, str) and '{{' in value:
        rendered = jinja2.nativetypes.NativeEnvironment(undefined=jinja2.StrictUndefined).from_string(value).render(
            variables)
        return render(rendered, variables, depth - 1) if depth > 1 and rendered != value else rendered
    return value


def load_workflow_example(path, overrides=None):
    """The play of ``examples/awx/workflow.yml``: ``{'vars': ..., 'templates': {name: job_template arguments},
    'workflow': the workflow_job_template arguments}``, rendered with the play's variables and ``overrides``."""
    with open(path, encoding='utf-8') as handle:
        plays = yaml.safe_load(handle)
    assert len(plays) == 1, 'examples/awx/workflow.yml is one play'
    variables = dict(plays[0].get('vars') or {}, **(overrides or {}))
    templates, workflows = {}, []
    for task in plays[0]['tasks']:
        if 'awx.awx.job_template' in task:
            for item in render(task.get('loop', [None]), variables):
                arguments = render(task['awx.awx.job_template'], dict(variables, item=item))
                templates[arguments['name']] = arguments
        elif 'awx.awx.workflow_job_template' in task:
            workflows.append(render(task['awx.awx.workflow_job_template'], variables))
    assert len(workflows) == 1, 'examples/awx/workflow.yml defines one workflow'
    return {'vars': variables, 'templates': templates, 'workflow': workflows[0]}


def survey_answers(survey, answers):
    """``answers`` checked as AWX checks a survey's answers at launch; a bad answer raises ValueError."""
    questions = dict((question['variable'], question) for question in survey['spec'])
    unknown = sorted(set(answers) - set(questions))
    if unknown:
        raise ValueError('not a question of the survey: %s' % ', '.join(unknown))
    for variable, question in questions.items():
        if variable not in answers:
            if question.get('required'):
                raise ValueError('the survey requires %s' % variable)
            continue
        value = answers[variable]
        if question['type'] == 'multiplechoice' and value not in question['choices']:
            raise ValueError('%s: %r is not one of %r' % (variable, value, question['choices']))
        low, high = question.get('min', 0), question.get('max', 1024)
        if question['type'] == 'text' and not low <= len(str(value)) <= high:
            raise ValueError('%s: %r is not %s to %s characters long' % (variable, value, low, high))
    return dict(answers)


def inventory_hosts(inventory):
    """Every host of a YAML/JSON-style inventory (``{'all': {'hosts': ..., 'children': {...}}}``), by name."""
    found = set()

    def walk(group):
        found.update((group or {}).get('hosts') or {})
        for child in ((group or {}).get('children') or {}).values():
            walk(child)
    for group in inventory.values():
        walk(group)
    return found


def slice_inventory(inventory, slice_number, slice_count):
    """The inventory of slice ``slice_number`` (from 1) of ``slice_count``, as AWX writes it for a slice job:
    the inventory's hosts sorted by name, every ``slice_count``-th from ``slice_number - 1`` (awx/main/models/
    inventory.py, ``Inventory.get_sliced_hosts`` over ``get_script_data``'s hosts ordered by name; AWX sorts in the
    database's collation, these tests use names that sort alike in any); every group kept, with its variables, holding
    only the slice's hosts."""
    mine = set(sorted(inventory_hosts(inventory))[slice_number - 1::slice_count])

    def pare(group):
        group = dict(group or {})
        if 'hosts' in group:
            group['hosts'] = dict((name, variables) for name, variables in (group['hosts'] or {}).items() if name in mine)
        if 'children' in group:
            group['children'] = dict((name, pare(child)) for name, child in group['children'].items())
        return group
    return dict((name, pare(group)) for name, group in inventory.items())


def run_sliced_job(workdir, project, inventory, template, extra_vars, slice_count, workflow_job_id=None):
    """A launch of the job template ``template`` with ``job_slice_count`` ``slice_count``, as AWX runs it: a
    workflow job bearing the template's name (awx/main/models/jobs.py, ``JobTemplate.create_unified_job``) whose
    ``slice_count`` jobs run concurrently (slicing implies ``allow_simultaneous``), each with its share of the
    inventory (:func:`slice_inventory`) and the extra variables; AWX gives a slice no variable with its number
    (``awx_meta_vars``: the workflow job's id and name, launch type ``workflow``). Returns the jobs in slice order."""
    slice_count = min(slice_count, len(inventory_hosts(inventory)))  # JobTemplate.get_effective_slice_ct
    if slice_count < 2:
        return [run_job(workdir, project, inventory, template, extra_vars)]  # not sliced: one job
    workflow_vars = {'awx_workflow_job_id': workflow_job_id or next(_JOB_IDS), 'awx_workflow_job_name': template['name'],
                     'awx_job_launch_type': 'workflow'}
    with concurrent.futures.ThreadPoolExecutor(max_workers=slice_count) as pool:
        futures = [pool.submit(run_job, workdir, project, slice_inventory(inventory, number, slice_count), template,
                               extra_vars, 'run', workflow_vars) for number in range(1, slice_count + 1)]
        return [future.result() for future in futures]


def run_keeping_signal_handlers(**kwargs):
    """``ansible_runner.run(**kwargs)``. On the main thread ansible-runner replaces this process's SIGINT and SIGTERM
    handlers with its own (they only cancel its job) and leaves them installed, so Ctrl-C no longer stopped pytest
    after an AWX test: pytest's handlers are put back."""
    saved = dict((number, signal.getsignal(number)) for number in (signal.SIGINT, signal.SIGTERM))
    try:
        return ansible_runner.run(**kwargs)
    finally:
        if threading.current_thread() is threading.main_thread():
            for number, handler in saved.items():
                signal.signal(number, handler)


def run_job(workdir, project, inventory, template, extra_vars, job_type='run', awx_vars=None):
    """One job of the job template ``template`` (``name``, ``playbook``) in a fresh private data directory."""
    job_id = next(_JOB_IDS)
    private = os.path.join(workdir, 'job-%d' % job_id)
    shutil.copytree(project, os.path.join(private, 'project'))
    os.makedirs(os.path.join(private, 'inventory'))
    os.makedirs(os.path.join(private, 'env'))
    with open(os.path.join(private, 'inventory', 'hosts.json'), 'w', encoding='utf-8') as handle:
        json.dump(inventory, handle)
    variables = dict(extra_vars)
    variables.update({'awx_job_id': job_id, 'awx_job_template_name': template['name'], 'awx_user_name': 'admin'})
    variables.update(awx_vars or {})
    environment = {
        'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS_ROOT,  # the execution environment's collections
        'ANSIBLE_PYTHON_INTERPRETER': os.path.join(BIN_DIR, 'python'),
        'ANSIBLE_HOST_KEY_CHECKING': 'False',
        'ANSIBLE_RETRY_FILES_ENABLED': 'False',
        'PATH': BIN_DIR + os.pathsep + os.environ.get('PATH', ''),
    }
    for name, content in (('extravars', variables), ('envvars', environment),
                          ('settings', {'job_timeout': JOB_TIMEOUT, 'suppress_ansible_output': True})):
        with open(os.path.join(private, 'env', name), 'w', encoding='utf-8') as handle:
            json.dump(content, handle)
    if job_type == 'check':
        with open(os.path.join(private, 'env', 'cmdline'), 'w', encoding='utf-8') as handle:
            handle.write('--check')
    runner = run_keeping_signal_handlers(private_data_dir=private, playbook=template['playbook'],
                                         inventory='hosts.json', ident=str(job_id), quiet=True)
    events = list(runner.events)
    stats = [event for event in events if event.get('event') == 'playbook_on_stats']
    artifacts = stats[-1]['event_data'].get('artifact_data', {}) if stats else {}
    return Job(job_id, template['name'], job_type, variables, runner.status, runner.rc, artifacts, events)


class Workflow:
    """One launch of a workflow job template (``awx.awx.workflow_job_template`` arguments) with survey answers."""

    def __init__(self, workdir, definition, templates, project, inventory, answers):
        self.workdir, self.templates, self.project, self.inventory = workdir, templates, project, inventory
        self.nodes = dict((node['identifier'], node) for node in definition['workflow_nodes'])
        self.extra_vars = dict(definition.get('extra_vars') or {})
        if definition.get('survey_enabled'):
            self.extra_vars.update(survey_answers(definition['survey_spec'], answers))
        self.workflow_job_id = next(_JOB_IDS)
        self.name = definition['name']
        self.ancestor_artifacts = {}  # per node: what its parents passed on
        self.jobs = {}                # per node that ran a job
        self.ran, self.pending = [], self.roots()

    def roots(self):
        children = set(link['identifier'] for node in self.nodes.values()
                       for links in (node.get('related') or {}).values() for link in links)
        return [identifier for identifier in self.nodes if identifier not in children]

    def job_extra_vars(self, identifier, after=None):
        node = self.nodes[identifier]
        template = self.templates[node['unified_job_template']['name']]
        variables = dict(node.get('extra_data') or {})
        if variables and not template.get('ask_variables_on_launch'):
            raise AssertionError('node %s: AWX ignores extra_data unless %s prompts for variables'
                                 % (identifier, template['name']))
        variables.update(self.ancestor_artifacts.get(after or identifier, {}))
        variables.update(self.extra_vars)
        return variables

    def run_node(self, identifier, job_type='run', after=None):
        """Run the node's job template (as a job of ``job_type``) outside the walk; with ``after`` (a node) it gets
        the artifacts that node's job would get, as if it followed it in the workflow."""
        node = self.nodes[identifier]
        template = self.templates[node['unified_job_template']['name']]
        if int(template.get('job_slice_count') or 1) > 1 and job_type == 'run':
            return self.run_sliced(template, self.job_extra_vars(identifier, after))
        return run_job(self.workdir, self.project, self.inventory, template, self.job_extra_vars(identifier, after),
                       job_type, {'awx_workflow_job_id': self.workflow_job_id, 'awx_workflow_job_name': self.name})

    def run_sliced(self, template, extra_vars):
        """A node of a sliced job template: a workflow job of its own whose slices run concurrently; it fails when a
        slice fails, and its artifacts are the slices' (``WorkflowJob.get_effective_artifacts``: one after the other)."""
        jobs = run_sliced_job(self.workdir, self.project, self.inventory, template, extra_vars,
                              int(template['job_slice_count']))
        if len(jobs) == 1:
            return jobs[0]
        artifacts = {}
        for job in jobs:
            artifacts.update(job.artifacts)
        status = 'successful' if all(job.status == 'successful' for job in jobs) else 'failed'
        return Job(next(_JOB_IDS), template['name'], 'run', dict(extra_vars), status, 0 if status == 'successful' else 1,
                   artifacts, [event for job in jobs for event in job.events], jobs)

    def _pass_on(self, identifier, outcome, artifacts):
        node = self.nodes[identifier]
        passed = dict(self.ancestor_artifacts.get(identifier, {}), **artifacts)
        related = node.get('related') or {}
        following = [link['identifier'] for link in related.get(outcome, []) + related.get('always_nodes', [])]
        for child in following:
            self.ancestor_artifacts.setdefault(child, {}).update(passed)
        return following

    def walk(self, approve=None):
        """Run the workflow's nodes in order from where it stands (its roots at first). An approval node is decided
        by ``approve``; with None the walk stops there, as AWX waits for a human, and a later call goes on. Returns
        the identifiers of the nodes this call ran (a node reached from several parents runs once)."""
        ran = []
        while self.pending:
            identifier = self.pending[0]
            if identifier in self.ran:
                self.pending.pop(0)
                continue
            is_approval = self.nodes[identifier]['unified_job_template'].get('type') == 'workflow_approval'
            if is_approval and approve is None:
                return ran
            self.pending.pop(0)
            self.ran.append(identifier)
            ran.append(identifier)
            if is_approval:
                self.pending += self._pass_on(identifier, 'success_nodes' if approve else 'failure_nodes', {})
                continue
            job = self.jobs[identifier] = self.run_node(identifier)
            outcome = 'success_nodes' if job.status == 'successful' else 'failure_nodes'
            self.pending += self._pass_on(identifier, outcome, job.artifacts)
        return ran
