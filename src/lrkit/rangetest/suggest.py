"""LR suggestions from a range test's curve. Every function here is a pure function of arrays.

Two smoothers, for two jobs:

- :func:`ema` is causal (debiased exponential moving average,
  ``m_i = beta m_{i-1} + (1 - beta) x_i``, ``s_i = m_i / (1 - beta^(i+1))``). The sweep needs it
  online to stop at divergence, and it is the curve fastai and torch-lr-finder plot. It lags:
  with ``1 - beta = 0.05`` a feature shows up about 20 points late, which on a 200-point sweep
  over 6 decades is ~0.6 decade, so a pick read off the EMA is biased towards higher LRs.
- :func:`smooth` is centred (a running median of ``w`` points, then a running mean of ``w``
  points): no lag, and the median removes spikes shorter than ``w/2`` points outright. The
  suggestions read this curve; they are computed after the sweep, so they can look ahead.

Methods (each returns a :class:`Pick` with the LR, a base LR and the reason):

- ``accuracy`` (CLR: Smith, WACV 2017, section 3.3): ``base`` = where the smoothed accuracy last passes 10%
  of its total rise before reaching the plateau; ``max`` = where it reaches 95% of the rise (stops rising) or, earlier, where
  it turns ragged (local roughness > 2.5x its median over the rise). Falls back to
  ``base = max/4`` when the rise has no clear start (above 10% from the first point) or
  is too sudden (base > max/3). A flat accuracy curve (rise < 5 points and < 3 noise units) has
  no pick.
- ``steepest``: most negative ``d loss / d ln(lr)`` of the smoothed loss, searched only between
  the first 10% of points and the loss minimum (a descent after the minimum is noise).
- ``valley``: fastai's rule: the longest strictly decreasing run (longest decreasing
  subsequence) of the smoothed loss; the pick sits halfway along it.
- ``minimum``: the LR at the smoothed loss minimum, divided by 10.

Loss-based picks use CLR's rule of thumb ``base_lr = lr / 4``.

A curve that carries no signal gets no recommendation (:func:`no_signal`): the smoothed loss never
falls more than 10% below its start and the smoothed accuracy (when recorded) never closes more
than 15% of the gap from its start to 1. Every rule would still find a "pick" in such a curve (the
lowest point of noise), but it would be a guess. On digits-mlp, accuracy measured on batches of 32:
sweeps to 1e-3, which train nothing, fall 0.7-1.8% and close 7.2-11.2% of the gap by noise alone
(20-100 points, seeds 0 and 1); random labels fall 7.1% and close 6.6%; the default 200-point
sweep to 1 falls 36% and closes 54%, Adam's 85% and 89%, a 40-point sweep on 320 examples 2.6% and 20%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("accuracy", "valley", "steepest", "minimum")
#: the order in which :func:`preferred_pick` prefers the methods that produced a pick. Among the loss
#: rules, minimum/10 trained best as a fixed LR and valley worst (it is the most conservative) in
#: benchmarks/rangetest_compare.py (Fashion-MNIST MLP, SGD and Adam, 3 seeds each).
PREFERENCE = ("accuracy", "minimum", "steepest", "valley")
BASE_DIVISOR = 4.0


@dataclass(frozen=True)
class Pick:
    """One method's suggestion. ``lr is None`` when the method had nothing to say (``reason`` says why)."""

    method: str
    lr: float | None
    base_lr: float | None
    index: int | None
    reason: str

    @property
    def available(self) -> bool:
        return self.lr is not None


# ---- curves ---------------------------------------------------------------------------------------
def ema(values: np.ndarray, weight: float = 0.05) -> np.ndarray:
    """Debiased EMA with ``weight = 1 - beta`` on the newest value; NaN/inf propagate forward."""
    x = np.asarray(values, dtype=np.float64)
    out = np.empty_like(x)
    beta, avg = 1.0 - weight, 0.0
    for i, value in enumerate(x):
        avg = beta * avg + weight * value
        out[i] = avg / (1.0 - beta ** (i + 1))
    return out


