"""The LR range a recommendation draws its candidates from (its first step; docs/lrbench.md, "LR range, per optimizer").

Two ways, both returning ``LRRange(low, high, method, details)``:

- ``"grid"`` (always available): short FIX runs on a log grid ``1e-4, 3e-4, 1e-3, ..., 1``, each for
  ``max(2 * eval_every, budget // 10)`` updates, going up until two LRs in a row diverge or fall
  more than 5 points below the best. ``high`` is the largest LR whose best accuracy is within 2 points
  of the grid's best (the edge of the good region, where CLR puts ``max_lr``); ``low = high / 20``.
- ``"range-test"``: the LR range test of :func:`lrkit.range_test` (CLR §2.2) on the task
  (:func:`task_range_test`): ``high`` is its suggested max LR, ``low`` its suggested base LR (at
  most ``high / 3``). A task that is a training function (:mod:`lrkit.lrbench.run.protocol`) runs
  the range test as one trial of its own function under an ``exp_sweep`` policy
  (:func:`protocol_range_test`), reading each update's loss from ``run.step(loss)``.

``"auto"`` uses the range test and falls back to the grid when it suggests no usable range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lrkit.errors import LRKitError, require
from lrkit.lrbench.tasks.loading import call_with_data_dir, is_reference, load_reference

_PIECES = ("model", "optimizer", "loss_fn", "train_data", "val_data")

GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
METHODS = ("auto", "grid", "range-test")


@dataclass(frozen=True)
class LRRange:
    low: float
    high: float
    method: str
    details: dict[str, Any] = field(default_factory=dict)
    updates: int = 0        # training updates the search for the range cost


def grid_range(task: Any, *, optimizer: str | None = None, optimizer_kwargs: dict | None = None, seed: int = 0,
               budget: int | None = None, device: str = "cpu") -> LRRange:
    """The FIX-grid range (see the module docstring)."""
    from lrkit.lrbench.run.runner import run_trial

    budget = budget or task.budget
    steps = max(2 * task.eval_every, budget // 10)
    scores: dict[float, float] = {}
    updates, bad_in_row = 0, 0
    for lr in GRID:
        res = run_trial(task, f"FIX(k0={lr})", budget=steps, target=1.0, seed=seed, device=device,
                        optimizer=optimizer, optimizer_kwargs=optimizer_kwargs, stop_at_target=False,
                        early_stop=False)
        updates += res.steps
        score = -1.0 if res.status == "diverged" or not math.isfinite(res.best_acc) else res.best_acc
        scores[lr] = score
        best = max(scores.values())
        bad_in_row = bad_in_row + 1 if score < best - 0.05 else 0
        if bad_in_row >= 2:
            break
    best = max(scores.values())
    if best <= 0:
        raise LRKitError(f"no LR in the grid {', '.join(f'{lr:g}' for lr in scores)} trained task {task.name!r}: every run diverged")
    high = max(lr for lr, s in scores.items() if s >= best - 0.02)
    return LRRange(low=high / 20, high=high, method="grid",
                   details={"steps_per_lr": steps, "best_acc_by_lr": {f"{k:g}": v for k, v in scores.items()}},
                   updates=updates)


def range_test_range(task: Any, *, optimizer: str | None = None, optimizer_kwargs: dict | None = None,
                     seed: int = 0, budget: int | None = None, device: str = "cpu") -> LRRange:
    """The range-test range (raises LRKitError when the range test suggests no usable range)."""
    if optimizer_kwargs:
        task = task.replace(optimizer_kwargs=dict(optimizer_kwargs))
    steps = max(100, min(500, (budget or task.budget) // 5))
    if getattr(task, "train", None) is not None:
        result = protocol_range_test(task, optimizer=optimizer, seed=seed, steps=steps, device=device)
    else:
        result = task_range_test(task, optimizer=optimizer, seed=seed, steps=steps)
    suggestion = result.suggest()
    high = float(suggestion.lr)
    low = min(float(suggestion.base_lr or high / 4), high / 3)
    if not (math.isfinite(high) and high > 0 and 0 < low < high):
        raise LRKitError(f"the range test suggested no usable range (low={low!r}, high={high!r})")
    return LRRange(low=low, high=high, method="range-test",
                   details={"suggestion": suggestion.method, "reason": suggestion.reason,
                            "stop_reason": result.stop_reason},
                   updates=int(len(result.lrs)))


def protocol_range_test(task: Any, *, optimizer: str | None = None, seed: int = 0, steps: int = 200,
                        start_lr: float = 1e-6, end_lr: float = 1.0, mode: str = "exp", smooth_weight: float = 0.05,
                        diverge_factor: float = 4.0, device: str = "cpu", checks: int = 5) -> Any:
    """The LR range test as one trial of a training function: the policy is the sweep, the curve the losses
    the function passes to ``run.step(loss)`` (one per update, read back once at the end).

    The function evaluates ``checks`` times (``eval_every = steps // checks``); there the trial stops
    when its training loss diverged (LRBench's rule: non-finite, or over 5× the first loss). The curve is
    then cut where :func:`lrkit.range_test` would have stopped (the smoothed loss over ``diverge_factor``
    × its best, or a non-finite loss), so both read the same curve the same way.

    Returns:
        A :class:`lrkit.rangetest.RangeTestResult`, as :func:`lrkit.range_test` gives.
    """
    import numpy as np

    from lrkit.lrbench.run.runner import run_trial
    from lrkit.rangetest.result import RangeTestResult
    from lrkit.rangetest.runner import _Record
    from lrkit.rangetest.sweep import make_sweep

    require(isinstance(steps, int) and steps >= 2, "steps >= 2", steps=steps)
    sweep = make_sweep(mode, start_lr, end_lr, steps)
    trial = run_trial(task, sweep, budget=steps, target=1.0 if task.target is None else task.target, seed=seed, device=device, optimizer=optimizer,
                      eval_every=max(1, steps // checks), stop_at_target=False, early_stop=False, keep_losses=True,
                      diverge_factor=5.0)
    losses = trial.losses
    if losses is None or not len(losses) or np.isnan(losses).all():
        raise LRKitError(f"the range test of task {task.name!r} needs each update's loss: call run.step(loss) "
                         "with the loss of the update (a tensor is fine)")
    record = _Record(smooth_weight, diverge_factor)
    lrs = sweep.values(np.arange(len(losses), dtype=np.float64))
    for lr, loss in zip(lrs, losses):
        if record.add(float(lr), float(loss), math.nan, None):
            break
    return RangeTestResult(
        lrs=np.array(record.lrs), losses=np.array(record.losses), smoothed_losses=np.array(record.smoothed),
        accuracies=None, train_losses=None, sweep=sweep, mode=mode, steps=steps,
        stop_reason=record.stop or (trial.reason if trial.status == "diverged" else f"completed all {steps} points"),
        measured_on="training batches", iters_per_epoch=None)


def _pieces(value: Any, path: str) -> dict[str, Any]:
    if isinstance(value, dict):
        pieces = {k: value.get(k) for k in _PIECES}
    elif isinstance(value, (tuple, list)) and len(value) in (4, 5):
        pieces = dict(zip(_PIECES, (*value, None)))
    else:
        raise LRKitError(f"{path!r} must return a Task, (model, optimizer, loss_fn, train_data[, val_data]) or a "
                         f"dict with those keys, but returned {type(value).__name__}")
    missing = [k for k in _PIECES[:4] if pieces[k] is None]
    if missing:
        raise LRKitError(f"{path!r} returned no {', '.join(missing)}")
    return pieces


def task_range_test(task: Any, *, optimizer: str | None = None, val: bool = False, train_limit: int | None = None,
                    seed: int = 0, data_dir: str | None = None, **kwargs: Any) -> Any:
    """Build the task's model (seeded), optimizer and data, and run :func:`lrkit.range_test` on them.

    ``lrkit range-test --task`` calls this.

    Args:
        task: a :class:`~lrkit.lrbench.Task`, a built-in task name, or ``module:function``
            returning a Task or the pieces of a range test directly: a tuple
            ``(model, optimizer, loss_fn, train_data[, val_data])`` or a dict with those keys; or a
            training function ``train(run)``, whose range test is one trial of it
            (:func:`protocol_range_test`; ``val`` and ``train_limit`` do not apply).
        optimizer: an optimizer (see :mod:`lrkit.lrbench.tasks.optimizers`) instead of the task's.
        val: measure on the task's validation split after every update (its test split when the
            task has none; for a custom set-up: its ``val_data``). Training uses the training
            split only, never the held-out examples.
        train_limit: use only the first ``train_limit`` training examples (a quick look).
        seed: seeds torch before the model is built.
        data_dir: where the Fashion-MNIST files are.
        **kwargs: passed on to ``range_test`` (``start_lr``, ``end_lr``, ``steps``, ``mode``, ...).

    Returns:
        The :class:`lrkit.rangetest.RangeTestResult`.
    """
    import torch

    from lrkit.lrbench.tasks.optimizers import make_optimizer
    from lrkit.lrbench.tasks.catalogue import Task, check_task, get_task
    from lrkit.lrbench.run.steps import resolve_optimizer
    from lrkit.rangetest import range_test

    torch.manual_seed(seed)
    if is_reference(task):
        from lrkit.lrbench.tasks.catalogue import is_training_function

        value = load_reference(task, "task")
        if is_training_function(value) or getattr(value, "train", None) is not None:
            task = get_task(task, data_dir=data_dir)
            value = task
        value = value if isinstance(value, Task) or not callable(value) else call_with_data_dir(value, data_dir, task)
        if not isinstance(value, Task):
            pieces = _pieces(value, task)
            if optimizer is not None:
                raise LRKitError("`optimizer` cannot be chosen for a module:function set-up that builds its own")
            return range_test(pieces["model"], pieces["optimizer"], pieces["loss_fn"], pieces["train_data"],
                              pieces["val_data"] if val else None, **kwargs)
        task = value
    if isinstance(task, str):
        task = get_task(task, data_dir=data_dir)
    if not isinstance(task, Task):
        raise LRKitError(f"`task` must be a Task, a task name or 'module:function', but got {type(task).__name__}")
    if task.train is not None:  # a training function: the sweep is one trial of it
        extra = {k: kwargs[k] for k in ("start_lr", "end_lr", "steps", "mode", "smooth_weight", "diverge_factor")
                 if k in kwargs}
        return protocol_range_test(task, optimizer=optimizer, seed=seed, **extra)
    data = check_task(task)
    torch.manual_seed(seed)  # check_task built a model: the sweep's model starts from the seed again
    start_lr = kwargs.get("start_lr", 1e-6)
    # the optimizer is built at start_lr, and would name it only `lr`
    require(isinstance(start_lr, (int, float)) and start_lr > 0, "start_lr > 0", start_lr=start_lr)
    model = task.make_model()
    name, options = resolve_optimizer(task, optimizer, None)  # the same set-up a trial would train with
    opt = make_optimizer(name, model.parameters(), lr=start_lr, **options)
    train_x, train_y = data.train_x, data.train_y
    if train_limit is not None:
        train_x, train_y = train_x[:train_limit], train_y[:train_limit]
    held_x, held_y = (data.val_x, data.val_y) if data.val_x is not None else (data.test_x, data.test_y)
    val_data = (torch.from_numpy(held_x), torch.from_numpy(held_y)) if val else None
    kwargs.setdefault("metric", "accuracy")
    kwargs.setdefault("batch_size", task.batch_size)
    kwargs.setdefault("val_batch_limit", None)
    loss_fn = task.loss or torch.nn.functional.cross_entropy  # as the trial runner uses it
    return range_test(model, opt, loss_fn, (torch.from_numpy(train_x), torch.from_numpy(train_y)), val_data, **kwargs)


def find_lr_range(task: Any, method: str | tuple[float, float] = "auto", **kwargs: Any) -> LRRange:
    """The candidates' LR range by ``method`` in ``METHODS`` (see the module docstring), or ``(low, high)``."""
    if isinstance(method, (tuple, list)):
        low, high = (float(v) for v in method)
        require(0 < low < high, "0 < low < high", low=low, high=high)
        return LRRange(low=low, high=high, method="given")
    if method not in METHODS:
        raise LRKitError(f"unknown LR-range method {method!r}; use one of {METHODS}")
    if method == "grid":
        return grid_range(task, **kwargs)
    if method == "range-test":
        return range_test_range(task, **kwargs)
    try:
        return range_test_range(task, **kwargs)
    except LRKitError as err:  # no usable suggestion: the grid still works
        found = grid_range(task, **kwargs)
        return LRRange(found.low, found.high, "grid", {**found.details, "range_test_unavailable": str(err)},
                       found.updates)


