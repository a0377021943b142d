"""Recommend an optimizer and an LR policy for a task: one Optuna search over both, judged on held-out data.

``recommend(task, target, budget)`` (``lrkit recommend``):

1. finds each searched optimizer's LR range once per study (:mod:`lrkit.lrbench.run.lr_range`: range test,
   or the FIX-grid fallback; LR-free optimizers search a multiplier around 1) and stores it;
2. queues the yardsticks on its first judging seed: the task's default policy and the baselines
   (:mod:`lrkit.lrbench.study.baselines`: Adam, AdamW + cosine, Prodigy, schedule-free AdamW, D-Adaptation,
   OneCycleLR at the range test's LR);
3. runs ``n_trials`` candidates, each judged on the task's validation split: first a few configurations that
   were fastest in hindsight (:mod:`lrkit.lrbench.search.known`, at most half), then those Optuna's
   TPE sampler draws (optimizer, family, parameters, and the LR-free and schedule-free optimizers' own knobs:
   :mod:`lrkit.lrbench.search.space`); a candidate identical to a finished trial is not
   retrained;
4. stops hopeless candidates with :class:`lrkit.lrbench.search.pruning.TargetPruner`;
5. with ``repeats`` (1 by default), reruns the candidates and the yardsticks that can still rank first on more
   seeds, so that the recommendation is confirmed on every seed;
6. ranks the methods by their worst seed (:mod:`lrkit.lrbench.study.ranking`) and recommends the first of the
   candidates and baselines on validation accuracy: a baseline that no candidate beat is recommended as
   it is, and said to be one. The speed-ups are on **test** accuracy: the recommendation's over the task's
   default, and the best candidate's over the best baseline (so what the search itself achieved is
   always stated, also when it loses). Every number of a method judged on several seeds is its worst
   seed's, and says so ("worst of 2 seeds"). When a baseline wins on validation and a candidate is faster on
   test, the summary says to use the baseline all the same: test is reported, not chosen on;
7. states what the search cost (:mod:`lrkit.lrbench.search.cost`): every update trained, in full-budget trials.

Storage is an Optuna study (:mod:`lrkit.lrbench.study.storage`): every finished trial is committed as it ends, so
an interrupt loses only the running trial, and the same call again continues the same study.
``lrkit worker`` runs :func:`run_study` on the same study from other processes or machines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

from lrkit.errors import LRKitError
from lrkit.lrbench.search.calibration import Calibration, calibration_of, uncalibrated
from lrkit.lrbench.search.cost import SearchCost, search_cost
from lrkit.lrbench.search.forking import remove_states
from lrkit.lrbench.search.known import queue_known, queue_portfolio
from lrkit.lrbench.search.loop import queue_repeats, run_repeats, run_study, trials_text
from lrkit.lrbench.search.space import check_families
from lrkit.lrbench.search.yardsticks import queue_yardsticks
from lrkit.lrbench.study import ranking as res
from lrkit.lrbench.study.baselines import check_baselines
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.progress import study_progress
from lrkit.lrbench.study.queue import counted
from lrkit.lrbench.study.rerun import rerun_command
from lrkit.lrbench.study.schema import ATTR_REPEAT, ATTR_SEED
from lrkit.lrbench.study.setup import check_counts, open_study, storage_timing, task_args
from lrkit.lrbench.study.storage import default_study_name, load_study, open_storage, state_dir
from lrkit.lrbench.tasks.optimizers import canonical

#: searched beside the task's own optimizer when none are named: the adaptive optimizer most users reach
#: for, and the LR-free and schedule-free peers that reach targets fastest untuned, so the search can
#: match or beat the baselines with their own optimizers (see docs/lrbench.md)
DEFAULT_OPTIMIZERS = ("adam", "prodigyopt:Prodigy", "schedulefree:AdamWScheduleFree")


@dataclass
class Recommendation:
    """What ``recommend`` returns: the study, its ranked methods, the recommendation and its speed-ups."""

    study_name: str
    config: StudyConfig
    ranked: list[res.MethodRecord]
    best: res.MethodRecord | None   # the recommendation: the first of the candidates and the baselines
    default: res.MethodRecord | None
    best_baseline: res.MethodRecord | None
    speedup: float | None
    speedup_text: str
    baseline_speedup: float | None
    baseline_speedup_text: str
    rerun: str
    best_candidate: res.MethodRecord | None = None  # the search's best (the recommendation unless a baseline won)
    failures: str = ""  # :func:`lrkit.lrbench.study.ranking.failure_note`: the trials that raised, if any
    #: what the search cost: every update the study trained (candidates, range tests, yardsticks, repeats)
    #: in full-budget trials (:class:`lrkit.lrbench.search.cost.SearchCost`); None for a hand-built one
    cost: SearchCost | None = None
    #: the validation target's offset the study was judged with (:mod:`lrkit.lrbench.search.calibration`)
    calibration: Calibration | None = None
    #: why a study that calibrates was judged at the plain target (None when calibrated or not calibrating)
    uncalibrated: str | None = None

    @property
    def is_baseline(self) -> bool:
        """Whether the recommendation is a baseline that no candidate beat on validation."""
        return self.best is not None and self.best.role == "baseline"

    @property
    def spec(self) -> str | None:
        return self.best.spec if self.best else None

    @property
    def optimizer(self) -> str | None:
        return self.best.optimizer if self.best else None

    @property
    def candidate_faster_on_test(self) -> bool:
        """Whether the recommendation is a baseline and yet the best candidate reached the target on test in
        fewer worst-seed updates (the case where a reader needs telling which to use)."""
        return self.is_baseline and self.best_candidate is not None and (self.baseline_speedup or 0) > 1

    @property
    def choice(self) -> str:
        """Which pair to use and why, when the numbers could leave a reader unsure (else empty)."""
        if not self.candidate_faster_on_test:
            return ""
        return (f"use the baseline {self.best.baseline}: the recommendation is chosen on "
                f"{self.config.metric or self.config.on + ' accuracy'}, "
                "where no candidate beat it; the test comparison is reported, not chosen on")

    def summary_lines(self) -> list[str]:
        """The recommendation in a few lines (the CLI prints them under the table; the report shows them):
        the recommended pair and its numbers (worst seed), both speed-ups, which to use when a baseline won,
        the search's cost and the command that re-runs it."""
        from lrkit.lrbench.tasks.optimizers import describe

        if self.best is None:
            return ["no candidate finished"] + ([f"cost: {self.cost.text()}"] if self.cost else [])
        best, on = self.best, self.config.on
        worst, test_worst = best.worst_steps, best.test_worst_steps()
        target = (f"{self.config.metric} {'>=' if self.config.mode == 'max' else '<='} " if self.config.metric else "")
        reached = (f"target {target}{self.config.target:g} reached on {best.seeds_reached}/{len(best.seeds)} seeds "
                   f"({best.tier}); {res.worst_of(len(best.seeds))}: {worst if worst is not None else '-'} updates "
                   f"on {on}, {test_worst if test_worst is not None else '-'} on test")
        pair = f"{describe(best.optimizer, best.optimizer_kwargs)} with {best.spec}"
        head = (f"recommended: the baseline {best.baseline}, {pair}  (no candidate beat it on "
                f"{self.config.metric or on + ' accuracy'}, which "
                "the recommendation is chosen on)" if self.is_baseline else f"recommended: {pair}")
        lines = [head, f"  {reached}"]
        if self.calibration is not None:
            lines.append(f"  {self.calibration.text(self.config.target)}")
        elif self.uncalibrated:
            lines.append(f"  {self.uncalibrated}")
        lines.append(f"speed-up over the default {self.config.default_spec}: {self.speedup_text}")
        if self.is_baseline and self.best_candidate is not None:
            cand = self.best_candidate
            lines.append(f"the search's best candidate, {describe(cand.optimizer, cand.optimizer_kwargs)} with "
                         f"{cand.spec}, against the baseline on test: {self.baseline_speedup_text}")
            if self.choice:
                lines.append(f"  {self.choice}")
        else:
            lines.append(f"speed-up over the best baseline: {self.baseline_speedup_text}")
        if worst is None:
            lines.append(self.reachable_target())
        if self.cost is not None:
            lines.append(f"cost: {self.cost.text()}")
        return lines + [f"re-run it: {self.rerun}"]

    def reachable_target(self) -> str:
        """When no method reached the target on every seed: the best worst-seed value any did reach, as the
        target the study could have judged on."""
        best = max(self.ranked, key=lambda m: m.worst_acc)
        value = best.worst_acc if self.config.mode == "max" else -best.worst_acc
        name = self.config.metric or f"{self.config.on} accuracy"
        step = math.floor if self.config.mode == "max" else math.ceil
        suggested = step(value * 100) / 100 if abs(value) < 10 else step(value)
        return (f"no method reached the target on every seed: the best worst-seed {name} was {value:.4f} "
                f"({best.label}); a target of {suggested:g} was reachable (--target {suggested:g})")

    def summary(self) -> str:
        """:meth:`summary_lines` as one text."""
        return "\n".join(self.summary_lines())

    def to_dict(self) -> dict[str, Any]:
        best = self.best.row() if self.best else None
        return {"study": self.study_name, "recommended": self.spec, "optimizer": self.optimizer,
                "optimizer_kwargs": self.best.optimizer_kwargs if self.best else None, "best": best,
                "recommended_is_baseline": self.best.baseline if self.is_baseline else None,
                "best_candidate": self.best_candidate.row() if self.best_candidate else None,
                "speedup_over_default": self.speedup, "speedup_over_default_text": self.speedup_text,
                "best_baseline": self.best_baseline.row() if self.best_baseline else None,
                "speedup_over_best_baseline": self.baseline_speedup,
                "speedup_over_best_baseline_text": self.baseline_speedup_text, "default": self.config.default_spec,
                "headline": res.worst_of(len(self.best.seeds)) if self.best else None, "choice": self.choice or None,
                "cost": self.cost.to_dict() if self.cost else None, "cost_text": self.cost.text() if self.cost else None,
                "val_calibration": self.calibration.to_dict() if self.calibration else None,
                "uncalibrated": self.uncalibrated,
                "verify": self.rerun, "failures": self.failures or None, "ranking": [m.row() for m in self.ranked]}


