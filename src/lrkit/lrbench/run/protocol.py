"""The training protocol: LRBench runs any training function ``train(run)`` through the :class:`Run` it hands it.

A trial of LRBench is a call of a training function with a :class:`Run`, the trial's handle. The
function builds its model and data as it likes; lrkit gives it the rest::

    def train(run):
        model = Net().to(run.device)
        opt = run.optimizer(model)                  # the trial's optimizer; its LR follows the trial's policy
        for x, y in run.batches(loader):            # epochs until lrkit says stop
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
            run.step(loss)                          # counts the update, writes the next LR
            if run.due():                           # an evaluation is due (every eval_every updates)
                run.report(val_acc=accuracy(model, val), test_acc=accuracy(model, test))

What the handle does:

- **Seeding.** Before the function runs, torch, numpy and ``random`` are seeded with the trial's
  seed; :attr:`Run.generator` is a ``torch.Generator`` for the data order (``DataLoader(...,
  generator=run.generator)``); :meth:`Run.batches` reseeds it at every epoch ``e`` from
  ``(seed, e)``, so a forked run sees the batches the run it came from would have seen.
- **The optimizer.** :meth:`Run.optimizer` builds the trial's optimizer (any built-in or
  ``module:Class``, with its arguments) at ``policy(0)``; :meth:`Run.attach` drives the user's own
  optimizer instead. Either way a :class:`lrkit.torch.PolicyLR` writes ``policy(t)`` before update ``t``.
- **Counting.** :meth:`Run.step` counts one optimizer update and sets the next LR. The loss it is
  given stays on the device (summed there), so a GPU loop pays no host synchronisation per update;
  the sum is read back at evaluations only.
- **Evaluations.** :meth:`Run.due` is True every ``eval_every`` updates and at the budget;
  :meth:`Run.report` records any named metrics. The trial is judged on one of them
  (``metric``, with ``mode`` "max" or "min"); a metric named ``val_X`` reported beside ``test_X``
  is judged on validation and reported on test, as the built-in tasks are.
- **Stopping.** After each report lrkit decides: target reached, budget spent, pruned (the search's
  pruner), unreachable, diverged (a non-finite metric or training loss). The decision comes back as
  :attr:`Run.should_stop`, as the end of :meth:`Run.batches` / :meth:`Run.updates`, and as the return
  value of :meth:`Run.report`; a loop that ignores it is ended at its next :meth:`Run.step`.
- **Forking** (``lrkit compose``). A run continues from a saved state when the function gives
  lrkit its model: ``run.optimizer(model)`` (or ``run.attach(opt, model=model)``). The model's and
  the optimizer's state, the RNGs and the update count are restored there, and :meth:`Run.batches`
  skips to the batch the run had reached.

Mistakes in the protocol's use are :class:`ProtocolError`: a function that never reports, a metric
never reported (the message lists those that were), an update count that goes backwards, a report
before any :meth:`Run.step` (the LR would never move). Any other exception in the function fails the
trial, with its traceback, and the study goes on.

The built-in tasks are one training function among others (:mod:`lrkit.lrbench.run.array_trainer`).
"""

from __future__ import annotations

import math
import random
import time
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from lrkit.errors import LRKitError
from lrkit.torch.modes import set_mode

MODES = ("max", "min")


class ProtocolError(LRKitError):
    """The training function used its :class:`Run` in a way the protocol does not allow (the message says how to fix it)."""


class TrialStop(Exception):
    """Raised by :meth:`Run.step` in a loop that trains on after lrkit said stop; the runner catches it."""


def metric_names(metric: str, reported: Iterable[str]) -> tuple[str, str]:
    """``(val_name, test_name)``: what a judged ``metric`` is compared on, and what is reported beside it.

    ``val_X`` is reported as ``test_X`` when that was reported too; ``test_X`` is judged as it is,
    beside ``val_X`` when reported; any other name is both.
    """
    names = set(reported)
    if metric.startswith("val_") and "test_" + metric[4:] in names:
        return metric, "test_" + metric[4:]
    if metric.startswith("test_"):
        val = "val_" + metric[5:]
        return (val if val in names else metric), metric
    return metric, metric


