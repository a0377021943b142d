"""The long run of the structured spec fuzzer (tests/spec_fuzz.py; the suite runs a few thousand).

Every input is parsed and, when accepted, evaluated at steps 0, 1, ..., 10**9 (vectorised and one by
one) with warnings turned into errors. Prints how many inputs were accepted, refused with an
``LRKitError``, failed any other way (an other exception or a warning, a non-finite or negative LR),
and the slowest parse and evaluation (process CPU time). Exits 1 when anything failed or an input
took longer than ``--limit`` seconds.

Run:  .venv/bin/python benchmarks/fuzz_specs.py --count 100000 [--seed 0] [--limit 0.1]
"""

from __future__ import annotations

import argparse
import collections
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import numpy as np  # noqa: E402

import lrkit  # noqa: E402
from spec_fuzz import check, hostile_specs  # noqa: E402


def _short(text: str, width: int = 160) -> str:
    return text if len(text) <= width else f"{text[:width - 30]}... ({len(text)} characters)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="inputs to try (default 100000)")
    parser.add_argument("--seed", type=int, default=0, help="the generator's seed (default 0)")
    parser.add_argument("--limit", type=float, default=0.1, help="seconds allowed per parse + evaluation")
    parser.add_argument("--show", type=int, default=5, help="failures shown per kind (default 5)")
    args = parser.parse_args(argv)

    print(f"lrkit {lrkit.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()} {platform.processor() or ''}".rstrip())
    counts: collections.Counter[str] = collections.Counter()
    failures: dict[str, list[str]] = collections.defaultdict(list)
    slowest_parse = slowest_eval = (0.0, "")
    started = time.perf_counter()
    for text in hostile_specs(args.seed, args.count):
        outcome = check(text)
        counts["inputs"] += 1
        if outcome.accepted:
            counts["accepted"] += 1
        elif outcome.problem is None:
            counts["refused"] += 1  # with an LRKitError
        if outcome.problem:
            kind = outcome.problem.split(":")[0]
            counts[kind] += 1
            failures[kind].append(f"{outcome.problem}\n      {_short(text)}")
        if outcome.parse_s + outcome.eval_s > args.limit:
            counts["over the limit"] += 1
            failures["over the limit"].append(f"parse {outcome.parse_s:.3f} s, evaluation {outcome.eval_s:.3f} s\n"
                                              f"      {_short(text)}")
        slowest_parse = max(slowest_parse, (outcome.parse_s, text))
        slowest_eval = max(slowest_eval, (outcome.eval_s, text))
    wall = time.perf_counter() - started
    print(f"inputs {counts['inputs']}, accepted {counts['accepted']}, refused with LRKitError {counts['refused']}, "
          f"other exceptions or warnings {counts['other']}, non-finite or negative LRs {counts['non-finite']}, "
          f"over {args.limit} s {counts['over the limit']}")
    print(f"slowest parse {slowest_parse[0] * 1e3:.1f} ms: {_short(slowest_parse[1], 100)}")
    print(f"slowest evaluation {slowest_eval[0] * 1e3:.1f} ms: {_short(slowest_eval[1], 100)}")
    print(f"wall time {wall:.0f} s (seed {args.seed})")
    for kind, found in failures.items():
        print(f"\n{kind}: {len(found)}")
        for line in found[:args.show]:
            print(f"  - {line}")
    bad = counts["other"] + counts["non-finite"] + counts["over the limit"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
