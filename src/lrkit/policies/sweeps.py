"""Sweeps: the LR rising from a low to a high value over a fixed number of updates (the range test).

The linear sweep is ``linear(start_lr, end_lr, total_steps)`` in :mod:`lrkit.policies.curves`;
the exponential one lives here. Both are ordinary policies: they print, plot, parse and pickle.
"""

from __future__ import annotations

import sys

import numpy as np

from lrkit.policies.base import Policy, register

_SMALLEST_NORMAL, _LARGEST = sys.float_info.min, sys.float_info.max


@register
class ExpSweep(Policy):
    """Exponential (geometric) sweep from ``start_lr`` to ``end_lr`` over ``total_steps`` updates.

    ``lr(t) = start_lr * (end_lr / start_lr) ** (min(t, total_steps) / total_steps)``

    Equal steps in ``t`` are equal factors in LR, so every decade gets the same number of
    updates; past ``total_steps`` the LR stays at ``end_lr``. A range test of ``n`` recorded
    points uses ``total_steps = n - 1``, so its last point is exactly ``end_lr``.

    Args:
        start_lr: the LR at ``t = 0``, > 0.
        end_lr: the LR at ``t = total_steps``, > 0 (above ``start_lr`` for a range test); the ratio
            ``end_lr / start_lr`` must lie in float64's normal range, 2.2e-308 to 1.8e308.
        total_steps: the sweep's length in updates, > 0.

    Example:
        >>> p = ExpSweep(start_lr=1e-4, end_lr=1.0, total_steps=4)
        >>> p(0), round(p(2), 12), p(4), p(10)
        (0.0001, 0.01, 1.0, 1.0)
    """

    name = "exp_sweep"
    formula = "start_lr * (end_lr/start_lr) ** (min(t, total_steps)/total_steps)"

    start_lr: float
    end_lr: float
    total_steps: int

    def validate(self) -> None:
        self._require(self.start_lr > 0, "start_lr > 0", "start_lr")
        self._require(self.end_lr > 0, "end_lr > 0", "end_lr")
        self._require(self.total_steps > 0, "total_steps > 0", "total_steps")
        # the formula's factor: past float64's range it is inf (LRs of inf) or 0 (LRs of 0 mid-sweep)
        ratio = self.end_lr / self.start_lr
        self._require(_SMALLEST_NORMAL <= ratio <= _LARGEST, "2.2e-308 <= end_lr / start_lr <= 1.8e308",
                      "start_lr", "end_lr")

    def lr_bound(self) -> float:
        return float(max(self.start_lr, self.end_lr))

    def _lr(self, t: np.ndarray) -> np.ndarray:
        fraction = np.minimum(t, self.total_steps) / self.total_steps
        out = self.start_lr * (self.end_lr / self.start_lr) ** fraction
        # pin the ends: pow's last-bit rounding must not move end_lr off the value the user typed
        return np.where(fraction >= 1.0, self.end_lr, out)
