"""LRBench's trial metrics and the two early-stop rules of verification (Wu & Liu, ACM TIST 2022: utility,
cost and robustness; docs/lrbench-verify.md, "One trial" and "verify").

- Utility: top-1 accuracy; average confidence = mean max-softmax probability over the
  *correctly classified* test samples; confidence spread = its (population) standard deviation.
- Robustness: spread of a metric across seeds (:func:`spread`); train-test loss gap.
- Divergence (:func:`divergence_reason`): a non-finite loss, or a mean training loss above
  ``factor`` × the loss of the very first batch.
- Unreachable target (:func:`unreachable_reason`, rule :class:`UnreachableRule`).
- A stored result judged again at a calibrated validation target (:func:`rejudged`;
  :mod:`lrkit.lrbench.search.calibration` says why and how the target is found).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


def confidence_stats(max_prob: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray) -> tuple[float, float]:
    """``(mean, std)`` of the max-softmax probability over correctly classified samples.

    ``conf = mean_{i: pred_i = y_i} max_c softmax(z_i)_c``; ``std`` is the population standard
    deviation over the same samples. Both are 0.0 when no sample is classified correctly.

    Example:
        >>> mean, std = confidence_stats([0.9, 0.5, 0.7], [True, False, True])
        >>> round(mean, 6), round(std, 6)
        (0.8, 0.1)
    """
    p = np.asarray(max_prob, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    if not ok.any():
        return 0.0, 0.0
    chosen = p[ok]
    return float(chosen.mean()), float(chosen.std())


def spread(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Mean, sample standard deviation (ddof=1; 0 for one value), min and max of the non-None values.

    Example:
        >>> spread([1.0, 2.0, 3.0])
        {'n': 3, 'mean': 2.0, 'std': 1.0, 'min': 1.0, 'max': 3.0}
    """
    vals = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if vals.size == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    std = float(vals.std(ddof=1)) if vals.size > 1 else 0.0
    return {"n": int(vals.size), "mean": float(vals.mean()), "std": std, "min": float(vals.min()),
            "max": float(vals.max())}


def divergence_reason(train_loss: float, test_loss: float, first_loss: float, factor: float = 5.0) -> str | None:
    """Why a run counts as diverged, or None.

    Diverged iff the mean training loss since the last evaluation or the test loss is NaN/inf,
    or the mean training loss exceeds ``factor`` × the loss of the first batch (for 10 classes
    the first loss is about ln 10 = 2.3, so the default trips above about 11.5).
    """
    if not math.isfinite(train_loss):
        return f"the training loss became {train_loss}"
    if not math.isfinite(test_loss):
        return f"the test loss became {test_loss}"
    if math.isfinite(first_loss) and train_loss > factor * first_loss:
        return (f"the training loss exploded to {train_loss:.4g}, over {factor:g}x the first batch's loss "
                f"{first_loss:.4g}")
    return None


@dataclass(frozen=True)
class UnreachableRule:
    """When verification gives up on a run that can no longer plausibly reach the target.

    At an evaluation at update ``s`` of a budget ``B``, with best accuracy so far ``a*``, the
    run is declared unreachable iff all of these hold:

    1. ``s >= min_fraction × B`` (never in the first half by default: many policies only
       deliver their accuracy after a late decay);
    2. at least ``window + 1`` evaluations exist;
    3. the optimistic projection stays below the target:
       ``a* + g × (B − s) + slack < target``, where ``g >= 0`` is the *largest* accuracy gain per
       update between two consecutive evaluations among the last ``window + 1`` (as if the
       best recent interval repeated for the whole remaining budget), and ``slack`` allows for
       evaluation noise;
    4. the policy keeps the LR regime the trend was measured under: every LR it will use in the
       remaining budget lies in ``[lo / lr_change, hi × lr_change]``, where ``[lo, hi]`` is the
       range of LRs used over the window. A decay still ahead (step, cosine, a cycle's descent)
       often lifts accuracy suddenly, and a rise ahead can speed up a run whose LR is too low;
       no trend foresees either, so such a run is never stopped by this rule.

    Args:
        min_fraction: the fraction of the budget before which no run is stopped, in [0, 1].
        window: evaluations (intervals) the recent trend is read from, >= 1.
        slack: accuracy added to the projection, >= 0.
        lr_change: the factor by which the LR ahead may leave the recent range, >= 1.
    """

    min_fraction: float = 0.5
    window: int = 4
    slack: float = 0.02
    lr_change: float = 2.0


