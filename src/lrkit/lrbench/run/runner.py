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
from lrkit.lrbench.run.result import STATUSES, EvalPoint, TrialResult
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
    pol = as_policy(policy)
    budget = task.budget if budget is None else budget
    target = task.target if target is None else target
    eval_every = task.eval_every if eval_every is None else eval_every
    check_trial_args(budget=budget, target=target, eval_every=eval_every, seed=seed, on=on)
    if lr_driver not in LR_DRIVERS:
        raise LRKitError(f"`lr_driver` must be one of {LR_DRIVERS}, but got (lr_driver={lr_driver!r}).")
    if lr_driver == "torch-onecycle" and pol.name != "onecycle":
        raise LRKitError(f"lr_driver 'torch-onecycle' builds OneCycleLR from an onecycle policy, but got {pol.spec()}")
    if start is not None and not 0 <= start.step < budget:
        raise LRKitError(f"`0 <= start.step < budget` must hold, but got (start.step={start.step}, budget={budget}).")
    device = check_device(device)
    opt_name, opt_kwargs = resolve_optimizer(task, optimizer, optimizer_kwargs)
    lrs = pol.values(np.arange(budget, dtype=np.float64))
    if not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
        bad = int(np.flatnonzero(~np.isfinite(lrs) | (lrs < 0))[0])
        raise LRKitError(f"policy {pol.spec()} gives lr({bad}) = {lrs[bad]!r}; an LR must be finite and >= 0")

    old_threads = torch.get_num_threads()
    if threads is not None and device == "cpu":
        torch.set_num_threads(threads)
    try:
        data = prepare_data(task, device)
        if on == "val" and data.val_x is None:
            raise LRKitError(f"task {task.name!r} has no validation split (val_size=0), so a trial cannot be judged "
                             "on 'val'; judge it on 'test' or give the task a val_size")
        loop = _Loop(task, pol, lrs, data, seed, device, opt_name, opt_kwargs, lr_driver, start)
        return loop.run(budget, target, eval_every, on, stop_at_target, early_stop, on_eval, unreachable_rule,
                        diverge_factor, keep_state)
    finally:
        torch.set_num_threads(old_threads)


