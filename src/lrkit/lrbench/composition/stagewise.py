"""Compose a policy stage by stage (LRBench's dynamic tuning, Wu & Liu, ACM TIST 2022; docs/compose.md): ``lrkit compose``.

The budget ``B`` is split into stages at updates ``b_1 < b_2 < ... < B`` (multiples of the evaluation
interval, so every stage ends at an evaluation and a fork continues exactly as the uninterrupted run).

1. **Stage 1** trains ``candidates`` single policies from scratch up to ``b_1``: the best ones the
   storage already knows for the task and optimizer (:mod:`lrkit.lrbench.search.known`), then draws from the
   search space (:mod:`lrkit.lrbench.search.space`) to make up the number.
2. At each boundary the ``beam`` best trials so far (on validation accuracy) are forked: every one of
   them gets ``candidates`` next segments (:mod:`lrkit.lrbench.composition.segments`: continue, decay to the
   floor, the same function shrunk 10x, another family around the current LR, a plateau switch, ...),
   each trained from the parent's saved state (model, optimizer state, RNG, batch position: the
   update count) to the next boundary.
3. It stops when a trial reaches the target (on validation accuracy; the fastest such trial wins) or
   the budget is spent (the best validation accuracy at ``B`` wins).

The result is an ordinary spec, ``join([...], boundaries=[...])`` with local clocks (a plateau segment
written out as the join it decided): ``lrkit verify`` and ``PolicyLR`` replay it from scratch, and on
CPU the replay reproduces the composition's evaluations bit for bit for the same seed.

Every segment tried is a trial of the study (its parent, stage, kind and end state recorded), so a
killed composition loses no finished trial and the same command continues from where it was; a
stage's trials are queued, so ``lrkit worker``s on the same study run them too. Fork states are files
beside the study (:mod:`lrkit.lrbench.composition.forks`), removed once no candidate can start from them.

How this compares with AutoLRS (Jin et al., ICLR 2021), which picks the LR of every stage of τ
updates by Bayesian optimisation: AutoLRS keeps the cost of trying candidates low by training each
candidate LR for only a short τ' << τ and *forecasting* the validation loss at τ from that short
curve (an exponential fit), then training the chosen LR for the whole stage; it searches a single
number per stage. ``compose`` trains every candidate for the whole stage and compares measured
validation accuracies (no forecast, so no forecast error, but each candidate costs a full stage), and
its candidates are whole functions (a cosine to the floor, a shrunk cycle, a plateau switch), not
constant LRs. Its cost is ``candidates × (1 + beam × (stages - 1))`` stage-lengths of training:
the defaults ``candidates=5, beam=2, stages=3`` cost 25 stages, about 8.3 full budgets.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from lrkit.errors import LRKitError, require
from lrkit.lrbench.composition import forks, stage_trial
from lrkit.lrbench.composition.segments import PathSoFar, next_segments
from lrkit.lrbench.search.loop import run_study
from lrkit.lrbench.search.space import check_families
from lrkit.lrbench.study.baselines import Method
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.progress import study_progress
from lrkit.lrbench.study.queue import queue
from lrkit.lrbench.study.schema import (ATTR_CHOICE, ATTR_COMPOSE_DONE, ATTR_KIND, ATTR_OPT_KWARGS, ATTR_OPTIMIZER,
                                        ATTR_PARENT, ATTR_RESULT, ATTR_STAGE, ATTR_STATE_FILE, ATTR_UNTIL)
from lrkit.lrbench.study.setup import OpenStudy, check_counts, open_study, task_args
from lrkit.lrbench.study.storage import default_study_name
from lrkit.lrbench.tasks.optimizers import canonical


def stage_boundaries(budget: int, stages: int, eval_every: int, given: list[int] | None = None) -> list[int]:
    """The stage ends ``b_1 < ... < B``: equal stages rounded to multiples of ``eval_every``, or ``given``.

    Example:
        >>> stage_boundaries(500, 3, 50)
        [150, 350, 500]
    """
    if given:
        given = [int(b) for b in given]
        require(all(a < b for a, b in zip(given, given[1:])), "boundaries strictly increasing", boundaries=given)
        ends = given if given[-1] == budget else [*given, budget]
    else:
        require(1 <= stages <= max(1, budget // eval_every), "1 <= stages <= budget // eval_every (a stage ends at "
                "an evaluation)", stages=stages, budget=budget, eval_every=eval_every)
        ends = sorted({max(eval_every, round(budget * k / stages / eval_every) * eval_every) for k in range(1, stages)}
                      | {budget})
    bad = [b for b in ends if not 0 < b <= budget or (b % eval_every and b != budget)]
    if bad or len(ends) < 1:
        raise LRKitError(f"`every boundary a multiple of eval_every in (0, budget]` must hold, but got "
                         f"(boundaries={ends}, eval_every={eval_every}, budget={budget}).")
    return ends


# ---- the composition ---------------------------------------------------------------------------------------
@dataclass
class StageNode:
    """One stage trial: where it sits in the tree and what it measured."""

    number: int
    stage: int
    parent: int | None
    kind: str
    spec: str            # the whole policy so far, plateaus written out
    segment: str         # what this trial added (the spec of its last segment)
    until: int
    val_acc: float | None
    steps_to_target: int | None
    test_steps_to_target: int | None
    test_acc: float | None
    state: str
    val_loss: float | None = None
    optimizer: str = ""
    optimizer_kwargs: dict | None = None
    position: tuple[int, ...] | None = None  # the choice indices from the root (None: a study from before them)

    def key(self) -> tuple:
        """Selection: reached the target first (fewer updates), then higher validation accuracy at the
        stage's end, then lower validation loss (accuracy on a small split ties often), then the position
        in the tree (not the trial number: a killed trial comes back under another number)."""
        loss = self.val_loss if self.val_loss is not None and self.val_loss == self.val_loss else float("inf")
        return (self.steps_to_target is None, self.steps_to_target or 0, -(self.val_acc or 0.0), loss,
                self.position or (), self.number)


@dataclass
class Composition:
    """What :func:`compose` returns: the tree of stage trials, the chosen path and the composed spec."""

    study_name: str
    config: StudyConfig
    nodes: list[StageNode]
    chosen: list[int]
    best: StageNode | None
    rerun: str
    state_bytes: int
    failures: str = ""  # :func:`lrkit.lrbench.study.ranking.failure_note`: the stage trials that raised, if any

    @property
    def spec(self) -> str | None:
        return self.best.spec if self.best else None

    def rows(self) -> list[dict[str, Any]]:
        """One dict per stage trial, stages counted from 1 as in :meth:`summary`'s table."""
        return [{**dataclasses.asdict(n), "stage": n.stage + 1, "chosen": n.number in self.chosen} for n in self.nodes]

    def to_dict(self) -> dict[str, Any]:
        """The composition as JSON-able data (``lrkit compose --json``, ``lrkit results --format json``)."""
        best = self.best
        return {"study": self.study_name, "composed": self.spec, "chosen": self.chosen,
                "steps_to_target": best.steps_to_target if best else None,
                "test_steps_to_target": best.test_steps_to_target if best else None,
                "verify": self.rerun, "failures": self.failures or None, "nodes": self.rows()}

    def format(self, fmt_: str = "table") -> str:
        """:meth:`summary` (``table``), :meth:`to_dict` as ``json``, or :meth:`rows` as ``csv``."""
        from lrkit.text import check_format, csv_text

        check_format(fmt_)
        if fmt_ == "json":
            return json.dumps(self.to_dict(), indent=1)
        if fmt_ == "csv":
            return csv_text(self.rows())
        return self.summary()

    def summary(self) -> str:
        from lrkit.lrbench.tasks.optimizers import describe
        from lrkit.text import fmt, table

        head = ["stage", "trial", "parent", "kind", "until", "val acc", "val updates", "test updates", "segment"]
        rows = [[str(n.stage + 1), str(n.number), fmt(n.parent), n.kind + (" *" if n.number in self.chosen else ""),
                 str(n.until), fmt(n.val_acc), fmt(n.steps_to_target), fmt(n.test_steps_to_target),
                 n.segment if len(n.segment) <= 70 else n.segment[:67] + "..."] for n in self.nodes]
        lines = table(head, rows).splitlines()
        if self.failures:
            lines += ["", self.failures]
        if self.best is None:
            return "\n".join(lines + ["", "no stage trial finished"])
        b = self.best
        reached = (f"target {self.config.target:g} reached at update {b.steps_to_target} ({self.config.on}), "
                   f"{fmt(b.test_steps_to_target)} (test)" if b.steps_to_target is not None else
                   f"target {self.config.target:g} not reached; best {self.config.on} accuracy {fmt(b.val_acc)}")
        return "\n".join(lines + ["", "* the chosen path",
                                  f"composed: {describe(b.optimizer, b.optimizer_kwargs)} with {b.spec}",
                                  f"  {reached}", f"re-run it: {self.rerun}"])


