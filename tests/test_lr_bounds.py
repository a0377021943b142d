"""No accepted spec gives an LR of inf, and no valid spec makes numpy warn.

A policy whose LRs would overflow is refused where it is built, naming the parameters (as a negative
LR is): ``scale`` checks ``factor`` times its child's :meth:`~lrkit.policies.Policy.lr_bound`,
``exp_sweep`` its ratio ``end_lr / start_lr``. Formulas whose intermediate values overflowed in a
branch that ``np.where`` then dropped (huge step counts, a huge ``start_lr``) no longer do, so they
give their values without a ``RuntimeWarning``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lrkit
from lrkit.errors import PolicyError

STEPS = np.array([0, 1, 2, 5, 10, 999, 1000, 1001, 10**6, 10**9], dtype=np.float64)


@pytest.mark.parametrize("text, message, marked", [
    ("scale(FIX(k0=1e308), factor=10)",
     "scale: `factor * (the policy's largest LR) <= 1.8e308` must hold, but got (policy=FIX(k0=1e+308), factor=10).",
     ["FIX(k0=1e308)", "factor=10"]),
    ("scale(warmup(FIX(k0=0.1), steps=10, start_lr=1e300), factor=1e10)",
     "scale: `factor * (the policy's largest LR) <= 1.8e308` must hold",
     ["warmup(", "factor="]),
    ("exp_sweep(start_lr=0.1, end_lr=1e308, total_steps=1000)",   # the ratio overflows
     "exp_sweep: `2.2e-308 <= end_lr / start_lr <= 1.8e308` must hold, but got (start_lr=0.1, end_lr=1e+308).",
     ["start_lr=", "end_lr="]),
    ("exp_sweep(start_lr=1e-310, end_lr=1, total_steps=1000)",     # a subnormal start: 1 / 1e-310 is inf
     "exp_sweep: `2.2e-308 <= end_lr / start_lr <= 1.8e308` must hold, but got (start_lr=1e-310, end_lr=1).",
     ["start_lr=", "end_lr="]),
    ("exp_sweep(start_lr=1e300, end_lr=1e-30, total_steps=10)",    # the ratio underflows: LRs of 0 mid-sweep
     "exp_sweep: `2.2e-308 <= end_lr / start_lr <= 1.8e308` must hold", ["start_lr=", "end_lr="]),
])
def test_a_policy_whose_lrs_would_overflow_is_refused_naming_its_parameters(text, message, marked):
    with pytest.raises(lrkit.SpecError) as info:
        lrkit.parse(text)
    assert str(info.value).splitlines()[0].startswith(message)
    assert info.value.positions == tuple(text.index(m) for m in marked)


def test_the_same_rules_hold_in_python():
    from lrkit.policies.combinators import Scale
    from lrkit.policies.decaying import FIX

    with pytest.raises(PolicyError) as info:
        Scale(policy=FIX(k0=1e308), factor=10)
    assert info.value.fields == ("policy", "factor")
    assert Scale(policy=FIX(k0=1e307), factor=10).lr_bound() == 1e308  # at the edge: finite, accepted


@pytest.mark.parametrize("text", [
    # the cases, accepted and finite
    f"wsd(max_lr=0.1, warmup_steps=1, stable_steps={10**308}, decay_steps={10**308})",  # was an OverflowError
    "warmup(FIX(k0=0.1), steps=1000, start_lr=1e308)",       # the ramp overflowed past the warm-up
    # found by the fuzzer (benchmarks/fuzz_specs.py)
    "wsd(max_lr=0.1, warmup_steps=1.7976931348623157e308, stable_steps=1e308, decay_steps=5)",
    f"cosine_restarts(max_lr=0.1, first_cycle_steps={10**308}, cycle_mult=100)",
    f"inverse_sqrt(max_lr=0.1, warmup_steps={10**308}, timescale=1e308)",
    "ralr(FIX(k0=1e308), iters_per_epoch=1, p=1, draw=factor, max_factor=10)",  # f(t) * factor past float64
    "scale(FIX(k0=1e307), factor=10)",
    "exp_sweep(start_lr=1e-300, end_lr=1e7, total_steps=1000)",
    "clip(scale(FIX(k0=1e300), factor=1e8), max_lr=1)",
])
def test_extreme_but_valid_specs_give_finite_lrs_without_warnings(text):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = lrkit.parse(text)
        values = p.values(STEPS)
        scalars = [p(t) for t in (0, 1, 10**9)]
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    assert np.all(np.isfinite(scalars))
    assert values.max() <= p.lr_bound() * (1 + 1e-12)


def test_a_plugin_policy_without_a_bound_is_not_checked():
    import dataclasses

    from lrkit.policies import Policy

    @dataclasses.dataclass(frozen=True, repr=False)
    class Unbounded(Policy):
        name = "unbounded_demo"

        def _lr(self, t):
            return 0.1 + 0 * t

    from lrkit.policies.combinators import Scale

    assert Unbounded().lr_bound() is None
    assert Scale(policy=Unbounded(), factor=1e300).lr_bound() is None  # unknown, so accepted


def test_ralr_is_defined_past_two_to_the_64_draws():
    # the draw index became the generator's uint64 counter by a cast that overflowed (a RuntimeWarning and an
    # undefined counter) from t = 2**64 * iters_per_epoch on; now it wraps, and any finite t has an LR
    p = lrkit.parse("ralr(FIX(k0=0.01), iters_per_epoch=1, p=0.5, max_lr=0.05, seed=3)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = p.values([0, 2.0**63, 2.0**64, 1e20, 1e300])
        assert p(1e20) == values[3]
    assert np.all((values >= 0.01) & (values <= 0.05))
    assert values[2] == values[0]  # 2**64 draws wrap to draw 0


def test_any_policy_whose_bound_is_past_float64_is_refused():
    # the safety net in Policy.__post_init__, for a policy (a plugin's, say) that multiplies without checking
    import dataclasses

    from lrkit.policies import Policy

    @dataclasses.dataclass(frozen=True, repr=False)
    class Doubling(Policy):
        name = "doubling_demo"
        lr: float

        def lr_bound(self):
            return 2 * self.lr

        def _lr(self, t):
            return 2 * self.lr + 0 * t

    assert Doubling(lr=1e308 / 2).lr_bound() == 1e308
    with pytest.raises(PolicyError, match=r"doubling_demo: `the largest LR is finite \(below 1.8e308\)` must hold, "
                                          r"but got \(lr=1e\+308\)") as info:
        Doubling(lr=1e308)
    assert info.value.fields == ("lr",)
