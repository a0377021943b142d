"""Golden values of the modern curves, their behaviour past the horizon, and their rules.

Expected values are hand-derived or come from scalar re-statements of the reference
semantics (PyTorch's OneCycleLR phase table, HF transformers' WSD and inverse-sqrt lambdas,
SGDR's cycle table built by a plain loop), never from the code under test.
"""

from __future__ import annotations

import doctest
import math
import warnings

import numpy as np
import pytest

import lrkit
from lrkit.errors import SpecError
from lrkit.policies import curves

HUGE = 10**9


def values(spec, steps):
    return lrkit.parse(spec).values(steps)


@pytest.mark.parametrize(
    "spec, steps, expected",
    [
        ("constant(lr=0.1)", [0, 1, HUGE], [0.1, 0.1, 0.1]),
        ("linear(start_lr=0.1, end_lr=0, total_steps=100)", [0, 25, 50, 100, 101, HUGE], [0.1, 0.075, 0.05, 0, 0, 0]),
        ("linear(start_lr=0, end_lr=0.2, total_steps=4)", [0, 1, 2, 4, 5], [0, 0.05, 0.1, 0.2, 0.2]),
        ("cosine(max_lr=0.1, total_steps=100)", [0, 50, 100, 150, 200, HUGE], [0.1, 0.05, 0, 0, 0, 0]),
        ("cosine(max_lr=0.11, total_steps=100, min_lr=0.01)", [0, 50, 100, 200], [0.11, 0.06, 0.01, 0.01]),
        ("cosine(max_lr=1, total_steps=3)", [1, 2], [0.75, 0.25]),
        ("cosine_restarts(max_lr=0.1, first_cycle_steps=10)", [0, 5, 10, 15, 20, HUGE],
         [0.1, 0.05, 0.1, 0.05, 0.1, 0.1]),
        ("cosine_restarts(max_lr=0.1, first_cycle_steps=10, cycle_mult=2)",
         [0, 5, 10, 20, 30, 50, 70, 110], [0.1, 0.05, 0.1, 0.05, 0.1, 0.05, 0.1, 0.05]),
        ("cosine_restarts(max_lr=0.11, first_cycle_steps=4, cycle_mult=3, min_lr=0.01)",
         [0, 2, 4, 10, 16], [0.11, 0.06, 0.11, 0.06, 0.11]),
        ("wsd(max_lr=0.1, warmup_steps=10, stable_steps=80, decay_steps=10)",
         [0, 5, 10, 50, 89, 90, 95, 100, HUGE], [0, 0.05, 0.1, 0.1, 0.1, 0.1, 0.05, 0, 0]),
        ("wsd(max_lr=0.11, warmup_steps=10, stable_steps=0, decay_steps=100, min_lr=0.01, decay=cosine)",
         [0, 5, 10, 60, 110, 111], [0.01, 0.06, 0.11, 0.06, 0.01, 0.01]),
        ("wsd(max_lr=0.1, warmup_steps=0, stable_steps=10, decay_steps=100, decay=sqrt)",
         [0, 9, 10, 35, 110], [0.1, 0.1, 0.1, 0.05, 0]),
        ("inverse_sqrt(max_lr=0.1, warmup_steps=100)", [0, 50, 100, 400, 10_000, HUGE],
         [0, 0.05, 0.1, 0.05, 0.01, 0.1 / math.sqrt(1e7)]),
        ("inverse_sqrt(max_lr=0.1, warmup_steps=0)", [0, 30_000], [0.1, 0.05]),
        ("inverse_sqrt(max_lr=0.1, warmup_steps=10, timescale=40)", [10, 130], [0.1, 0.05]),
    ],
)
def test_hand_derived_values(spec, steps, expected):
    np.testing.assert_allclose(values(spec, steps), expected, rtol=1e-12, atol=1e-15)


