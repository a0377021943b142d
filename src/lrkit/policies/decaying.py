"""LRBench's decaying LR functions (Wu & Liu, ACM TIST 2022), with LRBench's names and parameters.

``k0``, ``k1``: LR bounds; ``gamma``: decay factor; ``p``: power; ``l``: step length (a list of
boundaries for NSTEP). Formulas: docs/policies.md, "LRBench's 34 functions". Every function is
stateless: any ``t``, in any order (LRBench's NSTEP kept its position in shared mutable state; this
one counts boundaries).
The cyclic families live in :mod:`lrkit.policies.cyclic`, the restart (sawtooth) family in
:mod:`lrkit.policies.restarts`.

All decay factors are limited to ``0 < gamma <= 1``: a factor above 1 would grow without bound
and overflow for a long run, and 0 would stop learning after the first decay. ``gamma**t``
underflowing to 0 for huge ``t`` is the intended limit, so underflow is silenced.
"""

from __future__ import annotations

import numpy as np

from lrkit.policies.base import Policy, register
from lrkit.policies.checks import require_bounds, require_decay_factor, require_length

# lrkit.policies.lrbench, this module's path in 0.1, gave all 34 functions and imports as this module for one
# release (lrkit/_moved.py), so old imports and pickles naming lrkit.policies.lrbench.TRI load: the other 27
# stay importable from here until that path goes
from lrkit.policies.cyclic import (  # noqa: F401
    COS, COS2, COSEXP, DSIN, DSIN2, DSINEXP, DTRI, DTRI2, DTRIEXP, SIN, SIN2, SINEXP, TRI, TRI2, TRIEXP, UPCOS,
    UPCOS2, UPCOSEXP, decay)
from lrkit.policies.restarts import (  # noqa: F401
    COSRSW, COSRSW2, COSRSWEXP, RSW, RSW2, RSWEXP, SINRSW, SINRSW2, SINRSWEXP)


def logistic(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))`` without overflow: ``exp`` only ever sees ``-|z|``."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


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

    def lr_bound(self) -> float:
        return float(self.k0)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return np.full(np.shape(t), self.k0)


@register
class STEP(Policy):
    """Step decay: ``lr(t) = k0 * gamma**floor(t / l)`` (PyTorch's ``StepLR(step_size=l, gamma)``).

    Args:
        k0: the LR before the first decay, >= 0.
        gamma: the factor applied every ``l`` updates, ``0 < gamma <= 1``.
        l: the step length in updates, >= 1e-6.

    Example:
        >>> p = STEP(k0=0.1, gamma=0.5, l=100)
        >>> p(0), p(99), p(100), p(250)
        (0.1, 0.1, 0.05, 0.025)
    """

    name = "STEP"
    formula = "k0 * gamma^floor(t/l)"

    k0: float
    gamma: float
    l: float

    def validate(self) -> None:
        require_decay_factor(self)
        require_length(self, "l")

    def lr_bound(self) -> float:
        return float(self.k0)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return self.k0 * decay(self.gamma, np.floor(t / self.l))


@register
class NSTEP(Policy):
    """Decay at listed boundaries: ``lr(t) = k0 * gamma**i``, ``i = #{b in l : b <= t}``.

    PyTorch's ``MultiStepLR(milestones=l, gamma)``. Stateless: the count of boundaries passed
    is recomputed for every ``t``, so steps may come in any order.

    Args:
        k0: the LR before the first boundary, >= 0.
        gamma: the factor applied at each boundary, ``0 < gamma <= 1``.
        l: the boundaries in updates, at least one, each > 0, non-decreasing; a boundary listed
            twice decays twice there (as a repeated milestone does in MultiStepLR).

    Example:
        >>> p = NSTEP(k0=1.0, gamma=0.5, l=[100, 150])
        >>> p(99), p(100), p(150), p(10**9)
        (1.0, 0.5, 0.25, 0.25)
    """

    name = "NSTEP"
    formula = "k0 * gamma^(number of boundaries in l that are <= t)"

    k0: float
    gamma: float
    l: tuple[float, ...]

    def validate(self) -> None:
        require_decay_factor(self)
        self._require(len(self.l) >= 1, "len(l) >= 1", "l")
        self._require(all(b > 0 for b in self.l), "every boundary in l > 0", "l")
        self._require(all(a <= b for a, b in zip(self.l, self.l[1:])), "l non-decreasing", "l")

    def lr_bound(self) -> float:
        return float(self.k0)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        passed = np.searchsorted(np.asarray(self.l), t, side="right")
        return self.k0 * decay(self.gamma, passed)


