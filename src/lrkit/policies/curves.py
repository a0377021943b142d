"""Modern LR curves, with PyTorch's (or HF transformers') values where they have the curve.

Every curve is a closed form of ``t``; past its horizon it holds its final LR (PyTorch's cosine
oscillates back up past ``T_max`` and its OneCycleLR raises past ``total_steps``: neither is what a
user who trains a little longer wants). Steps are optimizer updates.
"""

from __future__ import annotations

import math

import numpy as np

from lrkit.policies.base import Policy, check_choice, register
from lrkit.policies.checks import require_bounds, require_length


def _half_cosine(progress: np.ndarray) -> np.ndarray:
    """``(1 + cos(pi p)) / 2``: 1 at ``p = 0``, 0 at ``p = 1``."""
    return 0.5 * (1.0 + np.cos(np.pi * progress))


@register
class Constant(Policy):
    """A constant LR: ``lr(t) = lr`` (LRBench's FIX under a plain name).

    Args:
        lr: the learning rate, >= 0.

    Example:
        >>> Constant(lr=0.1)(10**9)
        0.1
    """

    name = "constant"
    formula = "lr"

    lr: float

    def validate(self) -> None:
        self._require(self.lr >= 0, "lr >= 0", "lr")

    def lr_bound(self) -> float:
        return float(self.lr)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return np.full(np.shape(t), self.lr)


@register
class Linear(Policy):
    """Linear from ``start_lr`` to ``end_lr`` over ``total_steps`` updates, then ``end_lr``.

    ``lr(t) = start_lr + (end_lr - start_lr) * min(t, total_steps) / total_steps``; PyTorch's
    ``LinearLR(start_factor=start_lr/lr, end_factor=end_lr/lr, total_iters=total_steps)``.

    Args:
        start_lr: the LR at ``t = 0``, >= 0.
        end_lr: the LR from ``t = total_steps`` on, >= 0 (above ``start_lr`` for a ramp up).
        total_steps: the length of the ramp in updates, > 0.

    Example:
        >>> p = Linear(start_lr=0.1, end_lr=0.0, total_steps=100)
        >>> p(0), p(50), p(100), p(10**9)
        (0.1, 0.05, 0.0, 0.0)
    """

    name = "linear"
    formula = "start_lr + (end_lr - start_lr) * min(t, total_steps)/total_steps"

    start_lr: float
    end_lr: float
    total_steps: int

    def validate(self) -> None:
        self._require(self.start_lr >= 0, "start_lr >= 0", "start_lr")
        self._require(self.end_lr >= 0, "end_lr >= 0", "end_lr")
        self._require(self.total_steps > 0, "total_steps > 0", "total_steps")

    def lr_bound(self) -> float:
        return float(max(self.start_lr, self.end_lr))

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return self.start_lr + (self.end_lr - self.start_lr) * (np.minimum(t, self.total_steps) / self.total_steps)


@register
class Cosine(Policy):
    """Cosine annealing from ``max_lr`` to ``min_lr`` over ``total_steps`` updates, then ``min_lr``.

    ``lr(t) = min_lr + (max_lr - min_lr) * (1 + cos(pi * min(t, T) / T)) / 2``, ``T = total_steps``:
    PyTorch's ``CosineAnnealingLR(T_max=T, eta_min=min_lr)`` up to ``T``. PyTorch keeps going
    round the cosine after ``T`` (back up to ``max_lr`` at ``2T``); this holds ``min_lr``.

    Args:
        max_lr: the LR at ``t = 0``, >= min_lr.
        total_steps: the annealing length in updates, > 0.
        min_lr: the LR from ``t = total_steps`` on, >= 0.

    Example:
        >>> p = Cosine(max_lr=0.1, total_steps=100)
        >>> p(0), p(50), p(100), p(10**9)
        (0.1, 0.05, 0.0, 0.0)
    """

    name = "cosine"
    formula = "min_lr + (max_lr - min_lr) * (1 + cos(pi min(t,T)/T))/2"

    max_lr: float
    total_steps: int
    min_lr: float = 0.0

    def validate(self) -> None:
        require_bounds(self, "min_lr", "max_lr")
        self._require(self.total_steps > 0, "total_steps > 0", "total_steps")

    def lr_bound(self) -> float:
        return float(self.max_lr)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        # in place on one fresh array: this is the most common curve, and 1e6 steps cost half the time
        # (the same operations, in the same order, as min_lr + (max_lr - min_lr) * _half_cosine(progress))
        x = np.asarray(np.minimum(t, self.total_steps), dtype=np.float64)
        x /= self.total_steps
        x *= np.pi
        np.cos(x, out=x)
        x += 1.0
        x *= 0.5
        x *= self.max_lr - self.min_lr
        x += self.min_lr
        return x


