#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
module: rollout_state
short_description: Keep the record and the lock of a canary rollout
version_added: 0.1.0
description:
  - Keeps one JSON record per service in a state directory - version, previous (stable) version, status, current
    step and weight, start time, per-step verdicts and timestamped one-line events - and a lock that forbids two
    rollouts of the same service at once.
  - The same module keeps the copy on the controller (run it with C(delegate_to) V(localhost)) and the copy on the
    traffic host; each copy has its own record and lock files in O(state_dir) of the host it runs on.
  - O(operation=begin) creates the record and takes the lock for this run, or resumes the unfinished rollout of the
    same version and returns the record so the caller can skip the steps already done (RV(next_step)).
    A different version while one is unfinished is refused unless O(force=true). The lock of another run that is
    still alive is refused with a message naming its start time and process; the lock of a run that is gone
    (stale) is taken over with a warning.
  - O(operation=step) records a step, its weight and verdict; O(operation=event) appends an event;
    O(operation=finish) sets the final status and releases the lock; O(operation=read) returns the record.
  - O(operation=plan) validates the step list once (RV(plan)) and changes nothing; O(operation=advance) reports
    what happened (O(event)) to the release engine, records it, and returns what to do next (RV(action)) - the
    C(canary.release.rollout) role only dispatches on it. The state diagram is in docs/rollout.md.
  - O(operation=hook) records that a hook of the release (O(hook) - V(before_canary), V(before_promote),
    V(after_promote) or V(after_rollback)) started, passed or failed (O(hook_status)) and returns what follows
    (RV(decision), RV(action)) - a failed V(before_canary) hook finishes the rollout V(aborted). See docs/changes.md.
  - The audit trail - O(by) says who or what made a decision; the record keeps it as C(by) on step entries and
    events and C(finished_by) on a finished record.
  - Files are replaced atomically (temporary file, C(fsync), C(rename), C(fsync) of the directory), and every
    operation runs under an exclusive C(flock) on a per-service mutex file, so concurrent runs never lose an update.
