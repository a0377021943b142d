"""Recommend an LR policy for a task: search the catalogue with Optuna, rank by updates-to-target.

``recommend(task, target, budget)`` (``lrkit recommend``):

1. finds the LR range once per study (:mod:`lrkit.lrbench.lr_range`: range test, or the FIX-grid fallback)
   and stores it with the study;
2. runs the task's default policy once (the speed-up's baseline) and ``n_trials`` candidates that
   Optuna's TPE sampler draws across the families of :mod:`lrkit.lrbench.search_space`;
3. stops hopeless candidates with :class:`lrkit.lrbench.pruning.TargetPruner`;
4. ranks the finished trials (:func:`lrkit.lrbench.results.rank`) and returns the best candidate's spec,
   which ``lrkit verify --policy SPEC`` re-runs, with its speed-up over the default.

Storage is an Optuna study (:mod:`lrkit.lrbench.storage`): every finished trial is committed as it ends, so
an interrupt loses only the running trial, and the same call again continues the same study.
``lrkit worker`` runs :func:`run_study` on the same study from other processes or machines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

from lrkit.lrbench import results as res
from lrkit.lrbench.search_space import SearchContext, available_families, suggest_policy
from lrkit.lrbench.storage import (ATTR_FAMILY, ATTR_RESULT, ATTR_ROLE, ATTR_SEED, ATTR_SPEC, StudyConfig, create_study,
                                 default_study_name, load_study, open_storage, save_trial_result,
                                 update_config)
from lrkit.errors import LRKitError, require


@dataclass
class Recommendation:
    """What ``recommend`` returns: the study, its ranked trials, the best candidate and its speed-up."""

    study_name: str
    config: StudyConfig
    ranked: list[res.TrialRecord]
    best: res.TrialRecord | None
    default: res.TrialRecord | None
    speedup: float | None
    speedup_text: str

    @property
    def spec(self) -> str | None:
        return self.best.spec if self.best else None


class Objective:
    """The Optuna objective: sample (or take the enqueued) policy, run it with ``run_trial``, store it all.

    Minimised value: updates-to-target when the target is reached, else ``budget * (2 - best_acc)``
    (always worse than reaching it). The trial runner knows nothing of Optuna: the pruner is asked from
    its ``on_eval`` hook, and the whole ``TrialResult`` goes into the trial's user attributes.
    """

    def __init__(self, task: Any, config: StudyConfig, *, device: str = "cpu", prune: bool = True,
                 runner: Callable[..., Any] | None = None) -> None:
        self.task, self.config, self.device, self.prune = task, config, device, prune
        self.runner = runner
        self.epoch_steps = max(1, _train_size(task) // task.batch_size)

    def _context(self, study: Any) -> SearchContext:
        low, high = self.config.lr_range
        ranked = res.rank(res.records(study))
        best = next((r for r in ranked if r.role == "candidate" and r.state == "COMPLETE"
                     and not r.spec.startswith("ralr(")), None)
        return SearchContext(budget=self.config.budget, low=low, high=high, best_spec=best.spec if best else None,
                             epoch_steps=self.epoch_steps)

    def __call__(self, trial: Any) -> float:
        import optuna

        from lrkit.lrbench.trainer import run_trial
        from lrkit.spec import from_dict

        role = trial.user_attrs.get(ATTR_ROLE, "candidate")
        spec = trial.user_attrs.get(ATTR_SPEC) if role != "candidate" else None
        if spec is None:
            family, policy_dict = suggest_policy(trial, self._context(trial.study), self.config.families)
            spec = from_dict(policy_dict).spec()
            trial.set_user_attr(ATTR_FAMILY, family)
            trial.set_user_attr(ATTR_SPEC, spec)
        trial.set_user_attr(ATTR_ROLE, role)
        pruned = []

        def on_eval(point: Any) -> bool:
            trial.report(1.0 - point.test_acc, point.step)
            if self.prune and role == "candidate" and trial.should_prune():
                pruned.append(point.step)
                return True
            return False

        runner = self.runner or run_trial
        result = runner(self.task, spec, budget=self.config.budget, target=self.config.target,
                        seed=int(trial.user_attrs.get(ATTR_SEED, self.config.seed)), device=self.device, optimizer=self.config.optimizer,
                        optimizer_kwargs=self.config.optimizer_kwargs, eval_every=self.config.eval_every,
                        on_eval=on_eval)
        save_trial_result(trial, result.to_dict())
        if pruned:
            raise optuna.TrialPruned(f"pruned at update {pruned[0]}")
        return score(result.steps_to_target, result.best_acc, self.config.budget)


def score(steps_to_target: int | None, best_acc: float, budget: int) -> float:
    """The minimised objective: updates-to-target, else ``budget * (2 - best_acc)``."""
    if steps_to_target is not None:
        return float(steps_to_target)
    return budget * (2.0 - (best_acc if math.isfinite(best_acc) else 0.0))


def _train_size(task: Any) -> int:
    try:
        return len(task.load_data().train_y)
    except Exception:  # an unreadable data set shows up, with its message, when the first trial loads it
        return 100 * task.batch_size


def counted(study: Any) -> int:
    """Trials that count towards the study's total: finished or pruned candidates and the default (not repeats)."""
    from optuna.trial import TrialState

    return sum(t.user_attrs.get(ATTR_ROLE) != "repeat"
               for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def ensure_default_enqueued(study: Any, config: StudyConfig) -> None:
    """Queue the task's default policy unless it ran, runs or waits already."""
    from optuna.trial import TrialState

    alive = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    if any(t.user_attrs.get(ATTR_ROLE) == "default" for t in study.get_trials(deepcopy=False, states=alive)):
        return
    study.enqueue_trial({}, user_attrs={ATTR_ROLE: "default", ATTR_SPEC: config.default_spec,
                                        ATTR_FAMILY: "default"})


def run_study(study: Any, config: StudyConfig, task: Any, *, device: str = "cpu", progress: bool = False,
              runner: Callable[..., Any] | None = None) -> int:
    """Run trials on ``study`` until it has ``config.n_trials`` candidates + the default; returns how many ran.

    Safe to call from several processes at once (each is a worker). A trial whose worker died is failed
    by the heartbeat check and re-queued; this call picks such re-queued trials up as well.
    """
    import optuna
    from optuna.trial import TrialState

    total = config.n_trials + 1
    objective = Objective(task, config, device=device, prune=config.pruner != "none", runner=runner)
    ran = 0
    bar = _progress(study, total) if progress else None

    def after(study_: Any, trial: Any) -> None:
        nonlocal ran
        ran += 1
        if bar is not None:
            bar.update_to(study_)
        # Optuna's MaxTrialsCallback cannot leave repeats out of the count; this does
        if counted(study_) >= total:
            study_.stop()

    callbacks = [after]
    try:
        while True:
            optuna.storages.fail_stale_trials(study)
            waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if counted(study) >= total and not waiting:
                break
            study.optimize(objective, n_trials=max(1, total - counted(study)) if not waiting else len(waiting),
                           callbacks=callbacks, gc_after_trial=False)
    finally:
        if bar is not None:
            bar.close()
    return ran


class _progress:  # noqa: N801 (used like a function)
    """A tqdm bar over the study's counted trials, with the current best in its postfix."""

    def __init__(self, study: Any, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=f"study {study.study_name}", unit="trial", dynamic_ncols=True)
        self.update_to(study)

    def update_to(self, study: Any) -> None:
        ranked = res.rank(res.records(study))
        best = res.best_candidate(ranked)
        self.bar.n = counted(study)
        if best is not None:
            reached = best.get("steps_to_target")
            self.bar.set_postfix_str(f"best: {best.family} " + (f"{reached} updates" if reached is not None
                                                                else f"acc {best.get('best_acc', 0):.4f}"))
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def run_repeats(study: Any, config: StudyConfig, task: Any, repeats: int, top: int = 3, *, device: str = "cpu",
                runner: Callable[..., Any] | None = None) -> int:
    """Rerun the ``top`` ranked candidates with ``repeats`` more seeds each, for the ranking's robustness term.

    Seeds are ``config.seed + 1 ... + repeats``. Ranking by the worst seed can bring an unrepeated
    candidate to the top; it is then repeated too, until the first-ranked candidate has all its seeds.
    A (spec, seed) pair already run or queued is not queued again, so the call is idempotent. Repeats
    are never pruned. Returns how many ran.
    """
    from optuna.trial import TrialState

    if repeats <= 0:
        return 0
    objective = Objective(task, config, device=device, prune=False, runner=runner)
    alive = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    ran, first = 0, True
    while True:
        have = {(t.user_attrs.get(ATTR_SPEC), t.user_attrs.get(ATTR_SEED))
                for t in study.get_trials(deepcopy=False, states=alive)}
        ranked = [r for r in res.rank(res.records(study)) if r.role == "candidate" and r.state == "COMPLETE"]
        queued = 0
        for r in ranked[: top if first else 1]:
            for seed in range(config.seed + 1, config.seed + 1 + repeats):
                if (r.spec, seed) not in have:
                    study.enqueue_trial({}, user_attrs={ATTR_ROLE: "repeat", ATTR_SPEC: r.spec,
                                                        ATTR_FAMILY: r.family, ATTR_SEED: seed})
                    have.add((r.spec, seed))  # two top trials may share a spec: queue it once
                    queued += 1
        first = False
        if not queued:
            return ran
        study.optimize(objective, n_trials=queued)
        ran += queued


def summarize(study: Any, config: StudyConfig) -> Recommendation:
    """Rank the study's trials and pick the recommendation."""
    recs = res.records(study)
    ranked = res.rank(recs)
    best = res.best_candidate(ranked)
    default = res.default_record(recs)
    ratio, text = res.speedup(best, default)
    return Recommendation(study.study_name, config, ranked, best, default, ratio, text)


def recommend(task: str | Any, *, target: float | None = None, budget: int | None = None,
              optimizer: str | None = None, optimizer_kwargs: dict | None = None, n_trials: int = 30,
              storage: str | None = None, study_name: str | None = None, families: tuple[str, ...] | None = None,
              pruner: str = "target", lr_range: str | tuple[float, float] = "auto", seed: int = 0, device: str = "cpu",
              progress: bool = False, runner: Callable[..., Any] | None = None,
              log: Callable[[str], None] | None = None, heartbeat_interval: int | None = None,
              grace_period: int | None = None, create_only: bool = False,
              eval_every: int | None = None, repeats: int = 0) -> Recommendation:
    """Search LR policies for ``task`` and recommend the one that reaches ``target`` in the fewest updates.

    Args:
        task: a task name or :class:`lrkit.lrbench.tasks.Task`.
        target: target test accuracy in (0, 1] (default: the task's).
        budget: the most updates per trial (default: the task's).
        optimizer, optimizer_kwargs: the optimizer (default: the task's).
        n_trials: candidates in the study in total (the default policy comes on top), >= 1. Calling
            again with a larger number continues the study up to it.
        storage: an SQLAlchemy URL or SQLite path (default ``sqlite:///lrkit.db``).
        study_name: default ``TASK-OPTIMIZER-accTARGET-bBUDGET``, so the same call continues the same study.
        families: narrow the search to these families (default: every family this lrkit builds).
        pruner: ``"target"`` (:class:`~lrkit.lrbench.pruning.TargetPruner`) or ``"none"``.
        lr_range: ``"auto"``, ``"grid"``, ``"range-test"`` (:mod:`lrkit.lrbench.lr_range`), or ``(low, high)``
            given directly.
        seed: training seed of every trial and the sampler's seed.
        progress: show a progress bar (trials, current best) on stderr.
        log: called with one line per notable event (range found, families left out).
        heartbeat_interval, grace_period: the storage's heartbeat timing in seconds (see
            :func:`lrkit.lrbench.storage.open_storage`).
        eval_every: updates between evaluations (default: the task's); the resolution of updates-to-target.
        repeats: after the search, rerun the 3 best candidates with this many more seeds; their spread
            across seeds is the ranking's robustness term (0: none).
        create_only: create the study (LR range found, default policy queued) and return without running
            trials, so that workers can join it.
    """
    from lrkit.lrbench.lr_range import find_lr_range
    from lrkit.lrbench.tasks import get_task
    from lrkit.lrbench.trainer import resolve_optimizer

    task_obj = get_task(task) if isinstance(task, str) else task
    target = task_obj.target if target is None else target
    budget = task_obj.budget if budget is None else budget
    require(isinstance(n_trials, int) and n_trials >= 1, "n_trials >= 1", n_trials=n_trials)
    require(isinstance(budget, int) and budget >= 1, "budget >= 1", budget=budget)
    require(0 < target <= 1, "0 < target <= 1", target=target)
    require(eval_every is None or (isinstance(eval_every, int) and eval_every >= 1), "eval_every >= 1",
            eval_every=eval_every)
    opt_name, opt_kwargs = resolve_optimizer(task_obj, optimizer, optimizer_kwargs)
    fams = available_families(tuple(families) if families else None)
    if not fams:
        raise LRKitError(f"none of the families {families} builds in this lrkit")
    # the study keeps what the user named (a built-in name or module:function), which workers load again
    config = StudyConfig(task=task if isinstance(task, str) else task_obj.name, target=float(target), budget=budget, optimizer=opt_name,
                         optimizer_kwargs=dict(opt_kwargs), n_trials=n_trials, seed=seed,
                         default_spec=task_obj.default_policy, pruner=pruner, families=fams, eval_every=eval_every)
    name = study_name or default_study_name(task_obj.name, target, budget, opt_name)
    store = _open(storage, heartbeat_interval, grace_period)
    study, stored = create_study(store, name, config, sampler=_sampler(seed), pruner=_pruner(config))
    say = log or (lambda _msg: None)
    if stored.lr_range == (0.0, 0.0):
        found = find_lr_range(task_obj, lr_range, optimizer=opt_name, optimizer_kwargs=dict(opt_kwargs), seed=seed,
                              budget=budget, device=device)
        stored = replace(stored, lr_range=(found.low, found.high), lr_range_method=found.method)
        study.set_user_attr("lrkit_lr_range_details", {**found.details, "updates": found.updates})
        why = found.details.get("range_test_unavailable")
        say(f"LR range [{found.low:.3g}, {found.high:.3g}] by {found.method} ({found.updates} updates)"
            + (f"; the range test was not usable: {why}" if why else ""))
    else:
        say(f"continuing study {name!r}: {res_count(study)} trials stored; LR range "
            f"[{stored.lr_range[0]:.3g}, {stored.lr_range[1]:.3g}] by {stored.lr_range_method}")
    if stored.n_trials != n_trials or stored.pruner != pruner:
        stored = replace(stored, n_trials=n_trials, pruner=pruner)
    update_config(study, stored)
    ensure_default_enqueued(study, stored)
    study = _reload(store, name, stored, res_count(study))
    if create_only:
        return summarize(study, stored)
    run_study(study, stored, task_obj, device=device, progress=progress, runner=runner)
    if repeats:
        ran = run_repeats(study, stored, task_obj, repeats, device=device, runner=runner)
        say(f"ran {ran} repeats of the top candidates with other seeds")
    return summarize(study, stored)


def res_count(study: Any) -> int:
    return len(study.get_trials(deepcopy=False))


def _sampler(seed: int) -> Any:
    import optuna

    # multivariate + group: the families' parameters are conditional on "family"
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=True, group=True)


