"""The pieces of a training loop, apart from any one loop, so that other loops can reuse them.

The trial runner (:mod:`lrkit.lrbench.run.runner`) is one loop built from them; a loop that trains
several models in lockstep on the same batches, or one that forks a run from a saved state
(:mod:`lrkit.lrbench.composition.stagewise`), uses the same pieces:

- :func:`prepare_data`: the task's train / validation / test arrays as tensors on the device;
- :class:`BatchOrder`: the indices of the batch used by update ``t``, a pure function of
  ``(seed, t)`` (epoch ``e`` is a permutation drawn from ``numpy.random.default_rng([seed, e])``,
  the last incomplete batch of an epoch is dropped so every update sees ``batch_size`` examples);
- :func:`train_step`: one update, returning the loss as a tensor (no host synchronisation);
- :func:`evaluate`: loss, top-1 accuracy and confidence on one split, the only place that reads
  values back from the device;
- :func:`resolve_optimizer`: the optimizer and arguments a trial trains with.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from lrkit.errors import LRKitError
from lrkit.lrbench.run.judging import confidence_stats
from lrkit.lrbench.tasks.optimizers import accepted_kwargs, canonical
from lrkit.lrbench.tasks.catalogue import Task


@dataclass
class TrainData:
    """A task's arrays as tensors on one device (``val_x``/``val_y`` are None without a validation split)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    val_x: torch.Tensor | None = None
    val_y: torch.Tensor | None = None


def prepare_data(task: Task, device: str | torch.device = "cpu") -> TrainData:
    """The task's data, validation split carved, on ``device`` (on CPU the numpy memory is shared)."""
    data = task.split_data()
    dev = torch.device(device)

    def put(a: np.ndarray | None) -> torch.Tensor | None:
        return None if a is None else torch.from_numpy(np.ascontiguousarray(a)).to(dev)

    return TrainData(put(data.train_x), put(data.train_y), put(data.test_x), put(data.test_y),  # type: ignore[arg-type]
                     put(data.val_x), put(data.val_y))


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
    ``optimizer_kwargs``. With another optimizer (a built-in name or ``module:Class``), the task's
    arguments that it also accepts (e.g. ``weight_decay``) carry over, then ``optimizer_kwargs``
    apply. The name comes back as lrkit stores it (:func:`~lrkit.lrbench.tasks.optimizers.canonical`).
    """
    name = canonical(optimizer or task.optimizer)
    extra = dict(optimizer_kwargs or {})
    if "lr" in extra:
        raise LRKitError("the learning rate comes from the policy, so `lr` cannot be an optimizer argument, "
                         f"but got (lr={extra['lr']!r}).")
    base = dict(task.optimizer_kwargs)
    if name != canonical(task.optimizer):
        allowed = accepted_kwargs(name)
        base = {k: v for k, v in base.items() if k in allowed}
    return name, {**base, **extra}


def optimizer_setup(task: Task, name: str, user_kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The optimizer ``name`` and its arguments in a study: the task's it accepts, then those of the user's
    (``user_kwargs``, given for every searched optimizer) it accepts; checked against its signature."""
    from lrkit.lrbench.tasks.optimizers import check_kwargs

    accepted = accepted_kwargs(name)
    extra = {k: v for k, v in user_kwargs.items() if k in accepted}
    opt, kwargs = resolve_optimizer(task, name, extra)
    return opt, check_kwargs(opt, kwargs)


def check_optimizers(task: Task, names: tuple[str, ...], user_kwargs: Mapping[str, Any]) -> None:
    """Every optimizer a study trains and the user's arguments, checked before anything runs: each argument
    must be one that at least one of ``names`` takes, with a valid value."""
    from lrkit.lrbench.tasks.optimizers import accepted_kwargs, check_kwargs

    if "lr" in user_kwargs:
        raise LRKitError("the learning rate comes from the policy, so `lr` cannot be an optimizer argument, "
                         f"but got (lr={user_kwargs['lr']!r}).")
    if len(names) == 1:  # every argument is for it: the same message as verify's
        check_kwargs(names[0], dict(user_kwargs))
    for name in names:
        optimizer_setup(task, name, user_kwargs)
    unused = [k for k in user_kwargs if not any(k in accepted_kwargs(o) for o in names)]
    if unused:
        raise LRKitError(f"no searched optimizer takes the argument {unused[0]!r} (searched: {', '.join(names)})")


__all__ = ["BatchOrder", "Evaluation", "TrainData", "check_device", "check_optimizers", "evaluate", "optimizer_setup",
           "prepare_data", "resolve_optimizer", "train_step", "versions"]