def onecycle_reference(t, max_lr, total, pct, anneal, div, final_div, three_phase):
    """OneCycleLR's documented phase table, one step at a time (t <= total - 1)."""
    initial = max_lr / div
    low = initial / final_div
    ends = [pct * total - 1, total - 1]
    lrs = [(initial, max_lr), (max_lr, low)]
    if three_phase:
        ends = [pct * total - 1, 2 * pct * total - 2, total - 1]
        lrs = [(initial, max_lr), (max_lr, initial), (initial, low)]
    start = 0.0
    for i, end in enumerate(ends):
        if t <= end or i == len(ends) - 1:
            frac = (t - start) / (end - start)
            a, b = lrs[i]
            if anneal == "cos":
                return b + (a - b) / 2 * (math.cos(math.pi * frac) + 1)
            return a + (b - a) * frac
        start = end
    raise AssertionError("unreachable")


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("total, pct", [(1000, 0.3), (97, 0.25), (10, 0.15)])
def test_onecycle_follows_pytorchs_phase_table_and_holds_its_last_lr(anneal, three_phase, total, pct):
    spec = (f"onecycle(max_lr=0.2, total_steps={total}, pct_start={pct}, anneal={anneal}, div_factor=20, "
            f"final_div_factor=100, three_phase={str(three_phase).lower()})")
    policy = lrkit.parse(spec)
    steps = np.arange(total)
    expected = [onecycle_reference(float(t), 0.2, total, pct, anneal, 20, 100, three_phase) for t in steps]
    np.testing.assert_allclose(policy.values(steps), expected, rtol=1e-12, atol=1e-17)
    final = 0.2 / 20 / 100
    assert policy(0) == pytest.approx(0.01, rel=1e-12)
    assert policy(total - 1) == pytest.approx(final, rel=1e-12)
    # PyTorch raises past total_steps; a policy holds its final LR for any later step
    held = policy.values([total, total + 1, 2 * total, HUGE])
    assert np.all(held == policy(total - 1))


def test_onecycle_peak_is_at_pytorchs_phase_end():
    policy = lrkit.parse("onecycle(max_lr=0.1, total_steps=100)")
    assert policy(29) == 0.1 and policy(28) < 0.1 and policy(30) < 0.1


def sgdr_reference(t, max_lr, t0, mult, min_lr):
    """Walk the cycles one by one: lengths t0, t0*m, t0*m^2, ..."""
    start, length = 0.0, float(t0)
    while t >= start + length:
        start, length = start + length, length * mult
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * (t - start) / length)) / 2


@pytest.mark.parametrize("mult", [1, 2, 3, 1.5, 1.1])
def test_cosine_restarts_matches_a_cycle_by_cycle_walk(mult):
    policy = lrkit.parse(f"cosine_restarts(max_lr=0.1, first_cycle_steps=7, cycle_mult={mult}, min_lr=0.001)")
    steps = np.arange(0, 3000, 1.0)
    expected = [sgdr_reference(t, 0.1, 7, mult, 0.001) for t in steps]
    np.testing.assert_allclose(policy.values(steps), expected, rtol=1e-11)


def test_cosine_restarts_real_mult_restarts_exactly_at_its_cycle_starts():
    policy = curves.CosineRestarts(max_lr=0.1, first_cycle_steps=8, cycle_mult=1.5)
    index, start, length = policy.cycle_of(np.array([0.0, 7.9, 8.0, 19.99, 20.0, 38.0]))
    np.testing.assert_array_equal(index, [0, 0, 1, 1, 2, 3])
    np.testing.assert_allclose(start, [0, 0, 8, 8, 20, 38])
    np.testing.assert_allclose(length, [8, 8, 12, 12, 18, 27])


def wsd_reference(t, max_lr, w, s, d, min_lr, decay):
    """HF transformers' WSD lambda (linear warm-up, min_lr_ratio = min_lr / max_lr), times max_lr."""
    ratio = min_lr / max_lr
    if t < w:
        return max_lr * ((t / max(1, w)) * (1 - ratio) + ratio)
    if t < w + s:
        return max_lr
    if t < w + s + d:
        p = (t - w - s) / max(1, d)
        factor = {"linear": 1 - p, "cosine": 0.5 * (1 + math.cos(math.pi * p)), "sqrt": 1 - math.sqrt(p)}[decay]
        return max_lr * (factor * (1 - ratio) + ratio)
    return max_lr * ratio


@pytest.mark.parametrize("decay", ["linear", "cosine", "sqrt"])
def test_wsd_matches_transformers_lambda(decay):
    spec = f"wsd(max_lr=0.3, warmup_steps=37, stable_steps=200, decay_steps=91, min_lr=0.003, decay={decay})"
    steps = np.arange(0, 400)
    expected = [wsd_reference(t, 0.3, 37, 200, 91, 0.003, decay) for t in steps]
    np.testing.assert_allclose(values(spec, steps), expected, rtol=1e-12)


def test_inverse_sqrt_matches_transformers_lambda():
    def reference(t, w, timescale=None):
        timescale = timescale or w or 10_000
        if t < w:
            return t / max(1, w)
        return 1.0 / math.sqrt((t + timescale - w) / timescale)

    steps = np.arange(0, 5000, 3)
    for w, ts in [(100, None), (0, None), (250, 1000), (1, None)]:
        policy = curves.InverseSqrt(max_lr=0.5, warmup_steps=w, timescale=ts)
        np.testing.assert_allclose(policy.values(steps), [0.5 * reference(t, w, ts) for t in steps], rtol=1e-12)