def default_window(n: int) -> int:
    """Odd smoothing window: 5 points for short curves, about 4.5% of the points for long ones."""
    return 2 * max(2, n // 45) + 1


def smooth(values: np.ndarray, window: int | None = None) -> np.ndarray:
    """Centred running median then running mean, each over ``window`` points (shrunk at the ends)."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n == 0:
        return x.copy()
    half = (window or default_window(n)) // 2
    med = np.array([np.median(x[max(0, i - half): i + half + 1]) for i in range(n)])
    csum = np.concatenate(([0.0], np.cumsum(med)))
    lo = np.maximum(np.arange(n) - half, 0)
    hi = np.minimum(np.arange(n) + half + 1, n)
    return (csum[hi] - csum[lo]) / (hi - lo)


def finite_length(values: np.ndarray) -> int:
    """How many leading values are finite (the curve is cut at the first NaN/inf)."""
    bad = ~np.isfinite(np.asarray(values, dtype=np.float64))
    return int(np.argmax(bad)) if bad.any() else len(bad)


def trim(n: int) -> tuple[int, int]:
    """``(first, stop)``: the index range the loss methods search, leaving out the first 10% and last 2.5%."""
    first = n // 10
    stop = n - max(1, n // 40)
    return first, stop


def _prepare(lrs: np.ndarray, values: np.ndarray, window: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    lrs = np.asarray(lrs, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if lrs.shape != values.shape or lrs.ndim != 1:
        raise ValueError(f"lrs and values must be 1-d arrays of one length, but got {lrs.shape} and {values.shape}")
    n = min(finite_length(values), finite_length(lrs))
    return lrs[:n], smooth(values[:n], window), n


MIN_POINTS = 10


def _too_short(method: str, n: int) -> Pick:
    return Pick(method, None, None, None, f"only {n} finite points; at least {MIN_POINTS} are needed")


def _loss_pick(method: str, lrs: np.ndarray, index: int, reason: str, divisor: float = 1.0) -> Pick:
    lr = float(lrs[index]) / divisor
    return Pick(method, lr, lr / BASE_DIVISOR, int(index), reason)


# ---- loss methods ---------------------------------------------------------------------------------
def steepest(lrs: np.ndarray, losses: np.ndarray, window: int | None = None) -> Pick:
    """The LR where the smoothed loss falls fastest per unit of ``ln(lr)``, before the minimum."""
    lrs, s, n = _prepare(lrs, losses, window)
    first, stop = trim(n)
    if n < MIN_POINTS:
        return _too_short("steepest", n)
    low = first + int(np.argmin(s[first:stop]))
    if low <= first + 1:
        return Pick("steepest", None, None, None, "the smoothed loss never falls after the first 10% of the sweep")
    slope = np.gradient(s, np.log(lrs))
    index = first + int(np.argmin(slope[first:low + 1]))
    if slope[index] >= 0:
        return Pick("steepest", None, None, None, "the smoothed loss has no descending stretch")
    return _loss_pick("steepest", lrs, index,
                      f"the smoothed loss falls fastest here ({slope[index]:.3g} per e-fold of LR), "
                      f"before its minimum at lr={lrs[low]:.3g}")


def valley(lrs: np.ndarray, losses: np.ndarray, window: int | None = None) -> Pick:
    """fastai's valley: halfway along the longest decreasing subsequence of the smoothed loss."""
    lrs, s, n = _prepare(lrs, losses, window)
    first, stop = trim(n)
    if n < MIN_POINTS:
        return _too_short("valley", n)
    seg = s[first:stop]
    length = np.ones(len(seg), dtype=np.int64)
    for i in range(1, len(seg)):
        higher = seg[:i] > seg[i]
        if higher.any():
            length[i] = int(length[:i][higher].max()) + 1
    end = int(np.argmax(length))  # the first longest run, as fastai keeps
    start = end - int(length[end])
    if length[end] < 3:
        return Pick("valley", None, None, None, "the smoothed loss has no decreasing stretch")
    section = (end - start) / 3
    index = first + start + int(section) + int(section / 2)
    return _loss_pick("valley", lrs, index,
                      f"halfway along the longest descent of the smoothed loss "
                      f"(lr={lrs[first + max(start, 0)]:.3g} to {lrs[first + end]:.3g}), fastai's valley rule")


def minimum(lrs: np.ndarray, losses: np.ndarray, window: int | None = None) -> Pick:
    """A tenth of the LR at the smoothed loss minimum."""
    lrs, s, n = _prepare(lrs, losses, window)
    first, stop = trim(n)
    if n < MIN_POINTS:
        return _too_short("minimum", n)
    low = first + int(np.argmin(s[first:stop]))
    return _loss_pick("minimum", lrs, low,
                      f"the smoothed loss is lowest ({s[low]:.3g}) at lr={lrs[low]:.3g}; a tenth of that", 10.0)


# ---- CLR's accuracy rule --------------------------------------------------------------------------
START_FRACTION, STOP_FRACTION, RAGGED_FACTOR, MIN_RISE = 0.10, 0.95, 2.5, 0.05


def accuracy(lrs: np.ndarray, accuracies: np.ndarray | None, window: int | None = None) -> Pick:
    """CLR's bounds: base where accuracy starts to rise, max where it stops rising or turns ragged."""
    if accuracies is None:
        return Pick("accuracy", None, None, None, "no accuracy was recorded (range_test(metric='accuracy'), "
                                                       "or `lrkit range-test --metric accuracy`)")
    raw = np.asarray(accuracies, dtype=np.float64)
    lrs, a, n = _prepare(lrs, raw, window)
    if n < MIN_POINTS:
        return _too_short("accuracy", n)
    w = window or default_window(n)
    a0 = float(np.median(a[: max(3, n // 20)]))
    peak = int(np.argmax(a))
    rise = float(a[peak]) - a0
    residual = raw[:n] - a
    noise = 1.4826 * float(np.median(np.abs(residual - np.median(residual)))) / np.sqrt(w)
    if rise < MIN_RISE or rise < 3 * noise:
        return Pick("accuracy", None, None, None,
                    f"accuracy does not rise (rise {rise:.3g} < max({MIN_RISE}, 3 x noise {noise:.2g}))")
    stop_i = int(np.argmax(a >= a0 + STOP_FRACTION * rise))
    # the start of the rise that reaches the plateau: after the last point below 10%, so that an
    # early noise bump over the 10% line does not count as the start
    below = np.nonzero(a[:stop_i] < a0 + START_FRACTION * rise)[0]
    base_i = int(below[-1]) + 1 if len(below) else 0
    rough = np.sqrt(smooth(residual ** 2, w))
    typical = float(np.median(rough[base_i: stop_i + 1]))
    ragged = np.nonzero(rough[base_i: stop_i] > RAGGED_FACTOR * typical)[0] if typical > 0 else np.array([])
    if len(ragged):
        max_i, why = base_i + int(ragged[0]), "turns ragged"
    else:
        max_i, why = stop_i, f"stops rising (reaches {STOP_FRACTION:.0%} of its rise, {a[stop_i]:.3f})"
    max_lr = float(lrs[max_i])
    base_lr = float(lrs[base_i])
    reason = f"accuracy starts to rise at lr={base_lr:.3g} and {why} at lr={max_lr:.3g}"
    if base_i == 0 or base_i >= max_i:
        base_lr = max_lr / BASE_DIVISOR
        reason += f"; the rise has no clear start, so base = max/{BASE_DIVISOR:g}"
    elif base_lr > max_lr / 3:
        base_lr = max_lr / BASE_DIVISOR
        reason += f"; the rise is sudden (< 3x in LR), so base = max/{BASE_DIVISOR:g}"
    return Pick("accuracy", max_lr, base_lr, max_i, reason)


# ---- is there anything to read? -------------------------------------------------------------------
#: no signal: the loss falls at most this fraction of its start, and the accuracy closes at most this
#: fraction of the gap from its start to 1 (noise alone closed up to 11% on 32-example batches)
FLAT_LOSS_DROP, FLAT_ACCURACY_GAIN = 0.10, 0.15


def no_signal(lrs: np.ndarray, losses: np.ndarray, accuracies: np.ndarray | None = None,
              window: int | None = None) -> str | None:
    """Why the curve carries no signal, or None when it does (or is too short, or its loss is <= 0, to tell).

    No signal: the smoothed loss never falls more than :data:`FLAT_LOSS_DROP` (10%) below its start
    (the median of the first 5% of points, at least 3), and the smoothed accuracy, when recorded,
    never closes more than :data:`FLAT_ACCURACY_GAIN` (15%) of the gap from its start to 1:
    ``(max - start) / (1 - start)``. Either one moving is a signal.
    """
    lrs, s, n = _prepare(lrs, losses, window)
    if n < MIN_POINTS:
        return None
    head = max(3, n // 20)
    start = float(np.median(s[:head]))
    if not start > 0:
        return None
    drop = (start - float(s.min())) / start
    if drop > FLAT_LOSS_DROP:
        return None
    reason = (f"the smoothed loss never falls more than {FLAT_LOSS_DROP:.0%} below its start ("
              f"{start:.4g} at the start, {s.min():.4g} at its lowest: {drop:.1%})")
    if accuracies is not None:
        _, a, m = _prepare(lrs, np.asarray(accuracies, dtype=np.float64)[: len(lrs)], window)
        if m >= MIN_POINTS:
            a0 = float(np.median(a[:head]))
            gain = (float(a.max()) - a0) / (1 - a0) if a0 < 1 else 0.0
            if gain > FLAT_ACCURACY_GAIN:
                return None
            reason += (f" and the smoothed accuracy never closes more than {FLAT_ACCURACY_GAIN:.0%} of the gap from "
                       f"its start to 1 ({a0:.3f} at the start, {a.max():.3f} at its highest: {gain:.1%})")
    return reason


# ---- all together ---------------------------------------------------------------------------------
def all_picks(lrs: np.ndarray, losses: np.ndarray, accuracies: np.ndarray | None = None,
              window: int | None = None) -> dict[str, Pick]:
    """Every method's pick, in :data:`METHODS` order."""
    return {
        "accuracy": accuracy(lrs, accuracies, window),
        "valley": valley(lrs, losses, window),
        "steepest": steepest(lrs, losses, window),
        "minimum": minimum(lrs, losses, window),
    }


def preferred_pick(picks: dict[str, Pick]) -> tuple[Pick, str]:
    """The first available pick in :data:`PREFERENCE` order, and why it was preferred (naming the methods
    passed over and their reasons); a pick of method ``"none"`` when no method could read the curve."""
    for method in PREFERENCE:
        pick = picks.get(method)
        if pick is not None and pick.available:
            skipped = [f"{m}: {picks[m].reason}" for m in PREFERENCE[:PREFERENCE.index(method)] if m in picks]
            why = {"accuracy": "CLR's accuracy rule is preferred when an accuracy curve is available",
                   "minimum": "minimum/10 is preferred among the loss rules (it trained best as a fixed LR in "
                              "lrkit's comparison; see docs/rangetest.md)",
                   "steepest": "steepest descent is the next loss rule",
                   "valley": "valley (the most conservative loss rule) is the last resort"}[method]
            if skipped:
                why += " (" + "; ".join(skipped) + ")"
            return pick, why
    return Pick("none", None, None, None, "no method could read the curve"), "no method could read the curve"


def __getattr__(name: str) -> object:
    if name == "recommend":  # its name until 0.1; lrkit.recommend is the LRBench search
        import warnings

        warnings.warn("lrkit.rangetest.suggest.recommend is now preferred_pick; the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return preferred_pick
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