def _pruner(config: StudyConfig) -> Any:
    from lrkit.lrbench.pruning import make_pruner

    return make_pruner(config.pruner, config.budget, config.target)


def _reload(store: Any, name: str, config: StudyConfig, n_stored: int) -> Any:
    # A continued study must not replay the first session's random draws: the sampler's seed also
    # depends on how many trials are stored, which is the same for every fresh start of a seed.
    seed = (config.seed + 1_000_003 * n_stored) % 2**32
    study, _ = load_study(store, name, sampler=_sampler(seed), pruner=_pruner(config))
    return study


def _open(storage: str | None, heartbeat_interval: int | None, grace_period: int | None,
          must_exist: bool = False) -> Any:
    timing = {k: v for k, v in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period))
              if v is not None}
    return open_storage(storage, must_exist=must_exist, **timing)


def open_worker_study(storage: str | None, study_name: str | None, *, heartbeat_interval: int | None = None,
                      grace_period: int | None = None) -> tuple[Any, StudyConfig]:
    """Load an existing study with its stored config, sampler and pruner (for ``lrkit worker``)."""
    store = _open(storage, heartbeat_interval, grace_period, must_exist=True)
    study, config = load_study(store, study_name)
    if config.lr_range == (0.0, 0.0):
        raise LRKitError(f"study {study.study_name!r} has no LR range yet; start it with `lrkit recommend` first")
    # each worker gets its own sampler seed so that two workers do not propose the same candidates
    import os

    study, _ = load_study(store, study.study_name, sampler=_sampler(config.seed + os.getpid()),
                          pruner=_pruner(config))
    return study, config


__all__ = ["ATTR_RESULT", "Objective", "Recommendation", "counted", "ensure_default_enqueued", "open_worker_study",
           "recommend", "run_study", "score", "summarize"]
