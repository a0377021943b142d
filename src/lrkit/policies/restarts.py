"""LRBench's restart (sawtooth) family: RSW, SINRSW, COSRSW and their ``2`` / ``EXP`` variants.

With ``s(t) = -t/l - floor(-t/l) = ceil(t/l) - t/l`` (LRBench's, as in docs/policies.md), each period of ``l``
updates falls from (just under) ``k1`` to ``k0``: ``s`` is 0 at every multiple of ``l`` and jumps
back towards 1 one update later. So ``lr(0) = k0`` and ``lr(1) = k0 + (k1 - k0)(1 - 1/l)`` (for
RSW), exactly as in LRBench. ``2`` divides the amplitude by ``2**floor(t / l)``; ``EXP``
multiplies it by ``gamma**t``. Same fields and rules as the cyclic families.
"""

from __future__ import annotations

import numpy as np

from lrkit.policies.base import register
from lrkit.policies.cyclic import CyclicExpPolicy, CyclicPolicy


def sawtooth(u: np.ndarray) -> np.ndarray:
    """``s = ceil(u) - u`` with ``u = t / l``: 0 at multiples of ``l``, falling from 1 to 0 in between."""
    return np.ceil(u) - u


def sine_sawtooth(u: np.ndarray) -> np.ndarray:
    """``sin(pi/2 * s)``."""
    return np.sin(np.pi / 2 * sawtooth(u))


def cosine_sawtooth(u: np.ndarray) -> np.ndarray:
    """``(1 - cos(pi * s)) / 2``."""
    return 0.5 * (1 - np.cos(np.pi * sawtooth(u)))


def periods(u: np.ndarray) -> np.ndarray:
    """``floor(t / l)``: restarts so far, for the ``2`` variants."""
    return np.floor(u)


@register
class RSW(CyclicPolicy):
    """Linear sawtooth: ``lr(t) = (k1 - k0) * s(t) + k0``, ``s(t) = ceil(t/l) - t/l``.

    Args:
        k0: the lower bound, >= 0.
        k1: the upper bound, >= k0.
        l: the restart period in updates, > 0.

    Example:
        >>> p = RSW(k0=0.0, k1=1.0, l=4)
        >>> p(0), p(1), p(3), p(4), p(5)
        (0.0, 0.75, 0.25, 0.0, 0.75)
    """

    name = "RSW"
    formula = "(k1-k0) * s(t) + k0, s(t) = ceil(t/l) - t/l"
    _shape = staticmethod(sawtooth)


@register
class RSW2(CyclicPolicy):
    """RSW halving at every restart: ``lr(t) = (k1 - k0) * s(t) / 2**floor(t / l) + k0``.

    Example:
        >>> p = RSW2(k0=0.0, k1=1.0, l=4)
        >>> p(1), p(5), p(9)
        (0.75, 0.375, 0.1875)
    """

    name = "RSW2"
    formula = "(k1-k0) * s(t) / 2^floor(t/l) + k0"
    _shape, _halvings = staticmethod(sawtooth), staticmethod(periods)


@register
class RSWEXP(CyclicExpPolicy):
    """RSW shrinking every update: ``lr(t) = (k1 - k0) * s(t) * gamma**t + k0``.

    Example:
        >>> p = RSWEXP(k0=0.0, k1=1.0, gamma=0.5, l=4)
        >>> p(1), p(2)
        (0.375, 0.125)
    """

    name = "RSWEXP"
    formula = "(k1-k0) * s(t) * gamma^t + k0"
    _shape = staticmethod(sawtooth)


@register
class SINRSW(CyclicPolicy):
    """Sine sawtooth: ``lr(t) = (k1 - k0) * sin(pi/2 * s(t)) + k0``.

    Example:
        >>> p = SINRSW(k0=0.0, k1=1.0, l=2)
        >>> p(0), round(p(1), 12)
        (0.0, 0.707106781187)
    """

    name = "SINRSW"
    formula = "(k1-k0) * sin(pi/2 s(t)) + k0"
    _shape = staticmethod(sine_sawtooth)


@register
class SINRSW2(CyclicPolicy):
    """SINRSW halving at every restart: ``/ 2**floor(t / l)`` on its amplitude.

    Example:
        >>> p = SINRSW2(k0=0.0, k1=1.0, l=2)
        >>> round(p(1), 12), round(p(3), 12)
        (0.707106781187, 0.353553390593)
    """

    name = "SINRSW2"
    formula = "(k1-k0) * sin(pi/2 s(t)) / 2^floor(t/l) + k0"
    _shape, _halvings = staticmethod(sine_sawtooth), staticmethod(periods)


@register
class SINRSWEXP(CyclicExpPolicy):
    """SINRSW shrinking every update: ``* gamma**t`` on its amplitude.

    Example:
        >>> p = SINRSWEXP(k0=0.0, k1=1.0, gamma=0.5, l=2)
        >>> round(p(1), 12)
        0.353553390593
    """

    name = "SINRSWEXP"
    formula = "(k1-k0) * sin(pi/2 s(t)) * gamma^t + k0"
    _shape = staticmethod(sine_sawtooth)


@register
class COSRSW(CyclicPolicy):
    """Cosine sawtooth: ``lr(t) = (k1 - k0) * (1 - cos(pi * s(t))) / 2 + k0``.

    Example:
        >>> p = COSRSW(k0=0.0, k1=1.0, l=2)
        >>> p(0), round(p(1), 12)
        (0.0, 0.5)
    """

    name = "COSRSW"
    formula = "(k1-k0) * (1 - cos(pi s(t)))/2 + k0"
    _shape = staticmethod(cosine_sawtooth)


@register
class COSRSW2(CyclicPolicy):
    """COSRSW halving at every restart: ``/ 2**floor(t / l)`` on its amplitude.

    Example:
        >>> p = COSRSW2(k0=0.0, k1=1.0, l=2)
        >>> round(p(3), 12)
        0.25
    """

    name = "COSRSW2"
    formula = "(k1-k0) * (1 - cos(pi s(t)))/2 / 2^floor(t/l) + k0"
    _shape, _halvings = staticmethod(cosine_sawtooth), staticmethod(periods)


@register
class COSRSWEXP(CyclicExpPolicy):
    """COSRSW shrinking every update: ``* gamma**t`` on its amplitude.

    Example:
        >>> p = COSRSWEXP(k0=0.0, k1=1.0, gamma=0.5, l=2)
        >>> round(p(1), 12)
        0.25
    """

    name = "COSRSWEXP"
    formula = "(k1-k0) * (1 - cos(pi s(t)))/2 * gamma^t + k0"
    _shape = staticmethod(cosine_sawtooth)
