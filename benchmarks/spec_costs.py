"""The costs issue 15 measured, on whatever lrkit is importable (run it on an old checkout to compare).

- evaluating ``warmup`` nested 20 deep and ``ralr`` nested 16 deep around ``FIX(k0=0.1)``: one LR
  (``p(5)``, the scalar path) and one 256-step block (``p.values``, what PolicyLR computes);
- the deepest chains the parser takes (63 levels), when the code is linear (``--deep``);
- refusing ``FIX(k0=` + "1" * n + `x)`` for n = 16 000 and 32 000 (the number pattern's backtracking);
- what a 4301-digit integer and the overflowing specs give (an exception's class, or the value).

Each figure is the fastest of ``--repeats`` runs (one run when the first takes over a second), wall
time on one thread. Usage, from the repository root:

    .venv/bin/python benchmarks/spec_costs.py [--deep]
    PYTHONPATH=/path/to/old/checkout/src .venv/bin/python benchmarks/spec_costs.py   # the code before
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import lrkit


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
        if best > 1.0:
            break
    return best


def outcome(fn) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = repr(fn())
        except lrkit.LRKitError as err:
            result = f"LRKitError: {str(err).splitlines()[0][:110]}"
        except Exception as err:  # noqa: BLE001 - what the issue reported
            result = f"{type(err).__name__}: {str(err)[:80]}"
    return result + (f" (+ {len(caught)} {caught[0].category.__name__})" if caught else "")


def chain(wrap: str, depth: int) -> lrkit.Policy:
    return lrkit.parse(wrap * depth + "FIX(k0=0.1)" + {"warmup(": ", steps=10)",
                                                       "ralr(": ", iters_per_epoch=1, p=0.5)"}[wrap] * depth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--deep", action="store_true", help="also the 63-level chains (hours on exponential code)")
    args = parser.parse_args()
    block = np.arange(256, 512, dtype=np.float64)
    print(f"lrkit from {lrkit.__file__}")
    depths = [("warmup(", 20), ("ralr(", 16)] + ([("warmup(", 63), ("ralr(", 63)] if args.deep else [])
    for wrap, depth in depths:
        p = chain(wrap, depth)
        one = timed(lambda: p(5), args.repeats)
        many = timed(lambda: p.values(block), args.repeats)
        print(f"{wrap[:-1]} x{depth}: p(5) {one * 1e3:.3f} ms, values(256 steps) {many * 1e3:.3f} ms")
    for n in (16_000, 32_000):
        text = "FIX(k0=" + "1" * n + "x)"
        print(f"parse FIX(k0='1'*{n}+'x'): {timed(lambda: outcome(lambda: lrkit.parse(text)), args.repeats) * 1e3:.3f} ms"
              f" -> {outcome(lambda: lrkit.parse(text))[:60]}")
    cases = {
        "FIX(k0=<4301 digits>)": lambda: lrkit.parse("FIX(k0=" + "1" * 4301 + ")"),
        "wsd(.., stable_steps=10**308, decay_steps=10**308)(5)":
            lambda: lrkit.parse(f"wsd(max_lr=0.1, warmup_steps=1, stable_steps={10**308}, decay_steps={10**308})")(5),
        "exp_sweep(start_lr=0.1, end_lr=1e308, ..)(500)":
            lambda: lrkit.parse("exp_sweep(start_lr=0.1, end_lr=1e308, total_steps=1000)")(500),
        "exp_sweep(start_lr=1e-310, end_lr=1, ..)(500)":
            lambda: lrkit.parse("exp_sweep(start_lr=1e-310, end_lr=1, total_steps=1000)")(500),
        "scale(FIX(k0=1e308), factor=10)(0)": lambda: lrkit.parse("scale(FIX(k0=1e308), factor=10)")(0),
        "FIX(k0=١.٥)(0)": lambda: lrkit.parse("FIX(k0=١.٥)")(0),
        "warmup(FIX(k0=0.1), steps=1000, start_lr=1e308).values([0, 10**9])":
            lambda: lrkit.parse("warmup(FIX(k0=0.1), steps=1000, start_lr=1e308)").values([0, 10**9]).tolist(),
    }
    for name, fn in cases.items():
        print(f"{name}: {outcome(fn)}")


if __name__ == "__main__":
    main()
