"""What a study searches: :class:`StudyConfig`, stored with the study so that any worker can join it, and
:class:`ComposeConfig`, a composition's part of it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StudyConfig:
    """What a study searches; stored with the study so that any worker can join it.

    Args:
        task: the LRBench task name (``lrkit tasks``).
        target: the target test accuracy in [0, 1].
        budget: the most optimizer updates a trial may use.
        optimizer: the task's optimizer (the default policy and the OneCycle baseline train with it).
        optimizer_kwargs: optimizer arguments given by the user; each searched optimizer takes those it
            accepts, on top of the task's (:func:`lrkit.lrbench.run.steps.optimizer_setup`).
        n_trials: how many candidate trials (completed or pruned) the study wants in total.
        seed: the training seed of the search, and the sampler's seed.
        lr_range: the task optimizer's ``(low, high)``, and how it was found.
        default_spec: the task's default policy, the speed-up's first yardstick.
        pruner: ``"target"`` (see ``lrkit.lrbench.search.pruning``) or ``"none"``.
        families: the policy families the sampler chooses among.
        eval_every: updates between evaluations (None: the task's); it is also the resolution of
            updates-to-target.
        optimizers: the optimizers searched with the policies (empty: only ``optimizer``).
        lr_ranges: each searched optimizer's ``[low, high, method]``, found once for the study.
        baselines: the peers run beside the search (names in :data:`lrkit.lrbench.study.baselines.BASELINES`).
        on: what the search selects on: ``"val"`` (the validation split) or ``"test"`` (a task without one).
        seeds: the seeds every method is judged on; the search runs on the first, repeats add the others.
        compose: for a composition (``lrkit compose``): its stage ``boundaries``, ``candidates``, ``beam``
            and ``state_dir``; empty for a recommendation.
        metric, mode: what a training function's trials are judged on (None: accuracy) and its direction.
        ranks: processes per trial (a training function run as a data-parallel job).
        knobs: draw the LR-free and schedule-free optimizers' own arguments beside the policy
            (:func:`lrkit.lrbench.search.space.suggest_knobs`); a study stored before knobs existed has ``False``.
        forks: fork up to this many decays (its schedule for shorter budgets) off each WSD candidate's run, as
            candidates of their own (:mod:`lrkit.lrbench.search.forking`); 0: none.
        fork_states: the folder the forks' start states go to (set by ``recommend`` when ``forks``).
    """

    task: str
    target: float
    budget: int
    optimizer: str = "sgd"
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)
    n_trials: int = 30
    seed: int = 0
    lr_range: tuple[float, float] = (0.0, 0.0)
    lr_range_method: str = ""
    default_spec: str = ""
    pruner: str = "target"
    families: tuple[str, ...] = ()
    eval_every: int | None = None
    optimizers: tuple[str, ...] = ()
    lr_ranges: dict[str, list] = field(default_factory=dict)
    baselines: tuple[str, ...] = ()
    on: str = "test"
    seeds: tuple[int, ...] = ()
    compose: dict[str, Any] = field(default_factory=dict)
    metric: str | None = None
    mode: str = "max"
    ranks: int = 1
    knobs: bool = True
    forks: int = 0
    fork_states: str = ""

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["lr_range"] = tuple(data.get("lr_range", (0.0, 0.0)))
        data.setdefault("knobs", False)  # stored before knobs were drawn: its candidates keep their space
        for key in ("families", "optimizers", "baselines", "seeds"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)

    @property
    def searched(self) -> tuple[str, ...]:
        """The optimizers the search chooses among (a study made before optimizers were searched: its one)."""
        return self.optimizers or (self.optimizer,)

    @property
    def judging_seeds(self) -> tuple[int, ...]:
        """The seeds every method is judged on (at least the study's seed)."""
        return self.seeds or (self.seed,)

    def task_of(self, task: Any) -> Any:
        """``task`` (as loaded from :attr:`task`) judged as this study judges: its metric, mode and ranks."""
        if self.metric is None and self.ranks == 1:
            return task
        return task.replace(metric=self.metric or task.metric, mode=self.mode, ranks=self.ranks)

    def lr_range_of(self, optimizer: str) -> tuple[float, float]:
        """``(low, high)`` for one searched optimizer; ``(0, 0)`` when not found yet."""
        found = self.lr_ranges.get(optimizer)
        if found:
            return float(found[0]), float(found[1])
        return tuple(self.lr_range) if optimizer == self.optimizer else (0.0, 0.0)  # type: ignore[return-value]

    def identity(self) -> dict[str, Any]:
        """The fields that make two studies the same search (a rerun must match them)."""
        return {"task": self.task, "target": self.target, "budget": self.budget, "optimizer": self.optimizer,
                "optimizer_kwargs": self.optimizer_kwargs, "seed": self.seed, "eval_every": self.eval_every,
                "optimizers": list(self.searched), "on": self.on,
                **({"metric": self.metric, "mode": self.mode} if self.metric else {}),
                **({"compose": {k: self.compose[k] for k in ("boundaries", "candidates", "beam")}}
                   if self.compose else {})}
