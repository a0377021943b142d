"""The range test's sweep: an ordinary lrkit policy, so it plots, prints and parses like any other.

``mode="exp"``: ``exp_sweep(start_lr, end_lr, total_steps=steps - 1)``;
``mode="linear"``: ``linear(start_lr, end_lr, total_steps=steps - 1)``. With ``steps - 1`` the
``steps`` recorded points run from exactly ``start_lr`` (point 0) to exactly ``end_lr`` (the last
point), as torch-lr-finder's sweeps do.
"""

from __future__ import annotations

from lrkit.errors import LRKitError, format_values
from lrkit.policies.base import Policy, lookup

MODES = {"exp": "exp_sweep", "linear": "linear"}


def make_sweep(mode: str, start_lr: float, end_lr: float, steps: int) -> Policy:
    """The sweep policy for ``steps`` points from ``start_lr`` to ``end_lr``.

    Example:
        >>> make_sweep("exp", 1e-6, 1.0, 7)
        exp_sweep(start_lr=1e-06, end_lr=1, total_steps=6)
    """
    if mode not in MODES:
        raise LRKitError(f"`mode` must be one of 'exp', 'linear', but got {format_values(mode=mode)}.")
    cls = lookup(MODES[mode])
    if cls is None:  # pragma: no cover - the linear curve ships with lrkit.policies.curves
        raise LRKitError(f"the {MODES[mode]!r} policy is not registered in this lrkit build")
    return cls(start_lr=start_lr, end_lr=end_lr, total_steps=steps - 1)