class _Loop:
    """One run's live objects; ``run`` trains, evaluates and decides when to stop."""

    def __init__(self, task: Task, pol: Any, lrs: np.ndarray, data: TrainData, seed: int, device: str,
                 opt_name: str, opt_kwargs: dict[str, Any], lr_driver: str, start: RunState | None) -> None:
        self.task, self.pol, self.lrs, self.data, self.seed, self.device = task, pol, lrs, data, seed, device
        self.requested = pol.spec()  # a plateau's instance changes as it switches; the trial keeps what it was given
        self.opt_name, self.opt_kwargs, self.lr_driver = opt_name, opt_kwargs, lr_driver
        torch.manual_seed(seed)
        self.model = task.make_model().to(device)
        self.model.train()
        self.opt = make_optimizer(opt_name, self.model.parameters(), float(lrs[0]), **opt_kwargs)
        self.step, self.first_loss, self.curve, self.train_seconds = 0, math.nan, [], 0.0
        if start is not None:
            start.restore(self.model, self.opt)
            self.step, self.first_loss = start.step, start.first_loss
            self.curve, self.train_seconds = list(start.curve), start.train_seconds
        self.training = False
        self._mode(True)
        self.sched = self._scheduler()
        from lrkit.policies.plateau import contains_plateau, monitors

        self.monitors = sorted(monitors(pol)) if contains_plateau(pol) else []
        self.order = BatchOrder(len(data.train_y), task.batch_size, seed, device)
        self.loss_fn = task.loss or F.cross_entropy

    def _mode(self, training: bool) -> None:
        """Switch a train/eval optimizer (schedule-free) only when the mode changes: each switch moves its weights."""
        if training != self.training:
            set_mode(self.opt, training)
            self.training = training

    def _scheduler(self) -> Any:
        if self.lr_driver == "torch-onecycle":
            if self.step:
                raise LRKitError("a run driven by torch's OneCycleLR cannot continue from a saved state")
            p = self.pol
            return torch.optim.lr_scheduler.OneCycleLR(
                self.opt, max_lr=p.max_lr, total_steps=p.total_steps, pct_start=p.pct_start, anneal_strategy=p.anneal,
                div_factor=p.div_factor, final_div_factor=p.final_div_factor, three_phase=p.three_phase)
        from lrkit.torch import PolicyLR

        sched = PolicyLR(self.opt, self.pol)
        if self.step:
            sched.load_state_dict({"step": self.step})
        return sched

    def _report(self, point: EvalPoint) -> None:
        """Give the plateaus the metric they monitor; after a switch, the LRs ahead follow the new policy."""
        held_out = point.val_loss is not None
        values = {"val_loss": point.val_loss if held_out else point.test_loss,
                  "val_acc": point.val_acc if held_out else point.test_acc}
        switched = False
        for monitor in self.monitors:
            switched |= self.sched.report(values[monitor], monitor=monitor if len(self.monitors) > 1 else None)
        if switched:
            self.pol = self.sched.policies[0]
            self.lrs = self.pol.values(np.arange(len(self.lrs), dtype=np.float64))

    def _evaluate(self, on: str) -> tuple[Evaluation, Evaluation | None]:
        self._mode(False)  # schedule-free: evaluate (and save) the averaged weights
        test = evaluate(self.model, self.data.test_x, self.data.test_y, loss_fn=self.loss_fn)
        val = None if self.data.val_x is None else evaluate(self.model, self.data.val_x, self.data.val_y,
                                                              loss_fn=self.loss_fn)
        return test, val

    def run(self, budget: int, target: float, eval_every: int, on: str, stop_at_target: bool, early_stop: bool,
            on_eval: Callable[[EvalPoint], bool | None] | None, rule: UnreachableRule, diverge_factor: float,
            keep_state: bool) -> TrialResult:
        status, reason = "budget", ""
        loss_sum = torch.zeros((), dtype=torch.float32, device=self.device)
        first: torch.Tensor | None = None
        eval_seconds = 0.0
        last = self.curve[-1] if self.curve else None
        test = Evaluation(last.test_loss, last.test_acc, 0.0, 0.0) if last else Evaluation(math.nan, 0.0, 0.0, 0.0)
        reached = {k: _first_reached(self.curve, k, target) for k in ON}
        tick = time.perf_counter()
        for t in range(self.step, budget):
            idx = self.order.indices(t)
            try:
                loss = train_step(self.model, self.opt, self.data.train_x[idx], self.data.train_y[idx], self.loss_fn)
            except (RuntimeError, OverflowError) as err:
                if "overflow" not in str(err):
                    raise
                # an LR past the parameters' float range: the update itself cannot be represented
                status = "diverged"
                reason = f"diverged at update {t}: lr {float(self.lrs[t])!r} overflows the parameters' dtype"
                break
            self.sched.step()
            loss_sum += loss
            if first is None and math.isnan(self.first_loss):
                first = loss
            self.step = t + 1
            if self.step % eval_every and self.step != budget:
                continue
            # ---- evaluation: the only place values come back to the host
            interval = self.step - (self.curve[-1].step if self.curve else 0)
            train_loss = float(loss_sum.item()) / interval
            loss_sum.zero_()
            if first is not None:
                self.first_loss, first = float(first.item()), None
            now = time.perf_counter()
            self.train_seconds += now - tick
            test, val = self._evaluate(on)
            point = EvalPoint(self.step, float(self.lrs[t]), train_loss, test.loss, test.acc, self.train_seconds,
                              None if val is None else val.loss, None if val is None else val.acc)
            self.curve.append(point)
            for k, acc in (("val", point.val_acc), ("test", point.test_acc)):
                if reached[k] is None and acc is not None and acc >= target:
                    reached[k] = self.step
            if self.monitors:
                self._report(point)
            diverged = divergence_reason(train_loss, test.loss, self.first_loss, diverge_factor)
            stop_asked = bool(on_eval(point)) if on_eval is not None else False
            eval_seconds += time.perf_counter() - now
            if diverged:
                status, reason = "diverged", f"diverged at update {self.step}: {diverged}"
                break
            if stop_at_target and reached[on] is not None and reached["test"] is not None:
                break  # both updates-to-target are known
            if stop_asked:
                status, reason = "stopped", f"stopped by on_eval at update {self.step}"
                break
            if early_stop and reached[on] is None and self.step < budget:
                why = _unreachable(self.curve, self.pol, target, budget, rule, on)
                if why:
                    status, reason = "unreachable", why
                    break
            if self.step >= budget:
                break  # stay in eval mode: the final measurement and the state kept are of the evaluated weights
            self._mode(True)
            tick = time.perf_counter()
        return self._result(status, reason, reached, target, budget, on, test, eval_seconds, keep_state)

    def _result(self, status: str, reason: str, reached: dict[str, int | None], target: float, budget: int, on: str,
                test: Evaluation, eval_seconds: float, keep_state: bool) -> TrialResult:
        curve = self.curve
        steps_to_target = reached[on]
        best = max((p.test_acc for p in curve), default=0.0)
        vals = [p.val_acc for p in curve if p.val_acc is not None]
        best_val = max(vals) if vals else None
        if steps_to_target is not None:
            status = "pass"
            reason = f"reached {target:g} ({on}) at update {steps_to_target}" + (f" ({reason})" if reason else "")
        elif status == "budget":
            best_on = best_val if on == "val" and best_val is not None else best
            reason = f"budget of {budget} updates ran out; best {on} accuracy {best_on:.4f} < target {target:g}"
        self._mode(False)  # the state kept, and the final measurement, are of the evaluated weights
        state = None
        if keep_state and status != "diverged":
            state = RunState.capture(self.step, self.model, self.opt, self.first_loss, curve, self.train_seconds)
        if status == "diverged":
            final_train = math.nan
        else:
            n = min(len(self.data.train_y), len(self.data.test_y))
            final_train = evaluate(self.model, self.data.train_x[:n], self.data.train_y[:n], loss_fn=self.loss_fn).loss
        result = TrialResult(
            status=status, steps_to_target=steps_to_target, final_acc=test.acc, best_acc=best,
            avg_confidence=test.avg_confidence, confidence_std=test.confidence_std, train_loss=final_train,
            test_loss=test.loss, loss_gap=test.loss - final_train, steps=self.step,
            seconds=self.train_seconds, curve=curve, spec=self.requested, task=self.task.name,
            optimizer=self.opt_name, seed=self.seed, device=self.device, versions=versions(self.device), reason=reason,
            target=target, budget=budget, optimizer_kwargs=self.opt_kwargs, batch_size=self.task.batch_size,
            eval_seconds=eval_seconds, on=on, best_val_acc=best_val, final_val_acc=curve[-1].val_acc if curve else None,
            test_steps_to_target=reached["test"], val_steps_to_target=reached["val"], lr_driver=self.lr_driver,
            realized_spec=self.sched.replay_policy().spec() if self.monitors else None)
        result.state = state  # type: ignore[attr-defined]
        return result


def _first_reached(curve: list[EvalPoint], on: str, target: float) -> int | None:
    for p in curve:
        acc = p.val_acc if on == "val" else p.test_acc
        if acc is not None and acc >= target:
            return p.step
    return None


def _unreachable(curve: list[EvalPoint], pol: Any, target: float, budget: int, rule: UnreachableRule,
                 on: str = "test") -> str | None:
    steps = [p.step for p in curve]
    s = steps[-1]
    if s >= budget or len(steps) <= rule.window:
        return None
    recent = pol.values(np.arange(steps[-(rule.window + 1)], s, dtype=np.float64))
    future = pol.values(np.arange(s, budget, dtype=np.float64))
    return unreachable_reason(steps, [p.acc(on) for p in curve], target, budget,
                              (float(recent.min()), float(recent.max())), (float(future.min()), float(future.max())),
                              rule)


__all__ = ["LR_DRIVERS", "ON", "STATUSES", "BatchOrder", "EvalPoint", "Evaluation", "TrainData", "TrialResult",
           "check_trial_args", "evaluate", "prepare_data", "resolve_optimizer", "run_trial", "train_step", "versions"]
