"""``range_test``: one short run with the LR rising from ``start_lr`` to ``end_lr``, then everything put back.

Point ``i`` of the curve is update ``i``: its LR is ``sweep(i)`` (group 0; other groups keep
their ratio to group 0), and its loss is the training loss of the batch that update was
computed on, or, with ``val_data``, the validation loss measured right after the update.
The sweep stops early when the debiased EMA of the loss exceeds ``diverge_factor`` times its
best value so far, or when a loss is NaN/inf. Afterwards the model, optimizer, GradScaler and
RNG states are restored exactly (:mod:`lrkit.rangetest.state`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from lrkit.errors import LRKitError, format_values
from lrkit.progress import Progress
from lrkit.rangetest.data import batches_per_epoch, to_device, train_batches, val_batches
from lrkit.rangetest.result import RangeTestResult
from lrkit.rangetest.state import Snapshot
from lrkit.rangetest.sweep import make_sweep
from lrkit.torch.modes import set_mode

Metric = Callable[[torch.Tensor, torch.Tensor], Any]


def accuracy_metric(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy of class scores ``(N, C)`` against integer labels ``(N,)``."""
    return (outputs.argmax(dim=1) == targets).float().mean()


def _metric(metric: str | Metric | None) -> Metric | None:
    if metric is None or callable(metric):
        return metric
    if metric == "accuracy":
        return accuracy_metric
    raise LRKitError(f"`metric` must be None, 'accuracy' or a function (outputs, targets) -> value, "
                     f"but got {format_values(metric=metric)}.")


def _check(start_lr: float, end_lr: float, steps: int, accumulation_steps: int, diverge_factor: float,
           smooth_weight: float, batch_size: int) -> None:
    rules = [
        (start_lr > 0, "start_lr > 0", {"start_lr": start_lr}),
        (end_lr > start_lr, "end_lr > start_lr", {"start_lr": start_lr, "end_lr": end_lr}),
        (isinstance(steps, int) and steps >= 2, "steps >= 2 (an integer)", {"steps": steps}),
        (isinstance(accumulation_steps, int) and accumulation_steps >= 1, "accumulation_steps >= 1",
         {"accumulation_steps": accumulation_steps}),
        (diverge_factor > 1, "diverge_factor > 1", {"diverge_factor": diverge_factor}),
        (0 < smooth_weight <= 1, "0 < smooth_weight <= 1", {"smooth_weight": smooth_weight}),
        (isinstance(batch_size, int) and batch_size >= 1, "batch_size >= 1", {"batch_size": batch_size}),
    ]
    for ok, rule, values in rules:
        if not ok:
            raise LRKitError(f"`{rule}` must hold, but got {format_values(**values)}.")


