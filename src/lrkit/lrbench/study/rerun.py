"""The ``lrkit verify`` command that re-runs a method of a study: one function for the CLI, the report and compose."""

from __future__ import annotations

import json
import shlex
from typing import Any

from lrkit.lrbench.study.config import StudyConfig


def seeds_arg(seeds: list[int]) -> str:
    """What ``--seeds`` takes for exactly these seeds: the list, ``"0"``, ``"0,1"``, ``"2,3,4"``."""
    return ",".join(str(s) for s in seeds)


def rerun_command(config: StudyConfig, method: Any, task: Any = None, seeds: list[Any] | None = None) -> str:
    """The ``lrkit verify`` command that re-runs a method of the study, every setting spelled out.

    It names the task as the study does, the target, budget, evaluation interval, optimizer, every
    optimizer argument that differs from what ``verify`` would resolve by itself, the LR driver, the seeds
    and the spec; the CLI and the report print this same command.
    """
    from lrkit.lrbench.tasks.optimizers import accepted_kwargs, optimizer_defaults, signature_default
    from lrkit.lrbench.tasks.catalogue import get_task
    from lrkit.lrbench.run.steps import resolve_optimizer

    task = task if task is not None else config.task_of(get_task(config.task))
    spec = getattr(method, "spec", None) or "SPEC"
    optimizer = getattr(method, "optimizer", None) or config.optimizer
    defaults = optimizer_defaults(optimizer)
    wanted = {**defaults, **(getattr(method, "optimizer_kwargs", None) or {})}
    parts = ["lrkit", "verify", "--task", config.task, "--target", f"{config.target:g}", "--budget", str(config.budget)]
    if config.eval_every:
        parts += ["--eval-every", str(config.eval_every)]
    if config.metric:
        parts += ["--metric", config.metric, "--mode", config.mode]
    if config.ranks > 1:
        parts += ["--ranks", str(config.ranks)]
    parts += ["--optimizer", optimizer]
    _, implied = resolve_optimizer(task, optimizer, None)
    implied = {**defaults, **implied}
    for key in sorted(set(wanted) | set(implied)):
        if key in wanted and implied.get(key, object()) == wanted[key]:
            continue
        value = wanted[key] if key in wanted else signature_default(optimizer, key)
        if key in accepted_kwargs(optimizer):
            parts += ["--opt", f"{key}={json.dumps(value)}"]
    if getattr(method, "lr_driver", "policy") != "policy":
        parts += ["--lr-driver", method.lr_driver]
    seeds = seeds if seeds is not None else (list(method.seeds) if hasattr(method, "seeds") else [config.seed])
    parts += ["--seeds", seeds_arg([int(s) for s in seeds])]
    parts += ["--policy", spec]
    return " ".join(shlex.quote(p) for p in parts)


__all__ = ["rerun_command", "seeds_arg"]