author:
  - canary.release maintainers (@canary-release)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
    description: On a local connection without C(become) or a task C(environment) (the controller's own record, the
      rollout role's default), the action plugin performs the request in the worker process - the same code, result
      and files, without the start-up of a module run. Otherwise the module runs on the host.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    description: Reports what would change (the would-be record in RV(record)) and writes nothing, not even the
      state directory.
  diff_mode:
    support: full
    description: The record before and after, as JSON.
  platform:
    platforms: posix
options:
  operation:
    description:
      - V(begin) starts a rollout of O(version) or resumes the unfinished one of the same version, and takes the lock.
        A record of O(version) that was already promoted is left alone (RV(already_promoted)) unless O(force=true).
      - V(step) makes O(step) the current step at O(weight) percent with an optional O(verdict) and O(reason).
        Recording what is already recorded changes nothing.
      - V(event) appends O(event) with a timestamp; always a change. It does not need the lock.
      - V(finish) sets O(status) and releases the lock. V(promoted), V(rolled_back) and V(aborted) finish the
        rollout; V(paused) ends this run but leaves the rollout unfinished, so that the next V(begin) of the same
        version resumes it (for example when an AWX approval node decides). Finishing with the status the record
        already has changes nothing.
      - V(read) returns the record and the lock; it never changes anything.
      - V(plan) validates O(steps) with O(pause), O(analysis), O(require_pass), O(max_duration) and
        O(steps_order) into RV(plan), naming every problem at once; it never changes anything.
      - V(advance) gives O(event) to the release engine with the O(plan), records the transition (a step verdict,
        or the pause of a held run, which releases the lock) and returns RV(action), RV(outcome) and the record.
        Reporting the same event twice changes nothing the second time. It needs the lock held by O(run_id).
      - V(hook) records O(hook) with O(hook_status) (and O(reason), O(hook_tasks)) as an event and decides what a
        failure means (RV(decision)) - V(abort) for V(before_canary) (the record is finished V(aborted), the lock
        released), V(rollback) for V(before_promote), V(report) for V(after_promote) and V(after_rollback).
      - V(step) and V(finish) need the lock - held by the run named in O(run_id), or free when O(run_id) is omitted
        (a one-shot call such as a manual rollback). A lock held by another live run is refused.
    type: str
    required: true
    choices: [begin, step, event, finish, read, plan, advance, hook]
  service:
    description:
      - Name of the service; names the files C(<service>.json) and C(<service>.lock) in O(state_dir).
      - 1 to 128 letters, digits and C(. _ @ + -), starting with a letter or digit.
    type: str
    required: true
  state_dir:
    description:
      - Directory of the records and locks on the host the module runs on, created with mode C(0700) when needed.
      - When omitted, C($XDG_STATE_HOME/canary-release) if C(XDG_STATE_HOME) is set, else
        C(~/.local/state/canary-release) of the user the module runs as (for example C(/root/.local/state/canary-release)
        with C(become)). Pick a directory that outlives the run - in AWX, the execution environment of the
        controller is thrown away after each job, so the copy on the traffic host is the one that survives there.
    type: path
  version:
    description:
      - The version being rolled out. Required with O(operation=begin).
      - With the other operations, optional; when given it must be the version of the record (a guard against
        acting on the wrong rollout).
    type: str
  previous_version:
    description:
      - The stable version the rollout replaces, with O(operation=begin) for a new record.
      - When omitted, the stable version the last record of the service left - its version when it was promoted,
        else its previous version.
    type: str
  run_id:
    description:
      - Identifies this run (one ansible-playbook run) as the lock holder.
      - With O(operation=begin), optional - a new random id is returned as RV(run_id) when omitted; pass the
        controller's RV(run_id) to the V(begin) on the traffic host so both copies name the same run.
      - With V(step) and V(finish), the RV(run_id) that V(begin) returned; the lock must be held by it.
    type: str
  replaces_run_id:
    description:
      - With O(operation=begin), a run the caller knows to be gone - a lock held by it from another host (which
        cannot be checked from here) is taken over with a warning. A holder on this host is checked as always.
      - For the copy on the traffic host after a resume - pass the C(run_id) of RV(taken_over) from the V(begin) on the
        controller, which could check that the old run's process is gone; the traffic host cannot.
    type: str
  seed_record:
    description:
      - With O(operation=begin), a copy of the record of O(service) read from another host, for example the copy
        on the traffic host when the controller's state directory is new (an AWX job runs in a fresh execution
        environment).
      - When this host has no record, or one that was updated earlier (C(updated_at)), V(begin) decides from the
        seed - resumes it, refuses another version - and writes it here; RV(seeded) says so, with a warning.
        Otherwise the seed is ignored.
    type: dict
  force:
    description:
      - With O(operation=begin), replace an unfinished rollout of another version, or start again a version that
        was already promoted. The replaced rollout is named in an event and a warning.
      - It does not take a lock held by another live run; see O(break_lock).
    type: bool
    default: false
  break_lock:
    description:
      - Take the lock even when its holder may still be alive, with a warning.
      - For a holder on another host, which cannot be checked from here, once you know that run is gone.
    type: bool
    default: false
  lock_stale_after:
    description:
      - A lock held from another host counts as stale when it was not refreshed (by V(begin) or V(step)) for this
        many seconds. Set it above the longest pause or analysis of a step. V(0) means never.
      - Locks held from this host do not need it - their holder process is checked directly.
    type: int
    default: 0
  owner:
    description:
      - Who holds the lock, with O(operation=begin) (and V(step) or V(finish) when they take over a stale lock).
      - When omitted - the outermost C(ansible-playbook) process among the module's ancestors, this host's name and
        boot id. That is the run itself when the module runs on the controller.
      - On the traffic host pass the controller's, the RV(owner) that V(begin) returned there, so that the
        lock names the run's process; a holder on another host cannot be checked (see O(lock_stale_after),
        O(break_lock)).
    type: dict
    suboptions:
      pid:
        description: Process id of the run.
        type: int
      host:
        description: Host name of the process.
        type: str
      boot_id:
        description: Boot id of that host (C(/proc/sys/kernel/random/boot_id)); a different one means it rebooted.
        type: str
      pid_start:
        description: Start time of the process (field 22 of C(/proc/<pid>/stat)); guards against a reused pid.
        type: str
  step:
    description:
      - Index of the step, from 0, with O(operation=step).
    type: int
  weight:
    description:
      - Canary percent of the step, 0 to 100, with O(operation=step).
    type: float
  verdict:
    description:
      - Verdict of the step, with O(operation=step). Any one-line string is kept; the C(canary.release.rollout) role
        records these.
      - No verdict - the step began; its weight is applied and it is being watched.
      - V(pass) - the judge passed and the step held for its pause. Done.
      - V(watched) - a step without analysis held for its pause; or, only with O(require_pass=false), the step held
        for its whole pause without a failure and with data from every metric while the judge was still undecided.
        Done.
      - V(approved) - a human approved the step, after a hold or at an approval gate. Done.
      - V(skipped) - the step was not run. Done.
      - V(continue) - the judge is still undecided.
      - V(awaiting_approval) - the step is over but its approval gate waits for a human.
      - V(inconclusive) - the analysis deadline came undecided or without data; the rollout holds for a human.
      - V(fail) - the judge failed the canary (the rollout is rolled back); V(rejected) - a human rejected it.
      - A step that is done (V(pass), V(watched), V(approved), V(skipped)) is passed over by RV(next_step) when
        the rollout resumes; any other verdict makes the resumed rollout continue with that step.
    type: str
  reason:
    description:
      - One-line reason of the verdict (O(operation=step)) or of the final status (O(operation=finish)).
    type: str
  status:
    description:
      - With O(operation=finish), required - V(promoted), V(rolled_back), V(aborted) or V(paused).
      - With O(operation=step), optional - V(running) or V(paused), for example while a human decides.
    type: str
    choices: [running, paused, promoted, rolled_back, aborted]
  event:
    description:
      - With O(operation=event), the event text (a string); whitespace is collapsed to keep it on one line.
      - With O(operation=advance), what happened (a dict with C(kind)) - V(begun) (after V(begin)); V(deployed)
        (the canary hosts run the new version); V(traffic_set) with C(step) and C(weight) (the percent the backend
        now reports); V(judged) with C(step), C(verdict) (V(pass), V(continue), V(fail) or V(inconclusive), as
        the analysis returned it) and C(reason); V(waited) with C(step) (a step without analysis held its
        pause); V(decided) with C(step), C(decision) (V(approve) or V(reject)) and C(source) (for example
        C(at the prompt)); V(held) with C(step) and C(reason) (the run ends waiting for a human).
      - An event that does not fit the record (another step than the current one, a weight the plan does not
        give, anything but V(begun) after the rollout finished) fails and writes nothing.
    type: raw
  steps:
    description:
      - With O(operation=plan), the steps (C(rollout_steps)) - a list of mappings with C(weight) (canary percent,
        above 0 and at most 100), and optionally C(pause) (whole seconds, default O(pause)), C(analysis) (judge
        the canary during the step; default O(analysis), and false at 100 percent) and C(approval) (wait for a
        human after the step).
      - Weights must increase from step to step unless O(steps_order=any).
      - Empty or omitted - the steps of O(preset), or without one 5, 25, 50 and 100 percent.
    type: list
    elements: raw
  preset:
    description:
      - With O(operation=plan), a named step list (C(rollout_preset)), used when O(steps) is empty -
        V(canary_10_5m), V(canary_10_15m), V(canary_10_30m) (10 percent for 5, 15 or 30 minutes, then 100 percent;
        any C(canary_<percent>_<minutes>m)), V(linear_10_every_1m), V(linear_10_every_3m) (10 percent more every 1
        or 3 minutes; any C(linear_<percent>_every_<minutes>m)), V(all_at_once) (100 percent at once) or
        V(progressive) (5, 10, 25 and 50 percent for 30 minutes each, then 100 percent). CodeDeploy's names
        (C(Canary10Percent5Minutes), C(CodeDeployDefault.ECSLinear10PercentEvery3Minutes), C(AllAtOnce)) mean the
        same.
      - The 100 percent step of a preset has no pause; the steps below it are judged unless O(analysis=false).
      - An unknown name is refused, even beside O(steps) (which then wins, with a warning).
    type: str
    default: ''
  pause:
    description: With O(operation=plan), the pause of a step that sets none, whole seconds.
    type: raw
    default: 60
  analysis:
    description: With O(operation=plan), whether steps below 100 percent judge the canary unless they say otherwise.
    type: bool
    default: true
  require_pass:
    description:
      - With O(operation=plan), whether the release is promoted only on evidence - a judged step that is still
        undecided at the end of its pause keeps being judged until the judge passes, fails or reaches its deadline
        (V(inconclusive), which holds for a person); it never ends on time alone. A plan with no judged step and
        no approval gate is refused, since nothing but the pauses would decide the promotion.
      - V(false) is the explicit opt-out, promotion on timer - an undecided judged step with data from every
        metric ends at the end of its pause as V(watched).
    type: bool
    default: true
  max_duration:
    description:
      - With O(operation=plan), the analysis deadline of each judged step, from the step's start
        (C(analysis_max_duration)) - seconds, or a number with C(s), C(m), C(h) or C(d). A judged step that pauses
        longer gets a warning.
    type: str
    default: 30m
  steps_order:
    description:
      - With O(operation=plan), V(increasing) refuses a weight that is not above the one of the step before;
        V(any) allows any order.
    type: str
    choices: [increasing, any]
    default: increasing
  plan:
    description: With O(operation=advance), the RV(plan) that O(operation=plan) returned.
    type: dict
  approval:
    description:
      - With O(operation=advance), C(rollout_approval) - the decision for a step that the last run left waiting
        for a human (V(approve) or V(reject)); ignored with a warning when no step is held.
    type: str
    choices: ['', approve, reject]
    default: ''
  approval_mode:
    description:
      - With O(operation=advance), how a held step waits for a human (the C(mode) of RV(action)) - V(prompt) asks on the
        terminal, V(end) ends the run with the rollout paused; V(auto) is V(end) with O(awx=true), else V(prompt).
    type: str
    choices: [auto, prompt, end]
    default: auto
  awx:
    description: With O(operation=advance), whether the run is an AWX or Tower job (no terminal to prompt on).
    type: bool
    default: false
  record:
    description:
      - With O(operation=advance) or V(hook) in check mode only - the RV(record) the previous (simulated) operation
        returned, since check mode writes nothing. Omitted, the record is the one V(begin) would leave.
    type: dict
  hook:
    description: With O(operation=hook), the hook point.
    type: str
    choices: [before_canary, before_promote, after_promote, after_rollback]
  hook_status:
    description: With O(operation=hook), V(start), V(ok) or V(failed) (with O(reason), the error).
    type: str
    choices: [start, ok, failed]
  hook_tasks:
    description: With O(operation=hook), the hook's task file, named in the event.
    type: str
    default: ''
  by:
    description:
      - Who or what made the decision (the audit trail), with O(operation=advance) (the person behind the run,
        recorded with an approval or a rejection), V(finish) and V(event).
      - Either C(kind) (V(judge), V(person) or V(engine)), C(name) and optional C(reason); or the person behind the
        run as C(awx_user_name), C(tower_user_name) and C(controller_user) - the AWX (or Tower) user when set,
        else the controller user (the OS user running C(ansible-playbook)).
      - Empty, nothing is said (as in records written before the audit trail).
    type: dict
    default: {}
  hosts:
    description:
      - With O(operation=event), the stable hosts the event is about - a list of mappings with C(host) (the name),
        C(state) (V(deploying) - its promotion batch is under way; V(promoted), V(unhealthy) - it runs C(version) but
        failed its health check; V(failed) or V(unreachable) - its version is unknown), C(version) (empty when
        unknown), C(batch) and C(message); merged into the record's per-host map RV(record.hosts) in the same write.
      - The C(canary.release.promote) role writes it before and after every batch, so the record says which stable
        host runs which version even when a run dies during a batch, and a re-run skips the hosts already promoted.
    type: list
    elements: dict
