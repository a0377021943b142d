"""Lightning: report a logged validation metric to every :class:`~lrkit.torch.PolicyLR` with a plateau policy.

This module imports ``lightning``; ``lrkit.torch.LightningMetricReporter`` imports it on first use.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback

from lrkit.errors import LRKitError
from lrkit.torch.scheduler import PolicyLR


class LightningMetricReporter(Callback):
    """Calls ``report(trainer.callback_metrics[metric])`` on the trainer's plateau schedulers after each validation.

    The scheduler stays an ordinary ``"interval": "step"`` scheduler, stepped after every update;
    this callback adds the metric at the end of each validation run during ``fit`` (not the
    sanity check). It reports in ``on_validation_end``, which Lightning runs before its
    ``ModelCheckpoint`` callbacks, so a checkpoint saved at that validation holds the switch it
    decided and a run resumed from it makes the same switches. (A scheduler config with
    ``"reduce_on_plateau": True`` is stepped after checkpoint callbacks, so that route loses the
    last report when resuming from such a checkpoint; see docs/torch.md.)

    Args:
        metric: the logged key; default: the plateaus' monitor (``val_loss`` or ``val_acc``).
        monitor: passed on to :meth:`PolicyLR.report` (needed only when the plateaus disagree).

    Example:
        >>> trainer = Trainer(..., callbacks=[LightningMetricReporter()])  # doctest: +SKIP
        >>> # configure_optimizers: {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
    """

    def __init__(self, metric: str | None = None, monitor: str | None = None) -> None:
        self.metric, self.monitor = metric, monitor

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        scheds = list({id(c.scheduler): c.scheduler for c in trainer.lr_scheduler_configs
                       if isinstance(c.scheduler, PolicyLR) and c.scheduler.monitors()}.values())
        if not scheds:
            raise LRKitError("LightningMetricReporter: none of the trainer's schedulers is a PolicyLR with a plateau "
                             f"policy, but got (schedulers={[c.scheduler for c in trainer.lr_scheduler_configs]}).")
        for sched in scheds:
            kinds = {self.monitor} if self.monitor is not None else sched.monitors()
            if self.metric is None and len(kinds) != 1:
                raise LRKitError("LightningMetricReporter needs `metric` when a scheduler's plateaus do not name one "
                                 f"monitor, but got (monitors={sorted(kinds)}).")
            key = self.metric or next(iter(kinds))
            value = trainer.callback_metrics.get(key)
            if value is None:
                raise LRKitError(f"LightningMetricReporter: `{key}` must be logged (self.log) during validation, but "
                                 f"got (callback_metrics={sorted(trainer.callback_metrics)}); pass metric=... to name "
                                 "another.")
            sched.report(value, monitor=self.monitor)


__all__ = ["LightningMetricReporter"]
