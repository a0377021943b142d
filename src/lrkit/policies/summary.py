"""A policy over a budget, in a few numbers: its switch points, the steps worth checking, its extremes.

``lrkit show`` prints exactly these. Structure comes from the policies themselves
(:meth:`Policy.children <lrkit.policies.base.Policy.children>` and :meth:`Policy.switches
<lrkit.policies.base.Policy.switches>`), so a new combinator gets its boundaries shown by
overriding those two methods, with no change here or in the command line.

>>> import lrkit
>>> p = lrkit.parse("warmup(join([FIX(k0=0.1), FIX(k0=0.01)], boundaries=[300]), steps=50)")
>>> switch_points(p)
[(50.0, 'warm-up ends'), (350.0, 'segment 2 starts')]
>>> notable_steps(p, 1000)[:3]
[(0, 'start'), (50, 'warm-up ends'), (250, '1/4')]
>>> extremes(p, 1000)
((0.0, 0), (0.1, 50), True)
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from lrkit.policies.base import Policy

#: up to this many steps, :func:`extremes` is exact (about 1 s); beyond, it reads :data:`SAMPLES` steps
EXACT_LIMIT = 10**7
SAMPLES = 10**7
#: steps per :meth:`Policy.values` call, so memory stays bounded for any budget
CHUNK = 10**6


def switch_points(policy: Policy, offset: float = 0.0, end: float | None = None) -> list[tuple[float, str]]:
    """Every step where ``policy`` or a policy inside it switches (segment starts, warm-up ends), in order found.

    Args:
        policy: any policy.
        offset: the step at which ``policy``'s own clock starts (for nested policies).
        end: the step at which ``policy`` hands over to another one; its switches from there on
            never happen and are left out (None: it stays in charge).

    Returns:
        ``(step, note)`` pairs in the outermost clock: the policy's own :meth:`~Policy.switches`
        first, then each child's, recursively.
    """
    found: list[tuple[float, str]] = []
    for at, note in policy.switches():
        step = offset + float(at)
        if end is None or step < end:
            found.append((step, note))
    for child in policy.children():
        start = offset + float(child.start)
        stop = None if child.end is None else offset + float(child.end)
        if end is not None:
            stop = end if stop is None else min(stop, end)
        found += switch_points(child.policy, start, stop)
    return found


def notable_steps(policy: Policy, steps: int) -> list[tuple[int, str]]:
    """Update 0, every switch point, the quarter points and ``steps - 1``, each with why it is shown.

    Only updates below ``steps`` are listed, in increasing order; a step with several reasons
    lists them all (``"1/2, last"``). A switch at a fractional step is listed at the first update
    past it (``ceil``), where the new segment is in charge.
    """
    notes: dict[int, list[str]] = {0: ["start"]}
    for at, why in switch_points(policy):
        if at < steps:
            notes.setdefault(math.ceil(at), []).append(why)
    for k, label in ((1, "1/4"), (2, "1/2"), (3, "3/4")):
        notes.setdefault(int(round(steps * k / 4)) if steps > 1 else 0, []).append(label)
    notes.setdefault(steps - 1, []).append("last")
    return [(t, ", ".join(dict.fromkeys(why))) for t, why in sorted(notes.items()) if t < steps]


def step_chunks(steps: range, size: int | None = None) -> Iterator[np.ndarray]:
    """``steps`` as float64 arrays of at most ``size`` (default :data:`CHUNK`) steps each."""
    size = CHUNK if size is None else size
    for start in range(0, len(steps), size):
        yield np.asarray(steps[start:start + size], dtype=np.float64)


def extremes(policy: Policy, steps: int) -> tuple[tuple[float, int], tuple[float, int], bool]:
    """``((min, first step), (max, first step), exact)`` of the LR over updates ``0 .. steps-1``.

    Exact up to :data:`EXACT_LIMIT` steps; beyond, read from :data:`SAMPLES` evenly spaced integer
    steps (the first and the last included), and ``exact`` is False. Memory stays bounded.
    """
    exact = steps <= EXACT_LIMIT
    lo, hi = (math.inf, 0), (-math.inf, 0)
    for ts in step_chunks(range(steps) if exact else range(SAMPLES)):
        if not exact:  # sample i sits at floor(i (steps-1) / (SAMPLES-1)); the first and last are exact
            ts = np.floor(ts * ((steps - 1) / (SAMPLES - 1)))
        values = policy.values(ts)
        i, j = int(np.argmin(values)), int(np.argmax(values))
        if values[i] < lo[0]:
            lo = (float(values[i]), int(ts[i]))
        if values[j] > hi[0]:
            hi = (float(values[j]), int(ts[j]))
    return lo, hi, exact


__all__ = ["CHUNK", "EXACT_LIMIT", "SAMPLES", "extremes", "notable_steps", "step_chunks", "switch_points"]
