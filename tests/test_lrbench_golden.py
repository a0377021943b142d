"""Golden values of LRBench's 34 functions and CLR's three policies.

Expected values come from outside the implementation: a plain scalar re-statement of each
formula as docs/policies.md tables it (with ``math``, LRBench's ``asin(sin(.))`` triangle and
``-t/l - floor(-t/l)`` sawtooth, one function per name), and hand-derived arrays at the
corners of the cycle and at ``t = 10**9``.
"""

from __future__ import annotations

import dataclasses
import doctest
import math
import pickle
import warnings

import numpy as np
import pytest

import lrkit
from lrkit.errors import SpecError
from lrkit.policies import clr, cyclic, decaying, restarts
from numerics import assert_lrs

K0, K1, G, P, L = 0.01, 0.11, 0.999, 0.75, 100.0
A = K1 - K0
STEPS = [0, 1, 25, 50, 99, 100, 101, 150, 199, 200, 201, 250, 300, 333, 399, 400, 999, 1234, 5000]
HUGE = 10**9  # 5e6 full cycles of 2 L, 1e7 restart periods of L


def tri(t):
    return (2 / math.pi) * abs(math.asin(math.sin(math.pi * t / (2 * L))))


def sin_(t):
    return abs(math.sin(math.pi * t / (2 * L)))


def cos_(t):
    return 0.5 * (1 + math.cos(math.pi * t / L))


def upcos(t):
    return 0.5 * (1 + math.cos(math.pi * (t / L + 1)))


def s(t):
    return -t / L - math.floor(-t / L)


def halve(n):
    return 2.0 ** -n


