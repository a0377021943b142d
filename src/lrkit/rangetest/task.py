"""Range tests on a named set-up: a built-in task (``fashion-mnist-cnn3``, ...) or ``module:function``.

``module:function`` may return an :class:`lrkit.bench.tasks.Task`, or the pieces of a range test
directly: a tuple ``(model, optimizer, loss_fn, train_data[, val_data])`` or a dict with those keys.
This is what ``lrkit range-test --task`` calls.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from lrkit.errors import LRKitError
from lrkit.rangetest.result import RangeTestResult
from lrkit.rangetest.runner import range_test

_KEYS = ("model", "optimizer", "loss_fn", "train_data", "val_data")


def _call(path: str, data_dir: str | None) -> Any:
    module_name, _, attr = path.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise LRKitError(f"cannot load {path!r}: {err}") from None
    if not callable(target):
        return target
    import inspect

    takes_dir = "data_dir" in inspect.signature(target).parameters
    return target(data_dir=data_dir) if takes_dir else target()


def _pieces(value: Any, path: str) -> dict[str, Any]:
    if isinstance(value, dict):
        pieces = {k: value.get(k) for k in _KEYS}
    elif isinstance(value, (tuple, list)) and len(value) in (4, 5):
        pieces = dict(zip(_KEYS, (*value, None)))
    else:
        raise LRKitError(f"{path!r} must return a Task, (model, optimizer, loss_fn, train_data[, val_data]) or a "
                         f"dict with those keys, but returned {type(value).__name__}")
    missing = [k for k in _KEYS[:4] if pieces[k] is None]
    if missing:
        raise LRKitError(f"{path!r} returned no {', '.join(missing)}")
    return pieces


def task_range_test(task: Any, *, optimizer: str | None = None, val: bool = False, train_limit: int | None = None,
                    seed: int = 0, data_dir: str | None = None, **kwargs: Any) -> RangeTestResult:
    """Build the task's model (seeded), optimizer and data, and run :func:`~lrkit.rangetest.range_test`.

    Args:
        task: a :class:`~lrkit.bench.tasks.Task`, a built-in task name, or ``module:function``.
        optimizer: an optimizer name from :mod:`lrkit.bench.optimizers` instead of the task's.
        val: measure on the task's test split after every update (for a custom set-up: use
            its ``val_data``).
        train_limit: use only the first ``train_limit`` training examples (a quick look).
        seed: seeds torch before the model is built.
        data_dir: where the Fashion-MNIST files are.
        **kwargs: passed on to ``range_test`` (``start_lr``, ``end_lr``, ``steps``, ``mode``, ...).
    """
    from lrkit.bench.tasks import Task, get_task

    torch.manual_seed(seed)
    if isinstance(task, str) and ":" in task:
        value = _call(task, data_dir)
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
    from lrkit.bench.optimizers import make_optimizer
    from lrkit.bench.trainer import resolve_optimizer

    model = task.make_model()
    name, options = resolve_optimizer(task, optimizer, None)  # the same set-up a trial would train with
    opt = make_optimizer(name, model.parameters(), lr=kwargs.get("start_lr", 1e-6), **options)
    data = task.load_data()
    train_x, train_y = data.train_x, data.train_y
    if train_limit is not None:
        train_x, train_y = train_x[:train_limit], train_y[:train_limit]
    val_data = (torch.from_numpy(data.test_x), torch.from_numpy(data.test_y)) if val else None
    kwargs.setdefault("metric", "accuracy")
    kwargs.setdefault("batch_size", task.batch_size)
    kwargs.setdefault("val_batch_limit", None)
    loss_fn = task.loss or torch.nn.functional.cross_entropy  # as the trial runner uses it
    return range_test(model, opt, loss_fn, (torch.from_numpy(train_x), torch.from_numpy(train_y)), val_data, **kwargs)
