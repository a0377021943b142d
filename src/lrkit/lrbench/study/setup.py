"""The one set-up path of a study: ``recommend`` and ``compose`` check their arguments, open the storage,
create or continue the study and find its LR ranges here, and ``lrkit worker`` opens the storage the same
way, so an argument means the same in all three (``grace_period=0`` is refused by each, not ignored by one).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from lrkit.errors import LRKitError
from lrkit.lrbench.run.lr_range import find_lr_range
from lrkit.lrbench.run.runner import check_trial_args
from lrkit.lrbench.run.steps import check_device, check_optimizers, optimizer_setup
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.schema import ATTR_LR_RANGE_DETAILS
from lrkit.lrbench.study.storage import create_study, open_storage, update_config
from lrkit.lrbench.tasks.catalogue import Task, check_task, get_task
from lrkit.lrbench.tasks.optimizers import LR_FREE_RANGE, is_lr_free


@dataclass(frozen=True)
class TaskArgs:
    """A task and the trial arguments a study takes from it when the user gives none."""

    task: Task
    target: float
    budget: int
    eval_every: int | None


def task_args(task: str | Task, target: float | None, budget: int | None, eval_every: int | None, *, seed: int,
              on: str | None = None, task_eval_every: bool = False, judging: dict[str, Any] | None = None) -> TaskArgs:
    """The task (a name, ``module:function`` or :class:`Task`) and its defaults, checked as a trial checks them
    (``task_eval_every``: ``eval_every`` None means the task's, rather than "decided per trial"; ``judging``:
    the ``metric``, ``mode`` and ``ranks`` to judge and run it by, None keeping the task's)."""
    task_obj = get_task(task) if isinstance(task, str) else task
    task_obj = task_obj.judged_by(**(judging or {}))
    budget, target = task_obj.given(budget, target)
    every = task_obj.eval_every if eval_every is None and task_eval_every else eval_every
    check_trial_args(budget=budget, target=target, eval_every=every, seed=seed, on=on, metric=task_obj.metric,
                     mode=task_obj.mode)
    return TaskArgs(task_obj, float(target), budget, every)


def check_counts(**counts: Any) -> None:
    """Each ``name=value`` is an int >= its floor: ``n_trials``, ``stages``, ``candidates``, ``beam`` >= 1,
    ``repeats``, ``forks`` >= 0."""
    for name, value in counts.items():
        floor = 0 if name in ("repeats", "forks") else 1
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= floor):
            raise LRKitError(f"`{name} >= {floor}` must hold, but got ({name}={value!r}).")


def storage_timing(heartbeat_interval: int | None, grace_period: int | None) -> dict[str, int]:
    """The storage's heartbeat timing: None keeps the storage's default, any other value is passed on and
    checked there (so 0 is refused, never read as "not given")."""
    return {k: v for k, v in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period))
            if v is not None}


@dataclass
class OpenStudy:
    """A study ready to run: its storage, the Optuna study, its stored configuration, the checked device
    (``"cuda"`` made ``"cuda:0"``, ...) and the log."""

    store: Any
    study: Any
    config: StudyConfig
    device: str
    log: Callable[[str], None]


def open_study(args: TaskArgs, config: StudyConfig, name: str, *, storage: str | None, lr_range: Any,
               device: str, heartbeat_interval: int | None = None, grace_period: int | None = None,
               log: Callable[[str], None] | None = None, sampler: Any = None, pruner: Any = None,
               update: Callable[[StudyConfig], StudyConfig] = lambda c: c) -> OpenStudy:
    """Check everything, then create (or continue) the study ``name`` and find its LR ranges.

    The optimizers, their arguments, the device and the task's data are checked before anything is
    stored. ``update`` changes the stored config's fields that may differ between runs of one study (the
    trial count, the fork-state folder) before the ranges are found; the result is stored.
    """
    check_optimizers(args.task, config.searched, config.optimizer_kwargs)
    device = check_device(device)
    check_task(args.task)
    store = open_storage(storage, **storage_timing(heartbeat_interval, grace_period))
    study, stored = create_study(store, name, config, sampler=sampler, pruner=pruner)
    note = log or (lambda _msg: None)
    if n := len(study.get_trials(deepcopy=False)):
        note(f"continuing study {name!r}: {n} trials stored")
    stored = find_ranges(study, update(stored), args.task, lr_range, device=device, log=note)
    update_config(study, stored)
    return OpenStudy(store, study, stored, device, note)


def find_ranges(study: Any, config: StudyConfig, task: Any, method: str | tuple[float, float], *, device: str = "cpu",
                log: Callable[[str], None] | None = None) -> StudyConfig:
    """Find (once) the LR range of the task's optimizer and of every searched one; store them in the study."""
    note = log or (lambda _msg: None)
    ranges = dict(config.lr_ranges)
    details = dict(study.user_attrs.get(ATTR_LR_RANGE_DETAILS, {}))
    for name in dict.fromkeys((config.optimizer, *config.searched)):
        if name in ranges:
            continue
        if is_lr_free(name) and not isinstance(method, (tuple, list)):
            ranges[name] = [*LR_FREE_RANGE, "lr-free"]
            note(f"LR range of {name}: multipliers [{LR_FREE_RANGE[0]:g}, {LR_FREE_RANGE[1]:g}] around its own "
                "estimate (LR-free: no range test)")
            continue
        _, kwargs = optimizer_setup(task, name, config.optimizer_kwargs)
        given = not isinstance(method, str)
        if not given:
            note(f"finding the LR range of {name} ({method}) ...")
        found = find_lr_range(task, method, optimizer=name, optimizer_kwargs=kwargs, seed=config.seed,
                              budget=config.budget, device=device)
        ranges[name] = [found.low, found.high, found.method]
        details[name] = {**found.details, "updates": found.updates}
        why = found.details.get("range_test_unavailable")
        how = "given" if given else f"by {found.method} ({found.updates} updates)"
        note(f"LR range of {name}: [{found.low:.3g}, {found.high:.3g}] {how}"
            + (f"; the range test was not usable: {why}" if why else ""))
        config = replace(config, lr_ranges=dict(ranges))
        update_config(study, config)  # a range found is never searched for again, even after an interrupt
        study.set_user_attr(ATTR_LR_RANGE_DETAILS, details)
    own = ranges[config.optimizer]
    return replace(config, lr_ranges=ranges, lr_range=(float(own[0]), float(own[1])), lr_range_method=str(own[2]))


__all__ = ["OpenStudy", "TaskArgs", "check_counts", "find_ranges", "open_study", "storage_timing", "task_args"]