# name -> (spec, scalar re-statement of its formula in docs/policies.md)
REFERENCE = {
    "FIX": (f"FIX(k0={K0})", lambda t: K0),
    "STEP": (f"STEP(k0={K1}, gamma=0.5, l={L})", lambda t: K1 * 0.5 ** math.floor(t / L)),
    "NSTEP": (f"NSTEP(k0={K1}, gamma=0.1, l=[100, 250, 1000])",
              lambda t: K1 * 0.1 ** sum(b <= t for b in (100, 250, 1000))),
    "EXP": (f"EXP(k0={K1}, gamma={G})", lambda t: K1 * G**t),
    "INV": (f"INV(k0={K1}, gamma=0.01, p={P})", lambda t: K1 * (1 + 0.01 * t) ** (-P)),
    "POLY": (f"POLY(k0={K0}, k1={K1}, p=2, l=400)", lambda t: A * (1 - min(t, 400) / 400) ** 2 + K0),
    "SIG": (f"SIG(k0={K1}, gamma=-0.02, l=200)", lambda t: K1 / (1 + math.exp(0.02 * (t - 200)))),
    "TRI": (f"TRI(k0={K0}, k1={K1}, l={L})", lambda t: A * tri(t) + K0),
    "TRI2": (f"TRI2(k0={K0}, k1={K1}, l={L})", lambda t: A * tri(t) * halve(math.floor(t / (2 * L))) + K0),
    "TRIEXP": (f"TRIEXP(k0={K0}, k1={K1}, gamma={G}, l={L})", lambda t: A * tri(t) * G**t + K0),
    "SIN": (f"SIN(k0={K0}, k1={K1}, l={L})", lambda t: A * sin_(t) + K0),
    "SIN2": (f"SIN2(k0={K0}, k1={K1}, l={L})", lambda t: A * sin_(t) * halve(math.floor(t / (2 * L))) + K0),
    "SINEXP": (f"SINEXP(k0={K0}, k1={K1}, gamma={G}, l={L})", lambda t: A * sin_(t) * G**t + K0),
    "COS": (f"COS(k0={K0}, k1={K1}, l={L})", lambda t: A * cos_(t) + K0),
    "COS2": (f"COS2(k0={K0}, k1={K1}, l={L})", lambda t: A * cos_(t) * halve(math.floor((t + L) / (2 * L))) + K0),
    "COSEXP": (f"COSEXP(k0={K0}, k1={K1}, gamma={G}, l={L})", lambda t: A * cos_(t) * G**t + K0),
    "UPCOS": (f"UPCOS(k0={K0}, k1={K1}, l={L})", lambda t: A * upcos(t) + K0),
    "UPCOS2": (f"UPCOS2(k0={K0}, k1={K1}, l={L})", lambda t: A * upcos(t) * halve(math.floor(t / (2 * L))) + K0),
    "UPCOSEXP": (f"UPCOSEXP(k0={K0}, k1={K1}, gamma={G}, l={L})", lambda t: A * upcos(t) * G**t + K0),
    "DTRI": (f"DTRI(k0={K0}, k1={K1}, l={L})", lambda t: A * tri(t + L) + K0),
    "DTRI2": (f"DTRI2(k0={K0}, k1={K1}, l={L})", lambda t: A * tri(t + L) * halve(math.floor((t + L) / (2 * L))) + K0),
    "DTRIEXP": (f"DTRIEXP(k0={K0}, k1={K1}, gamma={G}, l={L})", lambda t: A * tri(t + L) * G**t + K0),
    "DSIN": (f"DSIN(k0={K0}, k1={K1}, l={L})", lambda t: A * sin_(t + L) + K0),
    "DSIN2": (f"DSIN2(k0={K0}, k1={K1}, l={L})", lambda t: A * sin_(t + L) * halve(math.floor((t + L) / (2 * L))) + K0),
    "DSINEXP": (f"DSINEXP(k0={K0}, k1={K1}, gamma={G}, l={L})", lambda t: A * sin_(t + L) * G**t + K0),
    "RSW": (f"RSW(k0={K0}, k1={K1}, l={L})", lambda t: A * s(t) + K0),
    "RSW2": (f"RSW2(k0={K0}, k1={K1}, l={L})", lambda t: A * s(t) * halve(math.floor(t / L)) + K0),
    "RSWEXP": (f"RSWEXP(k0={K0}, k1={K1}, gamma={G}, l={L})", lambda t: A * s(t) * G**t + K0),
    "SINRSW": (f"SINRSW(k0={K0}, k1={K1}, l={L})", lambda t: A * math.sin(math.pi / 2 * s(t)) + K0),
    "SINRSW2": (f"SINRSW2(k0={K0}, k1={K1}, l={L})",
                lambda t: A * math.sin(math.pi / 2 * s(t)) * halve(math.floor(t / L)) + K0),
    "SINRSWEXP": (f"SINRSWEXP(k0={K0}, k1={K1}, gamma={G}, l={L})",
                  lambda t: A * math.sin(math.pi / 2 * s(t)) * G**t + K0),
    "COSRSW": (f"COSRSW(k0={K0}, k1={K1}, l={L})", lambda t: A * 0.5 * (1 - math.cos(math.pi * s(t))) + K0),
    "COSRSW2": (f"COSRSW2(k0={K0}, k1={K1}, l={L})",
                lambda t: A * 0.5 * (1 - math.cos(math.pi * s(t))) * halve(math.floor(t / L)) + K0),
    "COSRSWEXP": (f"COSRSWEXP(k0={K0}, k1={K1}, gamma={G}, l={L})",
                  lambda t: A * 0.5 * (1 - math.cos(math.pi * s(t))) * G**t + K0),
}

# the value at t = 10**9, derived by hand: 10**9 is a whole number of cycles (2 L) and of periods (L)
AT_HUGE = {
    "FIX": K0, "STEP": 0.0, "NSTEP": K1 * 1e-3, "EXP": 0.0, "INV": K1 * (1 + 1e7) ** -P, "POLY": K0, "SIG": 0.0,
    "TRI": K0, "TRI2": K0, "TRIEXP": K0, "SIN": K0, "SIN2": K0, "SINEXP": K0,
    "COS": K1, "COS2": K0, "COSEXP": K0, "UPCOS": K0, "UPCOS2": K0, "UPCOSEXP": K0,
    "DTRI": K1, "DTRI2": K0, "DTRIEXP": K0, "DSIN": K1, "DSIN2": K0, "DSINEXP": K0,
    **{name: K0 for name in ("RSW", "RSW2", "RSWEXP", "SINRSW", "SINRSW2", "SINRSWEXP",
                             "COSRSW", "COSRSW2", "COSRSWEXP")},
}