def summarize(study: Any, config: StudyConfig, task: Any = None,
              recs: list[res.TrialRecord] | None = None) -> Recommendation:
    """Rank the study's methods and pick the recommendation (``recs``: the study's records, when the caller
    has read them already)."""
    calibration = calibration_of(study, config)  # first: the records are judged at its validation target
    recs = res.records(study) if recs is None else recs
    ranked = res.rank(recs)
    candidate = res.best_candidate(ranked)
    best = next((m for m in ranked if m.role in ("candidate", "baseline")), None)
    default = res.default_method(ranked)
    baseline = res.best_baseline(ranked)
    named = {"metric": config.metric, "mode": config.mode}
    ratio, text = res.speedup(best, default, config.budget, f"the default {config.default_spec}", "the recommendation",
                              **named)
    # a baseline that won is the recommendation: the candidate measured against it is named, never "ours"
    who = (f"the best candidate ({candidate.optimizer}, {candidate.family})"
           if candidate is not None and best is not None and best.role == "baseline" else "the recommendation")
    b_ratio, b_text = res.speedup(candidate, baseline, config.budget,
                                  f"the best baseline ({baseline.baseline})" if baseline else "no baseline", who,
                                  **named)
    if not config.baselines:
        b_ratio, b_text = None, "no baselines in this study"
    try:
        rerun = rerun_command(config, best, task) if best else ""
    except LRKitError:  # a custom task that cannot be loaded here: the table still shows everything
        rerun = ""
    return Recommendation(study.study_name, config, ranked, best, default, baseline, ratio, text, b_ratio, b_text,
                          rerun, candidate, res.failure_note(recs),
                          search_cost(study, config.budget, config.seed, recs), calibration,
                          None if calibration is not None else uncalibrated(study, config))


