"""Batches for the range test: a DataLoader (or any re-iterable of batches) or ``(inputs, targets)`` arrays.

Training batches cycle: when the sweep outlasts the data, the loader is iterated again (a
shuffling DataLoader reshuffles; arrays are reshuffled with ``torch.randperm``, which draws
from torch's global generator, restored after the sweep). Validation data is read in order.
A batch is ``(inputs, targets, *ignored)``.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch

from lrkit.errors import LRKitError


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise LRKitError(f"`{what}` must hold tensors or numpy arrays, but got ({what}={type(value).__name__}).")


def is_arrays(data: Any) -> bool:
    """``(inputs, targets)`` given as two tensors or arrays (rather than a loader)."""
    return (isinstance(data, (tuple, list)) and len(data) == 2
            and all(isinstance(v, (torch.Tensor, np.ndarray)) for v in data))


def _arrays(data: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = (_as_tensor(v, what) for v in data)
    if len(x) != len(y) or len(x) == 0:
        raise LRKitError(f"`{what}` inputs and targets must be non-empty and of one length, but got "
                         f"(len(inputs)={len(x)}, len(targets)={len(y)}).")
    return x, y


def _split(batch: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise LRKitError(f"each batch of `{what}` must be (inputs, targets, ...), but got a {type(batch).__name__}; "
                         "wrap the loader so it yields tuples.")
    return batch[0], batch[1]


def _check_loader(data: Any, what: str) -> None:
    if not hasattr(data, "__iter__"):
        raise LRKitError(f"`{what}` must be a DataLoader, an iterable of (inputs, targets) batches, or "
                         f"(inputs, targets) tensors, but got ({what}={type(data).__name__}).")


def batches_per_epoch(data: Any, batch_size: int) -> int | None:
    """Batches in one pass over the training data, or None when the loader has no length."""
    if is_arrays(data):
        return -(-len(data[0]) // batch_size)
    try:
        return len(data) or None
    except TypeError:
        return None


def train_batches(data: Any, batch_size: int) -> Iterator[tuple[Any, Any]]:
    """An endless stream of training batches."""
    if is_arrays(data):
        x, y = _arrays(data, "train_data")
        while True:
            order = torch.randperm(len(x))
            for start in range(0, len(x), batch_size):
                index = order[start:start + batch_size]
                yield x[index], y[index]
    _check_loader(data, "train_data")
    passes = 0
    while True:
        iterator = iter(data)
        if passes and iterator is data:
            raise LRKitError("`train_data` ran out and is a one-shot iterator, so it cannot cycle; pass a "
                             "DataLoader, a list of batches or (inputs, targets) tensors.")
        count = 0
        for batch in iterator:
            count += 1
            yield _split(batch, "train_data")
        if count == 0:
            raise LRKitError("`train_data` yielded no batches.")
        passes += 1


def val_batches(data: Any, batch_size: int, limit: int | None) -> Iterator[tuple[Any, Any]]:
    """One pass over the validation data (its first ``limit`` batches when given)."""
    if is_arrays(data):
        x, y = _arrays(data, "val_data")
        starts = range(0, len(x), batch_size)
        for n, start in enumerate(starts):
            if limit is not None and n >= limit:
                return
            yield x[start:start + batch_size], y[start:start + batch_size]
        return
    _check_loader(data, "val_data")
    for n, batch in enumerate(data):
        if limit is not None and n >= limit:
            return
        yield _split(batch, "val_data")


def to_device(value: Any, device: torch.device) -> Any:
    """Move a tensor (or a tuple/list/dict of tensors) to ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, (tuple, list)):
        return type(value)(to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value
