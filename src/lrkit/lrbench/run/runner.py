"""The trial runner: train one model on one task under one (optimizer, policy) and measure it (no storage here).

:func:`run_trial` is one loop over the pieces of :mod:`lrkit.lrbench.run.steps`. The LR comes from
:class:`lrkit.torch.PolicyLR`: update ``t`` uses ``policy(t)``. The model is built after
``torch.manual_seed(seed)`` and the batches follow ``BatchOrder(seed)``, so the same seed gives the
same run (bit for bit on CPU), and a run continued from a :class:`~lrkit.lrbench.run.state.RunState`
goes on exactly as the run it came from.

Every evaluation measures the validation split (when the task has one; not with ``test_only``) and the test set. A trial
is judged on one of them (``on``): a search judges on validation accuracy, so that the test set is
only reported; ``lrkit verify`` judges on test accuracy, as LRBench does. A policy that holds a
``plateau`` gets the monitored metric (validation loss or accuracy; the test set's when the task has
no validation split) after every evaluation through ``PolicyLR.report``, and the result records the
pure ``join`` it decided (``realized_spec``), which replays the run bit for bit.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from lrkit.errors import LRKitError
from lrkit.lrbench.run.array_trainer import array_trainer
from lrkit.lrbench.run.judge import ON, Judge, TrialSettings
from lrkit.lrbench.run.judging import UnreachableRule
from lrkit.lrbench.run.protocol import MODES, ProtocolError, score
from lrkit.lrbench.run.state import RunState
from lrkit.lrbench.tasks.catalogue import Task, is_accuracy
from lrkit.lrbench.run.steps import check_device, resolve_optimizer, versions
from lrkit.lrbench.run.result import EvalPoint, TrialResult
from lrkit.lrbench.run.result import STATUSES  # noqa: F401  (for the old path lrkit.lrbench.trainer until it goes)
from lrkit.spec import as_policy

#: how the policy's LR reaches the optimizer: lrkit's PolicyLR, or PyTorch's own OneCycleLR built from a
#: ``onecycle`` policy's parameters (it also cycles momentum, as users of it get by default)
LR_DRIVERS = ("policy", "torch-onecycle")


def check_trial_args(*, budget: Any = None, target: Any = None, eval_every: Any = None, seed: Any = None,
                     on: Any = None, metric: str | None = None, mode: Any = None) -> None:
    """The one place the common trial arguments are checked; each error names the parameter and the rule."""
    accuracy = is_accuracy(metric) and mode in (None, "max")
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    rules = [("budget", budget, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "budget >= 1"),
             ("target", target, (lambda v: number(v) and 0 < v <= 1) if accuracy else
              (lambda v: number(v) and math.isfinite(v)),
              "0 < target <= 1 (an accuracy)" if accuracy else f"target is a finite number (a value of {metric})"),
             ("mode", mode, lambda v: v in MODES, "mode in ('max', 'min')"),
             ("metric", metric, lambda v: isinstance(v, str) and v.isidentifier(),
              "metric is a name run.report(...) was given, e.g. val_loss"),
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
              keep_state: bool = False, metric: str | None = None, mode: str | None = None,
              keep_losses: bool = False, val_offset: float = 0.0,
              keep_states_at: Sequence[int] = (), test_only: bool = False) -> TrialResult:
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
        target: target accuracy (default ``task.target``); None for a task without one (a training
            function's): no target, the run goes to the budget and is judged by its best metric.
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
        metric, mode: the metric the trial is judged on and its direction (default: the task's, else
            ``f"{on}_acc"``, "max"); a "min" metric (a loss) reaches the target when it is ``<= target``.
            Stored accuracies and targets are scores (higher is better: a "min" metric negated).
        keep_losses: keep every update's training loss in ``result.losses`` (the range test reads it).
        val_offset: the validation split's target is ``target + val_offset`` (a score; 0 by default): a
            search calibrates it so that reaching it on validation stands for reaching ``target`` on test
            (:mod:`lrkit.lrbench.search.calibration`); stored as ``result.val_target``.
        keep_states_at: updates (multiples of ``eval_every``) at which to copy the run's state, right after
            that evaluation and only when the run goes on from there: ``result.fork_states[step]`` (not
            stored), from which another run continues as ``start`` (a search's decay forks).
        test_only: evaluate the test set only, not the validation split (a built-in task judged on
            test, with no plateau): a held-out run that reads nothing of validation evaluates a third
            less on the Fashion tasks; its test figures are the same.

    Returns:
        A :class:`TrialResult`; ``train_loss`` there is the final loss on (up to) as many training
        examples as the test set has, in eval mode, and ``loss_gap = test_loss - train_loss``.
    """
    policy = as_policy(policy)
    budget, target = task.given(budget, target, need_target=False)
    eval_every = task.eval_every if eval_every is None else eval_every
    own = getattr(task, "train", None) is not None
    metric = metric or getattr(task, "metric", None) or f"{on}_acc"
    mode = mode or getattr(task, "mode", None) or "max"
    custom = own or metric not in ("val_acc", "test_acc") or mode != "max"  # judged on a named metric
    check_trial_args(budget=budget, target=target, eval_every=eval_every, seed=seed, on=on, metric=metric, mode=mode)
    if lr_driver not in LR_DRIVERS:
        raise LRKitError(f"`lr_driver` must be one of {LR_DRIVERS}, but got (lr_driver={lr_driver!r}).")
    if lr_driver == "torch-onecycle" and policy.name != "onecycle":
        raise LRKitError("lr_driver 'torch-onecycle' builds OneCycleLR from an onecycle policy, "
                         f"but got {policy.spec()}")
    if any(not 0 < s < budget or s % eval_every for s in keep_states_at):
        raise LRKitError(f"`0 < step < budget and step % eval_every == 0` must hold for every step of keep_states_at, "
                         f"but got (keep_states_at={list(keep_states_at)}, budget={budget}, eval_every={eval_every}).")
    if start is not None and not 0 <= start.step < budget:
        raise LRKitError(f"`0 <= start.step < budget` must hold, but got (start.step={start.step}, budget={budget}).")
    if test_only:
        _check_test_only(on, own, policy)
    device = check_device(device)
    optimizer, optimizer_kwargs = resolve_optimizer(task, optimizer, optimizer_kwargs)
    lrs = _checked_lrs(policy, budget)
    settings = TrialSettings(
        seed=seed, device=device, optimizer=optimizer, optimizer_kwargs=optimizer_kwargs, lr_driver=lr_driver,
        budget=budget, target=math.inf if target is None else score(target, mode), eval_every=eval_every, on=on,
        stop_at_target=stop_at_target, early_stop=early_stop and target is not None, on_eval=on_eval, unreachable_rule=unreachable_rule, diverge_factor=diverge_factor,
        keep_state=keep_state, metric=metric, mode=mode, custom=custom, val_offset=float(val_offset),
        keep_states_at=frozenset(int(s) for s in keep_states_at))
    old_threads = torch.get_num_threads()
    if threads is not None and device == "cpu":
        torch.set_num_threads(threads)
    try:
        if getattr(task, "ranks", 1) > 1:  # a data-parallel job: every rank calls _train in a process of its own
            from lrkit.lrbench.run.ranks import run_ranks

            return run_ranks(task, _train, policy, lrs, settings, start=start, keep_losses=keep_losses,
                             threads=threads)
        train = task.train if own else array_trainer(task, device, on, val=not test_only)
        return _train(task, train, policy, lrs, settings, start, keep_losses)
    finally:
        torch.set_num_threads(old_threads)


