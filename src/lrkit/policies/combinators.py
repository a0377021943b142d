"""Combinators: new policies built from others, so named recipes are compositions, not classes.

Each is a pure function of ``t`` like any policy: it prints, parses, pickles and round-trips.
"""

from __future__ import annotations

import math

import numpy as np

from lrkit.policies.base import Child, Policy, largest, register


def _piecewise(t: np.ndarray, policies: tuple[Policy, ...], starts: np.ndarray) -> np.ndarray:
    """Segment j covers ``starts[j] <= t < starts[j+1]`` and evaluates ``policies[j](t - starts[j])``.

    Each segment that owns any step is evaluated on *all* of ``t`` (clamped to its clock's 0) and
    then selected, not on the subset it owns: the array a child sees does not depend on where the
    next segment starts, so ``join([f, g], [b])`` and ``join([f, g, h], [b, c])`` give the same bits
    on ``[b, c)`` (a composed policy replays its stages exactly; see the module docstring of
    :mod:`lrkit.policies.base`).
    """
    flat = np.atleast_1d(t).ravel()
    segment = np.searchsorted(starts, flat, side="right") - 1
    out = np.empty_like(flat)
    for j, policy in enumerate(policies):
        mask = segment == j
        if mask.any():
            local = np.maximum(flat - starts[j], 0.0)
            out[mask] = np.broadcast_to(policy._lr(local), local.shape)[mask]
    return out.reshape(np.shape(t))


def _segments(policies: tuple[Policy, ...], boundaries: tuple[float, ...]) -> tuple[Child, ...]:
    """Segment j runs ``policies[j]`` on its own clock from ``b_{j-1}`` until ``b_j``."""
    starts = (0, *boundaries)
    return tuple(Child(p, start, end) for p, start, end in zip(policies, starts, (*boundaries, None)))


def _segment_starts(boundaries: tuple[float, ...]) -> tuple[tuple[float, str], ...]:
    return tuple((b, f"segment {j} starts") for j, b in enumerate(boundaries, start=2))


@register
class Join(Policy):
    """Policies one after another; each segment starts its own clock at 0 (LRBench's composite).

    ``lr(t) = f_j(t - b_{j-1})`` for ``b_{j-1} <= t < b_j``, with ``b_0 = 0`` and the last
    segment running on past the last boundary.

    Args:
        policies: the segments' policies, at least one.
        boundaries: updates at which the next segment starts, ``0 < b_1 < b_2 < ...``;
            exactly ``len(policies) - 1`` of them.

    Example:
        >>> import lrkit
        >>> p = lrkit.parse("join([FIX(k0=0.1), FIX(k0=0.01)], boundaries=[100])")
        >>> p(0), p(99), p(100)
        (0.1, 0.1, 0.01)
    """

    name = "join"
    formula = "f_j(t - b_{j-1}) for b_{j-1} <= t < b_j; each segment restarts its clock"

    policies: tuple[Policy, ...]
    boundaries: tuple[float, ...]

    def validate(self) -> None:
        self._require(len(self.policies) >= 1, "len(policies) >= 1", "policies")
        self._require(len(self.boundaries) == len(self.policies) - 1,
                      "len(boundaries) == len(policies) - 1", "policies", "boundaries")
        steps = (0.0, *self.boundaries)
        self._require(all(a < b for a, b in zip(steps, steps[1:])), "0 < b_1 < b_2 < ...", "boundaries")

    def lr_bound(self) -> float | None:
        return largest(*(p.lr_bound() for p in self.policies))

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return _piecewise(t, self.policies, np.asarray((0.0, *self.boundaries)))

    def children(self) -> tuple[Child, ...]:
        """Each segment's policy, on its own clock from the boundary before it to the one after."""
        return _segments(self.policies, self.boundaries)

    def switches(self) -> tuple[tuple[float, str], ...]:
        """``(b_j, "segment j+1 starts")`` for each boundary."""
        return _segment_starts(self.boundaries)


@register
class Sequence(Policy):
    """Policies one after another by fractions of a budget; each segment starts its own clock at 0.

    The same as ``join(policies, boundaries)`` with ``b_j = round(total_steps * (f_1 + ... + f_j))``.
    The last policy runs on past ``total_steps``.

    Args:
        policies: the segments' policies, at least one.
        fractions: each segment's share of ``total_steps``, each > 0, summing to 1.
        total_steps: the budget in updates, > 0.

    Example:
        >>> import lrkit
        >>> p = lrkit.parse("sequence([FIX(k0=0.1), FIX(k0=0.01)], fractions=[0.75, 0.25], total_steps=1000)")
        >>> p(749), p(750)
        (0.1, 0.01)
    """

    name = "sequence"
    formula = "join(policies, boundaries = round(total_steps * cumsum(fractions)))"

    policies: tuple[Policy, ...]
    fractions: tuple[float, ...]
    total_steps: int

    def validate(self) -> None:
        self._require(len(self.policies) >= 1, "len(policies) >= 1", "policies")
        self._require(len(self.fractions) == len(self.policies), "len(fractions) == len(policies)",
                      "policies", "fractions")
        self._require(all(f > 0 for f in self.fractions), "every fraction > 0", "fractions")
        self._require(math.isclose(sum(self.fractions), 1.0, rel_tol=0, abs_tol=1e-9), "sum(fractions) == 1",
                      "fractions")
        self._require(self.total_steps > 0, "total_steps > 0", "total_steps")
        self._require(len(set(self.boundaries())) == len(self.policies) - 1 and min(self.boundaries(), default=1) > 0,
                      "each segment >= 1 update long", "fractions", "total_steps")

    def boundaries(self) -> tuple[int, ...]:
        """The update counts at which segments 2, 3, ... start."""
        cumulative = np.cumsum(self.fractions[:-1])
        return tuple(int(round(self.total_steps * c)) for c in cumulative)

    def lr_bound(self) -> float | None:
        return largest(*(p.lr_bound() for p in self.policies))

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return _piecewise(t, self.policies, np.asarray((0, *self.boundaries()), dtype=np.float64))

    def children(self) -> tuple[Child, ...]:
        """Each segment's policy, on its own clock from the boundary before it to the one after."""
        return _segments(self.policies, self.boundaries())

    def switches(self) -> tuple[tuple[float, str], ...]:
        """``(b_j, "segment j+1 starts")`` for each boundary."""
        return _segment_starts(self.boundaries())


