"""Snapshot and exact restore of everything a range test touches.

What is saved: every parameter and buffer of the model (non-persistent buffers included) and
each parameter's ``.grad``; each module's train/eval flag; the optimizer's ``state_dict``
(state and param groups, so every LR, float or tensor, and every ``initial_lr`` key comes back
as it was); the optimizer attributes a PyTorch scheduler patches (``step``, ``_opt_called``);
a GradScaler's state; and the RNG states the sweep draws from (torch CPU, every CUDA device
that is initialised, Python's ``random``, NumPy's global generator).

Memory is bounded: the snapshot holds one copy of the model and optimizer state, in CPU memory
(``where="cpu"``, the default) or in a temporary file (``where="disk"``), never on the GPU.
Restoring copies values *into* the existing tensors, so references held elsewhere (the
optimizer's, a compiled graph's) stay valid; the restore is bit-exact.
"""

from __future__ import annotations

import os
import random
import tempfile
from typing import Any

import numpy as np
import torch

from lrkit.errors import LRKitError

WHERE = ("cpu", "disk")
_MISSING = object()


def _to_cpu(obj: Any) -> Any:
    """A deep copy with every tensor cloned to CPU (containers rebuilt, other values kept)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(v) for v in obj)
    return obj


def _tensors(model: torch.nn.Module) -> list[torch.Tensor]:
    """Parameters then buffers, each once, in a fixed order (shared tensors counted once)."""
    seen: set[int] = set()
    out = []
    for tensor in [*model.parameters(), *model.buffers()]:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            out.append(tensor)
    return out


class Snapshot:
    """The state of a model, optimizer, optional GradScaler and the global RNGs, taken at construction."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: Any = None,
                 where: str = "cpu", directory: str | os.PathLike[str] | None = None) -> None:
        if where not in WHERE:
            raise LRKitError(f"`snapshot` must be one of 'cpu', 'disk', but got (snapshot={where!r}).")
        self.model, self.optimizer, self.scaler, self.where = model, optimizer, scaler, where
        self._tensor_refs = _tensors(model)
        self._modes = [(m, m.training) for m in model.modules()]
        self._opt_attrs = {k: optimizer.__dict__.get(k, _MISSING) for k in ("step", "_opt_called")}
        # tensor LRs (and betas ...) must come back as the same objects: a compiled step may hold them
        self._group_tensors = [{k: v for k, v in g.items() if isinstance(v, torch.Tensor)}
                               for g in optimizer.param_groups]
        self._rng = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized()
            else None,
            "python": random.getstate(),
            "numpy": np.random.get_state(),
        }
        payload = {
            "tensors": [t.detach().to("cpu", copy=True) for t in self._tensor_refs],
            "grads": [None if t.grad is None else t.grad.detach().to("cpu", copy=True) for t in self._tensor_refs],
            "optimizer": _to_cpu(optimizer.state_dict()),
            "scaler": _to_cpu(scaler.state_dict()) if scaler is not None else None,
        }
        self._path: str | None = None
        if where == "disk":
            fd, self._path = tempfile.mkstemp(prefix="lrkit-rangetest-", suffix=".pt", dir=directory)
            os.close(fd)
            torch.save(payload, self._path)
            self._payload = None
        else:
            self._payload = payload

    @property
    def nbytes(self) -> int:
        """Bytes held in CPU memory by the tensor copies (0 on disk)."""
        if self._payload is None:
            return 0
        total = 0
        for group in ("tensors", "grads"):
            total += sum(t.numel() * t.element_size() for t in self._payload[group] if t is not None)
        return total

    def restore(self) -> None:
        """Put everything back, bit for bit, and drop the snapshot (a temporary file is deleted)."""
        payload = self._payload
        if payload is None:
            payload = torch.load(self._path, map_location="cpu", weights_only=False)
        with torch.no_grad():
            for tensor, saved, grad in zip(self._tensor_refs, payload["tensors"], payload["grads"]):
                tensor.copy_(saved)
                if grad is None:
                    tensor.grad = None
                elif tensor.grad is not None and tensor.grad.shape == grad.shape:
                    tensor.grad.copy_(grad)
                else:
                    tensor.grad = grad.to(tensor.device)
        for module, mode in self._modes:
            module.training = mode
        self.optimizer.load_state_dict(payload["optimizer"])
        with torch.no_grad():
            for group, originals in zip(self.optimizer.param_groups, self._group_tensors):
                for key, original in originals.items():
                    original.copy_(group[key])
                    group[key] = original
        for key, value in self._opt_attrs.items():
            if value is _MISSING:
                self.optimizer.__dict__.pop(key, None)
            else:
                self.optimizer.__dict__[key] = value
        if self.scaler is not None and payload["scaler"] is not None:
            self.scaler.load_state_dict(payload["scaler"])
        torch.set_rng_state(self._rng["torch"])
        if self._rng["cuda"] is not None:
            torch.cuda.set_rng_state_all(self._rng["cuda"])
        random.setstate(self._rng["python"])
        np.random.set_state(self._rng["numpy"])
        self.discard()

    def discard(self) -> None:
        """Free the snapshot without restoring."""
        self._payload = None
        if self._path is not None and os.path.exists(self._path):
            os.remove(self._path)
        self._path = None