def test_the_catalogue_is_complete():
    names = set(REFERENCE)
    assert len(names) == 34 == len(AT_HUGE)
    assert names <= set(lrkit.policies())


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_values_match_the_published_formula(name, numerics):
    spec, formula = REFERENCE[name]
    policy = lrkit.parse(spec)
    assert policy.name == name
    expected = np.array([formula(float(t)) for t in STEPS])
    np.testing.assert_allclose(policy.values(STEPS), expected, rtol=1e-12, atol=1e-15)
    assert_lrs([policy(t) for t in STEPS], policy.values(STEPS), name)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_a_billion_steps_is_finite_and_right_without_warnings(name):
    policy = lrkit.parse(REFERENCE[name][0])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        value = policy(HUGE)
        many = policy.values(np.array([HUGE, HUGE + 1.0, 4e15]))
    assert np.all(np.isfinite(many)) and np.all(many >= 0)
    # phase of sin/cos at 1e9 carries ~1e-9 of rounding; the amplitude is 0.1
    assert value == pytest.approx(AT_HUGE[name], rel=1e-9, abs=1e-8)


@pytest.mark.parametrize(
    "spec, steps, expected",
    [
        # hand-derived corners: k0 = 0.01, k1 = 0.11, l = 100
        ("TRI(k0=0.01, k1=0.11, l=100)", [0, 50, 100, 150, 200], [0.01, 0.06, 0.11, 0.06, 0.01]),
        ("TRI2(k0=0.01, k1=0.11, l=100)", [100, 300, 500, 700], [0.11, 0.06, 0.035, 0.0225]),
        ("DTRI(k0=0.01, k1=0.11, l=100)", [0, 50, 100, 200], [0.11, 0.06, 0.01, 0.11]),
        ("DTRI2(k0=0.01, k1=0.11, l=100)", [0, 100, 200, 400], [0.11, 0.01, 0.06, 0.035]),
        ("SIN(k0=0.01, k1=0.11, l=100)", [0, 100, 200, 300], [0.01, 0.11, 0.01, 0.11]),
        ("SIN2(k0=0.01, k1=0.11, l=100)", [100, 300], [0.11, 0.06]),
        ("COS(k0=0.01, k1=0.11, l=100)", [0, 50, 100, 200], [0.11, 0.06, 0.01, 0.11]),
        ("COS2(k0=0.01, k1=0.11, l=100)", [0, 100, 200, 400], [0.11, 0.01, 0.06, 0.035]),
        ("UPCOS(k0=0.01, k1=0.11, l=100)", [0, 50, 100, 200], [0.01, 0.06, 0.11, 0.01]),
        ("UPCOS2(k0=0.01, k1=0.11, l=100)", [100, 300], [0.11, 0.06]),
        ("TRIEXP(k0=0, k1=1, gamma=0.5, l=2)", [0, 1, 2, 3], [0, 0.25, 0.25, 0.0625]),
        ("RSW(k0=0.01, k1=0.11, l=100)", [0, 1, 50, 99, 100, 101], [0.01, 0.109, 0.06, 0.011, 0.01, 0.109]),
        ("RSW2(k0=0.01, k1=0.11, l=100)", [1, 101, 201], [0.109, 0.0595, 0.03475]),
        ("COSRSW(k0=0.01, k1=0.11, l=100)", [0, 50, 100], [0.01, 0.06, 0.01]),
        ("SINRSW(k0=0, k1=1, l=3)", [0, 1, 2], [0, math.sqrt(3) / 2, 0.5]),
        ("STEP(k0=0.1, gamma=0.5, l=100)", [0, 99, 100, 199, 200], [0.1, 0.1, 0.05, 0.05, 0.025]),
        ("NSTEP(k0=1, gamma=0.5, l=[1, 3])", [0, 1, 2, 3, 10**9], [1, 0.5, 0.5, 0.25, 0.25]),
        ("NSTEP(k0=1, gamma=0.5, l=[2, 2, 5])", [1, 2, 4, 5], [1, 0.25, 0.25, 0.125]),
        ("EXP(k0=1, gamma=0.5)", [0, 1, 10, 10**9], [1, 0.5, 2**-10, 0]),
        ("INV(k0=1, gamma=1, p=2)", [0, 1, 3], [1, 0.25, 1 / 16]),
        ("POLY(k0=0.01, k1=0.11, p=1, l=100)", [0, 50, 100, 200], [0.11, 0.06, 0.01, 0.01]),
        ("SIG(k0=0.1, gamma=-1, l=5)", [5, 10**9], [0.05, 0]),
        ("SIG(k0=0.1, gamma=1, l=5)", [5, 10**9], [0.05, 0.1]),
    ],
)
def test_hand_derived_corners(spec, steps, expected):
    np.testing.assert_allclose(lrkit.parse(spec).values(steps), expected, rtol=1e-12, atol=1e-15)


