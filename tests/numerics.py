"""The numeric contract in test form (lrkit.policies.base says what is exact and what is bounded).

- :func:`assert_lrs` compares LRs from two evaluation paths (``policy(t)`` against ``values``, the
  adapter against ``policy(t)``, ...) within :data:`lrkit.policies.VALUES_RTOL`. Use ``==`` only
  where one path computes both sides (the same call repeated, resume against an uninterrupted run).
- :func:`vector_path_nudged` makes this machine behave like one whose SIMD kernels round
  differently from its scalar loops: while it is active, every transcendental numpy ufunc called
  on an array (ndim >= 1: the vector path) returns results moved by one ulp, in a direction that
  is a function of the value alone, except for the last ``n % 8`` elements, which keep the
  scalar result, as a kernel with a SIMD body of 8 lanes and a scalar remainder loop would give.
  0-d calls (the scalar path of ``policy(t)``) are untouched. So a value may depend on the length
  of the array it was computed in, as it may on a real CPU.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np

from lrkit.policies import VALUES_RTOL, same_lrs

# ufuncs whose SIMD kernels are not correctly rounded (the basic arithmetic, floor and sqrt are)
NUDGED = ("power", "exp", "exp2", "expm1", "log", "log2", "log1p", "sin", "cos", "tan", "arcsin", "arccos",
          "arctan", "sinh", "cosh", "tanh", "float_power")
BOUNDED = ("sin", "cos", "tanh")
LANES = 8


def assert_lrs(actual: Any, expected: Any, what: str = "", scale: float | None = None) -> None:
    """``actual`` and ``expected`` agree within the numeric contract: ``VALUES_RTOL`` times ``scale``.

    ``scale``: the policy's largest LR (default: the largest value compared; give the peak when the
    stretch compared sits near 0).
    """
    a, b = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if same_lrs(a, b, scale=scale):
        return
    worst = int(np.argmax(np.abs(a - b))) if a.shape == b.shape and a.size else None
    detail = f" (worst at index {worst}: {a.flat[worst]!r} vs {b.flat[worst]!r})" if worst is not None else ""
    raise AssertionError(f"{what}: LRs differ by more than VALUES_RTOL={VALUES_RTOL:g} of the largest{detail}; "
                         f"shapes {a.shape} vs {b.shape}")


def _nudge(ufunc: Any) -> Any:
    def nudged(*args: Any, **kwargs: Any) -> Any:
        target = kwargs.pop("out", None)  # an in-place call (np.cos(x, out=x)) is nudged as well
        out = ufunc(*args, **kwargs)
        if not any(np.ndim(a) >= 1 for a in args[:ufunc.nin]) or not (
                isinstance(out, np.ndarray) and out.dtype == np.float64):
            result = out  # the scalar path, or nothing to nudge
        else:
            result = _moved(ufunc, out)
        if target is None:
            return result
        dest = target[0] if isinstance(target, tuple) else target
        dest[...] = result
        return dest

    return nudged


def _moved(ufunc: Any, out: np.ndarray) -> np.ndarray:
    """``out`` one ulp off (direction from its lowest bit), but for the last ``n % LANES`` elements."""
    up = (out.view(np.uint64) & np.uint64(1)).astype(bool)
    moved = np.nextafter(out, np.where(up, np.inf, -np.inf))
    if ufunc.__name__ in BOUNDED:  # a real kernel does not leave the function's range
        moved = np.clip(moved, -1.0, 1.0)
    body = np.arange(out.size).reshape(out.shape) < out.size - out.size % LANES
    return np.where(body & np.isfinite(out) & (out != 0), moved, out)


@contextlib.contextmanager
def vector_path_nudged() -> Iterator[None]:
    """Within the block, numpy's vector path rounds one ulp away from its scalar path (see above)."""
    saved = {name: getattr(np, name) for name in NUDGED}
    try:
        for name, ufunc in saved.items():
            setattr(np, name, _nudge(ufunc))
        yield
    finally:
        for name, ufunc in saved.items():
            setattr(np, name, ufunc)
