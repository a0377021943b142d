"""Hugging Face ``Trainer``: report an evaluation metric to a :class:`~lrkit.torch.PolicyLR` with a plateau policy.

This module imports ``transformers``; ``lrkit.torch.HFMetricReporter`` imports it on first use.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from lrkit.errors import LRKitError
from lrkit.torch.scheduler import PolicyLR

#: the Trainer's metric key for each plateau ``monitor`` (the Trainer prefixes ``compute_metrics``' keys with eval_)
HF_METRIC = {"val_loss": "eval_loss", "val_acc": "eval_accuracy"}


class HFMetricReporter(TrainerCallback):
    """Calls ``scheduler.report(metrics[metric])`` after each evaluation of a ``transformers.Trainer``.

    The Trainer steps a :class:`PolicyLR` after every optimizer update, as for any scheduler;
    this callback adds the metric, so a ``plateau`` policy can switch. It reports in
    ``on_evaluate``, before the Trainer saves a checkpoint at the same step, so the checkpoint's
    ``scheduler.pt`` already holds the switch this evaluation decided.

    Args:
        scheduler: the :class:`PolicyLR`; default: the Trainer's own (``optimizers=(opt, sched)``).
        metric: the key in the evaluation metrics; default ``eval_loss`` when the plateaus
            monitor ``val_loss``, ``eval_accuracy`` when they monitor ``val_acc``.
        monitor: passed on to :meth:`PolicyLR.report` (needed only when the plateaus disagree).

    Example:
        >>> sched = PolicyLR(opt, "plateau([COS(k0=0, k1=5e-5, l=2000), FIX(k0=5e-6)], patience=2, "
        ...                       "monitor=val_loss)")  # doctest: +SKIP
        >>> trainer = Trainer(model=model, args=TrainingArguments(..., eval_strategy="steps", eval_steps=500),
        ...                   optimizers=(opt, sched), callbacks=[HFMetricReporter()])  # doctest: +SKIP
    """

    def __init__(self, scheduler: PolicyLR | None = None, metric: str | None = None,
                 monitor: str | None = None) -> None:
        if scheduler is not None and not isinstance(scheduler, PolicyLR):
            raise LRKitError(f"`scheduler` must be a PolicyLR or None, but got (scheduler={scheduler!r}).")
        self.scheduler, self.metric, self.monitor = scheduler, metric, monitor

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                    lr_scheduler: Any = None, **kwargs: Any) -> None:
        sched = self.scheduler if self.scheduler is not None else lr_scheduler
        if not isinstance(sched, PolicyLR):
            raise LRKitError("HFMetricReporter reports to a PolicyLR: pass it, or give the Trainer "
                             f"optimizers=(optimizer, PolicyLR(...)), but got (lr_scheduler={sched!r}).")
        key = self.metric or _default_key(sched, self.monitor)
        metrics = metrics or {}
        if key not in metrics:
            raise LRKitError(f"HFMetricReporter: `{key}` must be among the evaluation metrics, but got "
                             f"(metrics={sorted(metrics)}); pass metric=... to name another.")
        sched.report(metrics[key], monitor=self.monitor)


def _default_key(sched: PolicyLR, monitor: str | None) -> str:
    kinds = {monitor} if monitor is not None else sched.monitors()
    if len(kinds) != 1:
        raise LRKitError("HFMetricReporter needs `metric` when the scheduler's plateaus do not name one monitor, "
                         f"but got (monitors={sorted(kinds)}).")
    return HF_METRIC[kinds.pop()]


__all__ = ["HF_METRIC", "HFMetricReporter"]