def range_test(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable[..., torch.Tensor],
               train_data: Any, val_data: Any = None, *, start_lr: float = 1e-6, end_lr: float = 1.0,
               steps: int = 200, mode: str = "exp", metric: str | Metric | None = None, batch_size: int = 64,
               accumulation_steps: int = 1, amp: bool = False, amp_dtype: torch.dtype | None = None,
               grad_scaler: Any = None, smooth_weight: float = 0.05, diverge_factor: float = 4.0,
               val_batch_limit: int | None = None, snapshot: str = "cpu", snapshot_dir: str | None = None,
               progress: bool = False) -> RangeTestResult:
    """Run the LR range test and return its curve; the model and optimizer come back unchanged.

    Args:
        model: the network; it stays on its device, batches are moved there.
        optimizer: any torch optimizer over the model's parameters. Group 0 follows the sweep;
            other groups keep their LR ratio to group 0.
        loss_fn: ``loss_fn(outputs, targets) -> scalar tensor``.
        train_data: a DataLoader (or any re-iterable of ``(inputs, targets, ...)`` batches), or
            ``(inputs, targets)`` tensors/arrays batched by ``batch_size``; it cycles.
        val_data: the same forms; when given, loss (and metric) are measured on it after every
            update: slower, steadier.
        start_lr, end_lr: the sweep's bounds, ``0 < start_lr < end_lr``.
        steps: points on the curve (updates), >= 2; the last point is at ``end_lr``.
        mode: ``"exp"`` (``exp_sweep``) or ``"linear"`` (``linear``).
        metric: ``"accuracy"`` or ``f(outputs, targets) -> number`` to record a metric curve, which
            enables CLR's accuracy rule.
        batch_size: examples per batch when the data are arrays.
        accumulation_steps: micro-batches per update (each loss is divided by this).
        amp: run forward passes under ``torch.autocast`` (``amp_dtype``: default float16 on
            CUDA, bfloat16 on CPU). On CUDA with float16 a ``GradScaler`` is created unless
            ``grad_scaler`` is given; updates the scaler skips are not points on the curve.
        smooth_weight: weight of the newest loss in the debiased EMA, in (0, 1].
        diverge_factor: stop when the smoothed loss exceeds this times its best, > 1.
        val_batch_limit: read at most this many validation batches per point.
        snapshot: ``"cpu"`` (default) or ``"disk"`` (a temporary file in ``snapshot_dir``).
        progress: show progress on stderr (:class:`lrkit.progress.Progress`): a tqdm bar on a
            terminal, otherwise a line every ~10 s. Off by default, so a library call prints
            nothing; ``lrkit range-test`` turns it on.

    Returns:
        A :class:`RangeTestResult`: ``lrs``, ``losses``, ``accuracies``, ``suggest()``,
        ``policy(...)``, ``plot(...)``.
    """
    _check(start_lr, end_lr, steps, accumulation_steps, diverge_factor, smooth_weight, batch_size)
    from lrkit.torch import PolicyLR

    sweep = make_sweep(mode, start_lr, end_lr, steps)
    metric_fn = _metric(metric)
    params = list(model.parameters())
    if not params:
        raise LRKitError("`model` has no parameters to train.")
    device = params[0].device
    autocast, scaler = _amp(amp, amp_dtype, grad_scaler, device)
    run = _Training(model, optimizer, loss_fn, accumulation_steps, autocast, scaler, metric_fn, device,
                    val_data, batch_size, val_batch_limit)
    lr_before = [float(g["lr"]) for g in optimizer.param_groups]
    state = Snapshot(model, optimizer, grad_scaler, where=snapshot, directory=snapshot_dir)
    record = _Record(smooth_weight, diverge_factor)
    bar = Progress(steps, "range test", "points") if progress else None
    finished = False
    try:
        set_mode(optimizer, True)  # schedule-free: updates in train mode (the snapshot restores the user's mode)
        scheduler = PolicyLR(optimizer, sweep)
        ratios = scheduler.group_ratios()
        skipped = _sweep(run, scheduler, sweep, steps, train_batches(train_data, batch_size), record, bar)
        finished = True
    finally:
        if bar is not None:
            bar.close(record.stop or ("done" if finished else "interrupted"))
        state.restore()
    return RangeTestResult(
        lrs=np.array(record.lrs), losses=np.array(record.losses), smoothed_losses=np.array(record.smoothed),
        accuracies=np.array(record.metrics) if metric_fn is not None else None,
        train_losses=np.array(record.train_losses) if val_data is not None else None,
        sweep=sweep, mode=mode, steps=steps, stop_reason=record.stop or f"completed all {steps} points",
        measured_on="validation" if val_data is not None else "training batches",
        group_lrs=tuple(lr_before), group_ratios=tuple(ratios), skipped_updates=skipped,
        iters_per_epoch=_updates_per_epoch(train_data, batch_size, accumulation_steps))


