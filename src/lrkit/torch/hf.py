"""Hugging Face ``Trainer``: plateau reports to a :class:`~lrkit.torch.PolicyLR`, and LRBench trials.

- :class:`HFMetricReporter` reports an evaluation metric to a ``PolicyLR`` with a plateau policy.
- :class:`LRBenchTrainerCallback`, :func:`hf_trainer_kwargs` and :func:`hf_training_args` run a
  ``Trainer`` as an LRBench training function ``train(run)``::

      def train(run):
          model = Net().to(run.device)
          args = TrainingArguments(**hf_training_args(run, per_device_train_batch_size=64))
          trainer = Trainer(model=model, args=args, train_dataset=train_set, compute_metrics=accuracy,
                            **hf_trainer_kwargs(run, model, eval_dataset={"val": val_set, "test": test_set}))
          trainer.train()

  The optimizer is the trial's (``run.optimizer(model)``); the Trainer's scheduler slot holds a
  :class:`KeepLR`, which never writes the LR, because the Run's ``PolicyLR`` writes ``policy(t)``
  before update ``t``. (Left empty, the slot gets the Trainer's own scheduler, which rewrites
  the LR at the start and after every update: with warmup steps, update 0 ran at LR 0.)

This module imports ``transformers``; ``lrkit.torch.HFMetricReporter`` (and the others) import it on
first use. It does not import ``lrkit.lrbench``: ``run`` is any object with the
:class:`lrkit.lrbench.run.protocol.Run` methods used here.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Iterable, Mapping

import torch
from transformers import TrainerCallback

from lrkit.errors import LRKitError
from lrkit.torch.scheduler import PolicyLR

#: the Trainer's metric key for each plateau ``monitor`` (the Trainer prefixes ``compute_metrics``' keys with eval_)
HF_METRIC = {"val_loss": "eval_loss", "val_acc": "eval_accuracy"}
#: the Trainer's timing entries of an evaluation's metrics (``eval_runtime``, ...): not reported to a trial
HF_TIMINGS = ("runtime", "samples_per_second", "steps_per_second", "model_preparation_time")


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


# ---- LRBench trials through the Trainer ------------------------------------------------------------
class KeepLR(torch.optim.lr_scheduler.LRScheduler):
    """A scheduler that never writes the LR: the Trainer's scheduler slot in an LRBench trial.

    The trial's Run writes ``policy(t)`` into the optimizer before update ``t``; the Trainer still
    wants a scheduler to step, save and log. ``get_last_lr()`` is the LR the groups hold now
    (what the update the Trainer just logged used).
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        super().__init__(optimizer)

    def get_lr(self) -> list[Any]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self, epoch: int | None = None) -> None:
        self._step_count += 1
        self.last_epoch += 1

    def get_last_lr(self) -> list[float]:
        return [float(group["lr"]) for group in self.optimizer.param_groups]