@register
class EXP(Policy):
    """Exponential decay: ``lr(t) = k0 * gamma**t`` (PyTorch's ``ExponentialLR(gamma)``).

    Args:
        k0: the LR at ``t = 0``, >= 0.
        gamma: the factor per update, ``0 < gamma <= 1``.

    Example:
        >>> p = EXP(k0=0.1, gamma=0.5)
        >>> p(0), p(2), p(10**9)
        (0.1, 0.025, 0.0)
    """

    name = "EXP"
    formula = "k0 * gamma^t"

    k0: float
    gamma: float

    def validate(self) -> None:
        require_decay_factor(self)

    def lr_bound(self) -> float:
        return float(self.k0)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return self.k0 * decay(self.gamma, t)


@register
class INV(Policy):
    """Inverse decay (Caffe's ``inv``): ``lr(t) = k0 * (1 + gamma * t)**(-p)``.

    Args:
        k0: the LR at ``t = 0``, >= 0.
        gamma: the rate per update, >= 0 (0 keeps ``k0``; a negative rate would reach a pole).
        p: the power, >= 0 (a negative power would make the LR grow).

    Example:
        >>> p = INV(k0=0.1, gamma=0.01, p=1)
        >>> p(0), p(100)
        (0.1, 0.05)
    """

    name = "INV"
    formula = "k0 * (1 + gamma*t)^(-p)"

    k0: float
    gamma: float
    p: float

    def validate(self) -> None:
        self._require(self.k0 >= 0, "k0 >= 0", "k0")
        self._require(self.gamma >= 0, "gamma >= 0", "gamma")
        self._require(self.p >= 0, "p >= 0", "p")

    def lr_bound(self) -> float:
        return float(self.k0)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        with np.errstate(under="ignore", over="ignore"):  # 1 + gamma t = inf gives the right limit, 0
            return self.k0 * np.power(1.0 + self.gamma * t, -self.p)


@register
class POLY(Policy):
    """Polynomial decay from ``k1`` at ``t = 0`` to ``k0`` at ``t = l``, then held at ``k0``.

    ``lr(t) = (k1 - k0) * (1 - min(t, l) / l)**p + k0`` (LRBench's form). With ``k0 = 0`` it is
    PyTorch's ``PolynomialLR(total_iters=l, power=p)`` on a base LR of ``k1``.

    Args:
        k0: the final LR, >= 0.
        k1: the initial LR, >= k0.
        p: the power, > 0 (1 is linear; 0 would never decay).
        l: the decay length in updates, >= 1e-6.

    Example:
        >>> p = POLY(k0=0.0, k1=0.1, p=2, l=100)
        >>> p(0), p(50), p(100), p(10**9)
        (0.1, 0.025, 0.0, 0.0)
    """

    name = "POLY"
    formula = "(k1-k0) * (1 - min(t,l)/l)^p + k0"

    k0: float
    k1: float
    p: float
    l: float

    def validate(self) -> None:
        require_bounds(self, "k0", "k1")
        self._require(self.p > 0, "p > 0", "p")
        require_length(self, "l")

    def lr_bound(self) -> float:
        return float(self.k1)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        remaining = 1.0 - np.minimum(t, self.l) / self.l
        with np.errstate(under="ignore"):
            return (self.k1 - self.k0) * np.power(remaining, self.p) + self.k0


@register
class SIG(Policy):
    """Sigmoid: ``lr(t) = k0 / (1 + exp(-gamma * (t - l)))``, computed as a stable logistic.

    Args:
        k0: the LR scale, >= 0.
        gamma: the slope per update, any finite number: negative decays from about ``k0`` to 0
            (LRBench's use), positive rises from about 0 to ``k0`` (a sigmoid warm-up).
        l: the step at which the LR is ``k0 / 2``, >= 0.

    Example:
        >>> p = SIG(k0=0.1, gamma=-0.05, l=200)
        >>> p(200), round(p(0), 6), p(10**9)
        (0.05, 0.099995, 0.0)
    """

    name = "SIG"
    formula = "k0 / (1 + exp(-gamma*(t-l)))"

    k0: float
    gamma: float
    l: float

    def validate(self) -> None:
        self._require(self.k0 >= 0, "k0 >= 0", "k0")
        self._require(self.l >= 0, "l >= 0", "l")

    def lr_bound(self) -> float:
        return float(self.k0)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        with np.errstate(under="ignore", over="ignore"):  # logistic(+-inf) is exactly 1 or 0
            return self.k0 * logistic(self.gamma * (t - self.l))
