# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The words of a release, defined once: record statuses, step verdicts, events, actions and outcomes.

Every other file of the engine, the module and the roles use these strings; nothing else defines them.
"""

# --- record statuses (``record.status``) ------------------------------------------------------------------------
# running       a run holds the lock and walks the steps
# paused        a run ended waiting for a human (lock released); the next begin of the same version resumes it
# promoted      the new version runs everywhere                                                      (finished)
# rolled_back   the canary was rolled back to the previous version                                  (finished)
# aborted       given up by hand                                                                     (finished)
RUNNING = 'running'
PAUSED = 'paused'
PROMOTED = 'promoted'
ROLLED_BACK = 'rolled_back'
ABORTED = 'aborted'
STATUSES = (RUNNING, PAUSED, PROMOTED, ROLLED_BACK, ABORTED)
UNFINISHED = (RUNNING, PAUSED)
FINISHED = (PROMOTED, ROLLED_BACK, ABORTED)
# what ``record_step`` may set, and what ``finish`` may set
STEP_STATUSES = UNFINISHED
FINISH_STATUSES = FINISHED + (PAUSED,)

# --- step verdicts (``record.steps[].verdict``) ------------------------------------------------------------------
#   None                the step began: its weight is applied and it is being watched
#   pass                the judge passed and the step held for its pause                            (complete)
#   watched             a step without analysis held for its pause; or, only with the opt-out
#                       rollout_require_pass: false, a judged step held for its whole pause without a
#                       failure, every metric reporting data, while the judge was still undecided    (complete)
#   approved            a human approved the step (after a hold or at an approval gate)              (complete)
#   skipped             the step was not run                                                         (complete)
#   continue            the judge is still undecided (the step is not done; older records only)
#   awaiting_approval   the step is done but its approval gate waits for a human                     (held)
#   inconclusive        the analysis deadline came undecided or without data: held for a human       (held)
#   fail                the judge failed the canary: rolled back                                     (failed)
#   rejected            a human rejected the step: rolled back                                       (failed)
# Any other string is kept as given and counts as "not done": a resumed rollout runs that step again.
PASS = 'pass'
WATCHED = 'watched'
APPROVED = 'approved'
SKIPPED = 'skipped'
CONTINUE = 'continue'
AWAITING_APPROVAL = 'awaiting_approval'
INCONCLUSIVE = 'inconclusive'
FAIL = 'fail'
REJECTED = 'rejected'
# A step whose verdict is one of these is done: a resumed rollout continues with the next step.
COMPLETE_VERDICTS = (PASS, WATCHED, APPROVED, SKIPPED)
# A step whose verdict is one of these waits for a human (rollout_approval, the prompt or an AWX approval).
HELD_VERDICTS = (AWAITING_APPROVAL, INCONCLUSIVE)
# A step whose verdict is one of these ends the rollout with a rollback.
FAILED_VERDICTS = (FAIL, REJECTED)

# The judge's raw verdicts (the analysis module), as the ``judged`` event carries them.
JUDGE_VERDICTS = (PASS, CONTINUE, FAIL, INCONCLUSIVE)
# A human's decisions (the ``decided`` event, ``rollout_approval``).
DECISIONS = ('approve', 'reject')

# --- events: what happened, the input of the engine (``{'kind': ...}``) ------------------------------------------
BEGUN = 'begun'              # begin took the lock (a new rollout, a resume, or an already promoted version)
DEPLOYED = 'deployed'        # the canary hosts run the new version
TRAFFIC_SET = 'traffic_set'  # {step, weight}: the backend now sends ``weight`` percent to the canary
JUDGED = 'judged'            # {step, verdict, reason}: the analysis ended with the judge's verdict
WAITED = 'waited'            # {step}: a step without analysis held for its pause
DECIDED = 'decided'          # {step, decision, source}: a human approved or rejected the held step
HELD = 'held'                # {step, reason}: the run ends waiting for a human
EVENTS = (BEGUN, DEPLOYED, TRAFFIC_SET, JUDGED, WAITED, DECIDED, HELD)

# --- actions: what to do next, the output of the engine (``{'kind': ...}``) --------------------------------------
DEPLOY = 'deploy'        # put the new version on the canary hosts
TRAFFIC = 'traffic'      # {step, weight}: send ``weight`` percent to the canary
ANALYSE = 'analyse'      # {step, start_time, stop_after, ...}: judge the canary for the step's time
WAIT = 'wait'            # {step, seconds}: hold a step without analysis for the rest of its pause
APPROVE = 'approve'      # {step, reason, mode}: ask a human (prompt) or end the run held (mode end)
ROLLBACK = 'rollback'    # {reason}: roll the canary back (the rollback role finishes the record)
PROMOTE = 'promote'      # {message}: every step is done; the promote role finishes the record
DONE = 'done'            # {outcome, reason}: nothing more to do in this run
ACTIONS = (DEPLOY, TRAFFIC, ANALYSE, WAIT, APPROVE, ROLLBACK, PROMOTE, DONE)

# --- outcomes: where the release stands after a transition (AWX stats, exit status) ------------------------------
OUTCOME_RUNNING = 'running'
OUTCOME_HELD = 'held'
OUTCOME_ROLLED_BACK = 'rolled_back'
OUTCOME_PROMOTING = 'promoting'
OUTCOME_PROMOTED = 'promoted'
OUTCOME_ALREADY_PROMOTED = 'already_promoted'
OUTCOME_ABORTED = 'aborted'
OUTCOMES = (OUTCOME_RUNNING, OUTCOME_HELD, OUTCOME_ROLLED_BACK, OUTCOME_PROMOTING, OUTCOME_PROMOTED,
            OUTCOME_ALREADY_PROMOTED, OUTCOME_ABORTED)

# --- how a held step waits for a human -----------------------------------------------------------------------
APPROVAL_MODES = ('auto', 'prompt', 'end')  # rollout_approval_mode
HOLD_MODES = ('prompt', 'end')              # what ``auto`` becomes: end in AWX, else prompt