def nodes_of(study: Any) -> list[StageNode]:
    """The study's stage trials that finished, in trial-number order: one node per stage trial.

    A trial marked FAIL is left out even when it saved a result (killed after saving it, before being marked
    complete): its retry, queued with the same method and position, trains it again and is the node.
    """
    from optuna.trial import TrialState

    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        attrs = t.user_attrs
        result = attrs.get(ATTR_RESULT)
        if ATTR_STAGE not in attrs or result is None:
            continue
        path = PathSoFar.of(result.get("realized_spec") or result["spec"])  # plateaus written out, flattened
        curve = result.get("curve") or [{}]
        held_out = "val_acc" if curve[-1].get("val_acc") is not None else "test_acc"
        out.append(StageNode(t.number, int(attrs[ATTR_STAGE]), attrs.get(ATTR_PARENT), attrs.get(ATTR_KIND, ""),
                        path.spec(), path.segments[-1][1], int(attrs[ATTR_UNTIL]), curve[-1].get(held_out),
                        result.get("steps_to_target"), result.get("test_steps_to_target"), curve[-1].get("test_acc"),
                        t.state.name, curve[-1].get("val_loss" if held_out == "val_acc" else "test_loss"),
                        attrs.get(ATTR_OPTIMIZER, ""), attrs.get(ATTR_OPT_KWARGS, {}), _choice(attrs)))
    by_number = {n.number: n for n in out}
    for node in out:  # from the root down (a parent has a lower number), so the parent's position is there
        parent = by_number.get(node.parent) if node.parent is not None else None
        ok = node.position is not None and (node.parent is None or (parent is not None and parent.position is not None))
        node.position = ((parent.position if parent else ()) + node.position) if ok else None  # type: ignore[operator]
    return out


