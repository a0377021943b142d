"""The range test's suggestion rules on synthetic curves (pure numpy, no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from lrkit.rangetest.suggest import (Pick, accuracy, all_picks, ema, minimum, no_signal, preferred_pick, smooth,
                                     steepest, trim, valley)

N = 200
LRS = 1e-6 * (1e6) ** (np.arange(N) / (N - 1))  # 1e-6 .. 1


def loss_curve(center: float = 1e-2, width: float = 0.6, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """2.3 plateau, a sigmoid descent to 0.3 centred at ``center`` (in log10 units ``width``), then blow-up."""
    x = np.log10(LRS)
    descent = 2.0 / (1 + np.exp(-(x - np.log10(center)) / (width / 4)))
    blow = np.exp(np.clip((x - np.log10(center) - 1.2) * 4, -50, 50)) - np.exp(-50)
    rng = np.random.default_rng(seed)
    return 2.3 - descent + 0.3 * blow + noise * rng.standard_normal(N)


def torch_lr_finder_steepest(lrs: np.ndarray, raw: np.ndarray) -> float:
    """What torch-lr-finder 0.2.2 does: EMA (not debiased, f=0.05) then argmin of np.gradient, skip 10/5."""
    s = [raw[0]]
    for value in raw[1:]:
        s.append(0.05 * value + 0.95 * s[-1])
    s = np.array(s)[10:-5]
    return float(lrs[10:-5][np.argmin(np.gradient(s))])


def test_ema_is_debiased_and_matches_the_formula() -> None:
    assert np.allclose(ema(np.full(50, 3.0)), 3.0)
    x = np.array([1.0, 2.0, 4.0])
    m1 = 0.05 * 1
    m2 = 0.95 * m1 + 0.05 * 2
    m3 = 0.95 * m2 + 0.05 * 4
    assert np.allclose(ema(x), [m1 / 0.05, m2 / (1 - 0.95 ** 2), m3 / (1 - 0.95 ** 3)])


def test_smooth_removes_a_short_spike_and_has_no_lag() -> None:
    x = np.linspace(0, 1, 100)
    spiked = x.copy()
    spiked[40:43] += 5.0
    assert np.max(np.abs(smooth(spiked, 9) - x)[5:-5]) < 0.025  # the +5 spike is gone (ramp shifts by <= 2 points)
    # a linear ramp is reproduced in the interior: a centred smoother does not shift it
    assert np.allclose(smooth(x, 9)[8:-8], x[8:-8])


def test_steepest_finds_the_descent() -> None:
    pick = steepest(LRS, loss_curve(center=1e-2, noise=0.02))
    assert pick.available and 1e-2 / 2 < pick.lr < 1e-2 * 2
    assert pick.base_lr == pytest.approx(pick.lr / 4)


def test_steepest_is_not_fooled_by_an_early_spike() -> None:
    raw = loss_curve(center=1e-2, noise=0.01)
    raw[22:25] += 8.0  # three bad batches at lr ~ 5e-6, just past the ignored first 10%
    pick = steepest(LRS, raw)
    assert 1e-2 / 2 < pick.lr < 1e-2 * 2
    # the test has teeth: the EMA + np.gradient rule lands in the spike's decay, three decades too low
    assert torch_lr_finder_steepest(LRS, raw) < 1e-4


def test_steepest_has_no_ema_lag() -> None:
    raw = loss_curve(center=1e-2, width=1.0, noise=0.0)
    assert steepest(LRS, raw).lr == pytest.approx(1e-2, rel=0.1)
    assert torch_lr_finder_steepest(LRS, raw) > 1.5e-2  # the EMA shifts its pick to the right


def test_loss_rules_survive_a_nan_tail() -> None:
    raw = loss_curve(center=1e-3)
    raw[150:] = np.nan
    for pick in all_picks(LRS, raw).values():
        if pick.method == "accuracy":
            continue
        assert pick.available and np.isfinite(pick.lr) and pick.index < 150, pick
    assert minimum(LRS, raw).index < 150


def test_valley_matches_the_longest_decreasing_subsequence_rule() -> None:
    raw = loss_curve(center=1e-3, noise=0.05, seed=3)
    s = smooth(raw)
    first, stop = trim(N)
    seg = s[first:stop]
    # reference: the plain O(n^2) double loop of the published rule
    lds = [1] * len(seg)
    best_end = 0
    for i in range(1, len(seg)):
        for j in range(i):
            if seg[i] < seg[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[best_end] < lds[i]:
                best_end = i
    start = best_end - lds[best_end]
    third = (best_end - start) / 3
    expected = first + start + int(third) + int(third / 2)
    assert valley(LRS, raw).index == expected


def test_minimum_is_a_tenth_of_the_lowest_point() -> None:
    raw = loss_curve(center=1e-3)
    pick = minimum(LRS, raw)
    assert pick.lr == pytest.approx(LRS[pick.index] / 10)
    assert pick.index == trim(N)[0] + int(np.argmin(smooth(raw)[trim(N)[0]:trim(N)[1]]))


def accuracy_curve(rise_at: float, plateau_at: float, noise: float = 0.02, seed: int = 0) -> np.ndarray:
    """0.1 until ``rise_at``, linear in log-LR up to 0.9 at ``plateau_at``, flat, then collapsing past 10x."""
    x = np.log10(LRS)
    a, b = np.log10(rise_at), np.log10(plateau_at)
    acc = 0.1 + 0.8 * np.clip((x - a) / (b - a), 0, 1)
    acc = np.where(x > b + 1, 0.9 - 2 * (x - b - 1), acc)
    return np.clip(acc, 0.1, 1) + noise * np.random.default_rng(seed).standard_normal(N)


def test_accuracy_rule_reads_clr_bounds() -> None:
    pick = accuracy(LRS, accuracy_curve(1e-4, 1e-2))
    assert pick.available
    assert 1e-4 <= pick.base_lr < 1e-4 * 3.5  # 10% of the rise: 0.4 decade above its start
    assert 1e-2 / 2 < pick.lr <= 1e-2 * 1.5  # 95% of the rise: just before the plateau


def test_accuracy_base_ignores_an_early_bump_over_the_10_percent_line() -> None:
    acc = accuracy_curve(1e-3, 1e-1, noise=0.005)
    acc[30:45] += 0.2  # a short-lived early bump at lr ~ 1e-5
    pick = accuracy(LRS, acc)
    assert 1e-3 <= pick.base_lr < 3.5e-3


def test_accuracy_rule_falls_back_to_max_over_4_for_a_sudden_rise() -> None:
    pick = accuracy(LRS, accuracy_curve(1e-3, 1.5e-3, noise=0.005))
    assert pick.available and pick.base_lr == pytest.approx(pick.lr / 4)
    assert "sudden" in pick.reason


def test_accuracy_rule_stops_where_the_curve_turns_ragged() -> None:
    acc = accuracy_curve(1e-4, 1e-1, noise=0.01)
    rng = np.random.default_rng(1)
    ragged_from = np.searchsorted(LRS, 1e-2)
    acc[ragged_from:] += 0.25 * rng.standard_normal(N - ragged_from)
    pick = accuracy(LRS, acc)
    assert "ragged" in pick.reason and pick.lr < 2e-2


def test_flat_accuracy_falls_back_to_the_loss_rules() -> None:
    flat = 0.1 + 0.01 * np.random.default_rng(0).standard_normal(N)
    picks = all_picks(LRS, loss_curve(center=1e-2, noise=0.02), flat)
    assert not picks["accuracy"].available and "does not rise" in picks["accuracy"].reason
    chosen, why = preferred_pick(picks)
    assert chosen.method == "minimum" and "accuracy: accuracy does not rise" in why


def test_preferred_pick_follows_the_preference_order() -> None:
    picks = all_picks(LRS, loss_curve(center=1e-2), accuracy_curve(1e-4, 1e-2))
    assert preferred_pick(picks)[0].method == "accuracy"
    picks = all_picks(LRS, loss_curve(center=1e-2))
    assert preferred_pick(picks)[0].method == "minimum"
    no_minimum = {**picks, "minimum": Pick("minimum", None, None, None, "x")}
    chosen, why = preferred_pick(no_minimum)
    assert chosen.method == "steepest" and "minimum: x" in why


def test_too_short_or_flat_curves_give_no_pick_with_a_reason() -> None:
    short = all_picks(LRS[:5], np.ones(5))
    assert all(not p.available and "finite points" in p.reason for p in short.values() if p.method != "accuracy")
    flat = steepest(LRS, np.full(N, 2.3))
    assert not flat.available and flat.reason
    nothing, why = preferred_pick(all_picks(LRS[:5], np.ones(5)))
    assert not nothing.available and why


def test_a_flat_sweep_carries_no_signal_and_gets_no_recommendation() -> None:
    import lrkit
    from lrkit.errors import LRKitError
    from lrkit.rangetest.result import RangeTestResult

    rng = np.random.default_rng(0)
    # issue 17's sweep: loss 2.30 -> 2.26, accuracy never above 0.147 (10 classes, noisy batches)
    flat_loss = np.linspace(2.30, 2.26, N) + 0.02 * rng.standard_normal(N)
    flat_acc = np.clip(0.1 + np.linspace(0, 0.03, N) + 0.01 * rng.standard_normal(N), 0, 0.147)
    reason = no_signal(LRS, flat_loss, flat_acc)
    assert reason is not None and "never falls more than 10% below its start" in reason
    assert "never closes more than 15% of the gap" in reason
    assert no_signal(LRS, flat_loss) is not None  # loss only: the loss alone decides
    # a normal sweep, and either curve moving alone, is a signal
    assert no_signal(LRS, loss_curve(center=1e-2, noise=0.02), accuracy_curve(1e-4, 1e-2)) is None
    assert no_signal(LRS, loss_curve(center=1e-2, noise=0.02), flat_acc) is None
    assert no_signal(LRS, flat_loss, accuracy_curve(1e-4, 1e-2)) is None
    assert no_signal(LRS[:5], flat_loss[:5]) is None  # too short to tell: the rules say so themselves

    result = RangeTestResult(LRS, flat_loss, ema(flat_loss), flat_acc, None, lrkit.parse("FIX(k0=1)"), "exp", N,
                             "completed", "training batches", iters_per_epoch=10)
    assert result.no_signal == reason
    with pytest.raises(LRKitError, match="no bounds are suggested: the curve carries no signal"):
        result.suggest()
    with pytest.raises(LRKitError, match="carries no signal"):
        result.policy("triangular2")
    assert "a guess: the curve carries no signal" in result.suggest("minimum").reason  # asked for: given, marked
    assert result.to_dict()["no_signal"] == reason and "error" in result.to_dict()["recommended"]
    normal = RangeTestResult(LRS, loss_curve(center=1e-2), ema(loss_curve(center=1e-2)), accuracy_curve(1e-4, 1e-2),
                             None, lrkit.parse("FIX(k0=1)"), "exp", N, "completed", "training batches")
    assert normal.no_signal is None and normal.suggest().method == "accuracy"


def test_recommend_is_a_deprecated_name_of_preferred_pick() -> None:
    # renamed apart from lrkit.recommend (the LRBench search); the old name works for one release
    import lrkit.rangetest
    import lrkit.rangetest.suggest

    for module in (lrkit.rangetest, lrkit.rangetest.suggest):
        with pytest.warns(DeprecationWarning, match="preferred_pick"):
            assert module.recommend is preferred_pick
    with pytest.warns(DeprecationWarning):
        from lrkit.rangetest import recommend
    assert recommend is preferred_pick
    assert "recommend" not in lrkit.rangetest.__all__
    with pytest.raises(AttributeError):
        lrkit.rangetest.no_such_name  # noqa: B018
