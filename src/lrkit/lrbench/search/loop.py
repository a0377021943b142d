"""The study loop: run a study's trials until it has its candidates and nothing is queued or running.

Safe from several processes at once (each is a worker). It stops sampling when the sampler keeps
proposing trainings already run (:func:`exhausted`) and stops with an error when the task itself is
broken (:func:`check_failures`).
"""

from __future__ import annotations

from typing import Any, Callable

from lrkit.errors import LRKitError
from lrkit.lrbench.search.objective import Objective
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.interrupts import TrialFailed, optuna_bookkeeping, stop_when_interrupted
from lrkit.lrbench.study.queue import claimed, counted
from lrkit.lrbench.study.schema import (ATTR_DUPLICATE_OF, ATTR_ERROR, ATTR_FORK, ATTR_REPEAT, ATTR_ROLE,
                                        ATTR_SURPLUS)

#: a study stops sampling when this many candidates in a row repeated trainings already run
MAX_DUPLICATES_IN_A_ROW = 20
#: ... or when this many candidates in all did, or as many as the candidates requested, whichever is more
MAX_DUPLICATES = 50
#: a study stops (an error) when this many trials in a row failed: the task itself is broken
MAX_FAILURES_IN_A_ROW = 5


def _sampled(study: Any) -> list[Any]:
    """The finished sampled candidates (not yardsticks, repeats, forks or surplus), newest first."""
    from optuna.trial import TrialState

    return [t for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)),
                              key=lambda t: t.number, reverse=True)
            if t.user_attrs.get(ATTR_ROLE, "candidate") == "candidate" and not t.user_attrs.get(ATTR_REPEAT)
            and not t.user_attrs.get(ATTR_SURPLUS) and t.user_attrs.get(ATTR_FORK) is None]


def exhausted(study: Any, config: StudyConfig) -> str | None:
    """Why the sampler should stop (it keeps proposing trainings already run), or None.

    A duplicate costs no training but a sampler's draw and a stored trial, and a narrow search space (a few
    families, RALR around one best policy) can propose nothing new for ever: the search stops after
    :data:`MAX_DUPLICATES_IN_A_ROW` duplicates in a row, or ``max(MAX_DUPLICATES, n_trials)`` in all.
    """
    sampled = _sampled(study)
    in_a_row = next((i for i, t in enumerate(sampled) if t.user_attrs.get(ATTR_DUPLICATE_OF) is None), len(sampled))
    total = sum(t.user_attrs.get(ATTR_DUPLICATE_OF) is not None for t in sampled)
    limit = max(MAX_DUPLICATES, config.n_trials)
    if in_a_row < MAX_DUPLICATES_IN_A_ROW and total < limit:
        return None
    what = (f"the last {in_a_row} sampled candidates" if in_a_row >= MAX_DUPLICATES_IN_A_ROW
            else f"{total} sampled candidates (the limit: {limit})")
    return (f"stopped sampling: {what} repeated trainings already run, so the search space is exhausted at this "
            f"budget ({counted(study)} of {config.n_trials} candidates found); widen --families or the LR range for more")


def _failures_in_a_row(study: Any) -> list[Any]:
    """The trials that raised since the last one that finished, newest first (killed trials aside)."""
    from optuna.trial import TrialState

    out = []
    for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)),
                    key=lambda t: t.number, reverse=True):
        if t.state != TrialState.FAIL:
            break
        if t.user_attrs.get(ATTR_ERROR) is not None:
            out.append(t)
    return out


def check_failures(study: Any) -> None:
    """Raise when the last :data:`MAX_FAILURES_IN_A_ROW` trials all raised: the task, not a trial, is broken."""
    failures = _failures_in_a_row(study)
    if len(failures) >= MAX_FAILURES_IN_A_ROW:
        raise LRKitError(f"the last {len(failures)} trials failed (trials {', '.join(str(t.number) for t in failures[::-1])}"
                         f"), the last with {failures[0].user_attrs[ATTR_ERROR]}; the study stops here, every trial "
                         "kept. `lrkit results --all` lists them; their tracebacks are stored with them")


def run_study(study: Any, config: StudyConfig, task: Any, *, device: str = "cpu", progress: Any = None,
              runner: Callable[..., Any] | None = None, log: Callable[[str], None] | None = None,
              more_coming: Callable[[], bool] | None = None, stage_runner: Callable[..., Any] | None = None) -> int:
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

    note = log or (lambda _msg: None)
    objective = Objective(task, config, device=device, prune=config.pruner != "none", runner=runner,
                          progress=progress, stage_runner=stage_runner)
    ran = 0

    def after(study_: Any, trial: Any) -> None:
        nonlocal ran
        ran += not trial.user_attrs.get(ATTR_SURPLUS)  # a surplus trial was not trained
        waiting = study_.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if (claimed(study_) >= config.n_trials and not waiting) or exhausted(study_, config) \
                or len(_failures_in_a_row(study_)) >= MAX_FAILURES_IN_A_ROW or objective.fatal is not None:
            study_.stop()

    pause = min(2.0, float(getattr(getattr(study, "_storage", None), "heartbeat_interval", None) or 2.0))
    while True:
        optuna.storages.fail_stale_trials(study)
        check_failures(study)
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if claimed(study) >= config.n_trials and not waiting:
            if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(pause)  # running elsewhere: wait until they finish or their heartbeat goes stale
                continue
            if more_coming is not None and more_coming():
                continue
            break
        if not waiting and (reason := exhausted(study, config)):
            note(reason)
            break
        with optuna_bookkeeping():
            study.optimize(objective, n_trials=len(waiting) or max(1, config.n_trials - claimed(study)),
                           callbacks=[after, stop_when_interrupted], gc_after_trial=False, catch=(TrialFailed,))
        objective.raise_fatal()
    return ran


__all__ = ["MAX_DUPLICATES", "MAX_DUPLICATES_IN_A_ROW", "MAX_FAILURES_IN_A_ROW", "check_failures", "exhausted",
           "run_study"]
