"""RALR: random amplify learning rates (Deng et al., Applied Sciences 12(1):268, 2022).

A wrapper over any policy: at random draw points the LR is lifted above the base policy's
value, inside boundary values, to help escape saddle points and sharp minima. The paper fixes
the idea; the details (when draws happen, how the amplified value is drawn, the bounds, a
quiet tail) are lrkit's choices, exposed as arguments (docs/plugins.md, "RALR").

Every draw is a pure function of ``(seed, draw index)`` through :mod:`lrkit.rng`, so the
policy is as stateless as any other: ``values()`` works, any ``t`` in any order, and resuming
needs only the step.
"""

from __future__ import annotations

import numpy as np

from lrkit import rng
from lrkit.errors import PolicyError
from lrkit.policies.base import Policy, check_choice, largest, register

_DRAWS = ("interval", "factor")
_STREAM_COIN, _STREAM_VALUE = 0, 1


@register
class RALR(Policy):
    """Random amplification of a base policy ``f`` at draw points, with probability ``p`` each.

    With draw index ``k = floor(t / iters_per_epoch)``, coin ``c_k ~ U[0,1)``, value draw
    ``u_k ~ U[0,1)`` (both pure functions of ``(seed, k)``) and cap ``H = max(max_lr, f(t))``::

        lr(t) = f(t)                                   if c_k >= p or t is in the quiet tail
        lr(t) = f(t) + u_k (H - f(t))                  draw="interval": uniform in [f(t), H]
        lr(t) = min(f(t) (a_lo + u_k (a_hi - a_lo)), H)   draw="factor": f(t) times a ~ U[a_lo, a_hi]

    The amplified LR is never below ``f(t)``. One draw covers ``iters_per_epoch`` consecutive
    updates (set it to the epoch length for per-epoch draws as in the paper; 1 draws at
    every update). The quiet tail is the last ``final_fraction`` of ``total_steps``.

    Defaults: p=0.2, draw="interval", max_lr = f(0). A 5-seed Fashion-MNIST sweep
    (benchmarks/RESULTS.md) found no difference between p in {0.1, 0.2, 0.3}, nor any
    gain over the base schedule beyond noise; 0.2 is the middle of that range, and the interval
    rule is the paper's "a value between boundary values".

    Args:
        policy: the base policy ``f``.
        iters_per_epoch: updates per draw, >= 1 (required: it fixes what "epoch" means).
        p: probability that a draw amplifies, in [0, 1].
        draw: "interval" or "factor" (see the formula).
        max_lr: the upper boundary ``H`` (an LR, >= 0); none means ``f(0)``, the initial LR.
        min_factor: ``a_lo`` for draw="factor", >= 1.
        max_factor: ``a_hi`` for draw="factor", >= min_factor.
        total_steps: the training budget in updates; needed only with ``final_fraction``.
        final_fraction: the last fraction of ``total_steps`` left un-amplified, in [0, 1).
        seed: the random seed, an integer >= 0.

    Example:
        >>> import lrkit
        >>> p = lrkit.parse("ralr(FIX(k0=0.01), iters_per_epoch=100, p=0.5, max_lr=0.1, seed=0)")
        >>> [round(p(t), 4) for t in (0, 199, 200, 299, 500)]
        [0.01, 0.01, 0.0891, 0.0891, 0.0561]
    """

    name = "ralr"
    formula = "f(t), or with prob. p per draw of iters_per_epoch updates: U[f(t), max_lr] or f(t) * U[a_lo, a_hi]"

    policy: Policy
    iters_per_epoch: int
    p: float = 0.2
    draw: str = "interval"
    max_lr: float | None = None
    min_factor: float = 1.0
    max_factor: float = 2.0
    total_steps: int = 0
    final_fraction: float = 0.0
    seed: int = 0

    def validate(self) -> None:
        self._require(self.iters_per_epoch >= 1, "iters_per_epoch >= 1", "iters_per_epoch")
        self._require(0 <= self.p <= 1, "0 <= p <= 1", "p")
        check_choice(self.name, "draw", self.draw, _DRAWS)
        if self.max_lr is not None:
            self._require(self.max_lr >= 0, "max_lr >= 0", "max_lr")
        self._require(1 <= self.min_factor <= self.max_factor, "1 <= min_factor <= max_factor",
                      "min_factor", "max_factor")
        self._require(self.total_steps >= 0, "total_steps >= 0", "total_steps")
        self._require(0 <= self.final_fraction < 1, "0 <= final_fraction < 1", "final_fraction")
        if self.final_fraction > 0:
            self._require(self.total_steps > 0, "total_steps > 0 when final_fraction > 0",
                          "final_fraction", "total_steps")
        self._require(0 <= self.seed < 2**64, "0 <= seed < 2**64", "seed")  # the generator keys on 64 bits

    @property
    def cap(self) -> float:
        """The upper boundary ``max_lr``, or the base policy's initial LR when none is given."""
        return self.max_lr if self.max_lr is not None else float(self.policy._lr(np.asarray(0.0)))

    def quiet_from(self) -> float:
        """The first update of the un-amplified tail (infinity when there is none)."""
        if self.final_fraction == 0:
            return float("inf")
        return float(round(self.total_steps * (1.0 - self.final_fraction)))

    def amplified(self, t: object) -> np.ndarray:
        """Whether update ``t`` is amplified (a bool array of ``t``'s shape; ``t`` as in ``values``)."""
        steps = np.asarray(t, dtype=np.float64)
        if steps.size and not (np.all(np.isfinite(steps)) and steps.min() >= 0):
            raise PolicyError(f"`t >= 0` (a finite number of updates) must hold, but got (t={t!r}).")
        return self._amplified(steps, self._draw_index(steps))

    def _draw_index(self, t: np.ndarray) -> np.ndarray:
        """``k = floor(t / iters_per_epoch)`` as the generator's uint64 counters. Past 2**64 draws (t >= 1.8e19
        updates) the index wraps instead of overflowing the cast; a float64 step that large is a multiple of
        4096 anyway. Integers, so the generator skips its checks for whole numbers (twice per level of a
        nested ralr)."""
        return np.fmod(np.floor(t / self.iters_per_epoch), 2.0**64).astype(np.uint64)

    def _amplified(self, t: np.ndarray, draw_index: np.ndarray) -> np.ndarray:
        coin = rng.uniform(self.seed, _STREAM_COIN, draw_index)
        return (coin < self.p) & (t < self.quiet_from())

    def lr_bound(self) -> float | None:
        return largest(self.max_lr or 0.0, self.policy.lr_bound())  # an amplified LR is at most max(cap, f(t))

    def _base_and_cap(self, t: np.ndarray) -> tuple[np.ndarray, float | np.ndarray]:
        """``f(t)`` and the cap, from one evaluation of ``f`` on the whole block: without ``max_lr`` the cap
        is ``f(0)``, evaluated as step 0 put in front of the block (evaluating it apart doubled the work at
        every level of nesting)."""
        if self.max_lr is not None:
            return np.broadcast_to(self.policy._lr(t), np.shape(t)).astype(np.float64), self.max_lr
        flat = np.concatenate(([0.0], np.ravel(t)))
        both = np.broadcast_to(self.policy._lr(flat), flat.shape)
        return both[1:].reshape(np.shape(t)).astype(np.float64), both[0]

    def _lr(self, t: np.ndarray) -> np.ndarray:
        base, cap = self._base_and_cap(t)
        draw_index = self._draw_index(t)
        u = rng.uniform(self.seed, _STREAM_VALUE, draw_index)
        high = np.maximum(cap, base)
        if self.draw == "interval":
            lifted = base + u * (high - base)
        else:
            factor = self.min_factor + u * (self.max_factor - self.min_factor)
            with np.errstate(over="ignore"):  # f(t) * factor past float64 is inf, and the cap's min() is right
                lifted = np.minimum(base * factor, high)
        return np.where(self._amplified(t, draw_index), lifted, base)
