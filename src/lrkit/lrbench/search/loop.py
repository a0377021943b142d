"""The study loop: run a study's trials until it has its candidates and nothing is queued or running, then
the repeats that confirm the first place on more seeds.

:func:`run_study` is safe from several processes at once (each is a worker). It stops sampling when the
sampler keeps proposing trainings already run (:func:`exhausted`) and stops with an error when the task
itself is broken (:func:`check_failures`). :func:`run_repeats` then reruns, on more judging seeds, the
candidates and yardsticks that can still rank first (:func:`contenders`), until none can pass the first.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from lrkit.errors import LRKitError
from lrkit.lrbench.search.objective import Objective
from lrkit.lrbench.search.yardsticks import queue_yardsticks
from lrkit.lrbench.study import ranking as res
from lrkit.lrbench.study.baselines import Method
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.interrupts import TrialFailed, optuna_bookkeeping, stop_when_interrupted
from lrkit.lrbench.study.queue import alive_keys, claimed, counted, queue
from lrkit.lrbench.study.storage import update_config
from lrkit.lrbench.study.schema import (ATTR_DUPLICATE_OF, ATTR_ERROR, ATTR_FORK, ATTR_LOOKUP, ATTR_REPEAT,
                                        ATTR_ROLE, ATTR_SEED, ATTR_SURPLUS)

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


def trials_text(seeds: list[int]) -> str:
    """How many trials, on which seeds: ``10 trials on seed 1``, ``3 trials on seeds 1, 2``, ``0 trials``.

    Example:
        >>> trials_text([1, 1, 2]), trials_text([1]), trials_text([])
        ('3 trials on seeds 1, 2', '1 trial on seed 1', '0 trials')
    """
    if not seeds:
        return "0 trials"
    distinct = sorted(set(seeds))
    return (f"{len(seeds)} trial{'s' if len(seeds) != 1 else ''} on seed{'s' if len(distinct) != 1 else ''} "
            f"{', '.join(map(str, distinct))}")


def _seeds_from(study: Any, first: int) -> list[int]:
    """The seed of every trial numbered ``first`` or later (the trials just queued)."""
    return [t.user_attrs.get(ATTR_SEED) for t in study.get_trials(deepcopy=False) if t.number >= first]


def queue_repeats(study: Any, config: StudyConfig, task: Any, repeats: int) -> tuple[StudyConfig, list[int]]:
    """Add ``repeats`` judging seeds, queue on them the yardsticks and the candidates that still contend for
    the first place (:func:`contenders`).

    Returns the updated config (stored in the study) and the seed of every trial queued (one per trial).
    """
    if repeats <= 0:
        return config, []
    before = len(study.get_trials(deepcopy=False))
    seeds = tuple(range(config.seed, config.seed + 1 + repeats))
    if set(seeds) - set(config.judging_seeds):
        config = replace(config, seeds=tuple(sorted(set(config.judging_seeds) | set(seeds))))
        update_config(study, config)
    queued = queue_yardsticks(study, config, task) + _queue_contenders(study, config)
    return config, _seeds_from(study, before)[-queued:] if queued else []


def contenders(ranked: list[res.MethodRecord], seeds: tuple[int, ...]) -> list[res.MethodRecord]:
    """The candidates that can still rank first, so are worth their repeats: the first-ranked candidate, and
    every other that reached the target on each seed it ran and is not behind the best candidate that has
    run on every one of ``seeds``, as the ranking orders them (worst-seed updates, then the worst seed's
    interpolated crossing: :meth:`~lrkit.lrbench.study.ranking.MethodRecord.pace`). A repeat can only make
    a worst seed slower, so any other ranks below that one whatever its repeats say."""
    cands = [m for m in ranked if m.role == "candidate" and not m.pruned]
    done = [m.pace() for m in cands if m.reached_all and set(seeds) <= set(m.seeds)]
    if not done:
        return cands[:1]
    return [m for m in cands if m.reached_all and m.pace() <= min(done)]


def _queue_contenders(study: Any, config: StudyConfig) -> int:
    have, queued = alive_keys(study), 0
    for m in contenders(res.rank(res.records(study)), config.judging_seeds):
        method = Method(m.optimizer, m.optimizer_kwargs, m.spec, m.lr_driver)
        for seed in config.judging_seeds:
            queued += queue(study, config, method, seed, "candidate", family=m.family, repeat=True, have=have,
                            extra={ATTR_LOOKUP: m.lookup} if m.lookup else None)
    return queued


def run_repeats(study: Any, config: StudyConfig, task: Any, repeats: int, *, device: str = "cpu",
                runner: Callable[..., Any] | None = None, progress: Any = None) -> tuple[StudyConfig, int]:
    """Rerun the candidates and the yardsticks that still contend for the first place on ``repeats`` more
    seeds; returns the config and how many queued trials it started (``recommend`` reports which ran,
    counting those queued before too).

    A repeat can make the first candidate's worst seed slower, which brings others into contention: they
    are repeated then, until the first-ranked candidate has every seed and no other can pass it. A
    (training, seed) pair already run or queued is not queued again, so the call is idempotent. Repeats are
    stopped only once they can no longer rank first (:meth:`~lrkit.lrbench.search.pruning.TargetPruner.beaten`).
    """
    from optuna.trial import TrialState

    config, _ = queue_repeats(study, config, task, repeats)
    ran = 0
    objective = Objective(task, config, device=device, prune=config.pruner != "none", runner=runner,
                          progress=progress)
    while True:
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if waiting:
            with optuna_bookkeeping():
                study.optimize(objective, n_trials=len(waiting), callbacks=[stop_when_interrupted],
                               gc_after_trial=False, catch=(TrialFailed,))
            ran += len(waiting)
            objective.raise_fatal()
            check_failures(study)
        # the candidates and yardsticks the first candidate's slower worst seed brought into contention
        if not _queue_contenders(study, config) + queue_yardsticks(study, config, task):
            return config, ran


__all__ = ["MAX_DUPLICATES", "MAX_DUPLICATES_IN_A_ROW", "MAX_FAILURES_IN_A_ROW", "check_failures", "contenders",
           "exhausted", "queue_repeats", "run_repeats", "run_study", "trials_text"]
