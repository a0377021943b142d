"""Invariants every policy keeps, checked on every example in examples.EXAMPLES.

Finite and non-negative at any step (10**9 included), deterministic, the same from ``values``
as from ``__call__`` and in any order (within the numeric contract, ``numerics.assert_lrs``), the
same through the PyTorch adapter, and resumable bit-for-bit. The path-comparing tests also run with
numpy's vector path nudged an ulp off its scalar path (``numerics.vector_path_nudged``), as on a CPU
whose SIMD kernels round differently, so none of these claims rests on the two paths agreeing bit
for bit. The last test keeps the registry honest: every registered policy has an example.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest

import lrkit
from examples import EXAMPLES
from numerics import assert_lrs, vector_path_nudged

from lrkit.policies import Policy

# Integer steps from the start, around typical horizons, and far past them.
STEPS = np.array(sorted({*range(0, 64), *range(64, 40_000, 97), 99_999, 100_000, 123_457, 10**6, 10**7 + 3,
                         10**9 - 1, 10**9}), dtype=np.float64)


def _policy(text: str) -> Policy:
    return lrkit.parse(text)


@pytest.fixture(params=EXAMPLES, ids=EXAMPLES)
def spec(request) -> str:
    return request.param


def test_examples_exist():
    assert EXAMPLES, "examples.EXAMPLES is empty"


def test_finite_and_non_negative(spec):
    p = _policy(spec)
    values = p.values(STEPS)
    assert values.shape == STEPS.shape and values.dtype == np.float64
    assert np.all(np.isfinite(values)), STEPS[~np.isfinite(values)][:5]
    assert np.all(values >= 0), STEPS[values < 0][:5]
    for t in (0, 1, 10**9):
        assert np.isfinite(p(t)) and p(t) >= 0


def test_deterministic(spec):
    # a fresh parse, evaluated twice: no hidden state, no global random stream
    first, second = _policy(spec), _policy(spec)
    assert np.array_equal(first.values(STEPS), first.values(STEPS))
    assert np.array_equal(first.values(STEPS), second.values(STEPS))
    assert [first(t) for t in (0, 5, 10**9)] == [second(t) for t in (0, 5, 10**9)]


def test_values_agree_with_scalar_calls(spec, numerics):
    p = _policy(spec)
    ts = STEPS[::7]
    assert_lrs(p.values(ts), [p(float(t)) for t in ts], spec)
    assert_lrs(p.values(ts[:40].astype(int)), [p(int(t)) for t in ts[:40]], spec)


def test_any_order_gives_the_same_values(spec, numerics):
    p = _policy(spec)
    order = np.random.default_rng(0).permutation(STEPS.size)
    in_order = p.values(STEPS)
    assert_lrs(p.values(STEPS[order]), in_order[order], spec)
    assert_lrs(p.values(STEPS[::-1]), in_order[::-1], spec)
    assert_lrs(p.values(STEPS.reshape(-1, 1))[:, 0], in_order, spec)


def test_the_nudge_reaches_the_vector_path():
    # without this, the "nudged" runs above could pass because the nudge did nothing
    p = _policy("EXP(k0=0.1, gamma=0.9999)")
    ts = np.arange(1.0, 200.0)
    native = p.values(ts)
    with vector_path_nudged():
        nudged, scalar = p.values(ts), np.array([p(t) for t in ts])
    assert not np.array_equal(nudged, native) and not np.array_equal(nudged, scalar)
    assert_lrs(nudged, native, "nudged vs native")


# ---- through the PyTorch adapter --------------------------------------------------------------
def _adapter(spec: str):
    torch = pytest.importorskip("torch")
    from lrkit.torch import PolicyLR

    torch.set_num_threads(1)
    w = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([w], lr=0.1)
    return torch, opt, PolicyLR(opt, spec)


def _run(opt, sched, steps: int) -> list[float]:
    seen = []
    for _ in range(steps):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return seen


def test_adapter_lr_equals_policy(spec, numerics):
    p = _policy(spec)
    peak = float(p.values(STEPS).max())
    _, opt, sched = _adapter(spec)
    assert_lrs(_run(opt, sched, 300), [p(t) for t in range(300)], spec, scale=peak)
    # later stretches, reached by loading the step (the scheduler's whole state)
    for start in (997, 15_990, 10**6, 10**9 - 10):
        sched.load_state_dict({"step": start})
        assert_lrs(_run(opt, sched, 20), [p(t) for t in range(start, start + 20)], f"{spec} from {start}",
                   scale=peak)


def test_adapter_resume_is_bit_exact(spec, numerics):
    # exact on any CPU: the resumed run computes each LR by the same call as the uninterrupted one
    n, m = 173, 150
    torch, opt, sched = _adapter(spec)
    full = _run(opt, sched, n + m)

    _, opt, sched = _adapter(spec)
    head = _run(opt, sched, n)
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    _, opt2, sched2 = _adapter(spec)
    opt2.load_state_dict(state["opt"])
    sched2.load_state_dict(state["sched"])
    assert head + _run(opt2, sched2, m) == full


@pytest.mark.parametrize("spec", EXAMPLES[:: max(1, len(EXAMPLES) // 12)])
def test_a_join_segment_does_not_depend_on_what_follows(spec, numerics):
    # a composed policy replays its stages bit for bit: the LRs of segment 2 on [b, c) are the same
    # bits whether the join ends there (as while composing) or goes on (as when replayed)
    f = _policy(spec)
    b, c = 700, 1500
    short = lrkit.parse(f"join([FIX(k0=0.01), {spec}], boundaries=[{b}])")
    long = lrkit.parse(f"join([FIX(k0=0.01), {spec}, COS(k0=0, k1=0.1, l=300)], boundaries=[{b}, {c}])")
    for start in range(0, 2048, 256):  # PolicyLR's blocks
        block = np.arange(start, start + 256, dtype=np.float64)
        inside = (block >= b) & (block < c)
        assert np.array_equal(short.values(block)[inside], long.values(block)[inside])
    assert_lrs(short.values(np.arange(b, c)), f.values(np.arange(0, c - b)), spec)


# ---- the registry is covered --------------------------------------------------------------------
def _names(policy: Policy) -> set[str]:
    found = {policy.name}
    for field in dataclasses.fields(policy):
        value = getattr(policy, field.name)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, Policy):
                found |= _names(item)
    return found


def test_every_registered_policy_has_an_example():
    covered: set[str] = set()
    for text in EXAMPLES:
        covered |= _names(_policy(text))
    missing = sorted(set(lrkit.policies()) - covered)
    assert not missing, f"registered policies without an example in tests/examples*.py: {missing}"


def test_a_long_array_is_evaluated_as_its_pieces_would_be(spec):
    # past 2 * _CHUNK steps, values() works piece by piece (ints converted per piece); every formula is
    # elementwise, so each value is the one a short array gives for that step, whatever the dtype or shape
    from lrkit.policies.base import _CHUNK

    p = _policy(spec)
    n = 2 * _CHUNK + 1001
    ints = np.arange(n, dtype=np.int64) * 37 % 1_000_003  # not sorted, repeats, past typical horizons
    long = p.values(ints)
    short = np.concatenate([p.values(ints[i:i + 100_000].astype(np.float64)) for i in range(0, n, 100_000)])
    assert long.shape == (n,) and long.dtype == np.float64
    assert_lrs(long, short, spec)
    assert_lrs(p.values(ints.astype(np.float64)), short, spec)
    grid = np.concatenate([ints, ints[:1]]).reshape(2, -1)[:, ::-1]  # 2-D and not contiguous
    assert_lrs(p.values(grid), p.values(np.ascontiguousarray(grid, dtype=np.float64).ravel()).reshape(grid.shape), spec)


def test_the_lr_bound_holds_and_is_finite(spec):
    # every catalogue policy derives an upper bound from its parameters (combinators from their children's);
    # scale refuses parameters whose bound is past float64, so this is what keeps every LR finite
    p = _policy(spec)
    bound = p.lr_bound()
    assert bound is not None and np.isfinite(bound) and bound >= 0, bound
    values = p.values(STEPS)
    assert values.max() <= bound * (1 + 1e-12), (values.max(), bound)
    assert max(p(t) for t in (0, 1, 999, 10**9)) <= bound * (1 + 1e-12)


def test_every_registered_policy_derives_an_lr_bound():
    # the base class says None (unknown: not checked); no catalogue policy may leave it so
    from lrkit.policies.base import Policy as Base

    missing = sorted(name for name, cls in lrkit.policies().items() if cls.lr_bound is Base.lr_bound)
    assert not missing, f"policies without lr_bound(): {missing}"