def _optimizers(task: Any, optimizer: str | None, optimizers: tuple[str, ...] | None) -> tuple[str, ...]:
    from lrkit.lrbench.tasks.optimizers import canonical

    if optimizer is not None and optimizers is not None:
        raise LRKitError("give `optimizer` (one) or `optimizers` (several), not both")
    if optimizers is not None and not optimizers:
        raise LRKitError("`optimizers` names at least one optimizer when given, but got none")
    if optimizer is not None:
        names: tuple[str, ...] = (optimizer,)
    elif optimizers:
        names = tuple(optimizers)
    else:
        names = (task.optimizer, *DEFAULT_OPTIMIZERS)
    return tuple(dict.fromkeys(canonical(n) for n in names))


def recommend(task: str | Any, *, target: float | None = None, budget: int | None = None,
              optimizer: str | None = None, optimizers: tuple[str, ...] | None = None,
              optimizer_kwargs: dict | None = None, n_trials: int = 30, storage: str | None = None,
              study_name: str | None = None, families: tuple[str, ...] | None = None, pruner: str = "target",
              lr_range: str | tuple[float, float] = "auto", seed: int = 0, device: str = "cpu",
              progress: bool = False, runner: Callable[..., Any] | None = None,
              log: Callable[[str], None] | None = None, heartbeat_interval: int | None = None,
              grace_period: int | None = None, create_only: bool = False, eval_every: int | None = None,
              repeats: int = 1, baselines: tuple[str, ...] | None = None, on: str | None = None,
              lookup: bool = True, metric: str | None = None, mode: str | None = None,
              ranks: int | None = None, portfolio: bool = True, knobs: bool = True, forks: int = 0) -> Recommendation:
    """Search optimizers and LR policies for ``task``; recommend the pair that reaches ``target`` in the fewest updates.

    Args:
        task: a task name (or ``module:function``) or :class:`lrkit.lrbench.Task`.
        target: target accuracy in (0, 1] (default: the task's).
        budget: the most updates per trial (default: the task's).
        optimizer: search this one optimizer only (a built-in name or ``module:Class``).
        optimizers: search these (default: the task's and :data:`DEFAULT_OPTIMIZERS`).
        optimizer_kwargs: optimizer arguments; each optimizer takes those it accepts, on top of the task's.
        n_trials: candidates in the study in total (the yardsticks come on top), >= 1. Calling again
            with a larger number continues the study up to it.
        storage: an SQLAlchemy URL or SQLite path (default ``sqlite:///lrkit.db``).
        study_name: default ``TASK-OPTIMIZERS-accTARGET-bBUDGET``, so the same call continues the same study.
        families: narrow the search to these families (default: all of :data:`~lrkit.lrbench.search.space.FAMILIES`).
        pruner: ``"target"`` (:class:`~lrkit.lrbench.search.pruning.TargetPruner`) or ``"none"``.
        lr_range: ``"auto"``, ``"grid"``, ``"range-test"`` (:mod:`lrkit.lrbench.run.lr_range`), or ``(low, high)``
            for every optimizer.
        seed: training seed of the search and the sampler's seed.
        progress: show progress on stderr (:class:`~lrkit.lrbench.study.progress.StudyProgress`).
        log: called with one line per notable event (ranges found, repeats, ...).
        heartbeat_interval, grace_period: the storage's heartbeat timing in seconds
            (:func:`lrkit.lrbench.study.storage.open_storage`).
        create_only: set the study up (ranges found, yardsticks queued; with ``repeats``, the repeats of the
            current best queued) and return without training, so that workers can run it.
        eval_every: updates between evaluations (default: the task's); the resolution of updates-to-target.
        repeats: after the search, rerun the candidates (:func:`contenders`) and the yardsticks
            (:func:`~lrkit.lrbench.search.yardsticks.queue_yardsticks`) that can still rank first on this many
            more seeds
            (default 1: the recommendation is confirmed on a second seed; 0 leaves it on one seed, unconfirmed).
        baselines: the peers to run (default: all of :data:`lrkit.lrbench.study.baselines.BASELINES`; ``()``: none).
        on: what the search judges on: ``"val"`` (default when the task has a validation split) or ``"test"``.
        lookup: first verify the best methods other studies of the same task in this storage found
            (:mod:`lrkit.lrbench.search.known`); they come on top of ``n_trials`` and are marked in the ranking.
        metric, mode: judge on this reported metric, "max" or "min" (default: the task's; a built-in task's
            is its accuracy); ``target`` is then a value of it.
        ranks: run every trial of a training function as this many processes (default: the task's).
        portfolio: make the first candidates the entries of lrkit's shipped portfolio that fit the study
            (:mod:`lrkit.lrbench.search.known`); they count among ``n_trials``, at most half of them.
        knobs: draw the LR-free and schedule-free optimizers' own arguments (weight decay, their warm-up)
            beside the policy (:func:`lrkit.lrbench.search.space.suggest_knobs`); an argument given in
            ``optimizer_kwargs`` is never drawn.
        forks: fork up to this many decays off each WSD candidate's run (its schedule for shorter budgets),
            each trained from its state as a candidate of its own (:mod:`lrkit.lrbench.search.forking`; on top of ``n_trials``, their
            updates counted in the cost); 0 (default): none. Their states go beside an SQLite storage
            (``x.db.states/STUDY``), else to ``./lrkit-states/STUDY``: workers elsewhere need it shared.
    """
    args = task_args(task, target, budget, eval_every, seed=seed, on=on,
                     judging={"metric": metric, "mode": mode, "ranks": ranks})
    check_counts(n_trials=n_trials, repeats=repeats, forks=forks)
    task_obj, searched = args.task, _optimizers(args.task, optimizer, optimizers)
    if forks and task_obj.ranks > 1:
        raise LRKitError(f"`forks` needs a trial's state, and lrkit cannot fork a multi-process trial yet (task "
                         f"{task_obj.name!r} runs as {task_obj.ranks} processes): search with forks=0")
    config = StudyConfig(task=task if isinstance(task, str) else task_obj.name, target=args.target,
                         budget=args.budget, optimizer=canonical(task_obj.optimizer),
                         optimizer_kwargs=dict(optimizer_kwargs or {}), n_trials=n_trials, seed=seed,
                         default_spec=task_obj.default_policy, pruner=pruner, eval_every=eval_every,
                         families=check_families(None if families is None else tuple(families)), optimizers=searched,
                         baselines=check_baselines(baselines), on=on or task_obj.judged_on,
                         metric=task_obj.metric, mode=task_obj.mode, ranks=task_obj.ranks, knobs=knobs, forks=forks)
    name = study_name or default_study_name(task_obj.name, args.target, args.budget,
                                            "+".join(o.split(":")[-1] for o in searched))
    states = str(state_dir(storage, name).resolve()) if forks else ""
    config = replace(config, fork_states=states)
    opened = open_study(args, config, name, storage=storage, lr_range=lr_range, device=device,
                        heartbeat_interval=heartbeat_interval, grace_period=grace_period, log=log,
                        sampler=_sampler(seed), pruner=_pruner(config),
                        update=lambda c: replace(c, n_trials=n_trials, pruner=pruner, baselines=config.baselines,
                                                 knobs=knobs, forks=forks, fork_states=states))
    study, stored, note, device = opened.study, opened.config, opened.log, opened.device
    queue_yardsticks(study, stored, task_obj)
    if lookup:
        queue_known(study, opened.store, stored, log=note)
    if portfolio:
        queue_portfolio(study, stored, log=note)
    study = _reload(opened.store, name, stored, len(study.get_trials(deepcopy=False)))
    if create_only:
        if repeats and counted(study) >= stored.n_trials:
            stored, queued = queue_repeats(study, stored, task_obj, repeats)
            note(f"repeats: queued {trials_text(queued)}" if queued
                 else "repeats: nothing to queue, every repeat is already run or queued")
        return summarize(study, stored, task_obj)
    before = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    with study_progress(args.budget, progress) as reporter:
        run_study(study, stored, task_obj, device=device, progress=reporter, runner=runner, log=note)
        if repeats:
            stored, _ = run_repeats(study, stored, task_obj, repeats, device=device, runner=runner,
                                    progress=reporter)
            # the search loop runs repeats that were queued before (--create-only) too: count them all
            ran = [t.user_attrs.get(ATTR_SEED) for t in study.get_trials(deepcopy=False)
                   if t.state.is_finished() and t.number not in before
                   and (t.user_attrs.get(ATTR_REPEAT) or t.user_attrs.get(ATTR_SEED, stored.seed) != stored.seed)]
            note(f"repeats: ran {trials_text(ran)}" if ran else
                 f"repeats: nothing left to run (every method needed is on seeds "
                 f"{', '.join(map(str, stored.judging_seeds))})")
    remove_states(stored)
    return summarize(study, stored, task_obj)


