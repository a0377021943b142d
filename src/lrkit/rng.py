"""A counter-based random generator: every draw is a pure function of ``(seed, stream, counter)``.

The random plugins (RALR, LEAP) must give the same draw for step ``t`` however the run got
there — evaluated in any order, resumed from a checkpoint, or on every data-parallel replica
without communication. A stateful generator cannot promise that; a hash of the indices can.

The hash is SplitMix64 (Steele, Lea & Flood 2014) used in counter mode::

    key      = mix(mix(seed) + GOLDEN * (stream + 1))
    word(c)  = mix(key + GOLDEN * (c + 1))            (64 random bits)
    mix(z)   = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31

all in wrapping 64-bit arithmetic. ``uniform`` keeps the top 53 bits; ``normal`` splits one
word into two 32-bit uniforms and applies Box–Muller, taking the cosine for even counters and
the sine for odd ones, so that normal ``2j`` and ``2j + 1`` share word ``j``. The torch port in
:mod:`lrkit.torch.rng` (which :mod:`lrkit.torch.leap` draws from) computes the same words bit for
bit on any device.

Pure numpy; vectorised over the counters (any shape).

>>> from lrkit import rng
>>> rng.uniform(0, 0, [0, 1, 2]).round(6).tolist()
[0.652448, 0.701212, 0.387124]
>>> bool((rng.uniform(7, 1, [5]) == rng.uniform(7, 1, [0, 5])[1]).all())
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lrkit.errors import LRKitError

GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
_MASK64 = (1 << 64) - 1
_TWO_PI = 2.0 * np.pi


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a uint64 array (wrapping arithmetic)."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(MIX1)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


def _mix_int(z: int) -> int:
    """The same finaliser on a Python int (exact; used for keys)."""
    z &= _MASK64
    z ^= z >> 30
    z = (z * MIX1) & _MASK64
    z ^= z >> 27
    z = (z * MIX2) & _MASK64
    return z ^ (z >> 31)


def _check_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise LRKitError(f"`{name}` must be an integer >= 0, but got ({name}={value!r}).")
    return int(value)


def key(seed: int, stream: int = 0) -> int:
    """The 64-bit key of ``(seed, stream)``: distinct streams of one seed are unrelated sequences."""
    seed, stream = _check_int("seed", seed), _check_int("stream", stream)
    return _mix_int((_mix_int(seed) + GOLDEN * (stream + 1)) & _MASK64)


def _counters(counter: Any) -> np.ndarray:
    c = np.asarray(counter)
    integral = np.issubdtype(c.dtype, np.integer) or (
        np.issubdtype(c.dtype, np.floating) and bool(np.all(np.isfinite(c))) and bool(np.all(c == np.floor(c))))
    if not integral or (c.size and c.min() < 0):
        raise LRKitError(f"`counter` must hold integers >= 0, but got (counter={counter!r}).")
    return c.astype(np.uint64)


def bits(seed: int, stream: int, counter: Any) -> np.ndarray:
    """64 random bits (uint64) for each counter: ``mix(key(seed, stream) + GOLDEN * (counter + 1))``."""
    c = _counters(counter)
    with np.errstate(over="ignore"):
        return _mix(np.uint64(key(seed, stream)) + np.uint64(GOLDEN) * (c + np.uint64(1)))


def uniform(seed: int, stream: int, counter: Any) -> np.ndarray:
    """Uniforms in ``[0, 1)`` (float64, 53 random bits), one per counter."""
    return (bits(seed, stream, counter) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def normal(seed: int, stream: int, counter: Any) -> np.ndarray:
    """Standard normals (float64), one per counter; |value| <= 6.67 (32-bit uniforms)."""
    c = _counters(counter)
    word = bits(seed, stream, c >> np.uint64(1))
    # u1 in (0, 1] so the log is finite; u2 in [0, 1)
    u1 = ((word >> np.uint64(32)).astype(np.float64) + 1.0) * 2.0**-32
    u2 = (word & np.uint64(0xFFFFFFFF)).astype(np.float64) * 2.0**-32
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = _TWO_PI * u2
    return radius * np.where((c & np.uint64(1)) == 0, np.cos(angle), np.sin(angle))