class LRBenchTrainerCallback(TrainerCallback):
    """Connects a ``transformers.Trainer`` to an LRBench trial's ``run``: it counts the updates, evaluates
    when the trial is due, reports the metrics and stops the training when lrkit decides.

    - After every optimizer update (``on_step_end``): ``run.step()``, without a loss (the Trainer gives
      callbacks none, and reading its running sum would synchronise every update), so the curve's
      training loss is NaN and divergence is judged on the reported metrics (a ``test_loss`` or the
      judged metric that is not finite); then ``control.should_evaluate = run.due()``: the trial's
      evaluations, every ``run.eval_every`` updates and at the budget, whatever ``eval_steps`` says.
    - After the evaluation (``on_evaluate``): ``run.report(...)`` with its metrics renamed from the
      Trainer's. One evaluation set: ``eval_X`` is reported as ``val_X``. A dict of sets (give their
      names as ``datasets``; :func:`hf_trainer_kwargs` does): ``eval_<name>_X`` as ``<name>_X``, so
      ``eval_dataset={"val": ..., "test": ...}`` reports ``val_X`` and ``test_X``, once all sets are in.
      The timings (``eval_runtime``, ...) are left out. ``compute_metrics`` returning ``{"acc": ...}``
      thus gives ``val_acc`` and ``test_acc``, the names LRBench judges by default.
    - ``control.should_training_stop = True`` when the report says stop.

    Args:
        run: the trial's :class:`lrkit.lrbench.run.protocol.Run`.
        monitor: the reported name the trial is judged on; each evaluation must give it.
        datasets: the names of a dict ``eval_dataset`` (None: one evaluation set).
    """

    def __init__(self, run: Any, monitor: str = "val_acc", datasets: Iterable[str] | None = None) -> None:
        self.run, self.monitor = run, monitor
        self.datasets = None if datasets is None else tuple(datasets)
        if self.datasets is not None and not self.datasets:
            raise LRKitError("`datasets` must name the sets of a dict eval_dataset (or be None), but got ().")
        self._pending: dict[str, dict[str, float]] = {}
        self._reported_at = -1

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run = self.run
        if run.should_stop:
            control.should_training_stop = True
            return
        run.step()
        control.should_evaluate = run.due()  # switches a schedule-free optimizer to its evaluation weights

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Mapping[str, float] | None = None,
                    **kwargs: Any) -> None:
        run = self.run
        if run.steps == 0 or run.should_stop:
            return  # an evaluation outside the trial's (before training, or after it ended)
        if run.steps == self._reported_at:
            raise LRKitError(f"LRBenchTrainerCallback: a second evaluation at update {run.steps}: with a dict "
                             "eval_dataset, pass its names, LRBenchTrainerCallback(run, datasets=[...]) (or give "
                             "eval_dataset to hf_trainer_kwargs)")
        name, values = self._rename(dict(metrics or {}))
        self._pending[name] = values
        if self.datasets is not None and set(self._pending) != set(self.datasets):
            return  # the other sets of this evaluation come next
        reported = {k: v for part in self._pending.values() for k, v in part.items()}
        self._pending = {}
        if self.monitor not in reported:
            hint = ("; with a dict eval_dataset, pass its names as datasets=[...] (or give eval_dataset to "
                    "hf_trainer_kwargs)" if self.datasets is None else "")
            raise LRKitError(f"LRBenchTrainerCallback: the evaluation must give `{self.monitor}`, but gave "
                             f"({', '.join(sorted(reported))}) (renamed from the Trainer's eval_* metrics; "
                             "compute_metrics's keys follow the eval_ prefix); pass monitor=... to name another"
                             f"{hint}.")
        self._reported_at = run.steps
        if run.report(**reported):
            control.should_training_stop = True

    def _rename(self, metrics: dict[str, float]) -> tuple[str, dict[str, float]]:
        """``(set name, metrics under LRBench's names)`` for one evaluation set's metrics."""
        keys = [k for k in metrics if k.startswith("eval_") and not k.endswith(HF_TIMINGS)]
        if self.datasets is None:
            return "", {"val_" + k[len("eval_"):]: metrics[k] for k in keys}
        names = [n for n in self.datasets if keys and all(k.startswith(f"eval_{n}_") for k in keys)]
        if not names:
            raise LRKitError(f"LRBenchTrainerCallback: the metrics ({', '.join(sorted(metrics))}) belong to none of "
                             f"the evaluation sets {list(self.datasets)} (each set's keys start eval_<name>_)")
        name = max(names, key=len)
        return name, {name + k[len("eval_" + name):]: metrics[k] for k in keys}


def hf_trainer_kwargs(run: Any, model: torch.nn.Module, *, eval_dataset: Any = None, monitor: str = "val_acc",
                      **optimizer_overrides: Any) -> dict[str, Any]:
    """The ``Trainer`` arguments of an LRBench trial: ``Trainer(model=model, args=..., **hf_trainer_kwargs(...))``.

    Returns ``optimizers``: the trial's optimizer (``run.optimizer(model, **optimizer_overrides)``) and a
    :class:`KeepLR`; ``callbacks``: an :class:`LRBenchTrainerCallback`; and ``eval_dataset`` when given
    (a dict's names go to the callback). Move the model to ``run.device`` first.
    """
    optimizer = run.optimizer(model, **optimizer_overrides)
    datasets = list(eval_dataset) if isinstance(eval_dataset, Mapping) else None
    kwargs: dict[str, Any] = {"optimizers": (optimizer, KeepLR(optimizer)),
                              "callbacks": [LRBenchTrainerCallback(run, monitor=monitor, datasets=datasets)]}
    if eval_dataset is not None:
        kwargs["eval_dataset"] = eval_dataset
    return kwargs


def hf_training_args(run: Any, **overrides: Any) -> dict[str, Any]:
    """The ``TrainingArguments`` of an LRBench trial: ``TrainingArguments(**hf_training_args(run, ...))``.

    ``max_steps`` is the updates left in the budget, evaluations every ``run.eval_every`` updates, the
    Trainer seeded with ``run.seed`` (model init aside, it seeds the data order), on the CPU when
    ``run.device`` is; nothing saved, logged or reported, no progress bar (the Trainer's
    ``PrinterCallback`` still prints each evaluation: ``trainer.remove_callback(PrinterCallback)``),
    and an ``output_dir`` in the temporary folder (the Trainer creates it, empty). ``overrides`` are added
    (and replace those), e.g. ``per_device_train_batch_size=64``. The Trainer's other defaults stay,
    gradient clipping at ``max_grad_norm=1.0`` among them.
    """
    return {"max_steps": run.budget - run.steps, "eval_strategy": "steps", "eval_steps": run.eval_every,
            "save_strategy": "no", "logging_strategy": "no", "report_to": "none", "disable_tqdm": True,
            "seed": run.seed, "use_cpu": str(run.device) == "cpu",
            "output_dir": os.path.join(tempfile.gettempdir(), "lrkit-hf-trainer"), **overrides}


__all__ = ["HF_METRIC", "HF_TIMINGS", "HFMetricReporter", "KeepLR", "LRBenchTrainerCallback", "hf_trainer_kwargs",
           "hf_training_args"]
