"""The LR range a recommendation draws its candidates from (methods.md §1.4, step 1).

Two ways, both returning ``LRRange(low, high, method, details)``:

- ``"grid"`` (always available): short FIX runs on a log grid ``1e-4, 3e-4, 1e-3, ..., 1``, each for
  ``max(2 * eval_every, budget // 10)`` updates, going up until two LRs in a row diverge or fall
  more than 5 points below the best. ``high`` is the largest LR whose best accuracy is within 2 points
  of the grid's best (the edge of the good region, where CLR puts ``max_lr``); ``low = high / 20``.
- ``"range-test"``: the LR range test of :func:`lrkit.range_test` (CLR §2.2): ``high`` is its
  suggested max LR, ``low`` its suggested base LR (at most ``high / 3``).

``"auto"`` uses the range test and falls back to the grid when it suggests no usable range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lrkit.errors import LRKitError, require

GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
METHODS = ("auto", "grid", "range-test")


@dataclass(frozen=True)
class LRRange:
    low: float
    high: float
    method: str
    details: dict[str, Any] = field(default_factory=dict)
    updates: int = 0        # training updates the search for the range cost


def grid_range(task: Any, *, optimizer: str | None = None, optimizer_kwargs: dict | None = None, seed: int = 0,
               budget: int | None = None, device: str = "cpu") -> LRRange:
    """The FIX-grid range (see the module docstring)."""
    from lrkit.bench.trainer import run_trial

    budget = budget or task.budget
    steps = max(2 * task.eval_every, budget // 10)
    scores: dict[float, float] = {}
    updates, bad_in_row = 0, 0
    for lr in GRID:
        res = run_trial(task, f"FIX(k0={lr})", budget=steps, target=1.0, seed=seed, device=device,
                        optimizer=optimizer, optimizer_kwargs=optimizer_kwargs, stop_at_target=False,
                        early_stop=False)
        updates += res.steps
        score = -1.0 if res.status == "diverged" or not math.isfinite(res.best_acc) else res.best_acc
        scores[lr] = score
        best = max(scores.values())
        bad_in_row = bad_in_row + 1 if score < best - 0.05 else 0
        if bad_in_row >= 2:
            break
    best = max(scores.values())
    if best <= 0:
        raise LRKitError(f"no LR in the grid {list(scores)} trained task {task.name!r}: every run diverged")
    high = max(lr for lr, s in scores.items() if s >= best - 0.02)
    return LRRange(low=high / 20, high=high, method="grid",
                   details={"steps_per_lr": steps, "best_acc_by_lr": {f"{k:g}": v for k, v in scores.items()}},
                   updates=updates)


def range_test_range(task: Any, *, optimizer: str | None = None, optimizer_kwargs: dict | None = None,
                     seed: int = 0, budget: int | None = None, device: str = "cpu") -> LRRange:
    """The range-test range (raises LRKitError when the range test suggests no usable range)."""
    from lrkit.rangetest import task_range_test

    if optimizer_kwargs:
        task = task.replace(optimizer_kwargs=dict(optimizer_kwargs))
    steps = max(100, min(500, (budget or task.budget) // 5))
    result = task_range_test(task, optimizer=optimizer, seed=seed, steps=steps)
    suggestion = result.suggest()
    high = float(suggestion.lr)
    low = min(float(suggestion.base_lr or high / 4), high / 3)
    if not (math.isfinite(high) and high > 0 and 0 < low < high):
        raise LRKitError(f"the range test suggested no usable range (low={low!r}, high={high!r})")
    return LRRange(low=low, high=high, method="range-test",
                   details={"suggestion": suggestion.method, "reason": suggestion.reason,
                            "stop_reason": result.stop_reason},
                   updates=int(len(result.lrs)))


def find_lr_range(task: Any, method: str | tuple[float, float] = "auto", **kwargs: Any) -> LRRange:
    """The candidates' LR range by ``method`` in ``METHODS`` (see the module docstring), or ``(low, high)``."""
    if isinstance(method, (tuple, list)):
        low, high = (float(v) for v in method)
        require(0 < low < high, "0 < low < high", low=low, high=high)
        return LRRange(low=low, high=high, method="given")
    if method not in METHODS:
        raise LRKitError(f"unknown LR-range method {method!r}; use one of {METHODS}")
    if method == "grid":
        return grid_range(task, **kwargs)
    if method == "range-test":
        return range_test_range(task, **kwargs)
    try:
        return range_test_range(task, **kwargs)
    except LRKitError as err:  # no usable suggestion: the grid still works
        found = grid_range(task, **kwargs)
        return LRRange(found.low, found.high, "grid", {**found.details, "range_test_unavailable": str(err)},
                       found.updates)
