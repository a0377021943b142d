"""The trial runner: train one model on one task under one policy and measure it (no storage here).

The loop is built from four separate pieces so that later code can train several models in
lockstep on the same batches, or fork a trial from a saved model state:

- :func:`prepare_data`: the task's arrays as tensors on the device (once per trial);
- :class:`BatchOrder`: the indices of the batch used by update ``t``, a pure function of
  ``(seed, t)`` (epoch ``e`` is a permutation drawn from ``numpy.random.default_rng([seed, e])``,
  the last incomplete batch of an epoch is dropped so every update sees ``batch_size`` examples);
- :func:`train_step`: one update, returning the loss as a tensor (no host synchronisation);
- :func:`evaluate`: test loss, top-1 accuracy and confidence, the only place that reads values
  back from the device.

The LR comes from :class:`lrkit.torch.PolicyLR`: update ``t`` uses ``policy(t)``. The model is
built after ``torch.manual_seed(seed)``, so the same seed gives the same run (bit for bit on CPU).
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from lrkit.lrbench.metrics import UnreachableRule, confidence_stats, divergence_reason, unreachable_reason
from lrkit.lrbench.optimizers import accepted_kwargs, make_optimizer
from lrkit.lrbench.tasks import Task
from lrkit.lrbench.trial import STATUSES, EvalPoint, TrialResult
from lrkit.errors import LRKitError
from lrkit.spec import as_policy

# ---- the pieces ---------------------------------------------------------------------------------
@dataclass
class TrainData:
    """A task's arrays as tensors on one device."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def prepare_data(task: Task, device: str | torch.device = "cpu") -> TrainData:
    """Load the task's data and put it on ``device`` (on CPU the numpy memory is shared, not copied)."""
    data = task.load_data()
    dev = torch.device(device)
    return TrainData(*(torch.from_numpy(np.ascontiguousarray(a)).to(dev)
                       for a in (data.train_x, data.train_y, data.test_x, data.test_y)))


class BatchOrder:
    """The training examples of update ``t``: ``indices(t)``, a pure function of ``(seed, t)``.

    Epoch ``e = t // (n // batch_size)`` shuffles with ``numpy.random.default_rng([seed, e])``, so
    any update's batch can be recomputed without replaying earlier ones (forking, resuming).
    """

    def __init__(self, n: int, batch_size: int, seed: int, device: str | torch.device = "cpu") -> None:
        if batch_size > n:
            raise LRKitError(f"`batch_size <= number of training examples` must hold, but got "
                             f"(batch_size={batch_size}, n={n}).")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.per_epoch = n // batch_size
        self.device = torch.device(device)
        self._epoch = -1
        self._perm: torch.Tensor | None = None

    def permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def indices(self, t: int) -> torch.Tensor:
        epoch, pos = divmod(t, self.per_epoch)
        if epoch != self._epoch:  # one host-to-device copy per epoch, none per update
            self._perm = torch.from_numpy(self.permutation(epoch)).to(self.device)
            self._epoch = epoch
        assert self._perm is not None
        return self._perm[pos * self.batch_size:(pos + 1) * self.batch_size]


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, loss_fn: Callable[..., torch.Tensor] = F.cross_entropy) -> torch.Tensor:
    """One update; returns the batch loss, detached, still on the device."""
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()


