"""Decay forks: a WSD candidate's stable phase trained once, shorter schedules' decays forked from it.

A warm-up-stable-decay policy holds one LR until its decay starts, so the same WSD schedule for a shorter
budget (its decay as long a fraction of that budget, then its floor LR) makes the same updates up to its
earlier decay start: with the same optimizer, arguments and seed, the two trainings are one run up to
there (the batch of update ``t`` is a pure function of ``(seed, t)``; bit for bit on CPU,
``tests/test_trial_features.py`` shows it). This is what WSD is known for: one stable run, a decay
branched off wherever a shorter training would end. Judged by updates-to-target, a candidate that reaches
the target halfway through its stable phase may reach it sooner with a decay that ends near there.

A search with ``forks=N`` lets a WSD candidate on the study's seed (the *trunk*) keep its run state at
its fork points, and queues up to ``N`` of them, earliest first, as candidates of their own (*forks*)
that train only from there: their decay, then the floor LR to the budget.

- **Fork points.** For each fraction ``f`` of :data:`FORK_BUDGETS`, the trunk's schedule for a budget of
  ``f x budget``: its decay starts at ``(1 - d) f x budget`` (``d`` the trunk's decay fraction), rounded
  to an evaluation (a multiple of ``eval_every``), and ends at ``f x budget``. A point is kept when it
  comes after the warm-up, at least one evaluation before the trunk's own decay starts, and the LRs
  before it are the trunk's exactly. A trunk forks nothing at a point it did not train past (pruned,
  diverged, stopped) or at which it had reached the target already: a fork would be as dominated, or
  reach the target at the same update.
- **A fork is the sibling policy's training**, so its result is the one training the sibling from scratch
  gives: the curve holds the trunk's evaluations up to the fork point, its repeats on other seeds train
  the whole policy, and a later draw of the same policy reuses it as a duplicate.
- **Counting.** Forks are candidates in the ranking but, like looked-up policies, come on top of the
  study's ``n_trials``. Their cost is the updates they trained: from the fork point on
  (:mod:`lrkit.lrbench.search.cost`).
- **States** go to files in the study's fork folder (:func:`lrkit.lrbench.study.storage.state_dir`),
  so that any worker that sees it can run a fork; a file is removed when its fork has run, the folder
  when the search ends. A missing file is recomputed by replaying the trunk's policy up to the fork point.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from lrkit.lrbench.run.state import remove, remove_folder
from lrkit.lrbench.study.baselines import Method
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.schema import (ATTR_FORK, ATTR_OPT_KWARGS, ATTR_OPTIMIZER, ATTR_REPEAT, ATTR_RESULT,
                                        ATTR_ROLE)

#: the shorter budgets whose schedules a trunk forks, as fractions of the study's budget, earliest first
FORK_BUDGETS = (0.15, 0.25, 0.35, 0.5, 0.7)


def _wsd(spec: str) -> Any:
    from lrkit.spec import parse

    policy = parse(spec)
    return policy if policy.name == "wsd" else None


def fork_points(spec: str, budget: int, eval_every: int) -> list[tuple[int, str]]:
    """``(update, sibling spec)`` of every fork point of the WSD policy ``spec``, earliest first (none for
    another policy): see the module docstring."""
    trunk = _wsd(spec)
    if trunk is None:
        return []
    start, decay = trunk.warmup_steps + trunk.stable_steps, trunk.decay_steps / budget
    ts = np.arange(budget, dtype=np.float64)
    lrs = trunk.values(ts)
    out: list[tuple[int, str]] = []
    for fraction in FORK_BUDGETS:
        end = round(fraction * budget)
        at = eval_every * round((1 - decay) * end / eval_every)
        if not trunk.warmup_steps < at <= start - eval_every or at >= end or any(at == p for p, _ in out):
            continue
        sibling = dataclasses.replace(trunk, stable_steps=at - trunk.warmup_steps, decay_steps=end - at)
        if np.array_equal(sibling.values(ts[:at]), lrs[:at]):
            out.append((at, sibling.spec()))
    return out


def trunk_points(config: StudyConfig, method: Method, attrs: dict[str, Any], seed: int,
                 eval_every: int) -> list[tuple[int, str]]:
    """The fork points of a trial about to train, when it is a trunk: a candidate on the study's seed (not a
    repeat, not itself a fork) with a WSD policy applied by lrkit, in a search with ``forks``."""
    if (not config.forks or attrs.get(ATTR_ROLE, "candidate") != "candidate" or attrs.get(ATTR_REPEAT)
            or attrs.get(ATTR_FORK) is not None or seed != config.seed or method.lr_driver != "policy"
            or config.compose):
        return []
    return fork_points(method.spec, config.budget, eval_every)


def queue_forks(trial: Any, config: StudyConfig, method: Method, seed: int, points: list[tuple[int, str]],
                result: Any) -> list[int]:
    """Save the trunk's states at its first ``config.forks`` fork points that it trained past before reaching
    the target and queue a fork at each (unless the same training is already there); returns those points."""
    from lrkit.lrbench.study.queue import alive_keys, queue, trial_key

    states = result.fork_states or {}
    reached = result.steps_to_target  # a fork from there on would reach the target at the same update
    have = alive_keys(trial.study)
    folder = Path(config.fork_states)
    queued = []
    for at, spec in points:
        if len(queued) == config.forks:
            break
        sibling = Method(method.optimizer, method.optimizer_kwargs, spec, method.lr_driver)
        late = reached is not None and at >= reached
        if at not in states or late or (trial_key(sibling, config.budget), seed) in have:
            continue
        path = folder / f"trial-{trial.number}-at-{at}.pt"
        folder.mkdir(parents=True, exist_ok=True)
        states[at].save(path)
        fork = {"parent": trial.number, "at": at, "state": str(path)}
        queue(trial.study, config, sibling, seed, "candidate", family="wsd", extra={ATTR_FORK: fork}, have=have)
        queued.append(at)
    return queued


def fork_start(study: Any, config: StudyConfig, task: Any, fork: dict[str, Any], seed: int, device: str) -> Any:
    """A fork's start: the trunk's state at the fork point (:func:`state_at`)."""
    return state_at(study, config, task, fork["parent"], fork["state"], int(fork["at"]), seed, device)


def state_at(study: Any, config: StudyConfig, task: Any, trial: int, path: str | None, step: int, seed: int,
             device: str) -> Any:
    """Trial ``trial``'s run state after ``step`` updates: from the file at ``path``, or (none given, or gone)
    its policy replayed from scratch up to there, bit for bit on CPU (a search's decay fork, a composition's
    stage)."""
    from lrkit.lrbench.run.runner import run_trial
    from lrkit.lrbench.run.state import RunState

    if path:
        try:
            return RunState.load(path)
        except FileNotFoundError:
            pass
    attrs = study.get_trials(deepcopy=False)[trial].user_attrs
    result = attrs[ATTR_RESULT]
    replayed = run_trial(task, result.get("realized_spec") or result["spec"], budget=step, target=config.target,
                         seed=seed, device=device, optimizer=attrs[ATTR_OPTIMIZER],
                         optimizer_kwargs=attrs[ATTR_OPT_KWARGS], eval_every=config.eval_every, on=config.on,
                         early_stop=False, stop_at_target=False, keep_state=True)
    return replayed.state


def fork_done(fork: dict[str, Any]) -> None:
    """A fork has run: its state file is no longer needed."""
    remove([fork["state"]])


def remove_states(config: StudyConfig) -> None:
    """The search ended: remove its fork folder (a fork queued but never run replays its trunk if run later)."""
    if config.fork_states:
        remove_folder(Path(config.fork_states))


__all__ = ["FORK_BUDGETS", "fork_done", "fork_points", "fork_start", "queue_forks", "remove_states", "state_at",
           "trunk_points"]