@register
class OneCycle(Policy):
    """The 1cycle policy exactly as PyTorch's ``OneCycleLR`` (no momentum), holding its last LR.

    With ``initial = max_lr / div_factor`` and ``final = initial / final_div_factor``, the phases
    end at updates ``e1 = pct_start * T - 1`` and ``T - 1`` (two phases: initial -> max_lr ->
    final), or ``e1``, ``e2 = 2 * pct_start * T - 2`` and ``T - 1`` (three: initial -> max_lr ->
    initial -> final). Within a phase from ``s`` to ``e``, ``p = (t - s) / (e - s)`` and
    ``lr = anneal(start, end, p)``: ``end + (start - end) * (1 + cos(pi p)) / 2`` or
    ``start + (end - start) * p``. From ``t = T - 1`` on the LR stays ``final`` (PyTorch raises
    after ``T``).

    Args:
        max_lr: the peak LR, >= 0.
        total_steps: the cycle length ``T`` in updates, > 0.
        pct_start: the share of the cycle spent rising, ``0 < pct_start < 1`` and
            ``pct_start * T > 1`` (PyTorch divides by zero otherwise); with three phases also
            ``2 * pct_start * T < T + 1`` (room for the third phase).
        anneal: ``cos`` or ``linear``.
        div_factor: ``max_lr / initial``, >= 1.
        final_div_factor: ``initial / final``, >= 1.
        three_phase: the paper's symmetric rise and fall, then a short annihilation phase.

    Example:
        >>> p = OneCycle(max_lr=0.1, total_steps=100)
        >>> round(p(0), 12), p(29), p(99), p(10**9)
        (0.004, 0.1, 4e-07, 4e-07)
    """

    name = "onecycle"
    aliases = ("one_cycle",)
    formula = "anneal initial -> max_lr -> [initial ->] max_lr/(div*final_div) by phase, as OneCycleLR"

    max_lr: float
    total_steps: int
    pct_start: float = 0.3
    anneal: str = "cos"
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False

    def validate(self) -> None:
        self._require(self.max_lr >= 0, "max_lr >= 0", "max_lr")
        self._require(self.total_steps > 0, "total_steps > 0", "total_steps")
        self._require(0 < self.pct_start < 1, "0 < pct_start < 1", "pct_start")
        self._require(self.pct_start * self.total_steps > 1, "pct_start * total_steps > 1",
                      "pct_start", "total_steps")
        if self.three_phase:
            self._require(2 * self.pct_start * self.total_steps < self.total_steps + 1,
                          "2 * pct_start * total_steps < total_steps + 1 (three_phase)", "pct_start", "total_steps")
        check_choice(self.name, "anneal", self.anneal, ("cos", "linear"))
        self._require(self.div_factor >= 1, "div_factor >= 1", "div_factor")
        self._require(self.final_div_factor >= 1, "final_div_factor >= 1", "final_div_factor")

    def phases(self) -> list[tuple[float, float, float]]:
        """``(end_step, start_lr, end_lr)`` per phase, with PyTorch's phase ends."""
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        rise_end = float(self.pct_start * self.total_steps) - 1
        last = float(self.total_steps - 1)
        if self.three_phase:
            fall_end = float(2 * self.pct_start * self.total_steps) - 2
            return [(rise_end, initial, self.max_lr), (fall_end, self.max_lr, initial), (last, initial, final)]
        return [(rise_end, initial, self.max_lr), (last, self.max_lr, final)]

    def lr_bound(self) -> float:
        return float(self.max_lr)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        step = np.minimum(np.atleast_1d(t), self.total_steps - 1).ravel()
        out = np.empty_like(step)
        phases = self.phases()
        begin, todo = 0.0, np.ones(step.shape, dtype=bool)
        for i, (end, start_lr, end_lr) in enumerate(phases):
            mask = todo & ((step <= end) | (i == len(phases) - 1))
            pct = (step[mask] - begin) / (end - begin)
            if self.anneal == "cos":
                out[mask] = end_lr + (start_lr - end_lr) / 2.0 * (np.cos(np.pi * pct) + 1)
            else:
                out[mask] = (end_lr - start_lr) * pct + start_lr
            todo &= ~mask
            begin = end
        return out.reshape(np.shape(t))