@dataclass
class Evaluation:
    loss: float
    acc: float
    avg_confidence: float
    confidence_std: float


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 2000,
             loss_fn: Callable[..., torch.Tensor] = F.cross_entropy) -> Evaluation:
    """Mean loss, top-1 accuracy and confidence stats on ``(x, y)``, in chunks of ``chunk``."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    max_probs, correct = [], []
    for start in range(0, len(y), chunk):
        logits = model(x[start:start + chunk]).float()
        target = y[start:start + chunk]
        loss_sum += loss_fn(logits, target, reduction="sum").double()
        prob, pred = torch.softmax(logits, dim=1).max(dim=1)
        max_probs.append(prob)
        correct.append(pred == target)
    model.train(was_training)
    p = torch.cat(max_probs).cpu().numpy()  # the synchronisation point
    ok = torch.cat(correct).cpu().numpy()
    conf, conf_std = confidence_stats(p, ok)
    return Evaluation(float(loss_sum.item()) / len(y), float(ok.mean()), conf, conf_std)


def versions(device: str = "cpu") -> dict[str, str]:
    """lrkit, torch, numpy and Python versions, plus the GPU's name and CUDA version on a CUDA device."""
    import lrkit

    out = {"lrkit": lrkit.__version__, "torch": torch.__version__, "numpy": np.__version__,
           "python": platform.python_version()}
    if torch.device(device).type == "cuda":
        out["cuda"] = str(torch.version.cuda)
        out["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return out


def check_device(device: str) -> str:
    """The device string, if torch can use it; an LRKitError otherwise."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise LRKitError(f"unknown device {device!r} (use 'cpu', 'cuda' or 'cuda:N')") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LRKitError(f"device {device!r} asked for, but CUDA is not available to torch {torch.__version__}")
    if dev.type not in ("cpu", "cuda"):
        raise LRKitError(f"device {device!r} is not supported (use 'cpu', 'cuda' or 'cuda:N')")
    return str(dev)


def resolve_optimizer(task: Task, optimizer: str | None, optimizer_kwargs: Mapping[str, Any] | None
                      ) -> tuple[str, dict[str, Any]]:
    """The optimizer name and arguments of a trial.

    Without ``optimizer`` the task's optimizer runs with the task's arguments updated by
    ``optimizer_kwargs``. With another optimizer, the task's arguments that it also accepts (e.g.
    ``weight_decay``) carry over, then ``optimizer_kwargs`` apply.
    """
    name = (optimizer or task.optimizer).lower()
    extra = dict(optimizer_kwargs or {})
    if "lr" in extra:
        raise LRKitError("the learning rate comes from the policy, so `lr` cannot be an optimizer argument, "
                         f"but got (lr={extra['lr']!r}).")
    base = dict(task.optimizer_kwargs)
    if name != task.optimizer:
        allowed = accepted_kwargs(name)
        base = {k: v for k, v in base.items() if k in allowed}
    return name, {**base, **extra}


# ---- the trial ----------------------------------------------------------------------------------
def run_trial(task: Task, policy: Any, *, budget: int | None = None, target: float | None = None, seed: int = 0,
              device: str = "cpu", optimizer: str | None = None, optimizer_kwargs: Mapping[str, Any] | None = None,
              eval_every: int | None = None, stop_at_target: bool = True, early_stop: bool = True,
              on_eval: Callable[[EvalPoint], bool | None] | None = None,
              unreachable_rule: UnreachableRule = UnreachableRule(), diverge_factor: float = 5.0,
              threads: int | None = 1) -> TrialResult:
    """Train ``task``'s model under ``policy`` for at most ``budget`` updates and measure it.

    Every ``eval_every`` updates (and after the last) the model is evaluated on the test set and
    an :class:`EvalPoint` is recorded. The trial ends with status

    - ``"pass"``: test accuracy reached ``target`` (at ``steps_to_target``; with
      ``stop_at_target=False`` training continues to the full budget);
    - ``"diverged"``: a non-finite loss, or a training loss over ``diverge_factor`` × the first
      batch's loss (:func:`~lrkit.lrbench.metrics.divergence_reason`); recorded, never raised;
    - ``"unreachable"``: with ``early_stop``, :class:`~lrkit.lrbench.metrics.UnreachableRule` says
      the target can no longer plausibly be reached;
    - ``"stopped"``: ``on_eval(point)`` returned True (e.g. an Optuna pruner);
    - ``"budget"``: the budget ran out below the target.

    Args:
        task: the task (model, data, optimizer, defaults).
        policy: a :class:`lrkit.Policy`, spec string or dict; update ``t`` uses ``policy(t)``.
        budget: updates, >= 1 (default ``task.budget``).
        target: target test accuracy (default ``task.target``).
        seed: seeds the model's initialisation and the batch order, >= 0.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        optimizer, optimizer_kwargs: see :func:`resolve_optimizer`.
        eval_every: updates between evaluations (default ``task.eval_every``).
        stop_at_target: stop at the first evaluation at or above ``target``.
        early_stop: apply ``unreachable_rule``.
        on_eval: called with every :class:`EvalPoint`; returning True stops the trial.
        unreachable_rule: the thresholds of the unreachable stop.
        diverge_factor: a training loss over this multiple of the first batch's counts as divergence.
        threads: torch CPU threads during the trial (restored afterwards); None leaves them.

    Returns:
        A :class:`TrialResult`; ``train_loss`` there is the final loss on (up to) as many training
        examples as the test set has, in eval mode, and ``loss_gap = test_loss - train_loss``.
    """
    pol = as_policy(policy)
    budget = task.budget if budget is None else budget
    target = task.target if target is None else target
    eval_every = task.eval_every if eval_every is None else eval_every
    for ok, rule, value in ((isinstance(budget, int) and budget >= 1, "budget >= 1", budget),
                            (isinstance(eval_every, int) and eval_every >= 1, "eval_every >= 1", eval_every),
                            (isinstance(seed, int) and seed >= 0, "seed >= 0", seed),
                            (0 < target <= 1, "0 < target <= 1", target)):
        if not ok:
            raise LRKitError(f"`{rule}` must hold, but got ({rule.split()[0]}={value!r}).")
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
        return _train(task, pol, lrs, budget, target, eval_every, seed, device, opt_name, opt_kwargs,
                      stop_at_target, early_stop, on_eval, unreachable_rule, diverge_factor)
    finally:
        torch.set_num_threads(old_threads)


def _train(task: Task, pol: Any, lrs: np.ndarray, budget: int, target: float, eval_every: int, seed: int,
           device: str, opt_name: str, opt_kwargs: dict[str, Any], stop_at_target: bool, early_stop: bool,
           on_eval: Callable[[EvalPoint], bool | None] | None, rule: UnreachableRule,
           diverge_factor: float) -> TrialResult:
    from lrkit.torch import PolicyLR

    data = prepare_data(task, device)
    torch.manual_seed(seed)
    model = task.make_model().to(device)
    model.train()
    opt = make_optimizer(opt_name, model.parameters(), float(lrs[0]), **opt_kwargs)
    sched = PolicyLR(opt, pol)
    order = BatchOrder(len(data.train_y), task.batch_size, seed, device)
    loss_fn = task.loss or F.cross_entropy

    curve: list[EvalPoint] = []
    status, reason, steps_to_target = "budget", "", None
    first_loss: torch.Tensor | None = None
    loss_sum = torch.zeros((), dtype=torch.float32, device=device)
    train_seconds = eval_seconds = 0.0
    last = Evaluation(math.nan, 0.0, 0.0, 0.0)
    steps_done = 0
    tick = time.perf_counter()
    for t in range(budget):
        idx = order.indices(t)
        try:
            loss = train_step(model, opt, data.train_x[idx], data.train_y[idx], loss_fn)
        except (RuntimeError, OverflowError) as err:
            if "overflow" not in str(err):
                raise
            # an LR past the parameters' float range: the update itself cannot be represented
            status, reason = "diverged", f"diverged at update {t}: lr {float(lrs[t])!r} overflows the parameters' dtype"
            break
        sched.step()
        loss_sum += loss
        if first_loss is None:
            first_loss = loss
        steps_done = t + 1
        if steps_done % eval_every and steps_done != budget:
            continue
        # ---- evaluation: the only place values come back to the host
        interval = steps_done - (curve[-1].step if curve else 0)
        train_loss = float(loss_sum.item()) / interval
        loss_sum.zero_()
        now = time.perf_counter()
        train_seconds += now - tick
        last = evaluate(model, data.test_x, data.test_y, loss_fn=loss_fn)
        point = EvalPoint(steps_done, float(lrs[t]), train_loss, last.loss, last.acc, train_seconds)
        curve.append(point)
        assert first_loss is not None
        diverged = divergence_reason(train_loss, last.loss, float(first_loss.item()), diverge_factor)
        stop_asked = bool(on_eval(point)) if on_eval is not None else False
        eval_seconds += time.perf_counter() - now
        if diverged:
            status, reason = "diverged", f"diverged at update {steps_done}: {diverged}"
            break
        if steps_to_target is None and last.acc >= target:
            steps_to_target = steps_done
            if stop_at_target:
                break
        if stop_asked:
            status, reason = "stopped", f"stopped by on_eval at update {steps_done}"
            break
        if early_stop and steps_to_target is None:
            why = _unreachable(curve, pol, target, budget, rule)
            if why:
                status, reason = "unreachable", why
                break
        tick = time.perf_counter()

    best = max((p.test_acc for p in curve), default=0.0)
    if steps_to_target is not None:
        status = "pass"
        reason = f"reached {target:g} at update {steps_to_target}" + (f" ({reason})" if reason else "")
    elif status == "budget":
        reason = f"budget of {budget} updates ran out; best accuracy {best:.4f} < target {target:g}"
    if status == "diverged":
        final_train = math.nan
    else:
        n = min(len(data.train_y), len(data.test_y))
        final_train = evaluate(model, data.train_x[:n], data.train_y[:n], loss_fn=loss_fn).loss
    return TrialResult(
        status=status, steps_to_target=steps_to_target, final_acc=last.acc, best_acc=best,
        avg_confidence=last.avg_confidence, confidence_std=last.confidence_std, train_loss=final_train,
        test_loss=last.loss, loss_gap=last.loss - final_train, steps=steps_done, seconds=train_seconds,
        curve=curve, spec=pol.spec(), task=task.name, optimizer=opt_name, seed=seed, device=device,
        versions=versions(device), reason=reason, target=target, budget=budget, optimizer_kwargs=opt_kwargs,
        batch_size=task.batch_size, eval_seconds=eval_seconds)


def _unreachable(curve: list[EvalPoint], pol: Any, target: float, budget: int, rule: UnreachableRule) -> str | None:
    steps = [p.step for p in curve]
    s = steps[-1]
    if s >= budget or len(steps) <= rule.window:
        return None
    recent = pol.values(np.arange(steps[-(rule.window + 1)], s, dtype=np.float64))
    future = pol.values(np.arange(s, budget, dtype=np.float64))
    return unreachable_reason(steps, [p.test_acc for p in curve], target, budget,
                              (float(recent.min()), float(recent.max())), (float(future.min()), float(future.max())),
                              rule)


__all__ = ["STATUSES", "BatchOrder", "EvalPoint", "Evaluation", "TrainData", "TrialResult", "evaluate", "prepare_data",
           "resolve_optimizer", "run_trial", "train_step", "versions"]