def _choice(attrs: dict[str, Any]) -> tuple[int, ...] | None:
    choice = attrs.get(ATTR_CHOICE)
    return None if choice is None else (int(choice),)


def draw_seed(seed: int, stage: int, parent: StageNode) -> int:
    """The seed of the segments offered to ``parent`` at ``stage``: from the study's seed, the stage and the
    parent's position in the tree, so a rerun after a crash (where a killed trial came back under another
    number) is offered the same segments. A study from before positions were kept used the trial number."""
    import zlib

    if parent.position is None:
        return seed * 100_003 + stage * 1009 + parent.number
    return zlib.crc32(json.dumps([seed, stage, list(parent.position)]).encode()) % 4_000_000  # x1009 stays < 2**32


def _path(nodes: dict[int, StageNode], node: StageNode) -> list[int]:
    chain = [node.number]
    while nodes[chain[-1]].parent is not None:
        chain.append(nodes[chain[-1]].parent)
    return chain[::-1]


def _queue_stage(study: Any, config: StudyConfig, task: Any, stage: int, beam: list[StageNode], ends: list[int],
                 initial: list[tuple[str, Method]]) -> int:
    queued = 0  # queue() skips a trial already there (same training, parent and stage end): reruns continue
    opt, kwargs = initial[0][1].optimizer, initial[0][1].optimizer_kwargs
    if stage == 0:
        for choice, (kind, method) in enumerate(initial):
            queued += queue(study, config, method, config.seed, "candidate", family=f"stage 1: {kind}",
                            extra={ATTR_STAGE: 0, ATTR_PARENT: None, ATTR_UNTIL: ends[0], ATTR_KIND: kind,
                                   ATTR_CHOICE: choice})
        return queued
    from lrkit.lrbench.search.objective import contexts

    window = contexts(config, 1, None)[opt]  # the peak window recommend's candidates use
    low, high = config.lr_range_of(opt)[0], window.high
    for parent in beam:
        offered = next_segments(PathSoFar.of(parent.spec), ends[stage - 1], config.budget, low, high,
                                int(config.compose["candidates"]), seed=draw_seed(config.seed, stage, parent))
        for choice, (kind, path) in enumerate(offered):
            queued += queue(study, config, Method(opt, kwargs, path.spec()), config.seed, "candidate",
                            family=f"stage {stage + 1}: {kind}",
                            extra={ATTR_STAGE: stage, ATTR_PARENT: parent.number, ATTR_UNTIL: ends[stage],
                                   ATTR_KIND: kind, ATTR_CHOICE: choice})
    return queued