def test_tri_and_tri2_are_clrs_triangular_and_triangular2():
    steps = np.arange(0, 20_001, 7)
    for k0, k1, l in [(0.001, 0.006, 2000), (0.0, 0.1, 3), (0.02, 0.02, 1.5)]:
        assert np.array_equal(cyclic.TRI(k0, k1, l).values(steps), clr.Triangular(k0, k1, l).values(steps))
        assert np.array_equal(cyclic.TRI2(k0, k1, l).values(steps), clr.Triangular2(k0, k1, l).values(steps))
        exp = clr.ExpRange(k0, k1, l, 0.9999)
        assert np.array_equal(cyclic.TRIEXP(k0, k1, 0.9999, l).values(steps), exp.values(steps))
        assert exp.as_lrbench() == cyclic.TRIEXP(k0=k0, k1=k1, gamma=0.9999, l=l)
        assert clr.Triangular(k0, k1, l).as_lrbench() == cyclic.TRI(k0, k1, l)
        assert clr.Triangular2(k0, k1, l).as_lrbench() == cyclic.TRI2(k0, k1, l)


def test_clr_matches_the_papers_formula():
    base, peak, size, gamma = 0.001, 0.006, 250, 0.999

    def paper(t, mode):
        cycle = math.floor(1 + t / (2 * size))
        x = abs(t / size - 2 * cycle + 1)
        scale = {"triangular": 1, "triangular2": 1 / 2 ** (cycle - 1), "exp_range": gamma**t}[mode]
        return base + (peak - base) * max(0.0, 1 - x) * scale

    steps = list(range(0, 2001, 13)) + [250, 500, 750, 1000]
    for spec, mode in [(f"triangular({base}, {peak}, {size})", "triangular"),
                       (f"triangular2({base}, {peak}, {size})", "triangular2"),
                       (f"exp_range({base}, {peak}, {size}, {gamma})", "exp_range")]:
        expected = [paper(t, mode) for t in steps]
        np.testing.assert_allclose(lrkit.parse(spec).values(steps), expected, rtol=1e-12)


def test_nstep_has_no_hidden_state_any_order_gives_the_same_values():
    policy = lrkit.parse("NSTEP(k0=0.1, gamma=0.1, l=[100, 200, 300])")
    forward = [policy(t) for t in range(0, 400)]
    backward = [policy(t) for t in reversed(range(0, 400))][::-1]
    shuffled_steps = np.random.default_rng(0).permutation(400)
    shuffled = dict(zip(shuffled_steps.tolist(), policy.values(shuffled_steps)))
    assert forward == backward  # the scalar path, twice
    assert_lrs([shuffled[t] for t in range(400)], forward, "shuffled vector path")
    assert policy(350) < policy(0) and policy(0) == 0.1  # going back to 0 after 350 gives k0 again
    assert policy.values([[350, 0], [150, 250]]).shape == (2, 2)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_vectorised_shapes_pickle_and_spec_round_trip(name):
    policy = lrkit.parse(REFERENCE[name][0])
    grid = np.arange(12.0).reshape(3, 4) * 37
    assert policy.values(grid).shape == (3, 4)
    assert policy.values(np.float64(5.0)).shape == ()
    assert_lrs(policy.values(grid).ravel(), [policy(t) for t in grid.ravel()], name)
    assert pickle.loads(pickle.dumps(policy)) == policy
    assert lrkit.parse(policy.spec()) == policy


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("FIX(k0=-1)", "`k0 >= 0`"),
        ("STEP(k0=-0.1, gamma=0.5, l=10)", "`k0 >= 0`"),
        ("STEP(k0=0.1, gamma=1.5, l=10)", "`0 < gamma <= 1` must hold, but got (gamma=1.5)"),
        ("STEP(k0=0.1, gamma=0, l=10)", "`0 < gamma <= 1`"),
        ("STEP(k0=0.1, gamma=0.5, l=0)", "`l > 0`"),
        ("NSTEP(k0=0.1, gamma=0.5, l=[])", "`len(l) >= 1`"),
        ("NSTEP(k0=0.1, gamma=0.5, l=[0, 5])", "`every boundary in l > 0`"),
        ("NSTEP(k0=0.1, gamma=0.5, l=[50, 5])", "`l non-decreasing` must hold, but got (l=[50, 5])"),
        ("NSTEP(k0=0.1, gamma=0.5, l=50)", "`l` must be a list"),
        ("EXP(k0=0.1, gamma=1.01)", "`0 < gamma <= 1`"),
        ("INV(k0=0.1, gamma=-1, p=1)", "`gamma >= 0`"),
        ("INV(k0=0.1, gamma=1, p=-1)", "`p >= 0`"),
        ("POLY(k0=0.2, k1=0.1, p=1, l=10)", "`k1 >= k0` must hold, but got (k0=0.2, k1=0.1)"),
        ("POLY(k0=0, k1=0.1, p=0, l=10)", "`p > 0`"),
        ("POLY(k0=0, k1=0.1, p=1, l=-1)", "`l > 0`"),
        ("SIG(k0=0.1, gamma=1, l=-1)", "`l >= 0`"),
        ("TRI2(k0=0.2, k1=0.1, l=10)", "`k1 >= k0`"),
        ("COS(k0=-0.1, k1=0.1, l=10)", "`k0 >= 0`"),
        ("DSIN(k0=0, k1=0.1, l=0)", "DSIN: `l > 0`"),
        ("TRI(k0=0, k1=0.1, l=1e-300)", "TRI: `l >= 1e-06` must hold, but got (l=1e-300)"),
        ("STEP(k0=0.1, gamma=0.5, l=1e-9)", "`l >= 1e-06`"),
        ("COSEXP(k0=0, k1=0.1, gamma=2, l=10)", "COSEXP: `0 < gamma <= 1`"),
        ("RSWEXP(k0=0, k1=0.1, gamma=-0.5, l=10)", "`0 < gamma <= 1`"),
        ("SINRSW(k0=0, k1=0.1)", "SINRSW needs 'l'"),
        ("triangular(base_lr=0.2, max_lr=0.1, step_size=10)", "`max_lr >= base_lr`"),
        ("triangular2(base_lr=0, max_lr=0.1, step_size=0)", "`step_size > 0`"),
        ("exp_range(base_lr=0, max_lr=0.1, step_size=10, gamma=1.5)", "`0 < gamma <= 1`"),
        ("exp_range(base_lr=-1, max_lr=0.1, step_size=10, gamma=0.5)", "`base_lr >= 0`"),
    ],
)
def test_every_rule_is_checked_with_the_values_in_the_message(spec, fragment):
    with pytest.raises(SpecError) as info:
        lrkit.parse(spec)
    assert fragment in str(info.value)


