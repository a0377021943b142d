"""The recommendation against what users would pick instead, on seeds the search never used (issue 8's evidence).

For every task named: ``lrkit recommend`` (the task's default target and budget, the default optimizer
set, every baseline, ``--trials`` candidates, one repeat seed) on seeds 0 and 1, selecting on the
validation split; then the recommended (optimizer, policy), every baseline and the task's default each
train the full budget (no stop at the target, no early stop) on the held-out seeds (default 2, 3, 4),
and the table gives, per method (the recommendation — a baseline, when no candidate beat it on
validation, and then the search's best candidate beside it), test updates-to-target (mean ± std over the seeds that reached it,
and how many did) and test accuracy at the budget (mean ± std). The search's cost is the updates all
its candidates and range tests spent, divided by one full-budget trial (the yardsticks it ran are
listed apart). A loss is reported as it is.

    .venv/bin/python experiments/peers.py --task fashion-mnist-mlp --json out/peers-mlp.json
    .venv/bin/python experiments/peers.py --table out/peers-*.json     # the markdown table of several runs
    .venv/bin/python experiments/peers.py --table out/peers-*.json --limit out/limit-*.json   # ... and the limit
    .venv/bin/python experiments/peers.py --task examples/plain_fashion.py:train --workers 2 --trials 6 \
        --json out/peers-plain.json                                      # your own training, two workers

``--task`` takes anything ``lrkit recommend --task`` does, a training function ``path/file.py:train`` too.

Run again with the same ``--json`` file, it continues the (finished) study and trains only held-out runs the
file does not hold yet (each run is deterministic on CPU, so a cached one is the run it would repeat).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import torch
from _results import load, mean_std, merge_sweeps, save, sweep_scope


def _key(task: str, budget: int, opt: str, kwargs: dict, spec: str, driver: str, seed: int) -> str:
    return json.dumps([task, budget, opt, kwargs, spec, driver, seed], sort_keys=True)


def _cached(path: str | None) -> dict[str, dict]:
    """Held-out runs already in a result file (by method and seed): a rerun trains only what is new."""
    out: dict[str, dict] = {}
    for res in load([path]) if path else []:
        for row in res.get("rows", {}).values():
            for s in row["seeds"]:
                out[_key(res["task"], res["budget"], row["optimizer"], row["optimizer_kwargs"], row["spec"],
                         row["lr_driver"], s["seed"])] = s
    return out


def search_with_workers(task_name: str, trials: int, storage: str, study: str, eval_every: int | None,
                        workers: int, baselines: tuple[str, ...] | None = None, forks: int = 0) -> None:
    """Set the study up (``recommend --create-only``), then run it with ``workers`` ``lrkit worker`` processes."""
    import subprocess
    import sys

    from lrkit.lrbench.search.recommend import recommend
    from lrkit.lrbench.study.progress import line_logger

    lrkit = os.path.join(os.path.dirname(sys.executable), "lrkit")
    for repeats in (0, 1):  # the search, then the repeats of the best on a second seed: each with the workers
        recommend(task_name, n_trials=trials, storage=storage, study_name=study, repeats=repeats,
                  eval_every=eval_every, baselines=baselines, create_only=True, log=line_logger(), forks=forks)
        procs = [subprocess.Popen([lrkit, "worker", "--storage", storage, "--study", study]) for _ in range(workers)]
        codes = [p.wait() for p in procs]
        if any(codes):
            raise SystemExit(f"a worker failed (exit codes {codes})")


def held_out_run(task_name: str, config: Any, method: tuple, seed: int) -> dict:
    """One held-out training of ``method`` on ``seed``: the whole budget, no stop at the target, judged on test."""
    from lrkit.lrbench.run.runner import run_trial
    from lrkit.lrbench.tasks.catalogue import get_task

    torch.set_num_threads(1)
    opt, kwargs, spec, driver = method
    r = run_trial(config.task_of(get_task(task_name)), spec, budget=config.budget, target=config.target, seed=seed,
                  optimizer=opt, optimizer_kwargs=kwargs, lr_driver=driver, eval_every=config.eval_every,
                  stop_at_target=False, early_stop=False, on="test")
    return {"seed": seed, "test_steps_to_target": r.test_steps_to_target, "final_acc": r.final_acc,
            "best_acc": r.best_acc}


def _held_out(task_name: str, config: Any, jobs: list[tuple[tuple, int]], workers: int) -> list[dict]:
    """:func:`held_out_run` of every ``(method, seed)``, in ``workers`` processes at once, with a line per
    training as it ends (they take minutes)."""
    if not jobs:
        return []
    from concurrent.futures import ProcessPoolExecutor
    from contextlib import nullcontext

    args = list(zip(*[(task_name, config, m, s) for m, s in jobs]))
    out = []
    with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        for i, run_ in enumerate((pool.map if pool else map)(held_out_run, *args), 1):
            print(f"held-out training {i}/{len(jobs)} done ({jobs[i - 1][0][2]}, seed {run_['seed']})", flush=True)
            out.append(run_)
    return out


def search_cost(rec: Any, storage: str, wall: float) -> dict:
    """What ``rec``'s search cost: candidates' and range tests' updates (also in full-budget trials),
    yardsticks', seconds, and lrkit's own count (``rec.cost``: everything, repeats too)."""
    from lrkit.lrbench.search.cost import trained_updates
    from lrkit.lrbench.study.storage import load_study, open_storage

    candidates = [r for m in rec.ranked if m.role == "candidate" for r in m.trials]
    study, _ = load_study(open_storage(storage), rec.study_name)
    details = study.user_attrs.get("lrkit_lr_range_details", {})
    ranges = sum(int(d.get("updates", 0)) for d in details.values() if isinstance(d, dict))
    yard = [r for m in rec.ranked if m.role != "candidate" for r in m.trials]
    every = [r for m in rec.ranked for r in m.trials]
    cost = {"candidate_updates": sum(map(trained_updates, candidates)), "range_test_updates": ranges,
            "yardstick_updates": sum(int(r.get("steps", 0)) for r in yard), "budget": rec.config.budget,
            # training + evaluation seconds of every trial as stored (a rerun on a finished study searches nothing)
            "search_seconds": round(sum(float(r.get("seconds", 0)) + float(r.get("eval_seconds", 0)) for r in every)),
            "this_run_seconds": round(wall)}
    cost["full_budget_trials"] = (cost["candidate_updates"] + ranges) / rec.config.budget
    cost["everything"] = rec.cost.to_dict() if rec.cost else None  # lrkit's own count: yardsticks and repeats too
    cost["text"] = rec.cost.text() if rec.cost else None
    return cost


def held_out_methods(rec: Any, task: Any) -> tuple[str, dict[str, tuple]]:
    """The recommendation's label and label -> ``(optimizer, kwargs, spec, lr driver)`` of what is trained on
    the held-out seeds: the recommendation (and the best candidate when a baseline won), the default, the peers."""
    from lrkit.lrbench.study.baselines import BASELINES, baseline_method
    from lrkit.lrbench.search.yardsticks import default_method_of

    config = rec.config
    rec_label = f"recommended (= baseline {rec.best.baseline})" if rec.is_baseline else "recommended"
    methods = {rec_label: (rec.best.optimizer, rec.best.optimizer_kwargs, rec.best.spec, rec.best.lr_driver)}
    if rec.is_baseline and rec.best_candidate is not None:
        c = rec.best_candidate
        methods["best candidate"] = (c.optimizer, c.optimizer_kwargs, c.spec, c.lr_driver)
    methods["default"] = tuple(default_method_of(config, task).__dict__.values())
    for name in config.baselines or BASELINES:
        m = baseline_method(name, config, task)
        methods[name] = (m.optimizer, m.optimizer_kwargs, m.spec, m.lr_driver)
    return rec_label, methods


def run(task_name: str, trials: int, seeds: list[int], storage: str, eval_every: int | None,
        cache: dict[str, dict], workers: int = 1, baselines: tuple[str, ...] | None = None, forks: int = 0) -> dict:
    from lrkit.lrbench.study.progress import line_logger
    from lrkit.lrbench.search.recommend import recommend
    from lrkit.lrbench.tasks.catalogue import get_task

    task = get_task(task_name)
    start = time.monotonic()
    if workers > 1:
        search_with_workers(task_name, trials, storage, f"peers-{task_name}", eval_every, workers, baselines, forks)
    rec = recommend(task_name, n_trials=trials, storage=storage, study_name=f"peers-{task_name}", repeats=1,
                    eval_every=eval_every, baselines=baselines, progress=True, log=line_logger(), forks=forks)
    wall = time.monotonic() - start
    if rec.best is None:
        raise SystemExit(f"{task_name}: no candidate finished")
    config = rec.config
    rec_label, methods = held_out_methods(rec, task)
    jobs = [(label, seed) for label in methods for seed in seeds
            if _key(task_name, config.budget, *methods[label], seed) not in cache]
    done = dict(zip(jobs, _held_out(task_name, config, [(methods[lb], sd) for lb, sd in jobs], workers)))
    rows = {}
    for label, (opt, kwargs, spec, driver) in methods.items():
        per_seed = [cache.get(_key(task_name, config.budget, opt, kwargs, spec, driver, seed)) or done[(label, seed)]
                    for seed in seeds]
        for run_ in per_seed:
            print(f"{task_name} {label:<20} seed {run_['seed']}: updates to {config.target:g} "
                  f"{run_['test_steps_to_target'] or '-'}, test acc at {config.budget}: {run_['final_acc']:.4f}",
                  flush=True)
        rows[label] = {"optimizer": opt, "optimizer_kwargs": kwargs, "spec": spec, "lr_driver": driver,
                       "seeds": per_seed}
    return {"task": task_name, "target": config.target, "budget": config.budget,
            "eval_every": config.eval_every or task.eval_every, "search_seeds": list(config.judging_seeds),
            "held_out_seeds": seeds, "study": rec.study_name, "recommended": methods[rec_label][:3],
            "recommended_is_baseline": rec.is_baseline, "cost": search_cost(rec, storage, wall), "rows": rows}


def table(results: list[dict], limits: dict[str, dict] | None = None) -> str:
    """The markdown table of each result, and the goal's reading (:func:`verdict`; ``limits``: task ->
    its ``limit_sweep.py`` result)."""
    lines = []
    for res in results:
        c = res["cost"]
        lines += [f"**{res['task']}** — target {res['target']:g} test accuracy within {res['budget']} updates "
                  f"(evaluated every {res['eval_every']}); search on seeds {res['search_seeds']}, reported on held-out "
                  f"seeds {res['held_out_seeds']}; search cost {c['full_budget_trials']:.1f} full-budget trials "
                  f"({c['candidate_updates']} candidate + {c['range_test_updates']} range-test updates; the "
                  f"yardsticks took {c['yardstick_updates']} more), {c['search_seconds']} s of trials."
                  + (f" Everything counted (lrkit's cost line): {c['text']}." if c.get("text") else ""), "",
                  "| method | optimizer | policy | updates to target (reached) | test acc at the budget |",
                  "|---|---|---|---|---|"]
        for label, row in sorted(res["rows"].items(), key=lambda kv: _order(kv[1], res["budget"])):
            reached = [s["test_steps_to_target"] for s in row["seeds"] if s["test_steps_to_target"] is not None]
            n = len(row["seeds"])
            steps = f"{mean_std(reached, 0)} ({len(reached)}/{n})" if reached else f"- (0/{n})"
            acc = mean_std([s["final_acc"] for s in row["seeds"]], 4)
            spec = row["spec"] if len(row["spec"]) <= 60 else row["spec"][:57] + "..."
            name = f"**{label}**" if label.startswith("recommended") else label
            lines.append(f"| {name} | {row['optimizer']} | `{spec}` | {steps} | {acc} |")
        lines += ["", verdict(res, limits.get(res["task"]) if limits else None), ""]
    return "\n".join(lines)


def _mean_steps(row: dict) -> float | None:
    """Mean updates to the target over the held-out seeds, None unless every seed reached it."""
    reached = [s["test_steps_to_target"] for s in row["seeds"] if s["test_steps_to_target"] is not None]
    return statistics.mean(reached) if len(reached) == len(row["seeds"]) else None


def verdict(res: dict, limit: dict | None) -> str:
    """The issue's goal, read off one result: the recommendation's mean updates over the best peer's (the
    fastest baseline that reached the target on every held-out seed), accuracy at the budget against it, the
    search's whole cost, and (with ``limit``, a ``limit_sweep.py`` result of the same task) over the limit's."""
    rows, budget = res["rows"], res["budget"]
    rec = next(row for label, row in rows.items() if label.startswith("recommended"))
    peers = [(label, row) for label, row in rows.items() if label not in ("default", "best candidate")
             and not label.startswith("recommended") and _mean_steps(row) is not None]
    if not peers or _mean_steps(rec) is None:
        return "Goal: not measurable here (the recommendation or every peer missed the target on some held-out seed)."
    name, peer = min(peers, key=lambda kv: (_mean_steps(kv[1]), _order(kv[1], budget)))
    acc = [statistics.mean(s["final_acc"] for s in r["seeds"]) for r in (rec, peer)]
    text = (f"Goal: the recommendation's mean updates are **{_mean_steps(rec) / _mean_steps(peer):.2f}×** the best "
            f"peer's ({name}; goal ≤ 0.7), at {acc[0]:.4f} against {acc[1]:.4f} test accuracy at the budget")
    everything = (res.get("cost") or {}).get("everything")
    if everything:
        text += f", for **{everything['full_budget_trials']:.1f}** full-budget trials, everything counted (goal ≤ 8)"
    reached = [r for r in (limit or {}).get("rows", []) if r["mean_steps"] is not None]
    if reached:
        best = min(reached, key=lambda r: r["mean_steps"])
        steps, ratio = f"{best['mean_steps']:.0f} ± {best['std_steps']:.0f}", _mean_steps(rec) / best["mean_steps"]
        if limit.get("only"):  # part of the grid: a bound on the limit, not the limit
            text += (f"; {best['label']}, the fastest of {sweep_scope(limit['only'], len(limit['rows']))}, "
                     f"took {steps}, so it stands at **{ratio:.2f}×** that")
        else:
            text += (f"; the limit ({best['label']}, the fastest of {len(limit['rows'])} configurations in "
                     f"hindsight) is {steps}, so it stands at **{ratio:.2f}×** the limit (goal ≤ 1.2)")
        if limit.get("seeds") != res["held_out_seeds"]:
            text += f" (the sweep on seeds {limit['seeds']}, the recommendation on {res['held_out_seeds']})"
    return text + "."


def _order(row: dict, budget: int) -> tuple:
    reached = [s["test_steps_to_target"] for s in row["seeds"] if s["test_steps_to_target"] is not None]
    worst = max(reached) if len(reached) == len(row["seeds"]) else budget + 1
    return (worst, -statistics.mean(s["final_acc"] for s in row["seeds"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", nargs="+", default=[])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--eval-every", type=int)
    parser.add_argument("--workers", type=int, default=1,
                        help="run the search with this many `lrkit worker` processes (the study created first), and "
                             "the held-out trainings this many at once")
    parser.add_argument("--baselines", help="the peers to run, comma-separated (default: all)")
    parser.add_argument("--forks", type=int, default=0, help="the search's decay forks (recommend --forks)")
    parser.add_argument("--storage", default="sqlite:///out/peers.db")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--table", nargs="*", help="print the markdown table of these result files")
    parser.add_argument("--limit", nargs="*", default=[],
                        help="limit_sweep.py result files: each task's table also says where it stands against the limit")
    args = parser.parse_args()
    torch.set_num_threads(1)
    limits = merge_sweeps(load(args.limit))
    if args.table is not None:
        print(table(load(args.table), limits))
        return
    cache = _cached(args.json) if args.json and os.path.exists(args.json) else {}
    baselines = tuple(args.baselines.split(",")) if args.baselines else None
    results = [run(t, args.trials, args.seeds, args.storage, args.eval_every, cache, args.workers, baselines,
                   args.forks) for t in args.task]
    save(results, args.json)
    print(table(results, limits))


if __name__ == "__main__":
    main()
