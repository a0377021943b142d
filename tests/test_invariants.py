"""Invariants every policy keeps, checked on every example in examples.EXAMPLES.

Finite and non-negative at any step (10**9 included), deterministic, the same from ``values``
as from ``__call__`` and in any order, the same through the PyTorch adapter, and resumable
bit-for-bit. The last test keeps the registry honest: every registered policy has an example.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest

import lrkit
from examples import EXAMPLES
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


def test_values_equal_scalar_calls(spec):
    # Exact equality holds with this numpy: its SIMD loops give the same bits for a lane as for a
    # 0-d call. If a numpy build ever differs by an ulp between the two paths, relax this to
    # rtol=1e-12 rather than hide it: the adapter evaluates __call__, plots use values.
    p = _policy(spec)
    ts = STEPS[::7]
    assert np.array_equal(p.values(ts), np.array([p(float(t)) for t in ts]))
    assert np.array_equal(p.values(ts[:40].astype(int)), np.array([p(int(t)) for t in ts[:40]]))


def test_any_order_gives_the_same_values(spec):
    p = _policy(spec)
    order = np.random.default_rng(0).permutation(STEPS.size)
    in_order = p.values(STEPS)
    assert np.array_equal(p.values(STEPS[order]), in_order[order])
    assert np.array_equal(p.values(STEPS[::-1]), in_order[::-1])
    assert np.array_equal(p.values(STEPS.reshape(-1, 1))[:, 0], in_order)


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


def test_adapter_lr_equals_policy(spec):
    p = _policy(spec)
    _, opt, sched = _adapter(spec)
    assert _run(opt, sched, 300) == [p(t) for t in range(300)]
    # later stretches, reached by loading the step (the scheduler's whole state)
    for start in (997, 15_990, 10**6, 10**9 - 10):
        sched.load_state_dict({"step": start})
        assert _run(opt, sched, 20) == [p(t) for t in range(start, start + 20)]


def test_adapter_resume_is_bit_exact(spec):
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
