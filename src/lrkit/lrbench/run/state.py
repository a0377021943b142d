"""The state of a training run between two updates, so that another run can continue from it (a fork).

A :class:`RunState` holds what the next update depends on: the model's parameters and buffers, the
optimizer's state, the torch random number generators, the update count ``step`` (which fixes the
LR and, with the seed, the batch), the first batch's loss (the divergence rule's yardstick) and the
evaluations so far. :func:`lrkit.lrbench.run.runner.run_trial` takes one as ``start`` and continues
bit for bit as the run it came from would have (on CPU; a test shows it), and returns one with
``keep_state=True``. States are taken right after an evaluation, with a schedule-free optimizer in
eval mode, so the saved weights are the ones evaluated.

A state lives in memory (copies of the tensors) or in a file (:meth:`RunState.save`,
:meth:`RunState.load`, ``torch.save`` format); :meth:`RunState.nbytes` says how large it is.
"""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from lrkit.lrbench.run.result import EvalPoint


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_clone(v) for v in value)
    return copy.deepcopy(value)


def _tensor_bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


@dataclass
class RunState:
    """A run after ``step`` updates (see the module docstring)."""

    step: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    first_loss: float
    curve: list[EvalPoint] = field(default_factory=list)
    train_seconds: float = 0.0
    rng: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def capture(cls, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer, first_loss: float,
                curve: list[EvalPoint], train_seconds: float) -> "RunState":
        """Copy the live objects' state (the run can go on changing them)."""
        rng: dict[str, Any] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return cls(step, _clone(model.state_dict()), _clone(optimizer.state_dict()), float(first_loss),
                   [replace(p) for p in curve], train_seconds, rng)

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Load the state into a freshly built model and optimizer of the same kind."""
        model.load_state_dict(self.model)
        optimizer.load_state_dict(_clone(self.optimizer))
        torch.set_rng_state(self.rng["cpu"])
        if "cuda" in self.rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self.rng["cuda"])

    def nbytes(self) -> int:
        """Bytes of tensor data held (model + optimizer state + RNG)."""
        return _tensor_bytes(self.model) + _tensor_bytes(self.optimizer) + _tensor_bytes(self.rng)

    def save(self, path: str | Path) -> Path:
        """Write the state to ``path`` (``torch.save``)."""
        out = Path(path)
        torch.save({"step": self.step, "model": self.model, "optimizer": self.optimizer,
                    "first_loss": self.first_loss, "curve": [p.__dict__ for p in self.curve],
                    "train_seconds": self.train_seconds, "rng": self.rng}, out)
        return out

    @classmethod
    def load(cls, path: str | Path) -> "RunState":
        data = torch.load(path, weights_only=False)
        return cls(data["step"], data["model"], data["optimizer"], data["first_loss"],
                   [EvalPoint(**p) for p in data["curve"]], data["train_seconds"], data["rng"])


def remove(paths: list[str | os.PathLike[str]]) -> int:
    """Delete these state files (those that exist); returns the bytes freed."""
    freed = 0
    for path in paths:
        p = Path(path)
        if p.is_file():
            freed += p.stat().st_size
            p.unlink()
    return freed


def remove_folder(folder: Path) -> None:
    """Delete a folder of state files, and its ``*.states`` parent once that is empty."""
    if folder.is_dir():
        shutil.rmtree(folder)
        parent = folder.parent
        if parent.name.endswith(".states") and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


__all__ = ["RunState", "remove", "remove_folder"]
