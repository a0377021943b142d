"""The trial runner: train one model on one task under one (optimizer, policy) and measure it (no storage here).

:func:`run_trial` is one loop over the pieces of :mod:`lrkit.lrbench.run.steps`. The LR comes from
:class:`lrkit.torch.PolicyLR`: update ``t`` uses ``policy(t)``. The model is built after
``torch.manual_seed(seed)`` and the batches follow ``BatchOrder(seed)``, so the same seed gives the
same run (bit for bit on CPU), and a run continued from a :class:`~lrkit.lrbench.run.state.RunState`
goes on exactly as the run it came from.

Every evaluation measures the validation split (when the task has one) and the test set. A trial
is judged on one of them (``on``): a search judges on validation accuracy, so that the test set is
only reported; ``lrkit verify`` judges on test accuracy, as LRBench does. A policy that holds a
``plateau`` gets the monitored metric (validation loss or accuracy; the test set's when the task has
no validation split) after every evaluation through ``PolicyLR.report``, and the result records the
pure ``join`` it decided (``realized_spec``), which replays the run bit for bit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from lrkit.errors import LRKitError
from lrkit.lrbench.run.judging import UnreachableRule, divergence_reason, unreachable_reason
from lrkit.lrbench.tasks.optimizers import make_optimizer
from lrkit.torch.modes import set_mode
from lrkit.lrbench.run.state import RunState
from lrkit.lrbench.tasks.catalogue import Task
from lrkit.lrbench.run.steps import (BatchOrder, Evaluation, TrainData, check_device, evaluate, prepare_data,
                                    resolve_optimizer, train_step, versions)
from lrkit.lrbench.run.result import EvalPoint, TrialResult
from lrkit.lrbench.run.result import STATUSES  # noqa: F401  (for the old path lrkit.lrbench.trainer until it goes)
from lrkit.spec import as_policy

ON = ("val", "test")
#: how the policy's LR reaches the optimizer: lrkit's PolicyLR, or PyTorch's own OneCycleLR built from a
#: ``onecycle`` policy's parameters (it also cycles momentum, as users of it get by default)
LR_DRIVERS = ("policy", "torch-onecycle")


def check_trial_args(*, budget: Any = None, target: Any = None, eval_every: Any = None, seed: Any = None,
                     on: Any = None) -> None:
    """The one place the common trial arguments are checked; each error names the parameter and the rule."""
    rules = [("budget", budget, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "budget >= 1"),
             ("target", target, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1,
              "0 < target <= 1 (an accuracy)"),
             ("eval_every", eval_every, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
              "eval_every >= 1"),
             ("seed", seed, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "seed >= 0"),
             ("on", on, lambda v: v in ON, "on in ('val', 'test')")]
    for name, value, ok, rule in rules:
        if value is not None and not ok(value):
            raise LRKitError(f"`{rule}` must hold, but got ({name}={value!r}).")


def run_trial(task: Task, policy: Any, *, budget: int | None = None, target: float | None = None, seed: int = 0,
              device: str = "cpu", optimizer: str | None = None, optimizer_kwargs: Mapping[str, Any] | None = None,
              eval_every: int | None = None, stop_at_target: bool = True, early_stop: bool = True,
              on_eval: Callable[[EvalPoint], bool | None] | None = None,
              unreachable_rule: UnreachableRule = UnreachableRule(), diverge_factor: float = 5.0,
              threads: int | None = 1, on: str = "test", lr_driver: str = "policy", start: RunState | None = None,
              keep_state: bool = False) -> TrialResult:
    """Train ``task``'s model under ``policy`` for at most ``budget`` updates and measure it.

    Every ``eval_every`` updates (and after the last) the model is evaluated on the validation split
    and the test set and an :class:`EvalPoint` is recorded. The trial is judged on ``on`` and ends with

    - ``"pass"``: the ``on`` accuracy reached ``target`` (at ``steps_to_target``). With
      ``stop_at_target`` the run stops there, once the test accuracy has reached it too, so that
      both updates-to-target are known; with ``stop_at_target=False`` it runs the whole budget;
    - ``"diverged"``: a non-finite loss, or a training loss over ``diverge_factor`` × the first
      batch's loss (:func:`~lrkit.lrbench.run.judging.divergence_reason`); recorded, never raised;
    - ``"unreachable"``: with ``early_stop``, :class:`~lrkit.lrbench.run.judging.UnreachableRule` says
      the target can no longer plausibly be reached;
    - ``"stopped"``: ``on_eval(point)`` returned True (e.g. an Optuna pruner);
    - ``"budget"``: the budget ran out below the target.

    Args:
        task: the task (model, data, optimizer, defaults).
        policy: a :class:`lrkit.Policy`, spec string or dict; update ``t`` uses ``policy(t)``.
        budget: updates in all (counting from 0, also when continuing from ``start``), >= 1
            (default ``task.budget``).
        target: target accuracy (default ``task.target``).
        seed: seeds the model's initialisation and the batch order, >= 0.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        optimizer, optimizer_kwargs: see :func:`~lrkit.lrbench.run.steps.resolve_optimizer`; any
            ``module:Class`` optimizer works.
        eval_every: updates between evaluations (default ``task.eval_every``).
        stop_at_target: stop once the target is reached (see above).
        early_stop: apply ``unreachable_rule``.
        on_eval: called with every :class:`EvalPoint`; returning True stops the trial.
        unreachable_rule: the thresholds of the unreachable stop.
        diverge_factor: a training loss over this multiple of the first batch's counts as divergence.
        threads: torch CPU threads during the trial (restored afterwards); None leaves them.
        on: ``"val"`` or ``"test"``: the accuracy the target, the early stop and the status refer to
            (``"val"`` needs a task with a validation split).
        lr_driver: one of :data:`LR_DRIVERS`.
        start: continue this run state (its ``step`` must be below ``budget``) instead of a new model.
        keep_state: return the final :class:`RunState` in ``result.state`` (not stored by ``to_dict``).

    Returns:
        A :class:`TrialResult`; ``train_loss`` there is the final loss on (up to) as many training
        examples as the test set has, in eval mode, and ``loss_gap = test_loss - train_loss``.
    """
    policy = as_policy(policy)
    budget = task.budget if budget is None else budget
    target = task.target if target is None else target
    eval_every = task.eval_every if eval_every is None else eval_every
    check_trial_args(budget=budget, target=target, eval_every=eval_every, seed=seed, on=on)
    if lr_driver not in LR_DRIVERS:
        raise LRKitError(f"`lr_driver` must be one of {LR_DRIVERS}, but got (lr_driver={lr_driver!r}).")
    if lr_driver == "torch-onecycle" and policy.name != "onecycle":
        raise LRKitError("lr_driver 'torch-onecycle' builds OneCycleLR from an onecycle policy, "
                         f"but got {policy.spec()}")
    if start is not None and not 0 <= start.step < budget:
        raise LRKitError(f"`0 <= start.step < budget` must hold, but got (start.step={start.step}, budget={budget}).")
    device = check_device(device)
    optimizer, optimizer_kwargs = resolve_optimizer(task, optimizer, optimizer_kwargs)
    lrs = _checked_lrs(policy, budget)
    settings = TrialSettings(
        seed=seed, device=device, optimizer=optimizer, optimizer_kwargs=optimizer_kwargs, lr_driver=lr_driver,
        budget=budget, target=target, eval_every=eval_every, on=on, stop_at_target=stop_at_target,
        early_stop=early_stop, on_eval=on_eval, unreachable_rule=unreachable_rule, diverge_factor=diverge_factor,
        keep_state=keep_state)
    old_threads = torch.get_num_threads()
    if threads is not None and device == "cpu":
        torch.set_num_threads(threads)
    try:
        data = prepare_data(task, device)
        if on == "val" and data.val_x is None:
            raise LRKitError(f"task {task.name!r} has no validation split (val_size=0), so a trial cannot be judged "
                             "on 'val'; judge it on 'test' or give the task a val_size")
        return _TrialRun(task, policy, lrs, data, settings, start).run()
    finally:
        torch.set_num_threads(old_threads)


def _checked_lrs(policy: Any, budget: int) -> np.ndarray:
    """``policy(t)`` for every update of the budget; an LRKitError at the first one that is not finite and >= 0."""
    lrs = policy.values(np.arange(budget, dtype=np.float64))
    if not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
        bad = int(np.flatnonzero(~np.isfinite(lrs) | (lrs < 0))[0])
        raise LRKitError(f"policy {policy.spec()} gives lr({bad}) = {lrs[bad]!r}; an LR must be finite and >= 0")
    return lrs


@dataclass(frozen=True)
class TrialSettings:
    """One trial's settings, checked and resolved (see :func:`run_trial` for each): how it trains, when it
    evaluates, what it is judged on and when it stops."""

    seed: int
    device: str
    optimizer: str
    optimizer_kwargs: dict[str, Any]
    lr_driver: str
    budget: int
    target: float
    eval_every: int
    on: str
    stop_at_target: bool
    early_stop: bool
    on_eval: Callable[[EvalPoint], bool | None] | None
    unreachable_rule: UnreachableRule
    diverge_factor: float
    keep_state: bool


class _TrialRun:
    """One trial's live objects (model, optimizer, LR scheduler, batch order, the curve so far);
    :meth:`run` trains, evaluates and decides when to stop."""

    def __init__(self, task: Task, policy: Any, lrs: np.ndarray, data: TrainData, settings: TrialSettings,
                 start: RunState | None) -> None:
        self.task, self.policy, self.lrs, self.data, self.settings = task, policy, lrs, data, settings
        self.requested = policy.spec()  # a plateau's instance changes as it switches; the trial keeps what it was given
        torch.manual_seed(settings.seed)
        self.model = task.make_model().to(settings.device)
        self.model.train()
        self.optimizer = make_optimizer(settings.optimizer, self.model.parameters(), float(lrs[0]),
                                        **settings.optimizer_kwargs)
        self.step, self.first_loss, self.curve, self.train_seconds = 0, math.nan, [], 0.0
        if start is not None:
            start.restore(self.model, self.optimizer)
            self.step, self.first_loss = start.step, start.first_loss
            self.curve, self.train_seconds = list(start.curve), start.train_seconds
        self.in_train_mode = False
        self._mode(True)
        self.lr_scheduler = self._scheduler()
        from lrkit.policies.plateau import contains_plateau, monitors

        self.monitors = sorted(monitors(policy)) if contains_plateau(policy) else []
        self.order = BatchOrder(len(data.train_y), task.batch_size, settings.seed, settings.device)
        self.loss_fn = task.loss or F.cross_entropy
        # what the updates since the last evaluation add up to, kept on the device until it evaluates
        self.loss_sum = torch.zeros((), dtype=torch.float32, device=settings.device)
        self.first_batch_loss: torch.Tensor | None = None  # until the first evaluation reads it back
        self.eval_seconds = 0.0
        last = self.curve[-1] if self.curve else None
        self.test = Evaluation(last.test_loss, last.test_acc, 0.0, 0.0) if last else Evaluation(math.nan, 0.0, 0.0, 0.0)
        self.reached = {k: _first_reached(self.curve, k, settings.target) for k in ON}

    def _mode(self, training: bool) -> None:
        """Switch a train/eval optimizer (schedule-free) only when the mode changes: each switch moves its weights."""
        if training != self.in_train_mode:
            set_mode(self.optimizer, training)
            self.in_train_mode = training

    def _scheduler(self) -> Any:
        if self.settings.lr_driver == "torch-onecycle":
            if self.step:
                raise LRKitError("a run driven by torch's OneCycleLR cannot continue from a saved state")
            onecycle = self.policy
            return torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, max_lr=onecycle.max_lr, total_steps=onecycle.total_steps,
                pct_start=onecycle.pct_start, anneal_strategy=onecycle.anneal, div_factor=onecycle.div_factor,
                final_div_factor=onecycle.final_div_factor, three_phase=onecycle.three_phase)
        from lrkit.torch import PolicyLR

        lr_scheduler = PolicyLR(self.optimizer, self.policy)
        if self.step:
            lr_scheduler.load_state_dict({"step": self.step})
        return lr_scheduler

    def _report(self, point: EvalPoint) -> None:
        """Give the plateaus the metric they monitor; after a switch, the LRs ahead follow the new policy."""
        held_out = point.val_loss is not None
        values = {"val_loss": point.val_loss if held_out else point.test_loss,
                  "val_acc": point.val_acc if held_out else point.test_acc}
        switched = False
        for monitor in self.monitors:
            switched |= self.lr_scheduler.report(values[monitor], monitor=monitor if len(self.monitors) > 1 else None)
        if switched:
            self.policy = self.lr_scheduler.policies[0]
            self.lrs = self.policy.values(np.arange(len(self.lrs), dtype=np.float64))

    def _evaluate(self) -> tuple[Evaluation, Evaluation | None]:
        """The test set's and the validation split's (None without one) measurements; the trial records both
        whatever it is judged on."""
        self._mode(False)  # schedule-free: evaluate (and save) the averaged weights
        test = evaluate(self.model, self.data.test_x, self.data.test_y, loss_fn=self.loss_fn)
        val = None if self.data.val_x is None else evaluate(self.model, self.data.val_x, self.data.val_y,
                                                              loss_fn=self.loss_fn)
        return test, val

    def run(self) -> TrialResult:
        """Train from ``self.step`` to the budget, evaluating every ``eval_every`` updates, until a stop."""
        settings = self.settings
        status, reason = "budget", ""
        tick = time.perf_counter()
        for t in range(self.step, settings.budget):
            overflow = self._update(t)
            if overflow:
                status, reason = "diverged", overflow
                break
            if self.step % settings.eval_every and self.step != settings.budget:
                continue
            stop = self._evaluate_and_judge(t, tick)
            if stop is not None:
                status, reason = stop
                break
            self._mode(True)
            tick = time.perf_counter()
        return self._result(status, reason)

    def _update(self, t: int) -> str | None:
        """Update ``t`` on its batch; the reason the run diverged if the update cannot be represented, else None."""
        idx = self.order.indices(t)
        try:
            loss = train_step(self.model, self.optimizer, self.data.train_x[idx], self.data.train_y[idx], self.loss_fn)
        except (RuntimeError, OverflowError) as err:
            if "overflow" not in str(err):
                raise
            # an LR past the parameters' float range: the update itself cannot be represented
            return f"diverged at update {t}: lr {float(self.lrs[t])!r} overflows the parameters' dtype"
        self.lr_scheduler.step()
        self.loss_sum += loss
        if self.first_batch_loss is None and math.isnan(self.first_loss):
            self.first_batch_loss = loss
        self.step = t + 1
        return None

    def _evaluate_and_judge(self, t: int, tick: float) -> tuple[str, str] | None:
        """Evaluate after update ``t`` (training since ``tick``) and record the point: the only place values
        come back to the host. Returns None to train on, or the ``(status, reason)`` the run stops with."""
        interval = self.step - (self.curve[-1].step if self.curve else 0)
        train_loss = float(self.loss_sum.item()) / interval
        self.loss_sum.zero_()
        if self.first_batch_loss is not None:
            self.first_loss, self.first_batch_loss = float(self.first_batch_loss.item()), None
        now = time.perf_counter()
        self.train_seconds += now - tick
        self.test, val = self._evaluate()
        point = EvalPoint(self.step, float(self.lrs[t]), train_loss, self.test.loss, self.test.acc,
                          self.train_seconds, None if val is None else val.loss, None if val is None else val.acc)
        self.curve.append(point)
        for k, acc in (("val", point.val_acc), ("test", point.test_acc)):
            if self.reached[k] is None and acc is not None and acc >= self.settings.target:
                self.reached[k] = self.step
        if self.monitors:
            self._report(point)
        diverged = divergence_reason(train_loss, self.test.loss, self.first_loss, self.settings.diverge_factor)
        stop_asked = bool(self.settings.on_eval(point)) if self.settings.on_eval is not None else False
        self.eval_seconds += time.perf_counter() - now
        return self._stop(diverged, stop_asked)

    def _stop(self, diverged: str | None, stop_asked: bool) -> tuple[str, str] | None:
        """After an evaluation: None to train on, or the ``(status, reason)`` the run stops with (``"budget"``
        when :meth:`_result` decides between a pass and a budget that ran out)."""
        settings = self.settings
        if diverged:
            return "diverged", f"diverged at update {self.step}: {diverged}"
        if settings.stop_at_target and self.reached[settings.on] is not None and self.reached["test"] is not None:
            return "budget", ""  # both updates-to-target are known
        if stop_asked:
            return "stopped", f"stopped by on_eval at update {self.step}"
        if settings.early_stop and self.reached[settings.on] is None and self.step < settings.budget:
            why = _unreachable(self.curve, self.policy, settings.target, settings.budget, settings.unreachable_rule,
                               settings.on)
            if why:
                return "unreachable", why
        if self.step >= settings.budget:
            # stay in eval mode: the final measurement and the state kept are of the evaluated weights
            return "budget", ""
        return None

    def _judged(self, status: str, reason: str, best: float, best_val: float | None) -> tuple[str, str]:
        """The final status and reason: a pass once the judged accuracy reached the target, whatever stopped the run."""
        settings, on = self.settings, self.settings.on
        steps_to_target = self.reached[on]
        if steps_to_target is not None:
            return "pass", (f"reached {settings.target:g} ({on}) at update {steps_to_target}"
                            + (f" ({reason})" if reason else ""))
        if status == "budget":
            best_on = best_val if on == "val" and best_val is not None else best
            return status, (f"budget of {settings.budget} updates ran out; best {on} accuracy {best_on:.4f} "
                            f"< target {settings.target:g}")
        return status, reason

    def _final_train_loss(self, status: str) -> float:
        """The loss on (up to) as many training examples as the test set has, in eval mode; NaN after a divergence."""
        if status == "diverged":
            return math.nan
        n = min(len(self.data.train_y), len(self.data.test_y))
        return evaluate(self.model, self.data.train_x[:n], self.data.train_y[:n], loss_fn=self.loss_fn).loss

    def _result(self, status: str, reason: str) -> TrialResult:
        settings, curve, test = self.settings, self.curve, self.test
        best = max((p.test_acc for p in curve), default=0.0)
        vals = [p.val_acc for p in curve if p.val_acc is not None]
        best_val = max(vals) if vals else None
        status, reason = self._judged(status, reason, best, best_val)
        self._mode(False)  # the state kept, and the final measurement, are of the evaluated weights
        state = None
        if settings.keep_state and status != "diverged":
            state = RunState.capture(self.step, self.model, self.optimizer, self.first_loss, curve, self.train_seconds)
        final_train = self._final_train_loss(status)
        return TrialResult(
            status=status, steps_to_target=self.reached[settings.on], final_acc=test.acc,
            best_acc=best, avg_confidence=test.avg_confidence,
            confidence_std=test.confidence_std, train_loss=final_train, test_loss=test.loss,
            loss_gap=test.loss - final_train, steps=self.step, seconds=self.train_seconds, curve=curve,
            spec=self.requested, task=self.task.name, optimizer=settings.optimizer, seed=settings.seed,
            device=settings.device, versions=versions(settings.device), reason=reason, target=settings.target,
            budget=settings.budget, optimizer_kwargs=settings.optimizer_kwargs, batch_size=self.task.batch_size,
            eval_seconds=self.eval_seconds, on=settings.on, best_val_acc=best_val,
            final_val_acc=curve[-1].val_acc if curve else None, test_steps_to_target=self.reached["test"],
            val_steps_to_target=self.reached["val"], lr_driver=settings.lr_driver,
            realized_spec=self.lr_scheduler.replay_policy().spec() if self.monitors else None, state=state)


def _first_reached(curve: list[EvalPoint], on: str, target: float) -> int | None:
    for p in curve:
        acc = p.val_acc if on == "val" else p.test_acc
        if acc is not None and acc >= target:
            return p.step
    return None


def _unreachable(curve: list[EvalPoint], policy: Any, target: float, budget: int, rule: UnreachableRule,
                 on: str = "test") -> str | None:
    steps = [p.step for p in curve]
    s = steps[-1]
    if s >= budget or len(steps) <= rule.window:
        return None
    recent = policy.values(np.arange(steps[-(rule.window + 1)], s, dtype=np.float64))
    future = policy.values(np.arange(s, budget, dtype=np.float64))
    return unreachable_reason(steps, [p.acc(on) for p in curve], target, budget,
                              (float(recent.min()), float(recent.max())), (float(future.min()), float(future.max())),
                              rule)


__all__ = ["LR_DRIVERS", "ON", "TrialSettings", "check_trial_args", "run_trial"]
