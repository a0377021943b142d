"""Optimizers with a train/eval protocol (schedule-free): the duck-typed check and the switch.

Schedule-free optimizers (``schedulefree.AdamWScheduleFree``, ...) keep two sets of weights and
require ``optimizer.train()`` before updates and ``optimizer.eval()`` before evaluating or saving the
model; a step in eval mode raises. lrkit's range test and trial runner call :func:`set_mode` around
their updates and evaluations; for any other optimizer it does nothing.
"""

from __future__ import annotations

from typing import Any


def has_train_eval(optimizer: Any) -> bool:
    """Whether the optimizer has schedule-free's ``train()``/``eval()`` protocol."""
    return callable(getattr(optimizer, "train", None)) and callable(getattr(optimizer, "eval", None))


def set_mode(optimizer: Any, training: bool) -> None:
    """``optimizer.train()`` or ``.eval()`` for an optimizer with that protocol; nothing otherwise."""
    if has_train_eval(optimizer):
        (optimizer.train if training else optimizer.eval)()


__all__ = ["has_train_eval", "set_mode"]