def _sampler(seed: int) -> Any:
    import optuna

    # multivariate + group: the families' parameters are conditional on "family"
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=True, group=True)


def _pruner(config: StudyConfig) -> Any:
    from lrkit.lrbench.search.pruning import make_pruner

    return make_pruner(config.pruner, config.budget, config.target)


def _reload(store: Any, name: str, config: StudyConfig, n_stored: int) -> Any:
    # A continued study must not replay the first session's random draws: the sampler's seed also
    # depends on how many trials are stored, which is the same for every fresh start of a seed.
    seed = (config.seed + 1_000_003 * n_stored) % 2**32
    study, _ = load_study(store, name, sampler=_sampler(seed), pruner=_pruner(config))
    return study


def open_worker_study(storage: str | None, study_name: str | None, *, heartbeat_interval: int | None = None,
                      grace_period: int | None = None) -> tuple[Any, StudyConfig]:
    """Load an existing study with its stored config, sampler and pruner (for ``lrkit worker``)."""
    store = open_storage(storage, must_exist=True, **storage_timing(heartbeat_interval, grace_period))
    study, config = load_study(store, study_name)
    if any(config.lr_range_of(o) == (0.0, 0.0) for o in config.searched):
        raise LRKitError(f"study {study.study_name!r} has no LR ranges yet; start it with `lrkit recommend` first")
    # each worker gets its own sampler seed so that two workers do not propose the same candidates
    import os

    study, _ = load_study(store, study.study_name, sampler=_sampler(config.seed + os.getpid()),
                          pruner=_pruner(config))
    return study, config


__all__ = ["DEFAULT_OPTIMIZERS", "Recommendation", "open_worker_study", "queue_repeats", "recommend", "run_repeats",
           "summarize", "trials_text"]
