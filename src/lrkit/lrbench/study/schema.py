"""The study's stored schema: every attribute key lrkit writes into an Optuna study or trial, and the
(de)serialisation of a trial's result. Nothing else spells a key: ``tests/test_layout.py`` fails on a
literal ``"lrkit_..."`` key in any other module, so renaming one is one edit here.

Study attributes: :data:`ATTR_CONFIG` (the :class:`~lrkit.lrbench.study.config.StudyConfig`),
:data:`ATTR_LR_RANGE_DETAILS` (how each LR range was found), :data:`ATTR_COMPOSE_DONE` (a composition
has finished), :data:`ATTR_VAL_CALIBRATION` (the validation target's offset). Trial attributes: what the
trial trains (role, spec, optimizer and its arguments, LR driver, seed, family, ...), its result once finished (:data:`ATTR_RESULT`, with flat copies of its
headline numbers in :data:`SUMMARY_ATTRS` that ``optuna-dashboard`` shows as columns), a failure's error
and traceback, a composition's stage, parent, position and fork state, and a search's decay fork.
"""

from __future__ import annotations

from typing import Any

# ---- study attributes --------------------------------------------------------------------------------------
ATTR_CONFIG = "lrkit_config"                     # the study's StudyConfig, as a dict
ATTR_LR_RANGE_DETAILS = "lrkit_lr_range_details"  # how each searched optimizer's LR range was found
ATTR_COMPOSE_DONE = "lrkit_compose_done"          # a composition: False while it queues stages, True once ended
ATTR_VAL_CALIBRATION = "lrkit_val_calibration"   # the validation target's offset (lrkit.lrbench.search.calibration)

# ---- trial attributes --------------------------------------------------------------------------------------
ATTR_RESULT = "lrkit_result"
ATTR_SPEC = "lrkit_spec"
ATTR_ROLE = "lrkit_role"         # "candidate", "default" (the task's default policy), "baseline" (a peer)
ATTR_REPEAT = "lrkit_repeat"     # True: another seed of a method the study already ran (not counted)
ATTR_SEED = "lrkit_seed"         # the training seed (default: the study's)
ATTR_FAMILY = "lrkit_family"
ATTR_OPTIMIZER = "lrkit_optimizer"
ATTR_OPT_KWARGS = "lrkit_optimizer_kwargs"
ATTR_LR_DRIVER = "lrkit_lr_driver"   # "policy" (PolicyLR) or "torch-onecycle"
ATTR_BASELINE = "lrkit_baseline"     # a baseline's name (lrkit.lrbench.study.baselines)
ATTR_CURVE = "lrkit_curve_key"       # what identifies the training: optimizer, arguments and LR curve
ATTR_DUPLICATE_OF = "lrkit_duplicate_of"  # the trial whose identical training this one reused
ATTR_REUSED_FROM = "lrkit_reused_from"  # a yardstick whose training another study of the storage ran: {"study", "trial"}
ATTR_LOOKUP = "lrkit_lookup"         # the study and trial a looked-up policy came from
ATTR_PORTFOLIO = "lrkit_portfolio"   # a candidate drawn from lrkit's shipped portfolio: the entry's name
ATTR_KNOBS = "lrkit_knobs"           # a sampled candidate: the optimizer arguments its knobs drew (lrkit.lrbench.search.space)
ATTR_WINDOW = "lrkit_window"         # a sampled candidate: the peak window [low, high] its LR was drawn from
ATTR_SURPLUS = "lrkit_surplus"       # True: sampled when the study already had its candidates (not trained)
ATTR_STAGE = "lrkit_stage"           # compose: the stage (0-based) a trial trains
ATTR_PARENT = "lrkit_parent"         # compose: the trial whose end state this one starts from (None: from scratch)
ATTR_UNTIL = "lrkit_until"           # compose: the update the stage ends at
ATTR_KIND = "lrkit_kind"             # compose: initial, continue, decay, shrink, switch, plateau
ATTR_STATE_FILE = "lrkit_state_file"  # compose: where the trial's end state was saved
ATTR_FORK = "lrkit_fork"             # a search's decay fork: {"parent": trunk trial, "at": update, "state": file}
ATTR_CHOICE = "lrkit_choice"         # compose: the trial's index among the segments its parent was offered
ATTR_ERROR = "lrkit_error"           # a FAIL trial: what its training raised ("ValueError: ...")
ATTR_TRACEBACK = "lrkit_traceback"   # a FAIL trial: the traceback of that error
ATTR_STATUS = "lrkit_status"                      # the result's status (flat copy)
ATTR_STEPS_TO_TARGET = "lrkit_steps_to_target"    # updates to the target on the judged split (flat copy)
ATTR_TEST_STEPS_TO_TARGET = "lrkit_test_steps_to_target"  # ... on test (flat copy)
ATTR_BEST_VAL_ACC = "lrkit_best_val_acc"          # the best validation accuracy (flat copy)
ATTR_BEST_TEST_ACC = "lrkit_best_test_acc"        # the best test accuracy (flat copy)
#: flat copies of a finished trial's headline numbers, for optuna-dashboard's columns: key -> result field
SUMMARY_ATTRS = {ATTR_STATUS: "status", ATTR_STEPS_TO_TARGET: "steps_to_target",
                 ATTR_TEST_STEPS_TO_TARGET: "test_steps_to_target", ATTR_BEST_VAL_ACC: "best_val_acc",
                 ATTR_BEST_TEST_ACC: "best_acc"}


def save_trial_result(trial, result_dict: dict[str, Any]) -> None:  # noqa: ANN001
    """Keep a trial's whole result (metrics, curve, spec, versions) in its user attributes, with flat
    copies of its headline numbers (:data:`SUMMARY_ATTRS`) for optuna-dashboard."""
    trial.set_user_attr(ATTR_RESULT, result_dict)
    for key, field in SUMMARY_ATTRS.items():
        trial.set_user_attr(key, result_dict.get(field))