@register
class CosineRestarts(Policy):
    """SGDR: cosine annealing from ``max_lr`` to ``min_lr``, restarted with cycles growing by ``cycle_mult``.

    Cycle ``i`` (from 0) lasts ``T_i = T0 * m**i`` updates and starts at ``S_i = T0 * (m**i - 1) / (m - 1)``
    (``i * T0`` when ``m = 1``); inside it ``lr(t) = min_lr + (max_lr - min_lr) * (1 + cos(pi
    (t - S_i) / T_i)) / 2``. For integer ``m`` this is PyTorch's
    ``CosineAnnealingWarmRestarts(T_0=T0, T_mult=m, eta_min=min_lr)``; a real ``m >= 1`` uses the
    same closed form (PyTorch accepts integers only).

    Args:
        max_lr: the LR at each restart, >= min_lr.
        first_cycle_steps: ``T0``, the first cycle's length in updates, > 0.
        cycle_mult: ``m``, the growth of each cycle over the last, ``1 <= m <= 1000`` (a longer
            next cycle is not a restart schedule, and the bound keeps ``m**i`` far from overflow).
        min_lr: the floor each cycle anneals towards, >= 0.

    Example:
        >>> p = CosineRestarts(max_lr=0.1, first_cycle_steps=10, cycle_mult=2)
        >>> p(0), p(5), p(10), p(20), p(30)
        (0.1, 0.05, 0.1, 0.05, 0.1)
    """

    name = "cosine_restarts"
    aliases = ("sgdr",)
    formula = "min_lr + (max_lr - min_lr) * (1 + cos(pi (t - S_i)/T_i))/2, T_i = T0 m^i"

    max_lr: float
    first_cycle_steps: int
    cycle_mult: float = 1.0
    min_lr: float = 0.0

    def validate(self) -> None:
        require_bounds(self, "min_lr", "max_lr")
        self._require(self.first_cycle_steps > 0, "first_cycle_steps > 0", "first_cycle_steps")
        self._require(1 <= self.cycle_mult <= 1000, "1 <= cycle_mult <= 1000", "cycle_mult")

    def cycle_of(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(i, S_i, T_i)``: the cycle index, its first update and its length, for each ``t``."""
        t0, m = float(self.first_cycle_steps), self.cycle_mult
        if m == 1:
            index = np.floor(t / t0)
            return index, index * t0, np.full(np.shape(t), t0)

        def start(i: np.ndarray) -> np.ndarray:
            # t0 times the cycle count in units of t0 (>= i), not (t0 * (m**i - 1)) / (m - 1): with a huge
            # t0 the product overflowed at the next cycle's start, which is past any step anyway
            return t0 * ((m**i - 1) / (m - 1))

        # log gives the index up to rounding; one correction step each way makes it exact at boundaries
        index = np.floor(np.log1p(t * (m - 1) / t0) / math.log(m))
        index = np.where(start(index) > t, index - 1, index)
        index = np.where(start(index + 1) <= t, index + 1, index)
        return index, start(index), t0 * m**index

    def lr_bound(self) -> float:
        return float(self.max_lr)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        _, begin, length = self.cycle_of(t)
        return self.min_lr + (self.max_lr - self.min_lr) * _half_cosine((t - begin) / length)


@register
class WSD(Policy):
    """Warmup-stable-decay, as HF transformers' ``get_wsd_schedule`` (linear warm-up).

    With ``W, S, D`` the phase lengths and ``shape(p)`` one of ``1 - p`` (linear),
    ``(1 + cos(pi p)) / 2`` (cosine) or ``1 - sqrt(p)`` (sqrt)::

        lr(t) = min_lr + (max_lr - min_lr) * t / max(1, W)                     t < W
                max_lr                                                         W <= t < W + S
                min_lr + (max_lr - min_lr) * shape((t - W - S) / max(1, D))    W + S <= t < W + S + D
                min_lr                                                         after

    As in transformers (``min_lr_ratio = min_lr / max_lr``), the warm-up starts from ``min_lr``.

    Args:
        max_lr: the stable LR, >= min_lr.
        warmup_steps: ``W`` in updates, >= 0.
        stable_steps: ``S`` in updates, >= 0.
        decay_steps: ``D`` in updates, >= 0 (0 drops straight to ``min_lr``).
        min_lr: the LR before the warm-up and after the decay, >= 0.
        decay: ``linear``, ``cosine`` or ``sqrt``.

    Example:
        >>> p = WSD(max_lr=0.1, warmup_steps=10, stable_steps=80, decay_steps=10)
        >>> p(0), p(5), p(10), p(95), p(100)
        (0.0, 0.05, 0.1, 0.05, 0.0)
    """

    name = "wsd"
    formula = "warm up to max_lr over W, hold for S, decay to min_lr over D by decay=linear|cosine|sqrt"

    max_lr: float
    warmup_steps: int
    stable_steps: int
    decay_steps: int
    min_lr: float = 0.0
    decay: str = "linear"

    def validate(self) -> None:
        require_bounds(self, "min_lr", "max_lr")
        for field in ("warmup_steps", "stable_steps", "decay_steps"):
            self._require(getattr(self, field) >= 0, f"{field} >= 0", field)
        check_choice(self.name, "decay", self.decay, ("linear", "cosine", "sqrt"))

    def lr_bound(self) -> float:
        return float(self.max_lr)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        # as floats: the phase ends are sums, and three counts each below float64's limit may sum past it
        # (a Python int that numpy cannot convert); a float sum is inf there, which every comparison takes
        w, s, d = float(self.warmup_steps), float(self.stable_steps), float(self.decay_steps)
        rise = t / max(1.0, w)
        progress = np.clip((t - (w + s)) / max(1.0, d), 0.0, 1.0)
        if self.decay == "linear":
            fall = 1.0 - progress
        elif self.decay == "cosine":
            fall = _half_cosine(progress)
        else:
            fall = 1.0 - np.sqrt(progress)
        factor = np.select([t < w, t < w + s, t < w + s + d], [rise, 1.0, fall], 0.0)
        return self.min_lr + (self.max_lr - self.min_lr) * factor


@register
class InverseSqrt(Policy):
    """Linear warm-up, then inverse square-root decay (HF transformers' ``get_inverse_sqrt_schedule``).

    ``lr(t) = max_lr * t / max(1, W)`` for ``t < W``, else
    ``max_lr / sqrt((t + timescale - W) / timescale)``; ``timescale`` defaults to ``W``, or to
    10 000 when ``W = 0`` (as in transformers), so ``lr(W) = max_lr``.

    Args:
        max_lr: the peak LR, reached at ``t = W``, >= 0.
        warmup_steps: ``W`` in updates, >= 0.
        timescale: the decay's time scale in updates, >= 1e-6, or none for the default.

    Example:
        >>> p = InverseSqrt(max_lr=0.1, warmup_steps=100)
        >>> p(0), p(50), p(100), p(400)
        (0.0, 0.05, 0.1, 0.05)
    """

    name = "inverse_sqrt"
    formula = "max_lr * t/W for t < W, then max_lr / sqrt((t + timescale - W)/timescale)"

    max_lr: float
    warmup_steps: int
    timescale: float | None = None

    def validate(self) -> None:
        self._require(self.max_lr >= 0, "max_lr >= 0", "max_lr")
        self._require(self.warmup_steps >= 0, "warmup_steps >= 0", "warmup_steps")
        if self.timescale is not None:
            require_length(self, "timescale")

    @property
    def effective_timescale(self) -> float:
        """``timescale``, or its default: ``warmup_steps``, or 10 000 without a warm-up."""
        if self.timescale is not None:
            return self.timescale
        return float(self.warmup_steps or 10_000)

    def lr_bound(self) -> float:
        return float(self.max_lr)

    def _lr(self, t: np.ndarray) -> np.ndarray:
        w, scale = self.warmup_steps, self.effective_timescale
        rise = t / max(1, w)
        # (t - W) + timescale, not (t + timescale) - W: a huge W plus a huge timescale would overflow in the
        # branch np.where drops; both orders are exact for integer steps below 2**53
        fall = 1.0 / np.sqrt((np.maximum(t, w) - w + scale) / scale)  # the argument is >= 1
        return self.max_lr * np.where(t < w, rise, fall)