notes:
  - The lock is a file, not a process - it outlives the module. C(ansible-playbook) killed with SIGKILL leaves it
    behind; the next V(begin) on the same host finds the process gone and takes it over with a warning.
  - When the module finds no C(ansible-playbook) among its ancestors (it runs through SSH, even to the controller
    itself) and O(owner) is not given, the lock names no process; it is then only taken over with O(break_lock),
    O(lock_stale_after) or O(replaces_run_id). Run it on the controller with a local connection (C(delegate_to)
    V(localhost)) and pass the controller's RV(owner) to the copy on the traffic host.
  - Records keep the last 1000 events; older ones are dropped and counted in C(events_dropped).
seealso:
  - module: canary.release.nginx_weights
  - module: canary.release.alb_weights
'''

EXAMPLES = r'''
- name: Begin (or resume) the rollout of 1.4.0 on the controller
  canary.release.rollout_state:
    operation: begin
    service: web
    version: "1.4.0"
    state_dir: /var/lib/canary-release
  delegate_to: localhost
  run_once: true
  register: rollout

- name: Keep a copy on the traffic host, held by the same run
  canary.release.rollout_state:
    operation: begin
    service: web
    version: "1.4.0"
    run_id: "{{ rollout.run_id }}"
    owner: "{{ rollout.owner }}"
    # after a crash the controller found the old run gone; the traffic host cannot check it itself
    replaces_run_id: "{{ rollout.taken_over.run_id | default(omit) }}"
  delegate_to: "{{ groups['load_balancers'][0] }}"
  run_once: true

