"""Queueing and running a study's trials: what ``recommend``, ``compose`` and ``lrkit worker`` share.

- :func:`queue` puts one trial of a method (an optimizer, its arguments, a policy, how the LR is
  applied) with a seed into the study, unless the same training is already there (run, running or
  waiting), so every queueing call is idempotent and a rerun of a command continues its study.
- :func:`queue_yardsticks`: the task's default and the baselines, on every judging seed.
- :func:`run_study`: run trials until the study has its candidates and nothing is queued or running;
  safe from several processes at once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from lrkit.lrbench.baselines import Method, baseline_method
from lrkit.lrbench.counting import claimed, counted
from lrkit.lrbench.interrupts import optuna_bookkeeping, stop_when_interrupted
from lrkit.lrbench.objective import Objective, trial_key
from lrkit.lrbench.storage import (ATTR_BASELINE, ATTR_CURVE, ATTR_DUPLICATE_OF, ATTR_FAMILY,
                                   ATTR_LR_DRIVER, ATTR_OPT_KWARGS, ATTR_OPTIMIZER, ATTR_REPEAT, ATTR_ROLE, ATTR_SEED,
                                   ATTR_SPEC, ATTR_SURPLUS, StudyConfig)
from lrkit.lrbench.training import optimizer_setup

#: a study stops sampling when this many candidates in a row repeated trainings already run
MAX_DUPLICATES_IN_A_ROW = 20


def _alive_keys(study: Any) -> set[tuple[str, int]]:
    """(curve key, seed) of every trial that ran, runs or waits, and of queued trials (by their method)."""
    from optuna.trial import TrialState

    alive = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    return {(t.user_attrs.get(ATTR_CURVE), t.user_attrs.get(ATTR_SEED))
            for t in study.get_trials(deepcopy=False, states=alive)}


def queue(study: Any, config: StudyConfig, method: Method, seed: int, role: str, *, family: str = "",
          baseline: str | None = None, repeat: bool = False, extra: dict[str, Any] | None = None,
          have: set[tuple[str, int]] | None = None) -> bool:
    """Queue one trial of ``method`` with ``seed`` unless the same training is already there; True if queued."""
    from lrkit.lrbench.search_space import family_of

    extra = extra or {}
    key = trial_key(method, config.budget, extra.get("lrkit_parent"), extra.get("lrkit_until"))
    have = _alive_keys(study) if have is None else have
    if (key, seed) in have:
        return False
    attrs = {ATTR_ROLE: role, ATTR_SPEC: method.spec, ATTR_OPTIMIZER: method.optimizer,
             ATTR_OPT_KWARGS: method.optimizer_kwargs, ATTR_LR_DRIVER: method.lr_driver, ATTR_SEED: seed,
             ATTR_CURVE: key, ATTR_FAMILY: family or family_of(method.spec), ATTR_REPEAT: repeat, **extra}
    if baseline:
        attrs[ATTR_BASELINE] = baseline
    study.enqueue_trial({}, user_attrs=attrs)
    have.add((key, seed))
    return True


def default_method_of(config: StudyConfig, task: Any) -> Method:
    """The task's default: its policy with its optimizer and the task's arguments (none of the user's)."""
    name, kwargs = optimizer_setup(task, replace(config, optimizer_kwargs={}), config.optimizer)
    return Method(name, kwargs, config.default_spec)


def queue_yardsticks(study: Any, config: StudyConfig, task: Any) -> int:
    """Queue the task's default and every baseline on every judging seed (once each); returns how many."""
    have = _alive_keys(study)
    queued = 0
    for seed in config.judging_seeds:
        queued += queue(study, config, default_method_of(config, task), seed, "default", have=have)
        for name in config.baselines:
            queued += queue(study, config, baseline_method(name, config, task), seed, "baseline", baseline=name,
                            have=have)
    return queued


def _duplicates_in_a_row(study: Any) -> int:
    from optuna.trial import TrialState

    n = 0
    for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)),
                    key=lambda t: t.number, reverse=True):
        if t.user_attrs.get(ATTR_ROLE, "candidate") != "candidate" or t.user_attrs.get(ATTR_REPEAT):
            continue
        if t.user_attrs.get(ATTR_DUPLICATE_OF) is None:
            break
        n += 1
    return n


# ---- running ------------------------------------------------------------------------------------------------
def run_study(study: Any, config: StudyConfig, task: Any, *, device: str = "cpu", progress: Any = None,
              runner: Callable[..., Any] | None = None, log: Callable[[str], None] | None = None,
              more_coming: Callable[[], bool] | None = None) -> int:
    """Run trials until the study has ``config.n_trials`` candidates and nothing queued; returns how many ran.

    Safe to call from several processes at once (each is a worker). A trial whose worker died is failed
    by the heartbeat check and re-queued; this call picks such re-queued trials up as well. With nothing
    left to start while trials still run elsewhere, it waits for them (checking their heartbeats), so a
    worker started right after another one died retries the dead one's trial instead of leaving it.
    With ``more_coming`` (a worker on a composition), it also keeps waiting while that returns True.
    """
    import time

    import optuna
    from optuna.trial import TrialState

    say = log or (lambda _msg: None)
    objective = Objective(task, config, device=device, prune=config.pruner != "none", runner=runner,
                          progress=progress)
    ran = 0

    def after(study_: Any, trial: Any) -> None:
        nonlocal ran
        ran += not trial.user_attrs.get(ATTR_SURPLUS)  # a surplus trial was not trained
        waiting = study_.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if (claimed(study_) >= config.n_trials and not waiting) or _duplicates_in_a_row(study_) >= MAX_DUPLICATES_IN_A_ROW:
            study_.stop()

    pause = min(2.0, float(getattr(getattr(study, "_storage", None), "heartbeat_interval", None) or 2.0))
    while True:
        optuna.storages.fail_stale_trials(study)
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if claimed(study) >= config.n_trials and not waiting:
            if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(pause)  # running elsewhere: wait until they finish or their heartbeat goes stale
                continue
            if more_coming is not None and more_coming():
                continue
            break
        if not waiting and _duplicates_in_a_row(study) >= MAX_DUPLICATES_IN_A_ROW:
            say(f"stopped sampling: the last {MAX_DUPLICATES_IN_A_ROW} candidates repeated trainings already run "
                "(the search space is exhausted at this budget; widen --families or the LR range)")
            break
        with optuna_bookkeeping():
            study.optimize(objective, n_trials=len(waiting) or max(1, config.n_trials - claimed(study)),
                           callbacks=[after, stop_when_interrupted], gc_after_trial=False)
    return ran


__all__ = ["MAX_DUPLICATES_IN_A_ROW", "default_method_of", "queue", "queue_yardsticks", "run_study"]
