"""The optimizers LRBench compares policies under, by name (methods.md §1.4 item 4).

| name | torch class | defaults lrkit adds |
|---|---|---|
| ``sgd`` | ``SGD`` | ``momentum=0`` |
| ``momentum`` | ``SGD`` | ``momentum=0.9`` |
| ``nesterov`` | ``SGD`` | ``momentum=0.9, nesterov=True`` |
| ``adam`` | ``Adam`` | |
| ``adamw`` | ``AdamW`` | (torch's ``weight_decay=0.01``) |
| ``rmsprop`` | ``RMSprop`` | |
| ``adagrad`` | ``Adagrad`` | |
| ``adadelta`` | ``Adadelta`` | |

The learning rate always comes from the policy: ``lr`` here is only the value the optimizer is
built with (the runner overwrites it before every update). For Adadelta the policy's value
multiplies the Adadelta step, as in torch (whose own default is ``lr=1.0``).
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Iterable

import torch

from lrkit.errors import LRKitError, format_values

OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "adadelta")

_CLASSES: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, {"momentum": 0.0}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9}),
    "nesterov": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "adagrad": (torch.optim.Adagrad, {}),
    "adadelta": (torch.optim.Adadelta, {}),
}


def optimizer_defaults(name: str) -> dict[str, Any]:
    """The keyword arguments ``make_optimizer(name, ...)`` passes unless told otherwise (a copy)."""
    return dict(_CLASSES[_canonical(name)][1])


def accepted_kwargs(name: str) -> tuple[str, ...]:
    """The keyword arguments the optimizer ``name`` accepts (besides ``params`` and ``lr``)."""
    cls = _CLASSES[_canonical(name)][0]
    return tuple(p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "params", "lr"))


def _canonical(name: str) -> str:
    key = str(name).strip().lower()
    if key not in _CLASSES:
        close = difflib.get_close_matches(key, OPTIMIZERS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise LRKitError(f"unknown optimizer {name!r} (lrkit knows {', '.join(OPTIMIZERS)}){hint}")
    return key


def make_optimizer(name: str, params: Iterable[Any], lr: float, **kwargs: Any) -> torch.optim.Optimizer:
    """Build the optimizer ``name`` over ``params`` with initial learning rate ``lr``.

    Args:
        name: one of :data:`OPTIMIZERS` (case-insensitive).
        params: model parameters or parameter groups, as for any torch optimizer.
        lr: the initial learning rate, >= 0 (the runner sets it again before every update).
        **kwargs: the optimizer's own arguments (``momentum``, ``weight_decay``, ``betas``, ...);
            they override the defaults in the table above.

    Example:
        >>> import torch
        >>> opt = make_optimizer("nesterov", [torch.zeros(2, requires_grad=True)], lr=0.1)
        >>> opt.param_groups[0]["momentum"], opt.param_groups[0]["nesterov"]
        (0.9, True)
    """
    key = _canonical(name)
    cls, defaults = _CLASSES[key]
    if not (isinstance(lr, (int, float)) and lr >= 0):
        raise LRKitError(f"`lr >= 0` must hold, but got {format_values(lr=lr)}.")
    allowed = accepted_kwargs(key)
    unknown = [k for k in kwargs if k not in allowed]
    if unknown:
        close = difflib.get_close_matches(unknown[0], allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise LRKitError(f"optimizer {key!r} has no argument {unknown[0]!r} (it takes {', '.join(allowed)}){hint}")
    options = {**defaults, **kwargs}
    try:
        return cls(params, lr=float(lr), **options)
    except (ValueError, TypeError) as err:  # torch's own range checks, e.g. "Invalid momentum value"
        raise LRKitError(f"optimizer {key!r} rejected its arguments {format_values(**options)}: {err}") from None
