"""LRBench's LR functions (Wu & Liu, ACM TIST 2022), with LRBench's names and parameters.

``k0``, ``k1``: LR bounds; ``gamma``: decay factor; ``p``: power; ``l``: step or half-cycle
length (a list of boundaries for NSTEP). Formulas: ../shared/methods.md §1.1. Every function
is stateless: any ``t``, in any order.
"""

from __future__ import annotations

import numpy as np

from lrkit.policies.base import Policy, register


@register
class FIX(Policy):
    """Fixed LR: ``lr(t) = k0``.

    Args:
        k0: the learning rate, >= 0.

    Example:
        >>> FIX(k0=0.01)(0), FIX(k0=0.01)(10**9)
        (0.01, 0.01)
    """

    name = "FIX"
    formula = "k0"

    k0: float

    def validate(self) -> None:
        self._require(self.k0 >= 0, "k0 >= 0", "k0")

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return np.full(np.shape(t), self.k0)


@register
class TRI(Policy):
    """CLR's triangle between ``k0`` and ``k1`` with half-cycle ``l``.

    ``lr(t) = (k1 - k0) * (2/pi) * |asin(sin(pi t / (2 l)))| + k0``

    Args:
        k0: the lower bound, >= 0.
        k1: the upper bound, >= k0.
        l: the half-cycle in updates, > 0.

    Example:
        >>> p = TRI(k0=0.001, k1=0.006, l=2000)
        >>> p(0), p(2000), round(p(3000), 6)
        (0.001, 0.006, 0.0035)
    """

    name = "TRI"
    formula = "(k1-k0) * (2/pi)|asin(sin(pi t/(2l)))| + k0"

    k0: float
    k1: float
    l: float

    def validate(self) -> None:
        self._require(self.k0 >= 0, "k0 >= 0", "k0")
        self._require(self.k1 >= self.k0, "k1 >= k0", "k0", "k1")
        self._require(self.l > 0, "l > 0", "l")

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return (self.k1 - self.k0) * (2 / np.pi) * np.abs(np.arcsin(np.sin(np.pi * t / (2 * self.l)))) + self.k0
