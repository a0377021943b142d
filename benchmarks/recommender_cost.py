"""Recommender cost: what the target-aware pruner saves, and whether it changes the answer.

For each sampler seed, on a small task (digits-mlp by default):

1. ``pruned``: ``recommend(..., pruner="target")`` (the default: stop at target, the trainer's early stop,
   and :class:`lrkit.lrbench.search.pruning.TargetPruner`);
2. ``no-pruner``: the same search with ``pruner="none"`` (still stops at the target and on divergence);
3. ``full``: every candidate that search 1 tried (the same specs, and the default), run to the full
   budget with no stop of any kind, then ranked by the same rule.

It reports the updates each spends (the LR-range search, identical for all, is counted separately),
the top policy of 1 and of 3, and the gap between their best accuracies (both measured in the full
runs). Goal: pruned spends <= 1/4 of the full updates, and its top policy is the full one's or within
0.5 points of it.

    nice -n 10 .venv/bin/python benchmarks/recommender_cost.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch


def search(task: str, target: float, budget: int, trials: int, seed: int, pruner: str, db: Path):  # noqa: ANN201
    from lrkit.lrbench.search.recommend import recommend

    return recommend(task, target=target, budget=budget, n_trials=trials, storage=f"sqlite:///{db}",
                     lr_range="grid", pruner=pruner, seed=seed)


def spent(rec) -> int:  # noqa: ANN001
    return sum(int(r.get("steps", 0)) for r in rec.ranked)


def full_budget(task_name: str, rec, target: float, budget: int, seed: int):  # noqa: ANN001, ANN201
    """Every spec of ``rec`` run to the full budget, ranked as the recommender ranks."""
    from lrkit.lrbench.study import ranking as res
    from lrkit.lrbench.tasks.catalogue import get_task
    from lrkit.lrbench.run.runner import run_trial

    task = get_task(task_name)
    records = []
    for r in rec.ranked:
        out = run_trial(task, r.spec, budget=budget, target=target, seed=seed, stop_at_target=False,
                        early_stop=False)
        records.append(res.TrialRecord(number=r.number, state="COMPLETE", role=r.role, family=r.family,
                                       spec=r.spec, result=out.to_dict()))
    ranked = res.rank(records)
    return ranked, sum(int(r.get("steps")) for r in ranked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits-mlp")
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.process_time()
            pruned = search(args.task, args.target, args.budget, args.trials, seed, "target", Path(tmp) / "a.db")
            t1 = time.process_time()
            nopr = search(args.task, args.target, args.budget, args.trials, seed, "none", Path(tmp) / "b.db")
            t2 = time.process_time()
            ranked_full, full_updates = full_budget(args.task, pruned, args.target, args.budget, seed)
            t3 = time.process_time()
        top_full = next(r for r in ranked_full if r.role == "candidate")
        full_by_spec = {r.spec: r for r in ranked_full}
        ours = full_by_spec[pruned.best.spec]
        row = {"seed": seed, "candidates": len(pruned.ranked),
               "updates_pruned": spent(pruned), "updates_no_pruner": spent(nopr), "updates_full": full_updates,
               "ratio_pruned_full": spent(pruned) / full_updates, "ratio_no_pruner_full": spent(nopr) / full_updates,
               "top_pruned": pruned.best.spec, "top_full": top_full.spec, "same_top": pruned.best.spec == top_full.spec,
               "top_pruned_steps": pruned.best.get("steps_to_target"),
               "top_full_steps": top_full.get("steps_to_target"),
               "acc_gap_pts": 100 * (top_full.get("best_acc") - ours.get("best_acc")),
               "pruned_rank_in_full": ours.rank,
               "cpu_s": {"pruned": t1 - t0, "no_pruner": t2 - t1, "full": t3 - t2}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    ratios = [r["ratio_pruned_full"] for r in rows]
    ratios_np = [r["ratio_no_pruner_full"] for r in rows]
    print(f"\n{args.task}, target {args.target}, budget {args.budget}, {args.trials} candidates + default, "
          f"seeds {args.seeds}")
    print(f"updates pruned / full: {statistics.mean(ratios):.3f} ± {statistics.pstdev(ratios):.3f}  "
          f"(no pruner, stop at target / full: {statistics.mean(ratios_np):.3f} ± {statistics.pstdev(ratios_np):.3f})")
    print(f"same top policy: {sum(r['same_top'] for r in rows)}/{len(rows)}; accuracy gap of the pruned top in "
          f"the full runs (pts): {[round(r['acc_gap_pts'], 2) for r in rows]}; its rank there: "
          f"{[r['pruned_rank_in_full'] for r in rows]}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