def _updates_per_epoch(data: Any, batch_size: int, accumulation: int) -> int | None:
    batches = batches_per_epoch(data, batch_size)
    return None if batches is None else max(1, batches // accumulation)


class _Record:
    """The curve so far, with the online EMA and the divergence test."""

    def __init__(self, weight: float, factor: float) -> None:
        self.weight, self.factor = weight, factor
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.metrics: list[float] = []
        self.train_losses: list[float] = []
        self.avg, self.best, self.stop = 0.0, math.inf, ""

    def add(self, lr: float, loss: float, value: float, train_loss: float | None) -> bool:
        """Append a point; True when the sweep must stop."""
        n = len(self.losses) + 1
        self.avg = (1 - self.weight) * self.avg + self.weight * loss
        smoothed = self.avg / (1 - (1 - self.weight) ** n)
        self.lrs.append(lr)
        self.losses.append(loss)
        self.smoothed.append(smoothed)
        self.metrics.append(value)
        if train_loss is not None:
            self.train_losses.append(train_loss)
        if not math.isfinite(loss):
            self.stop = f"the loss became {loss} at lr={lr:.4g} (point {n - 1})"
            return True
        self.best = min(self.best, smoothed)
        if smoothed > self.factor * self.best:
            self.stop = (f"the smoothed loss {smoothed:.4g} exceeded {self.factor:g} x its best "
                         f"{self.best:.4g} at lr={lr:.4g} (point {n - 1})")
            return True
        return False


@dataclass(frozen=True)
class _Training:
    """What an update and a measurement of the sweep need."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable[..., torch.Tensor]
    accumulation: int
    autocast: Any
    scaler: Any
    metric_fn: Metric | None
    device: torch.device
    val_data: Any
    batch_size: int
    val_batch_limit: int | None

    def update(self, batches: Any) -> tuple[float, float, bool]:
        """:func:`_update` on the next ``accumulation`` micro-batches."""
        return _update(self.model, self.optimizer, self.loss_fn, batches, self.accumulation, self.autocast,
                       self.scaler, self.metric_fn, self.device)

    def measure(self, train_loss: float, train_metric: float) -> tuple[float, float]:
        """The point's loss and metric: on the validation data (in eval mode) when given, else the update's."""
        if self.val_data is None:
            return train_loss, train_metric
        set_mode(self.optimizer, False)
        loss, value = _evaluate(self.model, self.loss_fn, self.val_data, self.batch_size, self.val_batch_limit,
                                self.autocast, self.metric_fn, self.device)
        set_mode(self.optimizer, True)
        return loss, value


def _sweep(run: _Training, scheduler: Any, sweep: Any, steps: int, batches: Any, record: _Record,
           bar: Progress | None) -> int:
    """Update and record points until ``steps`` points, a stop (``record.stop`` says why) or more skipped
    updates than ``steps``; the number of updates the GradScaler skipped."""
    skipped = 0
    while scheduler.t < steps:
        lr = sweep(scheduler.t)
        train_loss, train_metric, was_skipped = run.update(batches)
        if was_skipped and math.isfinite(train_loss):  # a non-finite loss is recorded: it ends the sweep
            skipped += 1
            if skipped > steps:
                record.stop = f"the GradScaler skipped {skipped} updates (inf/NaN gradients every time)"
                break
            continue
        scheduler.step()
        loss, value = run.measure(train_loss, train_metric)
        stop = record.add(lr, loss, value, train_loss if run.val_data is not None else None)
        if bar is not None:
            bar.update(1, f"lr={lr:.3g}, loss={loss:.4g}")
        if stop:
            break
    return skipped


def _amp(amp: bool, dtype: torch.dtype | None, scaler: Any, device: torch.device) -> tuple[Any, Any]:
    if not amp:
        return contextlib.nullcontext, scaler
    kind = device.type
    dtype = dtype or (torch.float16 if kind == "cuda" else torch.bfloat16)
    if scaler is None and kind == "cuda" and dtype == torch.float16:
        scaler = torch.amp.GradScaler("cuda")
    return (lambda: torch.autocast(device_type=kind, dtype=dtype)), scaler


def _update(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable[..., torch.Tensor],
            batches: Any, accumulation: int, autocast: Any, scaler: Any, metric_fn: Metric | None,
            device: torch.device) -> tuple[float, float, bool]:
    """One update over ``accumulation`` micro-batches: the mean loss and metric before it, and whether
    a GradScaler skipped it (the scale goes down in ``update()`` exactly when the step was skipped)."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=device)
    value = 0.0
    for _ in range(accumulation):
        inputs, targets = next(batches)
        inputs, targets = to_device(inputs, device), to_device(targets, device)
        with autocast():
            outputs = model(inputs)
            loss = loss_fn(outputs, targets)
        scaled = loss / accumulation
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        total += scaled.detach().float()
        if metric_fn is not None:
            with torch.no_grad():
                value += float(metric_fn(outputs.detach().float(), targets)) / accumulation
    skipped = False
    if scaler is not None:
        before = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        skipped = scaler.get_scale() < before
    else:
        optimizer.step()
    return float(total), value, skipped


def _evaluate(model: torch.nn.Module, loss_fn: Callable[..., torch.Tensor], data: Any, batch_size: int,
              limit: int | None, autocast: Any, metric_fn: Metric | None, device: torch.device) -> tuple[float, float]:
    """Example-weighted mean loss and metric over the validation data."""
    model.eval()
    loss_sum, metric_sum, count = 0.0, 0.0, 0
    with torch.no_grad():
        for inputs, targets in val_batches(data, batch_size, limit):
            inputs, targets = to_device(inputs, device), to_device(targets, device)
            with autocast():
                outputs = model(inputs)
                loss = loss_fn(outputs, targets)
            n = len(targets)
            loss_sum += float(loss) * n
            if metric_fn is not None:
                metric_sum += float(metric_fn(outputs.float(), targets)) * n
            count += n
    if count == 0:
        raise LRKitError("`val_data` yielded no examples.")
    return loss_sum / count, metric_sum / count


__all__ = ["accuracy_metric", "range_test"]