def _initial(study: Any, store: Any, config: StudyConfig, task: Any, n: int) -> list[tuple[str, Method]]:
    """Stage 1's policies: what the lookup knows for this task and optimizer, then draws from the search space."""
    import optuna

    from lrkit.lrbench.search.known import known_methods
    from lrkit.lrbench.search.space import SearchContext, suggest_policy
    from lrkit.lrbench.run.steps import optimizer_setup
    from lrkit.spec import from_dict

    name, kwargs = optimizer_setup(task, config.optimizer, config.optimizer_kwargs)
    out: list[tuple[str, Method]] = []
    if config.compose.get("lookup", True):
        out += [("lookup", Method(name, kwargs, m.spec)) for m, _ in known_methods(store, config, study.study_name)
                if m.optimizer == name and m.lr_driver == "policy"][:n]
    from lrkit.lrbench.search.objective import contexts

    window = contexts(config, 1, None)[name]
    sampler = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=config.seed))
    families = tuple(f for f in config.families if f != "ralr")
    while len(out) < n:
        _, policy = suggest_policy(sampler.ask(), SearchContext(budget=config.budget, low=window.low, high=window.high),
                                   families)
        out.append(("initial", Method(name, kwargs, from_dict(policy).spec())))
    return out


def compose(task: str | Any, *, target: float | None = None, budget: int | None = None, stages: int = 3,
            boundaries: list[int] | None = None, candidates: int = 5, beam: int = 2, optimizer: str | None = None,
            optimizer_kwargs: dict | None = None, storage: str | None = None, study_name: str | None = None,
            families: tuple[str, ...] | None = None, lr_range: str | tuple[float, float] = "auto", seed: int = 0,
            eval_every: int | None = None, lookup: bool = True, device: str = "cpu", progress: bool = False,
            log: Callable[[str], None] | None = None, state_dir: str | None = None,
            heartbeat_interval: int | None = None, grace_period: int | None = None,
            keep_states: bool = False, metric: str | None = None, mode: str | None = None) -> Composition:
    """Compose a policy for ``task`` stage by stage (see the module docstring).

    Args:
        task: a task name (or ``module:function``) or a Task.
        target, budget, eval_every: as for :func:`lrkit.lrbench.search.recommend.recommend` (default: the task's).
        stages: how many stages of about equal length (ignored with ``boundaries``), >= 1.
        boundaries: the stage ends instead (multiples of ``eval_every``; the budget is added).
        candidates: policies trained in stage 1, and next segments per beam state at each boundary, >= 1
            (the default 5 offers every kind: continue, decay, shrink, switch, plateau).
        beam: states carried to the next stage, >= 1.
        optimizer, optimizer_kwargs: the optimizer (default: the task's) and its arguments.
        storage, study_name: the study (default name ``TASK-compose-OPTIMIZER-accT-bB``).
        families: the families stage 1 and the switches draw from (default: all but ``ralr``).
        lr_range: how the optimizer's LR range is found (as for ``recommend``).
        seed: the training seed (one for the whole composition) and the draws' seed.
        lookup: start stage 1 from the best policies other studies in the storage found.
        state_dir: where fork states go (see :mod:`lrkit.lrbench.composition.forks`).
        keep_states: keep the state files at the end (default: removed).
        metric, mode: judge on this reported metric, "max" or "min" (default: the task's).
    """
    args = task_args(task, target, budget, eval_every, seed=seed, task_eval_every=True,
                     judging={"metric": metric, "mode": mode})
    check_counts(stages=stages, candidates=candidates, beam=beam)
    ends = stage_boundaries(args.budget, stages, args.eval_every, boundaries)
    task_obj, opt = args.task, canonical(optimizer or args.task.optimizer)
    config = StudyConfig(task=task if isinstance(task, str) else task_obj.name, target=args.target, budget=args.budget,
                         optimizer=opt, optimizer_kwargs=dict(optimizer_kwargs or {}), n_trials=0, seed=seed,
                         default_spec=task_obj.default_policy, pruner="none", eval_every=args.eval_every,
                         optimizers=(opt,), families=check_families(None if families is None else tuple(families)),
                         on=task_obj.judged_on, metric=task_obj.metric, mode=task_obj.mode, ranks=task_obj.ranks,
                         compose={"boundaries": ends, "candidates": candidates, "beam": beam, "state_dir": state_dir,
                                  "lookup": lookup})
    if state_dir is not None and not Path(state_dir).is_dir():
        raise LRKitError(f"state_dir {str(state_dir)!r} is not a folder: give one that exists (its study's fork "
                         "states go in a subfolder of it)")
    name = study_name or default_study_name(task_obj.name, args.target, args.budget, f"compose-{opt.split(':')[-1]}")
    # workers find the fork states here (on another machine, this folder must be shared)
    folder = forks.state_dir(storage, name, state_dir).resolve()
    opened = open_study(args, config, name, storage=storage, lr_range=lr_range, device=device,
                        heartbeat_interval=heartbeat_interval, grace_period=grace_period, log=log,
                        update=lambda c: replace(c, compose={**c.compose, "state_dir": state_dir,
                                                             "states": str(folder)}))
    opened.study.set_user_attr(ATTR_COMPOSE_DONE, False)
    with study_progress(args.budget, progress) as reporter:
        _run_stages(opened, task_obj, ends, folder, reporter)
    opened.study.set_user_attr(ATTR_COMPOSE_DONE, True)
    result = summarize_composition(opened.study, opened.config, task_obj)
    if not keep_states:
        forks.remove_folder(folder)
    return result