- name: Record step 1 at 25 % with its verdict
  canary.release.rollout_state:
    operation: step
    service: web
    run_id: "{{ rollout.run_id }}"
    step: 1
    weight: 25
    verdict: pass
    reason: error ratio within 1.2x of the baseline
    state_dir: /var/lib/canary-release
  delegate_to: localhost
  run_once: true

- name: Log an event
  canary.release.rollout_state:
    operation: event
    service: web
    event: waiting for approval
    state_dir: /var/lib/canary-release
  delegate_to: localhost
  run_once: true

- name: Roll back - finish and release the lock
  canary.release.rollout_state:
    operation: finish
    service: web
    run_id: "{{ rollout.run_id }}"
    status: rolled_back
    reason: error ratio 5.1x the baseline
    state_dir: /var/lib/canary-release
  delegate_to: localhost
  run_once: true

- name: Check the steps once
  canary.release.rollout_state:
    operation: plan
    service: web
    steps: [{weight: 10}, {weight: 50, approval: true}, {weight: 100}]
    pause: 120
    max_duration: 30m
  register: rollout_plan

- name: Check a preset's steps - 10 percent for 15 minutes, then 100 percent
  canary.release.rollout_state:
    operation: plan
    service: web
    preset: canary_10_15m

- name: Tell the engine that the rollout began, and get the first action
  canary.release.rollout_state:
    operation: advance
    service: web
    version: "1.4.0"
    run_id: "{{ rollout.run_id }}"
    plan: "{{ rollout_plan.plan }}"
    event: {kind: begun}
    approval: "{{ rollout_approval | default('') }}"
    state_dir: /var/lib/canary-release
  delegate_to: localhost
  run_once: true
  register: next_action

