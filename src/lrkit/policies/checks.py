"""The rules several policy families share, each raising through :meth:`Policy._require` (so every message
names the rule and the values, and a spec's caret points at the field): LR bounds, lengths, decay factors.

LRBench's wave families and CLR's three policies are one rule set under two spellings (``k0, k1, l`` and
``base_lr, max_lr, step_size``): :func:`require_wave` is it.
"""

from __future__ import annotations

from lrkit.policies.base import Policy

MIN_LENGTH = 1e-6  #: the shortest length in updates: ``t / length`` stays finite for ``t < 1e302``


def require_length(policy: Policy, field: str) -> None:
    """``field > 0`` and ``field >= MIN_LENGTH``, as two rules so each message says which broke."""
    policy._require(getattr(policy, field) > 0, f"{field} > 0", field)
    policy._require(getattr(policy, field) >= MIN_LENGTH, f"{field} >= {MIN_LENGTH:g}", field)


def require_gamma(policy: Policy) -> None:
    """``0 < gamma <= 1``: above 1 the LR grows without bound, and 0 stops learning after the first decay."""
    policy._require(0 < policy.gamma <= 1, "0 < gamma <= 1", "gamma")  # type: ignore[attr-defined]


def require_decay_factor(policy: Policy) -> None:
    """The rules every ``k0 * gamma**n`` policy shares: ``k0 >= 0`` and ``0 < gamma <= 1``."""
    policy._require(policy.k0 >= 0, "k0 >= 0", "k0")  # type: ignore[attr-defined]
    require_gamma(policy)


def require_bounds(policy: Policy, low: str, high: str) -> None:
    """``low >= 0`` and ``high >= low`` for the fields that bound the LR from below and above."""
    policy._require(getattr(policy, low) >= 0, f"{low} >= 0", low)
    policy._require(getattr(policy, high) >= getattr(policy, low), f"{high} >= {low}", low, high)


def require_wave(policy: Policy, low: str, high: str, length: str) -> None:
    """A wave between two LRs: :func:`require_bounds`, :func:`require_length` of its half-cycle (or period),
    and :func:`require_gamma` when it has a ``gamma``."""
    require_bounds(policy, low, high)
    require_length(policy, length)
    if hasattr(policy, "gamma"):
        require_gamma(policy)


__all__ = ["MIN_LENGTH", "require_bounds", "require_decay_factor", "require_gamma", "require_length", "require_wave"]