def _check_test_only(on: str, own: bool, policy: Any) -> None:
    """``test_only`` leaves out what a trial would need from the validation split: refused where it needs it."""
    from lrkit.policies.plateau import contains_plateau

    for broken, why in ((on == "val", "it is judged on 'val'"),
                        (own, "the task trains with its own function, which decides what it evaluates"),
                        (contains_plateau(policy), "its policy holds a plateau, which monitors the validation split")):
        if broken:
            raise LRKitError(f"`test_only` needs a built-in task judged on test with no plateau, but {why} "
                             f"(test_only=True, on={on!r}, policy={policy.spec()!r}).")


def _train(task: Any, train: Callable[[Any], None], policy: Any, lrs: np.ndarray, settings: TrialSettings,
           start: RunState | None, keep_losses: bool) -> TrialResult:
    """One call of the training function through a :class:`~lrkit.lrbench.run.protocol.Run`, and its result."""
    from lrkit.lrbench.run.protocol import Run, seed_everything

    requested = policy.spec()  # a plateau's instance changes as it switches; the trial keeps what it was given
    judge = Judge(policy, lrs, settings, start)
    run = Run(judge, seed=settings.seed, device=settings.device, budget=settings.budget,
              eval_every=settings.eval_every, policy=policy, optimizer_name=settings.optimizer,
              optimizer_kwargs=settings.optimizer_kwargs, lr_driver=settings.lr_driver, start=start,
              keep_losses=keep_losses)
    judge.run = run
    seed_everything(settings.seed)
    _run_function(train, run, judge)
    result = _result(task, judge, run, requested)
    if keep_losses:
        result.losses = run._kept_losses()
    return result


