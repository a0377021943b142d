"""Lightning: plateau reports to a :class:`~lrkit.torch.PolicyLR`, and LRBench trials of a ``LightningModule``.

- :class:`LightningMetricReporter` reports a logged validation metric to every ``PolicyLR`` with a
  plateau policy.
- :class:`LRBenchCallback` and :func:`lightning_trainer_kwargs` run a Lightning ``Trainer`` as an
  LRBench training function ``train(run)``::

      class Net(pl.LightningModule):
          def __init__(self, run):
              super().__init__()
              self.run = run
              ...

          def configure_optimizers(self):
              return self.run.optimizer(self)      # the trial's optimizer; the Run sets its LR every update

      def train(run):
          trainer = pl.Trainer(**lightning_trainer_kwargs(run), callbacks=[LRBenchCallback(run)])
          trainer.fit(Net(run), train_loader, [val_loader, test_loader])

  ``configure_optimizers`` returns the optimizer alone: the Run's ``PolicyLR`` writes ``policy(t)``
  before update ``t``, so a scheduler would only fight it.

This module imports ``lightning``; ``lrkit.torch.LightningMetricReporter`` (and the others) import it
on first use. It does not import ``lrkit.lrbench``: ``run`` is any object with the
:class:`lrkit.lrbench.run.protocol.Run` methods used here.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
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


class LRBenchCallback(Callback):
    """Connects a Lightning ``Trainer`` to an LRBench trial's ``run``: it counts the updates, reports the
    validations and stops the trainer when lrkit decides.

    - After every optimizer update (``on_train_batch_end`` once ``trainer.global_step`` moved):
      ``run.step(loss)`` with the loss ``training_step`` returned (a tensor, or a dict's ``"loss"``),
      left on its device. With gradient accumulation the update's last micro-batch gives it.
    - After each validation during ``fit`` (not the sanity check): ``run.report(...)`` with ``monitor``
      and every other scalar ``val_*`` / ``test_*`` of ``trainer.callback_metrics`` (or the names in
      ``report``). Validation runs on the optimizer's evaluation weights (a schedule-free optimizer).
    - ``trainer.should_stop = True`` when the report says stop, and once the budget is spent (Lightning
      then validates that last update when the budget is not a multiple of ``run.eval_every``).

    Log the metrics in ``validation_step`` by their LRBench names: ``self.log("val_acc", acc)``; with a
    validation and a test loader, ``self.log(f"{('val', 'test')[dataloader_idx]}_acc", acc,
    add_dataloader_idx=False)``. :func:`lightning_trainer_kwargs` makes the trainer validate every
    ``run.eval_every`` updates.

    Args:
        run: the trial's :class:`lrkit.lrbench.run.protocol.Run`.
        monitor: the metric the trial is judged on; it must be logged at every validation.
        report: the names to report (None: ``monitor`` and every scalar ``val_*`` / ``test_*`` logged).
    """

    def __init__(self, run: Any, monitor: str = "val_acc", report: Iterable[str] | None = None) -> None:
        self.run, self.monitor = run, monitor
        self.names = None if report is None else tuple(report)
        self._global_step: int | None = None  # trainer.global_step at the last counted update
        self._reported_at = -1

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._global_step = trainer.global_step

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        run = self.run
        if self._global_step is None:
            self._global_step = trainer.global_step - 1
        updates, self._global_step = trainer.global_step - self._global_step, trainer.global_step
        if run.should_stop:
            trainer.should_stop = True
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        for i in range(updates):
            run.step(loss if i == 0 and isinstance(loss, torch.Tensor) else None)
        if run.steps >= run.budget:
            trainer.should_stop = True  # and Lightning validates this update before it stops

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if self._counts(trainer):
            self.run.train_mode(False)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        run = self.run
        if not self._counts(trainer):
            return
        if run.steps == self._reported_at or run.should_stop:
            run.train_mode(not run.should_stop)  # (a second validation of one update count is not reported)
            return
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            raise LRKitError(f"LRBenchCallback: `{self.monitor}` must be logged (self.log) in validation_step, but "
                             f"got (callback_metrics={sorted(metrics)}); pass monitor=... to name another.")
        names = self.names if self.names is not None else [
            k for k, v in metrics.items() if k.startswith(("val_", "test_")) and _scalar(v)]
        self._reported_at = run.steps
        if run.report(**{k: metrics[k] for k in dict.fromkeys([self.monitor, *names])}):
            trainer.should_stop = True

    def _counts(self, trainer: Any) -> bool:
        """Whether this validation is one of the trial's: during fit, after an update, not the sanity check."""
        return not trainer.sanity_checking and trainer.state.fn == "fit" and self.run.steps > 0


def lightning_trainer_kwargs(run: Any, **overrides: Any) -> dict[str, Any]:
    """The ``Trainer`` arguments of an LRBench trial: ``Trainer(**lightning_trainer_kwargs(run), callbacks=[...])``.

    ``max_steps`` is the updates left in the budget; validation runs every ``run.eval_every`` updates
    (``val_check_interval`` counts batches across epochs, ``check_val_every_n_epoch=None``, times
    ``accumulate_grad_batches``); the device is ``run.device``; no checkpoints, logger, progress bar,
    model summary or sanity check. ``overrides`` are added (and replace those).
    """
    accumulate = int(overrides.get("accumulate_grad_batches", 1))
    device = str(run.device)
    accelerator, devices = ("cpu", 1) if device == "cpu" else (
        "gpu", [int(device.partition(":")[2])] if ":" in device else 1)
    return {"max_steps": run.budget - run.steps, "val_check_interval": run.eval_every * accumulate,
            "check_val_every_n_epoch": None, "accelerator": accelerator, "devices": devices,
            "enable_checkpointing": False, "logger": False, "enable_progress_bar": False,
            "enable_model_summary": False, "num_sanity_val_steps": 0, **overrides}


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float)) or (isinstance(value, torch.Tensor) and value.numel() == 1)


__all__ = ["LRBenchCallback", "LightningMetricReporter", "lightning_trainer_kwargs"]
