"""The peers every recommendation is judged against: what a user would train with instead of searching.

Each is run once per judging seed, stored like any trial (role ``"baseline"``), and ranked beside the
candidates, so the recommendation's speed-up is stated over the best of them as well as over the task's
default (``lrkit recommend`` prints both, also when lrkit loses). They run with each optimizer's own
defaults, as a user who picks them up would (no weight decay carried over from the task):

| name | optimizer | LR |
|---|---|---|
| ``adam`` | ``Adam`` | constant 1e-3 (the most common default) |
| ``adamw-cosine`` | ``AdamW`` (weight decay 0.01) | 1e-3, cosine to 0 over the budget |
| ``prodigy`` | ``prodigyopt:Prodigy`` | ``lr=1``, constant (LR-free: it estimates its own step) |
| ``schedulefree-adamw`` | ``schedulefree:AdamWScheduleFree`` | its README's 2.5e-3, 5% warm-up, no schedule |
| ``dadapt-adam`` | ``dadaptation:DAdaptAdam`` | ``lr=1``, constant (LR-free) |
| ``onecycle`` | the task's optimizer and arguments | PyTorch's ``OneCycleLR`` (momentum cycled, as its defaults do) with ``max_lr`` at the range test's suggestion for that optimizer |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from lrkit.errors import LRKitError


@dataclass(frozen=True)
class Method:
    """What one trial trains with: an optimizer, its arguments, a policy and how the LR is applied."""

    optimizer: str
    optimizer_kwargs: dict[str, Any]
    spec: str
    lr_driver: str = "policy"


@dataclass(frozen=True)
class Baseline:
    """A named peer: ``build(config, task)`` gives the :class:`Method` it trains with."""

    name: str
    description: str
    build: Callable[[Any, Any], Method]


def _onecycle(config: Any, task: Any) -> Method:
    high = config.lr_range_of(config.optimizer)[1]
    if not (math.isfinite(high) and high > 0):
        raise LRKitError(f"the onecycle baseline needs the LR range of {config.optimizer!r}, which is not known yet")
    from lrkit.lrbench.run.steps import resolve_optimizer

    name, kwargs = resolve_optimizer(task, config.optimizer, None)
    return Method(name, kwargs, f"onecycle(max_lr={high:.4g}, total_steps={config.budget})", "torch-onecycle")


BASELINES: dict[str, Baseline] = {b.name: b for b in [
    Baseline("adam", "Adam, constant LR 1e-3",
             lambda c, t: Method("adam", {}, "FIX(k0=0.001)")),
    Baseline("adamw-cosine", "AdamW (weight decay 0.01), 1e-3 with cosine decay over the budget",
             lambda c, t: Method("adamw", {}, f"cosine(max_lr=0.001, total_steps={c.budget})")),
    Baseline("prodigy", "Prodigy (LR-free), lr=1, no schedule",
             lambda c, t: Method("prodigyopt:Prodigy", {}, "FIX(k0=1)")),
    Baseline("schedulefree-adamw", "schedule-free AdamW, lr 2.5e-3 with 5% warm-up (its README's defaults)",
             lambda c, t: Method("schedulefree:AdamWScheduleFree",
                                 {"warmup_steps": max(1, round(0.05 * c.budget))}, "FIX(k0=0.0025)")),
    Baseline("dadapt-adam", "D-Adaptation Adam (LR-free), lr=1, no schedule",
             lambda c, t: Method("dadaptation:DAdaptAdam", {}, "FIX(k0=1)")),
    Baseline("onecycle", "the task's optimizer with PyTorch's OneCycleLR at the range test's max LR", _onecycle),
]}


def check_baselines(names: tuple[str, ...] | None) -> tuple[str, ...]:
    """All baselines (``None``), none (``()``), or the ones named; an unknown name raises."""
    if names is None:
        return tuple(BASELINES)
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise LRKitError(f"unknown baselines {', '.join(map(repr, unknown))}; lrkit has {', '.join(BASELINES)} (or none)")
    return tuple(n for n in BASELINES if n in names)


def baseline_method(name: str, config: Any, task: Any) -> Method:
    """The method the baseline ``name`` trains with for this study."""
    check_baselines((name,))
    return BASELINES[name].build(config, task)


__all__ = ["BASELINES", "Baseline", "Method", "baseline_method", "check_baselines"]
