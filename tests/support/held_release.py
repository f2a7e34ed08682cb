"""Where a canary release leaves a rollout before its promotion, written directly with the module_utils cores."""

from ansible_collections.canary.release.plugins.module_utils._nginx import nginx_traffic
from ansible_collections.canary.release.plugins.module_utils._rollout import state as rollout_state


def before_promotion(stack, state_dir, service='sample'):
    """Version 2 on the canary of ``stack`` (a :class:`examples.local.stack.LocalStack`), which has 100 % of the
    traffic after its last step; the rollout of ``service`` paused for approval in ``state_dir``."""
    stack.deploy('canary-1', version='2')
    begun = rollout_state.begin(state_dir, service, '2', previous_version='1')
    rollout_state.record_step(state_dir, service, 0, weight=25, verdict='pass', run_id=begun['run_id'])
    rollout_state.record_step(state_dir, service, 1, weight=100, verdict='approved', run_id=begun['run_id'])
    rollout_state.finish(state_dir, service, 'paused', run_id=begun['run_id'])
    nginx_traffic.set_upstream_weights(stack.nginx_conf, stack.upstream, canary=stack.canary_servers, canary_percent=100,
                                       validate_command=stack.validate_command, reload_command=stack.reload_command)