- name: Report the weight the backend applied for step 0
  canary.release.rollout_state:
    operation: advance
    service: web
    version: "1.4.0"
    run_id: "{{ rollout.run_id }}"
    plan: "{{ rollout_plan.plan }}"
    event: {kind: traffic_set, step: 0, weight: 10.0}
    state_dir: /var/lib/canary-release
  delegate_to: localhost
  run_once: true

- name: Show the record
  canary.release.rollout_state:
    operation: read
    service: web
    state_dir: /var/lib/canary-release
  delegate_to: localhost
  register: current
'''

RETURN = r'''
record:
  description:
    - The record after the operation (in check mode, what it would be); V(null) when O(operation=read) finds none.
  returned: when O(operation) is not V(plan)
  type: dict
  contains:
    schema:
      description: Version of the record format, 1.
      type: int
      sample: 1
    service:
      description: The service.
      type: str
      sample: web
    version:
      description: The version being rolled out.
      type: str
      sample: 1.4.0
    previous_version:
      description: The stable version it replaces, null when unknown.
      type: str
      sample: 1.3.2
    status:
      description: V(running), V(paused), V(promoted), V(rolled_back) or V(aborted).
      type: str
      sample: running
    run_id:
      description: The run that began or last resumed the rollout.
      type: str
      sample: 6f1c0a4e9b8d4f7e8a1b2c3d4e5f6a7b
    started_at:
      description: When the rollout began, UTC, ISO 8601.
      type: str
      sample: '2025-01-31T12:00:00Z'
    updated_at:
      description: Last change.
      type: str
      sample: '2025-01-31T12:05:00Z'
    finished_at:
      description: When it was promoted, rolled back or aborted; null before.
      type: str
      sample: null
    step:
      description: Index of the current step, null before the first.
      type: int
      sample: 1
    weight:
      description: Canary percent of the current step, null before the first.
      type: float
      sample: 25.0
    reason:
      description: Why it finished, as given to O(operation=finish).
      type: str
      sample: null
    steps:
      description:
        - The steps recorded, by index - C(index), C(weight), C(verdict) (see O(verdict)), C(reason), C(at) (UTC, the
          entry's last change) and C(started_at) (UTC, when the step began at its weight; kept while the same step is
          recorded again at the same weight, so it survives a resume).
        - Entries written by older versions of this module have no C(started_at); readers use C(at) then.
      type: list
      elements: dict
      sample: [{index: 0, weight: 5.0, verdict: pass, reason: null, at: '2025-01-31T12:02:00Z', started_at: '2025-01-31T12:01:00Z'}]
    events:
      description: Events, oldest first, each C(at) (UTC) and a one-line C(message).
      type: list
      elements: dict
      sample: [{at: '2025-01-31T12:00:00Z', message: 'web 1.4.0: rollout started (previous version 1.3.2) by run 6f1c'}]
    events_dropped:
      description: Number of old events removed to keep the last 1000.
      type: int
      sample: 0
    hosts:
      description:
        - The promotion's stable hosts (absent until the first batch), by name - C(version) (null when unknown),
          C(state) (see O(hosts)), C(batch), C(message) and C(at) (UTC, the entry's last change). A host not in it
          still runs the previous version.
      type: dict
      sample: {stable-1: {version: 1.4.0, state: promoted, batch: 1, message: '', at: '2025-01-31T12:30:00Z'}}
before:
  description: The record before the operation, null when there was none.
  returned: when O(operation) is not V(plan)
  type: dict
lock:
  description:
    - The lock after the operation, null when free. With O(operation=read), also C(holder_state) (V(live),
      V(stale) or V(unknown) for a holder on another host) and C(holder_reason).
  returned: when O(operation) is not V(plan)
  type: dict
  contains:
    service:
      description: The service.
      type: str
    run_id:
      description: The run holding the lock.
      type: str
    version:
      description: The version it rolls out.
      type: str
    pid:
      description: Process id of the run (its C(ansible-playbook)), null when unknown.
      type: int
    host:
      description: Host name of that process.
      type: str
    boot_id:
      description: Boot id of that host.
      type: str
    pid_start:
      description: Start time of the process in clock ticks since boot.
      type: str
    started_at:
      description: Since when the run holds the lock, UTC.
      type: str
    refreshed_at:
      description: Last V(begin) or V(step) of the holder, UTC.
      type: str
owner:
  description: The lock holder's process - the C(pid), C(host), C(boot_id) and C(pid_start) of RV(lock), as
    O(owner) takes them; null when the lock is free.
  returned: when O(operation) is not V(plan)
  type: dict
  sample: {pid: 4242, host: ctl1, boot_id: affdb27e-2911-4f42-bbe7-08904ba575f2, pid_start: '447781'}
run_id:
  description: The run that holds (or last held) the lock; pass it to the later operations of the run.
  returned: when O(operation) is not V(plan)
  type: str
  sample: 6f1c0a4e9b8d4f7e8a1b2c3d4e5f6a7b
message:
  description:
    - A one-line progress message for the operation, also appended to the events when something changed.
    - With O(operation=advance), the event text of what was recorded (or of a promotion), null when nothing was.
  returned: always
  type: str
  sample: 'web 1.4.0: step 1 at 25 %, verdict pass'
resumed:
  description: Whether O(operation=begin) resumed an unfinished rollout of the same version.
  returned: when O(operation=begin)
  type: bool
already_promoted:
  description: Whether O(operation=begin) found O(version) already promoted and did nothing.
  returned: when O(operation=begin)
  type: bool
seeded:
  description: Whether O(operation=begin) continued from O(seed_record) because this host had no record or an older one.
  returned: when O(operation=begin)
  type: bool
next_step:
  description:
    - Index of the step to run next - the current step, or the one after it when its verdict completed it.
      0 for a new rollout; null when already promoted.
  returned: when O(operation) is V(begin), V(step) or V(read)
  type: int
  sample: 2
taken_over:
  description: The stale (or broken) lock that was taken over, null when none; same keys as RV(lock).
  returned: when O(operation) is V(begin), V(step), V(finish) or V(advance)
  type: dict
  sample: {run_id: 0b9e5c2d7a1f4e3b9c8d7e6f5a4b3c2d, pid: 4100, host: ctl1, started_at: '2025-01-31T11:50:00Z'}
exists:
  description: Whether a record exists.
  returned: when O(operation=read)
  type: bool
record_path:
  description: The record file.
  returned: when O(operation) is not V(plan)
  type: str
  sample: /root/.local/state/canary-release/web.json
lock_path:
  description: The lock file.
  returned: when O(operation) is not V(plan)
  type: str
  sample: /root/.local/state/canary-release/web.lock
plan:
  description:
    - The validated plan, with O(operation=plan) - pass it to O(operation=advance).
  returned: when O(operation=plan)
  type: dict
  contains:
    steps:
      description: The steps - C(index), C(weight) (percent, float), C(pause) (seconds), C(analysis), C(approval).
      type: list
      elements: dict
      sample: [{index: 0, weight: 10.0, pause: 60, analysis: true, approval: false}]
    require_pass:
      description: O(require_pass).
      type: bool
    max_duration:
      description: The analysis deadline of each judged step, from the step's start, in seconds.
      type: float
      sample: 1800.0
    steps_order:
      description: O(steps_order).
      type: str
    judged_seconds:
      description: The pauses up to and including the last judged step, in seconds.
      type: int
      sample: 120
    warnings:
      description: Problems that do not stop the rollout (also issued as warnings).
      type: list
      elements: str
action:
  description:
    - 'What to do next, with O(operation=advance) - a dict with C(kind) and C(label) (for example
      C(web 1.4.0: step 0 at 10 %)).'
    - V(deploy) - put the new version on the canary hosts, then report V(deployed).
    - V(traffic) - send C(weight) percent to the canary for step C(step), then report V(traffic_set).
    - V(analyse) - judge step C(step) from C(start_time) (UTC, the first step's start) until C(stop_after)
      seconds after it (the end of the step's pause), with C(restarts) (UTC, the start of every step after the
      first up to this one - a pass is judged on this step's own data; empty in check mode); C(until_decided)
      (wait for a decision), C(max_duration), C(deadline_extension) (seconds after C(start_time) of the newest
      approval) and C(deadline) (their sum); then report V(judged).
    - V(wait) - a step without analysis waits C(seconds) more, then report V(waited).
    - V(approve) - step C(step) waits for a human (C(reason)); C(mode) V(prompt) asks (report V(decided), or
      V(held) without an answer), V(end) ends the run (report V(held)).
    - V(rollback) - roll the canary back for C(reason) (the rollback role finishes the record).
    - V(promote) - every step is done; C(message) announces it (the promote role finishes the record).
    - V(done) - nothing more for this run; C(outcome) V(held), V(already_promoted), V(promoted), V(rolled_back)
      or V(aborted), and C(reason).
    - With O(operation=hook), the action that replaces the role's after a failed hook (V(done) with C(outcome)
      V(aborted), or V(rollback)); null otherwise.
  returned: when O(operation) is V(advance) or V(hook)
  type: dict
  sample: {kind: traffic, step: 1, weight: 50.0, label: 'web 1.4.0: step 1 at 50 %'}
outcome:
  description:
    - Where the release stands after O(operation=advance) - V(running), V(held), V(rolled_back) (a rollback is
      next), V(promoting) (a promotion is next), V(promoted), V(already_promoted) or V(aborted).
  returned: when O(operation=advance)
  type: str
  sample: running
write:
  description:
    - What O(operation=advance) recorded (in check mode, would record) - C(operation) V(step) with C(step),
      C(weight), C(verdict) and C(reason), or V(finish) with C(status) V(paused) and C(reason); null when
      the record did not change.
  returned: when O(operation=advance)
  type: dict
state:
  description:
    - The engine's state before O(operation=advance) - V(new), V(watching), V(step_done), V(complete),
      V(awaiting_approval), V(inconclusive), V(failed), V(held), V(promoted), V(rolled_back) or V(aborted).
  returned: when O(operation=advance)
  type: str
  sample: watching
state_after:
  description: The engine's state after O(operation=advance), as RV(state).
  returned: when O(operation=advance)
  type: str
  sample: step_done
decision:
  description:
    - What follows the hook, with O(operation=hook) - V(continue) (it started or passed), V(abort) (a failed
      V(before_canary) hook; the record is finished V(aborted)), V(rollback) (a failed V(before_promote) hook) or
      V(report) (a failed V(after_promote) or V(after_rollback) hook).
  returned: when O(operation=hook)
  type: str
  sample: continue
finish:
  description: The status the record was finished with by O(operation=hook) (V(aborted)), or null.
  returned: when O(operation=hook)
  type: str
'''


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.canary.release.plugins.module_utils._rollout.operation import (
    ARGUMENT_SPEC,
    REQUIRED_IF,
    OperationFailed,
    perform,
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True)
    try:
        result, warnings = perform(module.params, check_mode=module.check_mode, diff=module._diff)
    except OperationFailed as error:
        module.fail_json(msg=error.msg, **error.details)
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