def _run_stages(opened: OpenStudy, task: Any, ends: list[int], folder: Path, reporter: Any) -> None:
    """Queue and run each stage from the beam the stage before kept, until a stage reaches the target."""
    study, config, note = opened.study, opened.config, opened.log
    beam = int(config.compose["beam"])
    initial = _initial(study, opened.store, config, task, int(config.compose["candidates"]))
    beam_nodes: list[StageNode] = []
    for stage in range(len(ends)):
        queued = _queue_stage(study, config, task, stage, beam_nodes, ends, initial)
        if queued:
            note(f"stage {stage + 1}/{len(ends)}: {queued} trials to update {ends[stage]}")
        run_study(study, config, task, device=opened.device, progress=reporter, log=note,
                  stage_runner=stage_trial.run_stage_trial)
        nodes = sorted((n for n in nodes_of(study) if n.stage == stage), key=StageNode.key)
        if not nodes:
            raise LRKitError(f"stage {stage + 1} has no finished trial (did they all fail?)")
        files, size = forks.folder_bytes(folder)
        note(f"stage {stage + 1} done: best {nodes[0].kind} (trial {nodes[0].number}), {config.on} accuracy "
            f"{nodes[0].val_acc:.4f}; fork states: {files} files, {size / 2**20:.1f} MiB")
        dropped = {n.number for n in nodes_of(study) if n.stage < stage} | {n.number for n in nodes[beam:]}
        forks.remove([t.user_attrs.get(ATTR_STATE_FILE) for t in study.get_trials(deepcopy=False)
                      if t.number in dropped and t.user_attrs.get(ATTR_STATE_FILE)])
        if nodes[0].steps_to_target is not None:
            return
        beam_nodes = nodes[:beam]


def summarize_composition(study: Any, config: StudyConfig, task: Any = None) -> Composition:
    """The composition's tree, its best node and the chosen path (from the stored trials alone)."""
    from lrkit.lrbench.study.rerun import rerun_command

    nodes = nodes_of(study)
    by_number = {n.number: n for n in nodes}
    reached = [n for n in nodes if n.steps_to_target is not None]
    last = max((n.stage for n in nodes), default=0)
    best = min(reached, key=StageNode.key) if reached else min((n for n in nodes if n.stage == last), key=StageNode.key,
                                                          default=None)
    chosen = _path(by_number, best) if best else []
    rerun = ""
    if best is not None:
        rerun = rerun_command(config, Method(best.optimizer, best.optimizer_kwargs or {}, best.spec), task,
                              seeds=[config.seed])
    folder = Path(config.compose.get("states", "."))
    from lrkit.lrbench.study.ranking import failure_note, records

    return Composition(study.study_name, config, nodes, chosen, best, rerun, forks.folder_bytes(folder)[1],
                       failure_note(records(study)))


__all__ = ["Composition", "StageNode", "compose", "draw_seed", "nodes_of", "stage_boundaries", "summarize_composition"]