def test_extreme_valid_parameters_never_give_nan_inf_or_warnings():
    """Random redraws of every catalogue example's numbers from extreme values, kept if valid."""
    from examples import CORE_EXAMPLES
    from lrkit.policies import curves
    from lrkit.policies.base import _field_types

    modules = {m.__name__ for m in (decaying, cyclic, restarts, clr, curves)}
    leaves = [p for p in map(lrkit.parse, CORE_EXAMPLES) if type(p).__module__ in modules]
    assert len({p.name for p in leaves}) == 44
    floats = [0.0, 1e-300, 1e-6, 0.001, 0.5, 0.9999999, 1.0, 2.0, 100.0, 1e6, 1e300, -1e300, -5.0]
    ints = [0, 1, 2, 3, 10, 10**6, 10**12]
    steps = np.array([0, 1, 2, 3, 7, 99, 100, 1000, 12345, 10**6, 10**9, 4e15])
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(3000):
        base = leaves[rng.integers(len(leaves))]
        hints = _field_types(type(base))
        changes = {}
        for field in dataclasses.fields(base):
            pool = floats if hints[field.name] is float else ints if hints[field.name] is int else None
            if pool is not None and rng.random() < 0.5:
                changes[field.name] = pool[rng.integers(len(pool))]
        try:
            policy = dataclasses.replace(base, **changes)
        except lrkit.PolicyError:
            continue
        with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
            warnings.simplefilter("error")
            out = policy.values(steps)
        assert np.all(np.isfinite(out)) and np.all(out >= 0), policy.spec()
        checked += 1
    assert checked > 1000


def test_every_parameter_is_documented_with_its_range():
    from lrkit.policies import curves

    modules = {m.__name__ for m in (decaying, cyclic, restarts, clr, curves)}
    classes = [c for c in lrkit.policies().values() if c.__module__ in modules]
    assert len(classes) == 44
    for cls in classes:
        doc = cls.__doc__ or ""
        assert "Args:" in doc and "Example:" in doc and cls.formula, cls.name
        for field in dataclasses.fields(cls):
            assert f"        {field.name}: " in doc, (cls.name, field.name)


def test_docstring_examples_hold():
    for module in (decaying, cyclic, restarts, clr):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0, module.__name__