def unreachable_reason(steps: Sequence[int], accs: Sequence[float], target: float, budget: int,
                       recent_lr: tuple[float, float] | None = None, future_lr: tuple[float, float] | None = None,
                       rule: UnreachableRule = UnreachableRule(), metric: str = "accuracy",
                       sign: int = 1) -> str | None:
    """Apply :class:`UnreachableRule` to an accuracy curve; the reason for stopping, or None.

    Args:
        steps: the update counts of the evaluations so far (increasing).
        accs: the test accuracies at those evaluations.
        target: the target accuracy.
        budget: the total number of updates.
        recent_lr: ``(min, max)`` of the LRs used over the window (None: no LR information).
        future_lr: ``(min, max)`` of the LRs the policy will use in the remaining budget.
        rule: the thresholds.
        metric, sign: how the message names the values, and ``-1`` when they are a "min" metric negated
            (the message shows the metric's own values).
    """
    if not steps:
        return None
    s = int(steps[-1])
    remaining = budget - s
    if s < rule.min_fraction * budget or len(steps) < rule.window + 1 or remaining <= 0:
        return None
    best = max(accs)
    recent_steps = np.asarray(steps[-(rule.window + 1):], dtype=np.float64)
    recent_accs = np.asarray(accs[-(rule.window + 1):], dtype=np.float64)
    gain = max(0.0, float(np.max(np.diff(recent_accs) / np.diff(recent_steps))))
    projection = best + gain * remaining + rule.slack
    if projection >= target:
        return None
    if recent_lr is not None and future_lr is not None and (
            future_lr[0] < recent_lr[0] / rule.lr_change or future_lr[1] > recent_lr[1] * rule.lr_change):
        return None
    worse = "<" if sign > 0 else ">"
    return (f"target unreachable at update {s} of {budget}: the best {metric} is {sign * best:.4f}; even the "
            f"fastest recent gain ({gain:.3g} per update) kept for the remaining {remaining} updates, plus slack "
            f"{rule.slack:g}, projects {sign * projection:.4f} {worse} target {sign * target:g}, and the policy's "
            f"LR ahead stays within {rule.lr_change:g}x of its recent range")


def finite_number(value: Any) -> bool:
    """Whether a stored value is a finite number (a stored result holds None where a NaN was measured)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def rejudged(result: dict[str, Any], val_target: float) -> dict[str, Any]:
    """A stored result (:meth:`lrkit.lrbench.run.result.TrialResult.to_dict`) judged on validation at
    ``val_target`` (a copy; the result itself when it was judged there already, or on test): its
    ``steps_to_target`` is the first evaluation at or above it, or, when the run stopped at the target before
    its curve got there, the update it stopped at."""
    if result.get("on") != "val" or result.get("val_target") == val_target:
        return result
    curve = result.get("curve") or []
    first = next((p["step"] for p in curve if finite_number(p.get("val_acc")) and p["val_acc"] >= val_target), None)
    val_at, test_at = result.get("val_steps_to_target"), result.get("test_steps_to_target")
    if first is None and val_at is not None and test_at is not None and curve and \
            curve[-1]["step"] == max(val_at, test_at) and curve[-1]["step"] < (result.get("budget") or math.inf):
        first = curve[-1]["step"]  # stopped at the (uncalibrated) target: counted where it stopped
    return {**result, "steps_to_target": first, "val_steps_to_target": first, "val_target": val_target}