def score(value: float | None, mode: str) -> float | None:
    """The value as LRBench compares it: higher is better (a ``min`` metric is negated)."""
    if value is None:
        return None
    return float(value) if mode == "max" else -float(value)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's global generator and ``random`` with ``seed``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class Run:
    """One trial's handle, given to the training function (see the module docstring).

    Attributes:
        seed: the trial's seed (torch, numpy and ``random`` were seeded with it).
        device: the device the trial asked for (``"cpu"``, ``"cuda"``, ``"cuda:N"``).
        budget: the updates the trial may take.
        eval_every: updates between evaluations.
        policy: the trial's :class:`lrkit.Policy`.
        generator: a ``torch.Generator`` for the data order.
        optimizer_name, optimizer_kwargs: the trial's optimizer and its arguments.
    """

    def __init__(self, judge: Any, *, seed: int, device: str, budget: int, eval_every: int, policy: Any,
                 optimizer_name: str, optimizer_kwargs: dict[str, Any], lr_driver: str = "policy",
                 start: Any = None, keep_losses: bool = False) -> None:
        self._judge = judge  # lrkit.lrbench.run.judge.Judge: the curve, the judging and the stop decision
        self.seed, self.device, self.budget, self.eval_every = seed, device, budget, eval_every
        self.policy, self.optimizer_name, self.optimizer_kwargs = policy, optimizer_name, dict(optimizer_kwargs)
        self.lr_driver, self._start = lr_driver, start
        self.generator = torch.Generator().manual_seed(seed)
        self._count = 0 if start is None else start.step
        self._opt: Any = None
        self._model: Any = None
        self._scheduler: Any = None
        self._in_train_mode = False
        self._loss_sum: torch.Tensor | None = None
        self._losses_since = 0
        self._first_loss: torch.Tensor | float | None = None
        self._keep_losses = keep_losses
        self._losses: torch.Tensor | None = None
        self._reported_at = -1 if start is None or not start.curve else start.curve[-1].step
        self._tick = time.perf_counter()
        #: values kept with the result beside the curve (the built-in trainer's final ``train_loss``,
        #: ``avg_confidence``, ``confidence_std``)
        self.extras: dict[str, float] = {}

    # ---- the optimizer ------------------------------------------------------------------------------
    def optimizer(self, params: Any, **overrides: Any) -> torch.optim.Optimizer:
        """The trial's optimizer over ``params`` (a module, or its parameters / parameter groups).

        Pass the module itself so that lrkit can save and restore the run (``lrkit compose``).
        ``overrides`` update the trial's optimizer arguments (never ``lr``: the policy gives it).
        """
        from lrkit.lrbench.tasks.optimizers import make_optimizer

        if "lr" in overrides:
            raise ProtocolError("run.optimizer(...) takes no `lr`: the trial's policy sets the learning rate")
        model = params if isinstance(params, torch.nn.Module) else None
        if model is not None:
            params = model.parameters()
        # built at policy(0), which PolicyLR writes again right away; a policy that starts at 0 (a warm-up from
        # zero) builds it at a tiny LR instead, since some optimizers refuse lr=0 (Prodigy: "Invalid learning rate")
        lr0 = float(self.policy(0)) or 1e-12
        opt = make_optimizer(self.optimizer_name, params, lr0, **{**self.optimizer_kwargs, **overrides})
        return self.attach(opt, model=model)

    def attach(self, optimizer: torch.optim.Optimizer, model: torch.nn.Module | None = None
               ) -> torch.optim.Optimizer:
        """Drive the user's own ``optimizer`` with the trial's policy (every group's LR is ``policy(t)``;
        give ``model`` to let lrkit save and restore the run). Returns the optimizer."""
        if self._opt is not None:
            raise ProtocolError("the trial already has an optimizer: call run.optimizer(...) or run.attach(...) once")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ProtocolError(f"run.attach(...) takes a torch.optim.Optimizer, but got {type(optimizer).__name__}")
        self._opt, self._model = optimizer, model
        if self._start is not None:
            if model is None:
                raise ProtocolError("this run continues a saved state (a composition's stage), so lrkit must "
                                    "restore the model: pass it, run.optimizer(model) or run.attach(opt, model=model)")
            self._start.restore(model, optimizer)
        self._scheduler = self._make_scheduler(optimizer)
        self.train_mode(True)
        return optimizer

    def _make_scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        if self.lr_driver == "torch-onecycle":
            if self._count:
                raise LRKitError("a run driven by torch's OneCycleLR cannot continue from a saved state")
            p = self.policy
            return torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=p.max_lr, total_steps=p.total_steps, pct_start=p.pct_start, anneal_strategy=p.anneal,
                div_factor=p.div_factor, final_div_factor=p.final_div_factor, three_phase=p.three_phase)
        from lrkit.torch import PolicyLR

        scheduler = PolicyLR(optimizer, self.policy)
        if self._count:
            scheduler.load_state_dict({"step": self._count})
        return scheduler

    # ---- the loop -------------------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        """Updates counted so far."""
        return self._count

    @property
    def lr(self) -> float:
        """The LR of the next update, ``policy(steps)``."""
        return float(self._judge.lr_at(self._count))

    @property
    def should_stop(self) -> bool:
        """True once lrkit decided that the trial ends (the loop should return)."""
        return self._judge.stopped

    def step(self, loss: Any = None, *, update: int | None = None) -> None:
        """Count one optimizer update (call it after ``optimizer.step()``) and set the next update's LR.

        Args:
            loss: the update's training loss (a tensor stays on its device; read back at evaluations
                only), or None. Its mean over an evaluation interval is the curve's training loss and
                the divergence check's input.
            update: the update count after this update, when the loop keeps its own; it must go
                forwards (several at once skip LRs). None: one more than before. A run continued
                from a saved state starts at ``start.step``, not 0, so a trainer's own step counter
                (``global_step``) is not it: count with plain ``run.step()`` there.

        Raises:
            TrialStop: lrkit already decided to stop (the runner ends the trial quietly).
            ProtocolError: ``update`` goes backwards or past the budget.
        """
        if self._judge.stopped or self._count >= self.budget:
            raise TrialStop()
        if self._opt is None:
            raise ProtocolError("run.step() came before the trial had an optimizer: build it with "
                                "run.optimizer(model) (or give yours to run.attach(opt)) first")
        new = self._count + 1 if update is None else int(update)
        if new <= self._count:
            raise ProtocolError(f"the update count went backwards: run.step(update={new}) after update {self._count} "
                                "(it counts optimizer updates from 0 and only goes forwards)")
        if new > self.budget:
            raise ProtocolError(f"run.step(update={new}) is past the budget of {self.budget} updates")
        if loss is not None:
            self._add_loss(loss)
        for _ in range(new - self._count):
            self._scheduler.step()
        self._count = new

    def _add_loss(self, loss: Any) -> None:
        value = loss.detach() if isinstance(loss, torch.Tensor) else torch.tensor(float(loss))
        if value.numel() != 1:
            raise ProtocolError(f"run.step(loss) takes a scalar loss, but got a tensor of shape {tuple(value.shape)}")
        value = value.reshape(())
        if self._loss_sum is None:
            self._loss_sum = torch.zeros((), dtype=torch.float32, device=value.device)
        self._loss_sum += value
        self._losses_since += 1
        if self._first_loss is None:
            self._first_loss = value.clone()
        if self._keep_losses:
            if self._losses is None:
                self._losses = torch.full((self.budget,), math.nan, dtype=torch.float32, device=value.device)
            self._losses[self._count] = value

    def due(self) -> bool:
        """True when an evaluation is due: every ``eval_every`` updates, and at the budget (once per update count).

        A schedule-free optimizer is switched to its evaluation weights here (and back to its training
        weights by :meth:`report` when the trial goes on)."""
        due = self._count > 0 and self._count != self._reported_at and (
            self._count % self.eval_every == 0 or self._count >= self.budget)
        if due:
            self.train_mode(False)
        return due

    def train_mode(self, training: bool = True) -> None:
        """Switch a train/eval optimizer (schedule-free) to its training (or evaluation) weights; a no-op otherwise."""
        if self._opt is not None and training != self._in_train_mode:
            set_mode(self._opt, training)
            self._in_train_mode = training

    def report(self, **metrics: Any) -> bool:
        """Record an evaluation after :attr:`steps` updates: any named metrics (floats or 0-d tensors).

        Returns:
            True when the trial is to stop (:attr:`should_stop`).

        Raises:
            ProtocolError: no update was counted yet, the count did not move since the last report,
                or the judged metric is missing.
        """
        if self._count == 0:
            raise ProtocolError("run.report(...) came before any run.step(): call run.step(loss) after every "
                                "optimizer update, or the LR never moves from policy(0) and no update is counted")
        if self._count == self._reported_at:
            raise ProtocolError(f"run.report(...) twice at update {self._count}: report once per evaluation, after "
                                "the updates it follows were counted with run.step()")
        values = {str(k): _number(k, v) for k, v in metrics.items()}
        self.train_mode(False)
        seconds = time.perf_counter() - self._tick
        train_loss = self._read_losses()
        self._reported_at = self._count
        stop = self._judge.record(self._count, values, train_loss, self._first_loss_value(), seconds)
        if not stop:
            self.train_mode(True)
        self._tick = time.perf_counter()
        return stop

    def _read_losses(self) -> float | None:
        """The mean training loss since the last report (None without losses): the only read-back of losses."""
        if self._loss_sum is None or not self._losses_since:
            return None
        mean = float(self._loss_sum.item()) / self._losses_since
        self._loss_sum.zero_()
        self._losses_since = 0
        return mean

    def _first_loss_value(self) -> float:
        if isinstance(self._first_loss, torch.Tensor):
            self._first_loss = float(self._first_loss.item())
        return math.nan if self._first_loss is None else float(self._first_loss)

    def stop(self, reason: str = "") -> None:
        """End the trial now (it is judged on what was reported)."""
        self._judge.user_stop(self._count, reason)

    def diverged(self, reason: str) -> None:
        """Record that the run diverged (e.g. an update overflowed the parameters' dtype); the trial ends."""
        self._judge.diverge(reason)

    @property
    def has_diverged(self) -> bool:
        return self._judge.status == "diverged"

    def updates(self) -> Iterator[int]:
        """The update indices ``t = steps, steps + 1, ...`` until the budget or a stop (training weights on)."""
        while not self._judge.stopped and self._count < self.budget:
            self.train_mode(True)
            yield self._count

    def batches(self, loader: Iterable[Any]) -> Iterator[Any]:
        """The batches of ``loader``, epoch after epoch, until the budget or a stop (a plain-loop helper).

        At epoch ``e`` a ``set_epoch`` sampler (``DistributedSampler``) gets ``e`` and
        :attr:`generator` is reseeded from ``(seed, e)``; a run that continues a saved state skips
        the batches its epoch had used. Call :meth:`step` once per batch.
        """
        try:
            per_epoch = len(loader)  # type: ignore[arg-type]
        except TypeError:
            per_epoch = 0
        epoch, skip = (divmod(self._count, per_epoch) if per_epoch else (0, self._count))
        while not self._judge.stopped and self._count < self.budget:
            sampler = getattr(loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            self.generator.manual_seed(int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0]))
            empty = True
            for batch in loader:
                empty = False
                if skip:
                    skip -= 1
                    continue
                if self._judge.stopped or self._count >= self.budget:
                    return
                self.train_mode(True)
                yield batch
            if empty:
                raise ProtocolError("run.batches(loader): the loader gave no batch in a whole epoch")
            epoch += 1

    # ---- what the runner reads back -----------------------------------------------------------------------
    def _state(self) -> Any:
        """The run's state for a fork (None when the function gave no model)."""
        from lrkit.lrbench.run.state import RunState

        if self._model is None or self._opt is None:
            return None
        self.train_mode(False)
        return RunState.capture(self._count, self._model, self._opt, self._first_loss_value(), self._judge.curve,
                                self._judge.train_seconds)

    def _kept_losses(self) -> np.ndarray:
        """Every update's loss, with ``keep_losses`` (one read-back, at the end)."""
        if self._losses is None:
            return np.full(self._count, math.nan)
        return self._losses[: self._count].float().cpu().numpy()


def _number(name: str, value: Any) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ProtocolError(f"run.report({name}=...) takes a number, but got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ProtocolError(f"run.report({name}=...) takes a number, but got {type(value).__name__}") from None


__all__ = ["MODES", "ProtocolError", "Run", "TrialStop", "metric_names", "score", "seed_everything"]
