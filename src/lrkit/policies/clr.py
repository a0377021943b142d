"""CLR's three cyclical policies in the paper's parametrisation (Smith, "Cyclical Learning Rates for Training
Neural Networks", WACV 2017; docs/policies.md, "CLR").

::

    cycle = floor(1 + t / (2 step_size))
    x     = |t / step_size - 2 cycle + 1|
    lr(t) = base_lr + (max_lr - base_lr) * max(0, 1 - x) * scale
    scale = 1 | 1 / 2**(cycle - 1) | gamma**t     (triangular | triangular2 | exp_range)

``max(0, 1 - x)`` is LRBench's triangle wave with half-cycle ``step_size`` and
``cycle - 1 = floor(t / (2 step_size))``, so these are LRBench's TRI, TRI2 and TRIEXP renamed:
they share :func:`lrkit.policies.cyclic.wave` and give identical values. They equal
PyTorch's ``CyclicLR(base_lr, max_lr, step_size_up=step_size, mode=..., gamma=...,
cycle_momentum=False)``, whose ``exp_range`` scales the amplitude by ``gamma**t`` with ``t`` the
update count (``scale_mode='iterations'``). Nothing here touches momentum.
"""

from __future__ import annotations

import numpy as np

from lrkit.policies.base import Policy, register
from lrkit.policies.checks import require_wave
from lrkit.policies.cyclic import TRI, TRI2, TRIEXP, cycles, triangle, wave


class _CLR(Policy):
    def validate(self) -> None:
        require_wave(self, "base_lr", "max_lr", "step_size")  # LRBench's TRI rules, in CLR's names

    def lr_bound(self) -> float:
        return float(self.max_lr)


@register
class Triangular(_CLR):
    """CLR's ``triangular``: a triangle between ``base_lr`` and ``max_lr``, ``2 step_size`` per cycle.

    ``lr(t) = base_lr + (max_lr - base_lr) * max(0, 1 - |t/step_size - 2 cycle + 1|)``, the same
    as ``TRI(k0=base_lr, k1=max_lr, l=step_size)``.

    Args:
        base_lr: the lower bound, >= 0.
        max_lr: the upper bound, >= base_lr.
        step_size: half a cycle in updates, >= 1e-6 (the paper suggests 2-10 epochs of updates).

    Example:
        >>> p = Triangular(base_lr=0.001, max_lr=0.006, step_size=2000)
        >>> p(0), p(2000), p(4000)
        (0.001, 0.006, 0.001)
    """

    name = "triangular"
    formula = "base_lr + (max_lr-base_lr) * max(0, 1-x)"

    base_lr: float
    max_lr: float
    step_size: float

    def as_lrbench(self) -> Policy:
        """The equal LRBench policy, ``TRI(k0=base_lr, k1=max_lr, l=step_size)``."""
        return TRI(k0=self.base_lr, k1=self.max_lr, l=self.step_size)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return wave(t, self.base_lr, self.max_lr, self.step_size, triangle)


@register
class Triangular2(_CLR):
    """CLR's ``triangular2``: the triangle with its amplitude halved every cycle.

    ``lr(t) = base_lr + (max_lr - base_lr) * max(0, 1 - x) / 2**(cycle - 1)``, the same as
    ``TRI2(k0=base_lr, k1=max_lr, l=step_size)``.

    Args:
        base_lr: the lower bound, >= 0.
        max_lr: the first cycle's peak, >= base_lr.
        step_size: half a cycle in updates, >= 1e-6.

    Example:
        >>> p = Triangular2(base_lr=0.0, max_lr=0.4, step_size=10)
        >>> p(10), p(30), p(50)
        (0.4, 0.2, 0.1)
    """

    name = "triangular2"
    formula = "base_lr + (max_lr-base_lr) * max(0, 1-x) / 2^(cycle-1)"

    base_lr: float
    max_lr: float
    step_size: float

    def as_lrbench(self) -> Policy:
        """The equal LRBench policy, ``TRI2(k0=base_lr, k1=max_lr, l=step_size)``."""
        return TRI2(k0=self.base_lr, k1=self.max_lr, l=self.step_size)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return wave(t, self.base_lr, self.max_lr, self.step_size, triangle, halvings=cycles)


@register
class ExpRange(_CLR):
    """CLR's ``exp_range``: the triangle with its amplitude scaled by ``gamma**t``.

    ``lr(t) = base_lr + (max_lr - base_lr) * max(0, 1 - x) * gamma**t`` (``t`` in updates, as in
    PyTorch's ``CyclicLR``), the same as ``TRIEXP(k0=base_lr, k1=max_lr, gamma, l=step_size)``.

    Args:
        base_lr: the lower bound, >= 0.
        max_lr: the peak before scaling, >= base_lr.
        step_size: half a cycle in updates, >= 1e-6.
        gamma: the amplitude's factor per update, ``0 < gamma <= 1`` (typically 0.99994-0.99999).

    Example:
        >>> p = ExpRange(base_lr=0.0, max_lr=1.0, step_size=1, gamma=0.5)
        >>> p(1), p(3)
        (0.5, 0.125)
    """

    name = "exp_range"
    formula = "base_lr + (max_lr-base_lr) * max(0, 1-x) * gamma^t"

    base_lr: float
    max_lr: float
    step_size: float
    gamma: float

    def as_lrbench(self) -> Policy:
        """The equal LRBench policy, ``TRIEXP(k0=base_lr, k1=max_lr, gamma=gamma, l=step_size)``."""
        return TRIEXP(k0=self.base_lr, k1=self.max_lr, gamma=self.gamma, l=self.step_size)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return wave(t, self.base_lr, self.max_lr, self.step_size, triangle, gamma=self.gamma)
