"""Evaluation is linear in the size of the spec: every combinator evaluates its child once per call.

``warmup`` used to evaluate its child twice (``f(0)`` for the ramp, then the block) and ``ralr``
about 2.3 times, so each level of nesting doubled the work: 20 ``warmup`` levels took 7.6 s for one
LR. Here a chain of ``d`` combinators and one of ``2d`` are timed in the same run; doubling the
depth must cost about twice as much (the assertion allows up to 4x; the old code gave about 2**8x
for ``warmup`` from 8 to 16 levels), and a chain at the parser's depth limit must be quick.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import lrkit

LEAF = "cosine(max_lr=0.1, total_steps=1000)"
#: how each combinator wraps a child ``{}``
WRAPS = {
    "warmup": "warmup({}, steps=10, start_lr=0.001)",
    "ralr": "ralr({}, iters_per_epoch=3, p=0.5)",          # no max_lr: the cap is f(0)
    "ralr_max_lr": "ralr({}, iters_per_epoch=3, p=0.5, max_lr=0.2, draw=factor)",
    "scale": "scale({}, factor=1.01)",
    "clip": "clip({}, min_lr=0.001)",
    "join": "join([{}, FIX(k0=0.01)], boundaries=[100])",
    "sequence": "sequence([FIX(k0=0.01), {}], fractions=[0.25, 0.75], total_steps=40)",
    "plateau": "plateau([FIX(k0=0.01), {}], patience=1, monitor=val_loss, switched_at=[5])",
}
BLOCK = np.arange(256, 512, dtype=np.float64)  # one PolicyLR block


def deepest(kind: str) -> int:
    """The most levels of ``kind`` the parser takes around the leaf: its limit is 64 levels of values, and
    a child inside a list (``join([f, ...])``) is two of them."""
    return 31 if "[" in WRAPS[kind] else 63


def chain(kind: str, depth: int) -> lrkit.Policy:
    text = LEAF
    for _ in range(depth):
        text = WRAPS[kind].format(text)
    return lrkit.parse(text)


def seconds(fn, repeats: int) -> float:
    """The fastest of ``repeats`` runs of ``fn`` (process CPU time, so a busy neighbour does not count)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def cost(policy: lrkit.Policy) -> float:
    """One block and a few scalar calls, repeated so the work is well above the timer's resolution."""
    def work():
        for _ in range(10):
            policy.values(BLOCK)
            policy(0), policy(7), policy(300)
    return seconds(work, 5)


@pytest.mark.parametrize("kind", sorted(WRAPS))
def test_doubling_the_depth_doubles_the_cost(kind):
    d = 8  # small enough that an exponential cost fails here quickly (2**16 evaluations of the leaf)
    cost(chain(kind, d))  # warm-up: imports and first-call caches out of the way
    shallow, deep = cost(chain(kind, d)), cost(chain(kind, 2 * d))
    assert deep < 4 * shallow, f"{kind}: depth {d}: {shallow * 1e3:.2f} ms, depth {2 * d}: {deep * 1e3:.2f} ms"


@pytest.mark.parametrize("kind", sorted(WRAPS))
def test_the_deepest_spec_the_parser_takes_is_quick(kind):
    # e.g. 63 warmups around a leaf: the leaf's argument is at the parser's limit of 64 levels
    policy = chain(kind, deepest(kind))
    with pytest.raises(lrkit.SpecError, match="nests deeper"):
        chain(kind, deepest(kind) + 1)
    assert seconds(lambda: (policy.values(BLOCK), policy(5)), 3) < 0.25
    values = policy.values(BLOCK)
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
