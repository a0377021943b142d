"""Tasks: what a learning-rate policy is judged on.

A :class:`Task` bundles a model factory, the data, the optimizer (name and arguments), the batch
size, the evaluation interval, a default budget and target accuracy, and the policy a user would
pick without lrkit. The loss is cross-entropy unless a task names another; the metric is top-1
accuracy.

Built in (``lrkit tasks`` lists them):

- ``fashion-mnist-cnn3``: LRBench's CNN3 (Caffe's cifar10_quick) adapted to 28×28.
- ``fashion-mnist-lenet``: Caffe's LeNet.
- ``fashion-mnist-mlp``: a 784-256-128-10 perceptron.
- ``digits-mlp``: the 8×8 digits bundled with lrkit and a 64-64-10 perceptron; trains in seconds.

Your own: ``get_task("mypkg.mymod:make_task")`` imports ``mypkg.mymod`` (installed, on
``PYTHONPATH``, or in the current directory) and calls ``make_task()`` (with ``data_dir=`` when the
function accepts it); it must return a Task.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import os
import weakref
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from lrkit.lrbench.tasks.datasets import ArrayDataset, DataError, load_digits, load_fashion_mnist
from lrkit.errors import LRKitError
from lrkit.spec import parse
from lrkit.text import did_you_mean


@dataclass(frozen=True, eq=False)
class Task:
    """A model, its data and its training set-up; time is counted in optimizer updates.

    Args:
        name: the task's name (``lrkit verify --task NAME``).
        description: one paragraph: model, data, and why ``default_policy`` is the default.
        make_model: returns a fresh ``torch.nn.Module``; the caller seeds torch first.
        load_data: returns the :class:`~lrkit.lrbench.tasks.datasets.ArrayDataset` (train and test arrays).
        val_size: training examples held out for validation (a count, or a fraction < 1; 0: none),
            by a permutation seeded with ``split_seed`` (:func:`~lrkit.lrbench.tasks.datasets.split_validation`).
            A search selects on validation accuracy; the test set is only reported.
        split_seed: the seed of that permutation (fixed per task, not per trial).
        optimizer: one of :data:`lrkit.lrbench.tasks.optimizers.OPTIMIZERS`.
        optimizer_kwargs: the optimizer's own arguments, e.g. ``{"weight_decay": 5e-4}``.
        batch_size: training examples per update, >= 1.
        eval_every: updates between two evaluations on the test set, >= 1.
        default_policy: a policy spec: what a user would train with without lrkit.
        budget: the default number of updates, >= 1.
        target: the default target top-1 test accuracy, in (0, 1].
        loss: a torch functional loss ``loss(logits, labels, reduction="mean" | "sum")``, e.g.
            ``functools.partial(F.cross_entropy, label_smoothing=0.1)``; None: cross-entropy.
        train: the user's training function ``train(run)`` (:mod:`lrkit.lrbench.run.protocol`); with it
            the task needs no ``make_model`` / ``load_data`` (see :meth:`from_function`).
        metric: the reported metric a trial is judged on (None: ``val_acc`` / ``test_acc``, the
            built-in tasks' top-1 accuracy).
        mode: ``"max"`` (an accuracy) or ``"min"`` (a loss: the target is reached at ``<= target``).
        ranks: processes a trial of a training function runs as (a data-parallel job; 1: in this process).
    """

    name: str
    description: str
    make_model: Callable[[], Any]
    load_data: Callable[[], ArrayDataset]
    optimizer: str = "sgd"
    optimizer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 128
    eval_every: int = 100
    default_policy: str = "FIX(k0=0.01)"
    budget: int = 3000
    target: float = 0.9
    loss: Callable[..., Any] | None = None
    val_size: int | float = 0.1
    split_seed: int = 0
    train: Callable[[Any], None] | None = None
    metric: str | None = None
    mode: str = "max"
    ranks: int = 1

    def __post_init__(self) -> None:
        from lrkit.lrbench.tasks.optimizers import optimizer_class

        accuracy = self.mode == "max" and is_accuracy(self.metric)
        rules = [
            (isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size >= 1", "batch_size"),
            (isinstance(self.eval_every, int) and self.eval_every >= 1, "eval_every >= 1", "eval_every"),
            ((isinstance(self.budget, int) and self.budget >= 1) or (self.budget is None and self.train is not None),
             "budget >= 1", "budget"),
            (self.mode in ("max", "min"), "mode in ('max', 'min')", "mode"),
            (self.metric is None or (isinstance(self.metric, str) and self.metric.isidentifier()),
             "metric is a name the training function reports, e.g. val_loss", "metric"),
            (self.target is None or
             (isinstance(self.target, (int, float)) and not isinstance(self.target, bool)
              and ((0 < self.target <= 1) if accuracy else math.isfinite(self.target))),
             "0 < target <= 1" if accuracy else "target is a finite number", "target"),
            (self.train is not None or (callable(self.make_model) and callable(self.load_data)),
             "make_model and load_data are functions (or give train=, a training function)", "make_model"),
            (self.train is None or callable(self.train), "train is a function train(run)", "train"),
            (isinstance(self.ranks, int) and not isinstance(self.ranks, bool) and self.ranks >= 1
             and (self.ranks == 1 or self.train is not None), "ranks >= 1 (above 1 only for a training function)",
             "ranks"),
            (isinstance(self.val_size, (int, float)) and not isinstance(self.val_size, bool) and self.val_size >= 0,
             "val_size >= 0", "val_size"),
        ]
        for ok, rule, name in rules:
            if not ok:
                raise LRKitError(f"task {self.name!r}: `{rule}` must hold, but got ({name}={getattr(self, name)!r}).")
        try:
            optimizer_class(self.optimizer)
        except LRKitError as err:
            raise LRKitError(f"task {self.name!r}: {err}") from None
        try:
            parse(self.default_policy)
        except LRKitError as err:
            raise LRKitError(f"task {self.name!r}: default_policy {self.default_policy!r} is not a valid spec: "
                             f"{err}") from None
        # read-only, so a frozen task cannot be changed through its dict either
        object.__setattr__(self, "optimizer_kwargs", MappingProxyType(dict(self.optimizer_kwargs)))

    @classmethod
    def from_function(cls, train: Callable[[Any], None], *, name: str | None = None, budget: int | None = None,
                      target: float | None = None,
                      metric: str = "val_acc", mode: str = "max", eval_every: int | None = None,
                      optimizer: str = "adam", optimizer_kwargs: Mapping[str, Any] | None = None,
                      default_policy: str = "FIX(k0=0.001)", batch_size: int = 128,
                      description: str = "", ranks: int = 1) -> "Task":
        """A task whose trials call the user's training function ``train(run)`` (:mod:`lrkit.lrbench.run.protocol`).

        ``budget`` (updates) and ``target`` (a value of ``metric``) are the defaults of every command
        (without them, each command needs ``--budget`` / ``--target``); ``eval_every`` defaults to a
        tenth of the budget. ``batch_size`` only sizes an epoch for the
        policies that count in epochs; ``default_policy`` (with ``optimizer``) is what the user would train
        with otherwise, the search's first yardstick.
        """
        return cls(name=name or getattr(train, "__qualname__", "train"), description=description or
                   (train.__doc__ or "").strip().split("\n")[0], make_model=None, load_data=None,  # type: ignore[arg-type]
                   optimizer=optimizer, optimizer_kwargs=dict(optimizer_kwargs or {}), batch_size=batch_size,
                   eval_every=eval_every or max(1, (budget or 1000) // 10), default_policy=default_policy, budget=budget,  # type: ignore[arg-type]
                   target=target, val_size=0, train=train, metric=metric, mode=mode, ranks=ranks)  # type: ignore[arg-type]

    def judged_by(self, metric: str | None = None, mode: str | None = None, ranks: int | None = None) -> "Task":
        """This task judged on ``metric`` in ``mode`` and run as ``ranks`` processes (None keeps the task's).

        Judged on another metric, the task's default target (a value of its own metric) no longer applies:
        the copy has none, so a target must be given (``verify`` without one says what the runs reached).
        """
        changes: dict[str, Any] = {k: v for k, v in (("metric", metric), ("mode", mode), ("ranks", ranks))
                                   if v is not None}
        if metric is not None and metric != (self.metric or ("val_acc" if self.val_size else "test_acc")):
            changes["target"] = None
        return self.replace(**changes) if changes else self

    @property
    def judged_on(self) -> str:
        """What a search judges on: ``"val"``, or ``"test"`` (a built-in task without a validation split, or a
        training function judged on a ``test_...`` metric)."""
        if self.train is not None:
            return "test" if (self.metric or "").startswith("test_") else "val"
        return "val" if self.val_size else "test"

    def given(self, budget: int | None, target: float | None, need_target: bool = True) -> tuple[int, float]:
        """``(budget, target)``: those given, else the task's; an LRKitError naming what is missing (the target
        may stay None when not ``need_target``: a run judged by its metric at the budget)."""
        budget = self.budget if budget is None else budget
        target = self.target if target is None else target
        for name, value in (("budget", budget), ("target", target)):
            if value is None and (name == "budget" or need_target):
                raise LRKitError(f"task {self.name!r} is a training function without a default {name}: give "
                                 f"--{name} ({name}=...), or decorate it with @lrkit.lrbench.task_defaults({name}=...)")
        return budget, target  # type: ignore[return-value]

    def replace(self, **changes: Any) -> "Task":
        """A copy with some fields changed, e.g. ``task.replace(batch_size=64)``."""
        changes["optimizer_kwargs"] = dict(changes.get("optimizer_kwargs", self.optimizer_kwargs))
        return dataclasses.replace(self, **changes)

    def split_data(self) -> ArrayDataset:
        """The task's data with the validation split carved from its training arrays.

        Raises:
            DataError: the arrays break a rule training relies on
                (:func:`~lrkit.lrbench.tasks.datasets.check_arrays`; the message names the array).
        """
        from lrkit.lrbench.tasks.datasets import check_arrays, split_validation

        if self.train is not None:
            raise LRKitError(f"task {self.name!r} trains with its own function, so it has no arrays to split")
        data = self.load_data()
        if _CHECKED.get(id(data)) is not data:  # a cached data set is checked once, not once per trial
            try:
                check_arrays(data)
            except DataError as err:
                raise DataError(f"task {self.name!r}: {err}") from None
            _CHECKED[id(data)] = data
        return split_validation(data, self.val_size, self.split_seed)

    def summary(self) -> dict[str, Any]:
        """The task's set-up as a JSON-able dict (no data loaded)."""
        return {"name": self.name, "optimizer": self.optimizer, "optimizer_kwargs": dict(self.optimizer_kwargs),
                "batch_size": self.batch_size, "eval_every": self.eval_every, "default_policy": self.default_policy,
                "budget": self.budget, "target": self.target, "val_size": self.val_size, "split_seed": self.split_seed,
                "description": self.description, "metric": self.metric, "mode": self.mode,
                "training_function": self.train is not None}


# the data sets split_data has checked (a built-in task's loader is cached, so every trial gets the same one)
_CHECKED: weakref.WeakValueDictionary[int, ArrayDataset] = weakref.WeakValueDictionary()


# ---- built-in tasks -------------------------------------------------------------------------------
# Each default target and budget discriminates: a well-chosen (optimizer, policy) reaches the target
# within the budget and the task's default does not. Measured on seeds 0 and 1 (best test accuracy
# within the budget, the default against the peers of lrkit.lrbench.study.baselines) with
# `experiments/task_targets.py`; the numbers are in benchmarks/RESULTS.md.
# The data loaders are cached: a study runs many trials on one task, and decoding the idx files
# every time would cost more than a digits trial.
@functools.lru_cache(maxsize=4)
def _fashion(data_dir: str | None) -> ArrayDataset:
    return load_fashion_mnist(data_dir)


@functools.lru_cache(maxsize=1)
def _digits() -> ArrayDataset:
    return load_digits()


def _model(kind: str, in_shape: tuple[int, int, int], **kwargs: Any) -> Callable[[], Any]:
    def make() -> Any:
        from lrkit.lrbench.tasks import models

        return getattr(models, kind)(in_shape, 10, **kwargs)

    return make


def _builtin(data_dir: str | None) -> dict[str, Task]:
    fashion = functools.partial(_fashion, data_dir)
    return {task.name: task for task in [
        Task("fashion-mnist-cnn3",
             "LRBench's CNN3 (Caffe's cifar10_quick: conv 32-32-64, 64 units) on Fashion-MNIST 28×28. "
             "Default FIX(k0=0.001) with momentum 0.9 and batch 100: cifar10_quick's own solver settings, "
             "the default LRBench compares CNN3 policies against. Within 600 updates it reaches 0.115-0.572 "
             "(seeds 0, 1); Adam at 1e-3 0.762-0.789, Prodigy 0.803-0.845, schedule-free AdamW 0.834-0.841: "
             "hence target 0.8.",
             _model("cnn3", (1, 28, 28)), fashion, optimizer="momentum",
             optimizer_kwargs={"weight_decay": 0.004}, batch_size=100, eval_every=100,
             default_policy="FIX(k0=0.001)", budget=600, target=0.8, val_size=5000),
        Task("fashion-mnist-lenet",
             "Caffe's LeNet (conv 20-50, 500 units) on Fashion-MNIST. Default INV(k0=0.01, gamma=0.0001, p=0.75) "
             "with momentum 0.9, weight decay 5e-4 and batch 64: Caffe's lenet_solver, the default LRBench compares "
             "LeNet policies against. Within 1,000 updates it reaches 0.848-0.853 (seeds 0, 1); Adam at 1e-3 "
             "0.870-0.871, Prodigy 0.881-0.884, schedule-free AdamW 0.884-0.887: hence target 0.87.",
             _model("lenet", (1, 28, 28)), fashion, optimizer="momentum",
             optimizer_kwargs={"weight_decay": 5e-4}, batch_size=64, eval_every=100,
             default_policy="INV(k0=0.01, gamma=0.0001, p=0.75)", budget=1000, target=0.87, val_size=5000),
        Task("fashion-mnist-mlp",
             "A 784-256-128-10 ReLU perceptron on Fashion-MNIST. Default FIX(k0=0.01) with plain SGD and "
             "batch 128: the `SGD(lr=0.01)` of countless tutorials. Within 1,000 updates it reaches 0.681-0.686 "
             "(seeds 0, 1); Adam at 1e-3 0.857-0.860, schedule-free AdamW 0.875: hence target 0.85.",
             _model("mlp", (1, 28, 28)), fashion, optimizer="sgd", batch_size=128, eval_every=100,
             default_policy="FIX(k0=0.01)", budget=1000, target=0.85, val_size=5000),
        Task("digits-mlp",
             "The 8×8 digits bundled with lrkit (1,438 train, of which 144 are held out for validation; 359 test) "
             "and a 64-64-10 ReLU perceptron; trains in seconds, for tests and quick looks. Default FIX(k0=0.01) with "
             "plain SGD and batch 32, the `SGD(lr=0.01)` of countless tutorials; it reaches 0.90 test accuracy in "
             "about 1,500 updates, the peers in 100-200: hence target 0.9 within 600.",
             _model("mlp", (1, 8, 8), hidden=(64,)), _digits, optimizer="sgd", batch_size=32, eval_every=50,
             default_policy="FIX(k0=0.01)", budget=600, target=0.9),
    ]}


def list_tasks() -> list[Task]:
    """The built-in tasks (their data is not loaded)."""
    return list(_builtin(None).values())


def get_task(name_or_path: str, data_dir: str | None = None) -> Task:
    """A built-in task by name, or ``"pkg.module:function"`` returning a :class:`Task`.

    Args:
        name_or_path: a name from :func:`list_tasks`, or ``module:function``.
        data_dir: where the built-in Fashion-MNIST tasks read their idx files (default:
            ``$LRKIT_DATA_DIR``, else Debian's ``/usr/share/datasets/fashion-mnist``); passed to
            a custom function that accepts ``data_dir``.

    Raises:
        LRKitError: unknown name (the closest one is suggested), a ``data_dir`` that is not a folder
            (built-in tasks), or a module/function that cannot be imported or does not return a Task.
    """
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise LRKitError(f"a task is a built-in name or 'module:function', but got {name_or_path!r}")
    if ":" in name_or_path:
        return _custom(name_or_path.strip(), data_dir)  # what data_dir means is up to the function
    if data_dir is not None and not os.path.isdir(data_dir):
        raise LRKitError(f"data_dir {str(data_dir)!r} is not a folder (give the folder with the data, or leave it "
                         "out for the default)")
    tasks = _builtin(data_dir)
    if name_or_path in tasks:
        return tasks[name_or_path]
    raise LRKitError(f"unknown task {name_or_path!r} (built in: {', '.join(tasks)}; or 'module:function')"
                     f"{did_you_mean(name_or_path, tasks)}")


def _custom(path: str, data_dir: str | None) -> Task:
    from lrkit.lrbench.tasks.loading import call_with_data_dir, load_reference

    target = load_reference(path, "task")
    if isinstance(target, Task):
        return target
    if not callable(target):
        raise LRKitError(f"{path!r} is neither a Task nor a function returning one, but {type(target).__name__}")
    if is_training_function(target):
        return Task.from_function(target, name=path, **getattr(target, "lrbench_defaults", {}))
    try:
        task = call_with_data_dir(target, data_dir, path)
    except LRKitError:
        raise
    except Exception as err:  # noqa: BLE001 (the user's function raised)
        raise LRKitError(f"{path!r} raised while building the task: {type(err).__name__}: {err} (`lrkit --debug "
                         "...` shows the traceback)") from err
    if not isinstance(task, Task):
        raise LRKitError(f"{path!r} must return an lrkit.lrbench.Task, but returned {type(task).__name__}")
    return task


def is_accuracy(metric: str | None) -> bool:
    """Whether a metric name is an accuracy (its target lies in (0, 1]): None (the built-in one), ``acc``,
    ``val_acc``, ``test_accuracy``..."""
    return metric is None or metric.split("_", 1)[-1] in ("acc", "accuracy")


def is_training_function(function: Any) -> bool:
    """Whether ``function`` is a training function ``train(run)`` rather than a task factory: decorated with
    :func:`task_defaults`, or taking exactly one required argument, named ``run`` (or annotated ``Run``)."""
    if hasattr(function, "lrbench_defaults"):
        return True
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False
    required = [p for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(required) == 1 and (required[0].name == "run" or "Run" in str(required[0].annotation))


def task_defaults(*, budget: int, target: float, metric: str = "val_acc", mode: str = "max", **defaults: Any
             ) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Give a training function its defaults, so that ``--task mymod:train`` needs no flags::

        @task_defaults(budget=600, target=0.85, metric="val_acc", eval_every=50)
        def train(run): ...

    The keywords are those of :meth:`Task.from_function`; the function itself is returned unchanged.
    """
    def mark(function: Callable[[Any], None]) -> Callable[[Any], None]:
        function.lrbench_defaults = dict(budget=budget, target=target, metric=metric, mode=mode,  # type: ignore[attr-defined]
                                       **defaults)
        Task.from_function(function, **function.lrbench_defaults)  # type: ignore[attr-defined]  # checked now
        return function

    return mark


def _user_code(what: str, function: Callable[[], Any]) -> Any:
    try:
        return function()
    except DataError:
        raise  # it names the task and the array already
    except LRKitError as err:
        raise LRKitError(f"{what}: {err}") from err
    except Exception as err:  # noqa: BLE001 (the task's own code raised: a user's mistake, named)
        raise LRKitError(f"{what} failed: {type(err).__name__}: {err} (`lrkit --debug ...` shows the traceback)") from err


def check_task(task: Task) -> ArrayDataset:
    """Load the task's data and feed one batch to its model, before anything trains or is stored; returns
    the data (:meth:`Task.split_data`), so that a caller training on it need not load it again.

    ``verify``, ``recommend``, ``compose``, a worker and the range test on a task call it. A mistake in
    a task would otherwise end in torch's traceback (``mat1 and mat2 must have the same dtype``,
    ``Target 3 is out of bounds``) or fail every trial of a study one after another; here it is one
    error naming the task, the array, the rule and the value: the rules of
    :func:`~lrkit.lrbench.tasks.datasets.check_arrays` (loading), then floating ``x`` of the model's
    dtype and labels below the model's number of outputs.

    Raises:
        DataError: the data breaks one of those rules.
        LRKitError: the data or the model cannot be loaded, built or run.
    """
    import numpy as np

    if task.train is not None:  # a training function: its own data, checked by its own code
        return None  # type: ignore[return-value]
    data = _user_code(f"loading the data of task {task.name!r}", task.split_data)
    model = _user_code(f"building the model of task {task.name!r}", task.make_model)
    x = data.train_x
    dtype = _parameter_dtype(model)
    if dtype is not None and np.issubdtype(x.dtype, np.floating) and x.dtype != dtype:
        raise DataError(f"task {task.name!r}: train x must be {dtype} (the dtype of the model's parameters), but got "
                        f"{x.dtype}: convert with x.astype(numpy.{dtype})")
    batch = np.ascontiguousarray(x[: min(len(x), task.batch_size, 16)])
    try:
        logits = _forward(model, batch)
    except Exception as err:  # noqa: BLE001 (the task's own model raised)
        if dtype is not None and not np.issubdtype(x.dtype, np.floating):
            raise DataError(f"task {task.name!r}: train x must be {dtype} for this model (the dtype of its "
                            f"parameters), but got {x.dtype}: convert with x.astype(numpy.{dtype})") from None
        raise LRKitError(f"running the model of task {task.name!r} on a batch of its training data failed: "
                         f"{type(err).__name__}: {err} (`lrkit --debug ...` shows the traceback)") from err
    classes = int(logits.shape[-1]) if getattr(logits, "ndim", 0) >= 1 else 0
    for split in ("train", "val", "test"):
        y = getattr(data, f"{split}_y")
        if y is not None and int(np.max(y)) >= classes:
            raise DataError(f"task {task.name!r}: {split} y must be below {classes} (the model's {classes} outputs), "
                            f"but holds label {int(np.max(y))}: give the model one output per class "
                            f"({int(np.max(y)) + 1} or more)")
    return data


def _parameter_dtype(model: Any) -> str | None:
    """The numpy name of the dtype of the model's first floating parameter (``"float32"``), or None."""
    for param in getattr(model, "parameters", lambda: [])():
        if param.is_floating_point():
            return str(param.dtype).removeprefix("torch.")
    return None


def _forward(model: Any, batch: Any) -> Any:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(batch))