@register
class Warmup(Policy):
    """Linear warm-up in front of any policy, which then starts its own clock at 0.

    ``lr(t) = start_lr + (f(0) - start_lr) * t / steps`` for ``t < steps``, else ``f(t - steps)``.

    Args:
        policy: the policy after the warm-up.
        steps: warm-up length in updates, > 0.
        start_lr: the LR at ``t = 0``, >= 0.

    Example:
        >>> import lrkit
        >>> p = lrkit.parse("warmup(FIX(k0=0.1), steps=10)")
        >>> p(0), p(5), p(10)
        (0.0, 0.05, 0.1)
    """

    name = "warmup"
    formula = "start_lr + (f(0) - start_lr) * t/steps for t < steps, then f(t - steps)"

    policy: Policy
    steps: int
    start_lr: float = 0.0

    def validate(self) -> None:
        self._require(self.steps > 0, "steps > 0", "steps")
        self._require(self.start_lr >= 0, "start_lr >= 0", "start_lr")

    def lr_bound(self) -> float | None:
        return largest(self.start_lr, self.policy.lr_bound())  # the ramp runs from start_lr to f(0)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        # One evaluation of the child, on the whole block: its local clock max(t - steps, 0) is 0 at
        # every step of the ramp, so the same array holds f(0) there. (Evaluating f(0) apart doubled the
        # work at every level: warmup nested 20 deep took seconds.) The ramp's fraction stops at 1, so
        # steps past the warm-up cannot overflow a ramp that np.where then drops.
        after = np.broadcast_to(self.policy._lr(np.maximum(t - self.steps, 0.0)), np.shape(t))
        ramp = self.start_lr + (after - self.start_lr) * (np.minimum(t, self.steps) / self.steps)
        return np.where(t < self.steps, ramp, after)

    def children(self) -> tuple[Child, ...]:
        """The policy after the warm-up, whose clock starts at ``steps``."""
        return (Child(self.policy, self.steps),)

    def switches(self) -> tuple[tuple[float, str], ...]:
        """``(steps, "warm-up ends")``."""
        return ((self.steps, "warm-up ends"),)


@register
class Scale(Policy):
    """A policy multiplied by a constant: ``lr(t) = factor * f(t)``.

    Args:
        policy: the policy to scale.
        factor: the multiplier, >= 0.

    Example:
        >>> import lrkit
        >>> lrkit.parse("scale(FIX(k0=0.1), factor=0.5)")(7)
        0.05
    """

    name = "scale"
    formula = "factor * f(t)"

    policy: Policy
    factor: float

    def validate(self) -> None:
        self._require(self.factor >= 0, "factor >= 0", "factor")
        bound = self.lr_bound()
        self._require(bound is None or math.isfinite(bound), "factor * (the policy's largest LR) <= 1.8e308",
                      "policy", "factor")

    def lr_bound(self) -> float | None:
        bound = self.policy.lr_bound()
        return None if bound is None else self.factor * bound

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return self.factor * self.policy._lr(t)


@register
class Clip(Policy):
    """A policy held inside ``[min_lr, max_lr]``: ``lr(t) = min(max(f(t), min_lr), max_lr)``.

    Args:
        policy: the policy to clip.
        min_lr: the lower bound, >= 0.
        max_lr: the upper bound, >= min_lr, or none for no upper bound.

    Example:
        >>> import lrkit
        >>> lrkit.parse("clip(FIX(k0=0.1), max_lr=0.05)")(0)
        0.05
    """

    name = "clip"
    formula = "min(max(f(t), min_lr), max_lr)"

    policy: Policy
    min_lr: float = 0.0
    max_lr: float | None = None

    def validate(self) -> None:
        self._require(self.min_lr >= 0, "min_lr >= 0", "min_lr")
        if self.max_lr is not None:
            self._require(self.max_lr >= self.min_lr, "max_lr >= min_lr", "min_lr", "max_lr")

    def lr_bound(self) -> float | None:
        if self.max_lr is not None:
            return self.max_lr
        return largest(self.min_lr, self.policy.lr_bound())

    def _lr(self, t: np.ndarray) -> np.ndarray:
        upper = np.inf if self.max_lr is None else self.max_lr
        return np.clip(self.policy._lr(t), self.min_lr, upper)
