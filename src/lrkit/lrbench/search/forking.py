"""Decay forks: a WSD candidate's stable phase trained once, its earlier decays forked from it.

A warm-up-stable-decay policy holds one LR until its decay starts. Two WSD policies that differ only in
where the decay starts make the same updates up to the earlier start, so, with the same optimizer,
arguments and seed, their trainings are one run up to there (the batch of update ``t`` is a pure function
of ``(seed, t)``; bit for bit on CPU, ``tests/test_trial_features.py`` shows it). A search with
``forks=N`` therefore lets a WSD candidate on the study's seed (the *trunk*) keep its run state at up to
``N`` earlier decay starts, and queues each as a candidate of its own (a *fork*) that trains only from
there: its decay and what follows.

- **Fork points.** The decays of :data:`FORK_DECAYS` × the budget, each start rounded to an evaluation
  (a multiple of ``eval_every``), kept when it comes after the warm-up, at least one evaluation before
  the trunk's own decay starts, and the LRs before it are the trunk's exactly; the ``N`` nearest the
  trunk's start first. A trunk forks nothing at a point it did not train past (pruned, diverged, stopped)
  or at which it had reached the target already: a fork would be as dominated, or reach the target at
  the same update.
- **A fork is the sibling policy's training**, so its result is the one training the sibling from scratch
  gives: the curve holds the trunk's evaluations up to the fork point, its repeats on other seeds train
  the whole policy, and a later draw of the same policy reuses it as a duplicate.
- **Counting.** Forks are candidates in the ranking but, like looked-up policies, come on top of the
  study's ``n_trials``. Their cost is the updates they trained: the budget less the fork point
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
                                        ATTR_ROLE, ATTR_SPEC)

#: the decay lengths a trunk forks, as fractions of the budget (a sampled WSD draws its own in [0.1, 0.4])
FORK_DECAYS = (0.2, 0.3, 0.4, 0.5)


def _wsd(spec: str) -> Any:
    from lrkit.spec import parse

    policy = parse(spec)
    return policy if policy.name == "wsd" else None


def fork_points(spec: str, budget: int, eval_every: int, n: int) -> list[tuple[int, str]]:
    """``(update, sibling spec)`` of each fork of the WSD policy ``spec`` (none for another policy or ``n`` 0):
    see the module docstring."""
    trunk = _wsd(spec) if n > 0 else None
    if trunk is None:
        return []
    start = trunk.warmup_steps + trunk.stable_steps
    ts = np.arange(budget, dtype=np.float64)
    lrs = trunk.values(ts)
    out: list[tuple[int, str]] = []
    for fraction in FORK_DECAYS:
        at = eval_every * round((budget - fraction * budget) / eval_every)
        if not trunk.warmup_steps < at <= start - eval_every or any(at == p for p, _ in out):
            continue
        sibling = dataclasses.replace(trunk, stable_steps=at - trunk.warmup_steps, decay_steps=budget - at)
        if np.array_equal(sibling.values(ts[:at]), lrs[:at]):
            out.append((at, sibling.spec()))
    return out[:n]


def trunk_points(config: StudyConfig, method: Method, attrs: dict[str, Any], seed: int,
                 eval_every: int) -> list[tuple[int, str]]:
    """The fork points of a trial about to train, when it is a trunk: a candidate on the study's seed (not a
    repeat, not itself a fork) with a WSD policy applied by lrkit, in a search with ``forks``."""
    if (not config.forks or attrs.get(ATTR_ROLE, "candidate") != "candidate" or attrs.get(ATTR_REPEAT)
            or attrs.get(ATTR_FORK) is not None or seed != config.seed or method.lr_driver != "policy"
            or config.compose):
        return []
    return fork_points(method.spec, config.budget, eval_every, config.forks)


def queue_forks(trial: Any, config: StudyConfig, method: Method, seed: int, points: list[tuple[int, str]],
                result: Any) -> list[int]:
    """Save the trunk's states at its fork points and queue one fork per point (unless the same training is
    already there); returns the fork points queued."""
    from lrkit.lrbench.study.queue import alive_keys, queue, trial_key

    states = result.fork_states or {}
    reached = result.steps_to_target  # a fork from there on would reach the target at the same update
    have = alive_keys(trial.study)
    folder = Path(config.fork_states)
    queued = []
    for at, spec in points:
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
    """A fork's start: the trunk's state at the fork point, from its file, or (when the file is gone) the
    trunk's policy replayed from scratch up to there."""
    from lrkit.lrbench.run.runner import run_trial
    from lrkit.lrbench.run.state import RunState

    try:
        return RunState.load(fork["state"])
    except FileNotFoundError:
        pass
    attrs = study.get_trials(deepcopy=False)[fork["parent"]].user_attrs
    spec = attrs.get(ATTR_SPEC) or attrs[ATTR_RESULT]["spec"]
    replayed = run_trial(task, spec, budget=int(fork["at"]), target=config.target, seed=seed, device=device,
                         optimizer=attrs[ATTR_OPTIMIZER], optimizer_kwargs=attrs[ATTR_OPT_KWARGS],
                         eval_every=config.eval_every, on=config.on, early_stop=False, stop_at_target=False,
                         keep_state=True)
    return replayed.state


def fork_done(fork: dict[str, Any]) -> None:
    """A fork has run: its state file is no longer needed."""
    remove([fork["state"]])


def remove_states(config: StudyConfig) -> None:
    """The search ended: remove its fork folder (a fork queued but never run replays its trunk if run later)."""
    if config.fork_states:
        remove_folder(Path(config.fork_states))


__all__ = ["FORK_DECAYS", "fork_done", "fork_points", "fork_start", "queue_forks", "remove_states", "trunk_points"]
