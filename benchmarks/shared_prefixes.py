"""How much of a search's training forking could save: candidates whose LR curve starts like an earlier one's.

A candidate that trains with the same optimizer, arguments and LR driver as an earlier candidate of the
study (on the same seed) and whose LR curve equals that one's for its first ``k`` updates could start from
the earlier run's state at ``k`` instead of from scratch (compose forks runs that way:
``lrkit.lrbench.composition.forks``). This counts, per stored search, the updates every candidate shares so
with the candidate before it that shares the most (at most as far as both ran): an upper bound on what
forking would save, since a fork also needs a state saved at that update.

    .venv/bin/python benchmarks/shared_prefixes.py          # the searches in benchmarks/data/issue18
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CURVES = Path(__file__).parent / "data" / "issue18" / "search-curves.json"


def shared(study: dict) -> tuple[int, int]:
    """(updates the candidates ran, updates of theirs an earlier candidate had already run on the same LR curve)."""
    import numpy as np

    from lrkit.spec import parse

    budget, seen, ran_all, shared_all = study["budget"], [], 0, 0
    for cand in study["candidates"]:
        key = json.dumps([cand["optimizer"], cand["optimizer_kwargs"], cand["lr_driver"]], sort_keys=True)
        lrs = parse(cand["spec"]).values(np.arange(budget, dtype=np.float64))
        ran = max((step for step, _ in cand["curve"]), default=0)
        best = 0
        for other_key, other_lrs, other_ran in seen:
            if other_key != key:
                continue
            differ = np.nonzero(np.abs(lrs - other_lrs) > 1e-12 * max(np.abs(lrs).max(), 1e-300))[0]
            best = max(best, min(int(differ[0]) if len(differ) else budget, ran, other_ran))
        ran_all, shared_all = ran_all + ran, shared_all + best
        seen.append((key, lrs, ran))
    return ran_all, shared_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", default=str(CURVES), help="exported searches (benchmarks/successive_halving.py --export)")
    args = parser.parse_args()
    studies = json.loads(Path(args.curves).read_text())
    print("| study | candidates | updates they ran | of which an earlier candidate ran on the same LR curve |")
    print("|---|---|---|---|")
    total = [0, 0]
    for s in studies:
        ran, same = shared(s)
        total = [total[0] + ran, total[1] + same]
        print(f"| {Path(s['db']).parent.name}/{s['study']} | {len(s['candidates'])} | {ran} | {same} ({same / ran:.1%}) |")
    print(f"\nall {len(studies)} searches: {total[1]} of {total[0]} updates ({total[1] / total[0]:.1%}) could have been forked")


if __name__ == "__main__":
    main()
