"""LRBench's cyclic families: TRI, SIN, COS, UPCOS and the peak-first DTRI, DSIN (Wu & Liu, ACM TIST 2022;
their formulas are tabled in docs/policies.md, "LRBench's 34 functions").

Every member is one formula, ``lr(t) = (k1 - k0) * shape(t / l) * amplitude(t) + k0``: one shape
per family (a wave of period ``2 l`` between 0 and 1) and one amplitude modifier per suffix:
none (1), ``2`` (``1 / 2**n``, ``n`` the cycles completed, counted from the peak for COS2,
DTRI2, DSIN2) or ``EXP`` (``gamma**t``). The D-variants evaluate the shape and ``n`` at
``t + l``, so they start at the peak; as in LRBench, their ``EXP`` factor stays ``gamma**t``.
TRI, TRI2 and TRIEXP are CLR's triangular, triangular2 and exp_range (PyTorch's indexing).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar

import numpy as np

from lrkit.policies.base import Policy, register
from lrkit.policies.checks import require_wave

Shape = Callable[[np.ndarray], np.ndarray]


def decay(gamma: float, exponent: np.ndarray) -> np.ndarray:
    """``gamma ** exponent`` for ``0 < gamma <= 1``; underflow to 0 at huge exponents is silent."""
    with np.errstate(under="ignore"):
        return np.power(gamma, exponent)


# ---- shapes: u = t / l counts half-cycles; each has period 2 in u and values in [0, 1] ----------
def triangle(u: np.ndarray) -> np.ndarray:
    """``(2/pi) |asin(sin(pi u / 2))|``, computed piecewise-linearly so it is exact at the corners."""
    phase = u / 2 - np.floor(u / 2)
    return np.where(phase <= 0.5, 2 * phase, 2 - 2 * phase)


def sine(u: np.ndarray) -> np.ndarray:
    """``|sin(pi u / 2)|``."""
    return np.abs(np.sin(np.pi / 2 * u))


def cosine(u: np.ndarray) -> np.ndarray:
    """``(1 + cos(pi u)) / 2``: 1 at ``u = 0``."""
    return 0.5 * (1 + np.cos(np.pi * u))


def upcosine(u: np.ndarray) -> np.ndarray:
    """``(1 + cos(pi (u + 1))) / 2``: 0 at ``u = 0``."""
    return 0.5 * (1 + np.cos(np.pi * (u + 1)))


def peak_triangle(u: np.ndarray) -> np.ndarray:
    return triangle(u + 1)  # DTRI's shape: TRI from the peak


def peak_sine(u: np.ndarray) -> np.ndarray:
    return sine(u + 1)  # DSIN's shape


def cycles(u: np.ndarray) -> np.ndarray:
    """``floor(t / (2 l))``: full cycles completed."""
    return np.floor(u / 2)


def peak_cycles(u: np.ndarray) -> np.ndarray:
    """``floor((t + l) / (2 l))``: cycles counted from the peak (COS2, DTRI2, DSIN2)."""
    return np.floor((u + 1) / 2)


def wave(t: np.ndarray, low: float, high: float, half: float, shape: Shape,
         halvings: Shape | None = None, gamma: float | None = None) -> np.ndarray:
    """``(high - low) * shape(t / half) * amplitude(t) + low``: the one formula of every wave family.

    ``amplitude`` is ``2**-halvings(t / half)``, ``gamma**t``, or 1 when neither is given.
    """
    u = t / half
    height = (high - low) * shape(u)
    if halvings is not None:
        with np.errstate(under="ignore"):
            height = height * np.exp2(-halvings(u))
    if gamma is not None:
        height = height * decay(gamma, t)
    return height + low


class _Wave(Policy):
    """A wave family member: subclasses set ``_shape`` and, for the ``2`` variants, ``_halvings``."""

    _shape: ClassVar[Shape]
    _halvings: ClassVar[Shape | None] = None
    _ARGS: ClassVar[dict[str, str]] = dict(
        k0="the lower bound, >= 0.", k1="the upper bound, >= k0.",
        gamma="the amplitude's factor per update, 0 < gamma <= 1 (above 1 it would grow without bound).",
        l="the half-cycle (the period, for the sawtooth family) in updates, >= 1e-6 (shorter overflows t/l).")

    def __init_subclass__(cls, **kwargs: object) -> None:
        # the 30 family members share their parameters; write the Args block once, for `lrkit policies NAME`
        super().__init_subclass__(**kwargs)
        doc, fields = cls.__doc__ or "", getattr(cls, "__dataclass_fields__", {})
        if "name" in cls.__dict__ and "Args:" not in doc and "    Example:" in doc:
            args = "".join(f"        {n}: {cls._ARGS[n]}\n" for n in fields)
            cls.__doc__ = doc.replace("    Example:", f"    Args:\n{args}\n    Example:", 1)

    def validate(self) -> None:
        require_wave(self, "k0", "k1", "l")

    def lr_bound(self) -> float:
        return float(self.k1)  # every shape and amplitude is at most 1

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return wave(t, self.k0, self.k1, self.l, type(self)._shape, type(self)._halvings, getattr(self, "gamma", None))


@dataclasses.dataclass(frozen=True, repr=False)
class CyclicPolicy(_Wave):
    """Base of the wave policies without a decay factor: fields ``k0``, ``k1``, ``l``."""

    k0: float
    k1: float
    l: float


@dataclasses.dataclass(frozen=True, repr=False)
class CyclicExpPolicy(_Wave):
    """Base of the ``EXP`` wave policies: fields ``k0``, ``k1``, ``gamma``, ``l`` (LRBench's order)."""

    k0: float
    k1: float
    gamma: float
    l: float


@register
class TRI(CyclicPolicy):
    """CLR's triangle between ``k0`` and ``k1`` with half-cycle ``l`` (= ``triangular``, step_size ``l``).

    ``lr(t) = (k1 - k0) * (2/pi) * |asin(sin(pi t / (2 l)))| + k0``

    Example:
        >>> p = TRI(k0=0.001, k1=0.006, l=2000)
        >>> p(0), p(2000), round(p(3000), 6)
        (0.001, 0.006, 0.0035)
    """

    name = "TRI"
    formula = "(k1-k0) * (2/pi)|asin(sin(pi t/(2l)))| + k0"
    _shape = staticmethod(triangle)


@register
class TRI2(CyclicPolicy):
    """TRI whose amplitude halves every cycle (= CLR's ``triangular2``, step_size ``l``).

    ``lr(t) = (k1 - k0) * TRI(t) / 2**floor(t / (2 l)) + k0``

    Example:
        >>> TRI2(k0=0.0, k1=0.4, l=10).values([10, 30, 50]).tolist()
        [0.4, 0.2, 0.1]
    """

    name = "TRI2"
    formula = "(k1-k0) * TRI(t) / 2^floor(t/(2l)) + k0"
    _shape, _halvings = staticmethod(triangle), staticmethod(cycles)


@register
class TRIEXP(CyclicExpPolicy):
    """TRI whose amplitude shrinks by ``gamma`` every update (= PyTorch's ``exp_range``).

    ``lr(t) = (k1 - k0) * TRI(t) * gamma**t + k0``

    Example:
        >>> TRIEXP(k0=0.0, k1=1.0, gamma=0.5, l=1).values([0, 1, 3]).tolist()
        [0.0, 0.5, 0.125]
    """

    name = "TRIEXP"
    formula = "(k1-k0) * TRI(t) * gamma^t + k0"
    _shape = staticmethod(triangle)


@register
class DTRI(CyclicPolicy):
    """TRI started at the peak: ``lr(t) = (k1 - k0) * TRI(t + l) + k0``.

    Example:
        >>> DTRI(k0=0.001, k1=0.006, l=2000).values([0, 2000, 4000]).tolist()
        [0.006, 0.001, 0.006]
    """

    name = "DTRI"
    formula = "(k1-k0) * TRI(t+l) + k0"
    _shape = staticmethod(peak_triangle)


@register
class DTRI2(CyclicPolicy):
    """DTRI halving every cycle: ``lr(t) = (k1 - k0) * TRI(t + l) / 2**floor((t + l) / (2 l)) + k0``.

    Example:
        >>> DTRI2(k0=0.0, k1=0.4, l=10).values([0, 20, 40]).tolist()
        [0.4, 0.2, 0.1]
    """

    name = "DTRI2"
    formula = "(k1-k0) * TRI(t+l) / 2^floor((t+l)/(2l)) + k0"
    _shape, _halvings = staticmethod(peak_triangle), staticmethod(peak_cycles)


@register
class DTRIEXP(CyclicExpPolicy):
    """DTRI shrinking every update: ``lr(t) = (k1 - k0) * TRI(t + l) * gamma**t + k0``.

    Example:
        >>> DTRIEXP(k0=0.0, k1=1.0, gamma=0.5, l=1).values([0, 2]).tolist()
        [1.0, 0.25]
    """

    name = "DTRIEXP"
    formula = "(k1-k0) * TRI(t+l) * gamma^t + k0"
    _shape = staticmethod(peak_triangle)


@register
class SIN(CyclicPolicy):
    """Sine wave between ``k0`` and ``k1``: ``lr(t) = (k1 - k0) * |sin(pi t / (2 l))| + k0``.

    Example:
        >>> SIN(k0=0.001, k1=0.006, l=2000).values([0, 2000]).tolist()
        [0.001, 0.006]
    """

    name = "SIN"
    formula = "(k1-k0) * |sin(pi t/(2l))| + k0"
    _shape = staticmethod(sine)


@register
class SIN2(CyclicPolicy):
    """SIN halving every cycle: ``lr(t) = (k1 - k0) * SIN(t) / 2**floor(t / (2 l)) + k0``.

    Example:
        >>> SIN2(k0=0.0, k1=0.4, l=10).values([10, 30]).tolist()
        [0.4, 0.2]
    """

    name = "SIN2"
    formula = "(k1-k0) * |sin(pi t/(2l))| / 2^floor(t/(2l)) + k0"
    _shape, _halvings = staticmethod(sine), staticmethod(cycles)


@register
class SINEXP(CyclicExpPolicy):
    """SIN shrinking every update: ``lr(t) = (k1 - k0) * SIN(t) * gamma**t + k0``.

    Example:
        >>> SINEXP(k0=0.0, k1=1.0, gamma=0.5, l=1).values([1, 3]).tolist()
        [0.5, 0.125]
    """

    name = "SINEXP"
    formula = "(k1-k0) * |sin(pi t/(2l))| * gamma^t + k0"
    _shape = staticmethod(sine)


@register
class DSIN(CyclicPolicy):
    """SIN started at the peak: ``lr(t) = (k1 - k0) * |sin(pi (t + l) / (2 l))| + k0``.

    Example:
        >>> DSIN(k0=0.001, k1=0.006, l=2000).values([0, 4000]).tolist()
        [0.006, 0.006]
    """

    name = "DSIN"
    formula = "(k1-k0) * |sin(pi (t+l)/(2l))| + k0"
    _shape = staticmethod(peak_sine)


@register
class DSIN2(CyclicPolicy):
    """DSIN halving every cycle: ``lr(t) = (k1 - k0) * SIN(t + l) / 2**floor((t + l) / (2 l)) + k0``.

    Example:
        >>> DSIN2(k0=0.0, k1=0.4, l=10).values([0, 20]).tolist()
        [0.4, 0.2]
    """

    name = "DSIN2"
    formula = "(k1-k0) * |sin(pi (t+l)/(2l))| / 2^floor((t+l)/(2l)) + k0"
    _shape, _halvings = staticmethod(peak_sine), staticmethod(peak_cycles)


@register
class DSINEXP(CyclicExpPolicy):
    """DSIN shrinking every update: ``lr(t) = (k1 - k0) * SIN(t + l) * gamma**t + k0``.

    Example:
        >>> DSINEXP(k0=0.0, k1=1.0, gamma=0.5, l=1).values([0, 2]).tolist()
        [1.0, 0.25]
    """

    name = "DSINEXP"
    formula = "(k1-k0) * |sin(pi (t+l)/(2l))| * gamma^t + k0"
    _shape = staticmethod(peak_sine)


@register
class COS(CyclicPolicy):
    """Cosine wave from ``k1``: ``lr(t) = (k1 - k0) * (1 + cos(pi t / l)) / 2 + k0``.

    Example:
        >>> COS(k0=0.0, k1=0.1, l=100).values([0, 100, 200]).tolist()
        [0.1, 0.0, 0.1]
    """

    name = "COS"
    formula = "(k1-k0) * (1 + cos(pi t/l))/2 + k0"
    _shape = staticmethod(cosine)


@register
class COS2(CyclicPolicy):
    """COS halving every cycle: ``lr(t) = (k1 - k0) * (1 + cos(pi t / l)) / 2 / 2**floor((t + l) / (2 l)) + k0``.

    Example:
        >>> COS2(k0=0.0, k1=0.1, l=100).values([0, 200, 400]).tolist()
        [0.1, 0.05, 0.025]
    """

    name = "COS2"
    formula = "(k1-k0) * (1 + cos(pi t/l))/2 / 2^floor((t+l)/(2l)) + k0"
    _shape, _halvings = staticmethod(cosine), staticmethod(peak_cycles)


@register
class COSEXP(CyclicExpPolicy):
    """COS shrinking every update: ``lr(t) = (k1 - k0) * (1 + cos(pi t / l)) / 2 * gamma**t + k0``.

    Example:
        >>> COSEXP(k0=0.0, k1=1.0, gamma=0.5, l=1).values([0, 2]).tolist()
        [1.0, 0.25]
    """

    name = "COSEXP"
    formula = "(k1-k0) * (1 + cos(pi t/l))/2 * gamma^t + k0"
    _shape = staticmethod(cosine)


@register
class UPCOS(CyclicPolicy):
    """Cosine wave from ``k0``: ``lr(t) = (k1 - k0) * (1 + cos(pi (t / l + 1))) / 2 + k0``.

    Example:
        >>> UPCOS(k0=0.0, k1=0.1, l=100).values([0, 100]).tolist()
        [0.0, 0.1]
    """

    name = "UPCOS"
    formula = "(k1-k0) * (1 + cos(pi (t/l + 1)))/2 + k0"
    _shape = staticmethod(upcosine)


@register
class UPCOS2(CyclicPolicy):
    """UPCOS halving every cycle: ``/ 2**floor(t / (2 l))`` on UPCOS's amplitude.

    Example:
        >>> UPCOS2(k0=0.0, k1=0.1, l=100).values([100, 300]).tolist()
        [0.1, 0.05]
    """

    name = "UPCOS2"
    formula = "(k1-k0) * (1 + cos(pi (t/l + 1)))/2 / 2^floor(t/(2l)) + k0"
    _shape, _halvings = staticmethod(upcosine), staticmethod(cycles)


@register
class UPCOSEXP(CyclicExpPolicy):
    """UPCOS shrinking every update: ``* gamma**t`` on UPCOS's amplitude.

    Example:
        >>> UPCOSEXP(k0=0.0, k1=1.0, gamma=0.5, l=1).values([0, 1]).tolist()
        [0.0, 0.5]
    """

    name = "UPCOSEXP"
    formula = "(k1-k0) * (1 + cos(pi (t/l + 1)))/2 * gamma^t + k0"
    _shape = staticmethod(upcosine)