@pytest.mark.parametrize(
    "spec",
    [
        "constant(lr=0.1)",
        "linear(start_lr=0.1, end_lr=0.001, total_steps=1000)",
        "cosine(max_lr=0.1, total_steps=1000, min_lr=0.001)",
        "onecycle(max_lr=0.1, total_steps=1000, three_phase=true)",
        "cosine_restarts(max_lr=0.1, first_cycle_steps=10, cycle_mult=2)",
        "cosine_restarts(max_lr=0.1, first_cycle_steps=10, cycle_mult=1.0000001)",
        "cosine_restarts(max_lr=0.1, first_cycle_steps=1, cycle_mult=1000)",
        "wsd(max_lr=0.1, warmup_steps=10, stable_steps=80, decay_steps=10, decay=sqrt)",
        "inverse_sqrt(max_lr=0.1, warmup_steps=0)",
    ],
)
def test_a_billion_steps_is_finite_without_warnings(spec):
    policy = lrkit.parse(spec)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        out = policy.values([HUGE, 4e15, 0.0])
    assert np.all(np.isfinite(out)) and np.all(out >= 0)
    assert policy.values(np.float64(3.0)).shape == () and policy.values([[1, 2]]).shape == (1, 2)


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("constant(lr=-1)", "`lr >= 0`"),
        ("linear(start_lr=0.1, end_lr=-0.1, total_steps=10)", "`end_lr >= 0`"),
        ("linear(start_lr=0.1, end_lr=0, total_steps=0)", "`total_steps > 0`"),
        ("linear(start_lr=0.1, end_lr=0, total_steps=10.5)", "`total_steps` must be an integer"),
        ("cosine(max_lr=0.01, total_steps=10, min_lr=0.1)",
         "`max_lr >= min_lr` must hold, but got (min_lr=0.1, max_lr=0.01)"),
        ("onecycle(max_lr=0.1, total_steps=100, pct_start=1)", "`0 < pct_start < 1`"),
        ("onecycle(max_lr=0.1, total_steps=3, pct_start=0.3)", "`pct_start * total_steps > 1`"),
        ("onecycle(max_lr=0.1, total_steps=100, pct_start=0.6, three_phase=true)", "total_steps + 1"),
        ("onecycle(max_lr=0.1, total_steps=100, anneal=cosine)", "`anneal` must be one of 'cos', 'linear'"),
        ("onecycle(max_lr=0.1, total_steps=100, div_factor=0.5)", "`div_factor >= 1`"),
        ("onecycle(max_lr=0.1, total_steps=100, final_div_factor=0)", "`final_div_factor >= 1`"),
        ("cosine_restarts(max_lr=0.1, first_cycle_steps=0)", "`first_cycle_steps > 0`"),
        ("cosine_restarts(max_lr=0.1, first_cycle_steps=10, cycle_mult=0.5)", "`1 <= cycle_mult <= 1000`"),
        ("cosine_restarts(max_lr=0.1, first_cycle_steps=10, cycle_mult=1e300)", "`1 <= cycle_mult <= 1000`"),
        ("wsd(max_lr=0.1, warmup_steps=-1, stable_steps=1, decay_steps=1)", "`warmup_steps >= 0`"),
        ("wsd(max_lr=0.1, warmup_steps=1, stable_steps=1, decay_steps=1, decay=exp)", "`decay` must be one of"),
        ("wsd(max_lr=0.1, warmup_steps=1, stable_steps=1, decay_steps=1, min_lr=1)", "`max_lr >= min_lr`"),
        ("inverse_sqrt(max_lr=0.1, warmup_steps=10, timescale=0)", "`timescale > 0`"),
        ("inverse_sqrt(max_lr=-0.1, warmup_steps=10)", "`max_lr >= 0`"),
    ],
)
def test_every_rule_is_checked_with_the_values_in_the_message(spec, fragment):
    with pytest.raises(SpecError) as info:
        lrkit.parse(spec)
    assert fragment in str(info.value)


def test_aliases_parse_to_the_same_policy():
    assert lrkit.parse("one_cycle(max_lr=0.1, total_steps=100)") == lrkit.parse("onecycle(max_lr=0.1, total_steps=100)")
    assert lrkit.parse("sgdr(0.1, 10, 2)") == curves.CosineRestarts(max_lr=0.1, first_cycle_steps=10, cycle_mult=2)


def test_docstring_examples_hold():
    result = doctest.testmod(curves)
    assert result.failed == 0 and result.attempted > 0
