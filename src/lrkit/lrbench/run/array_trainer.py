"""The built-in tasks' training function: one implementation of the protocol (:mod:`lrkit.lrbench.run.protocol`).

:func:`array_trainer` turns a :class:`~lrkit.lrbench.tasks.catalogue.Task` with in-memory arrays into
``train(run)``: the model is built after the runner seeded torch, update ``t`` trains on
``BatchOrder(seed).indices(t)`` (a pure function of ``(seed, t)``, so a forked run needs no
skipping), and every evaluation reports ``test_acc``/``test_loss`` and, with a validation split,
``val_acc``/``val_loss``. The search cannot tell it from a user's function: both go through a
:class:`~lrkit.lrbench.run.protocol.Run`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch.nn.functional as F

from lrkit.errors import LRKitError
from lrkit.lrbench.run.steps import BatchOrder, TrainData, evaluate, prepare_data, train_step


def array_trainer(task: Any, device: str, on: str, val: bool = True) -> Callable[[Any], None]:
    """``train(run)`` for ``task``'s arrays on ``device`` (data loaded now, once); judged on ``on``; ``val``:
    measure the validation split too (when the task has one)."""
    data = prepare_data(task, device)
    if not val:
        data = dataclasses.replace(data, val_x=None, val_y=None)
    if on == "val" and data.val_x is None:
        raise LRKitError(f"task {task.name!r} has no validation split (val_size=0), so a trial cannot be judged "
                         "on 'val'; judge it on 'test' or give the task a val_size")
    loss_fn = task.loss or F.cross_entropy

    def train(run: Any) -> None:
        model = task.make_model().to(run.device)
        model.train()
        opt = run.optimizer(model)
        order = BatchOrder(len(data.train_y), task.batch_size, run.seed, run.device)
        for t in run.updates():
            idx = order.indices(t)
            try:
                loss = train_step(model, opt, data.train_x[idx], data.train_y[idx], loss_fn)
            except (RuntimeError, OverflowError) as err:
                if "overflow" not in str(err):
                    raise
                # an LR past the parameters' float range: the update itself cannot be represented
                run.diverged(f"diverged at update {t}: lr {run.lr!r} overflows the parameters' dtype")
                return
            run.step(loss)
            if run.due():
                run.report(**_measure(model, data, loss_fn, run))
        if not run.has_diverged:
            run.extras["train_loss"] = _final_train_loss(model, data, loss_fn)

    return train


def _measure(model: Any, data: TrainData, loss_fn: Any, run: Any) -> dict[str, float]:
    """The test set's (and the validation split's) loss and accuracy; the test confidence goes to ``run.extras``."""
    test = evaluate(model, data.test_x, data.test_y, loss_fn=loss_fn)
    out = {"test_loss": test.loss, "test_acc": test.acc}
    if data.val_x is not None:
        val = evaluate(model, data.val_x, data.val_y, loss_fn=loss_fn)
        out.update(val_loss=val.loss, val_acc=val.acc)
    run.extras.update(avg_confidence=test.avg_confidence, confidence_std=test.confidence_std)
    return out


def _final_train_loss(model: Any, data: TrainData, loss_fn: Any) -> float:
    """The loss on (up to) as many training examples as the test set has, in eval mode."""
    n = min(len(data.train_y), len(data.test_y))
    return evaluate(model, data.train_x[:n], data.train_y[:n], loss_fn=loss_fn).loss


__all__ = ["array_trainer"]