def _checked_lrs(policy: Any, budget: int) -> np.ndarray:
    """``policy(t)`` for every update of the budget; an LRKitError at the first one that is not finite and >= 0."""
    lrs = policy.values(np.arange(budget, dtype=np.float64))
    if not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
        bad = int(np.flatnonzero(~np.isfinite(lrs) | (lrs < 0))[0])
        raise LRKitError(f"policy {policy.spec()} gives lr({bad}) = {lrs[bad]!r}; an LR must be finite and >= 0")
    return lrs


def _run_function(train: Callable[[Any], None], run: Any, judge: Judge) -> None:
    """Call the training function; the protocol's own stop ends it quietly, its mistakes are ProtocolErrors."""
    from lrkit.lrbench.run.protocol import TrialStop

    try:
        train(run)
    except TrialStop:
        pass
    if judge.status == "diverged":
        return
    if run._opt is None:
        raise ProtocolError("the training function returned without an optimizer: build it with run.optimizer(model) "
                            "or give yours to run.attach(opt), so that the trial's policy drives it")
    if run.steps == 0:
        raise ProtocolError("the training function returned without calling run.step(): lrkit counts updates "
                            "through it, so the LR never moved from policy(0); call run.step(loss) after every "
                            "optimizer update")
    if len(judge.curve) == judge.started_with:
        raise ProtocolError(f"the training function returned after {run.steps} updates without calling "
                            "run.report(...): report the metrics at every evaluation (when run.due() is True)")


def _result(task: Any, judge: Judge, run: Any, requested: str) -> TrialResult:
    settings, curve = judge.settings, judge.curve
    status, reason = judge.judged(run.steps)
    last = curve[-1] if curve else None
    best = max((p.test_acc for p in curve), default=0.0)
    vals = [p.val_acc for p in curve if p.val_acc is not None]
    best_val = max(vals) if vals else None
    state = None
    if settings.keep_state and status != "diverged":
        state = run._state()
        if state is None:
            raise ProtocolError("this trial's end state is needed (lrkit compose forks runs), so lrkit must be able "
                                "to save the model: pass it, run.optimizer(model) or run.attach(opt, model=model)")
    extras = run.extras
    final_train = math.nan if status == "diverged" else extras.get("train_loss", last.train_loss if last else math.nan)
    test_loss = last.test_loss if last else math.nan
    return TrialResult(
        status=status, steps_to_target=judge.reached[judge.on], final_acc=last.test_acc if last else 0.0,
        best_acc=best, avg_confidence=extras.get("avg_confidence", 0.0 if not settings.custom else math.nan),
        confidence_std=extras.get("confidence_std", 0.0 if not settings.custom else math.nan),
        train_loss=final_train, test_loss=test_loss, loss_gap=test_loss - final_train, steps=run.steps,
        seconds=judge.train_seconds, curve=curve, spec=requested, task=task.name, optimizer=settings.optimizer,
        seed=settings.seed, device=settings.device, versions=versions(settings.device), reason=reason,
        target=settings.target, budget=settings.budget, optimizer_kwargs=settings.optimizer_kwargs,
        batch_size=task.batch_size, eval_seconds=judge.eval_seconds, on=judge.on, best_val_acc=best_val,
        final_val_acc=last.val_acc if last else None, test_steps_to_target=judge.reached["test"],
        val_steps_to_target=judge.reached["val"], lr_driver=settings.lr_driver,
        realized_spec=run._scheduler.replay_policy().spec() if judge.monitors else None, state=state,
        fork_states=judge.fork_states or None,
        metric=settings.metric if settings.custom else None, mode=settings.mode,
        val_target=settings.target_of("val") if settings.val_offset else None)


__all__ = ["LR_DRIVERS", "ON", "TrialSettings", "check_trial_args", "run_trial"]
