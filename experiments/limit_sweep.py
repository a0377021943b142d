"""The limit (issue 18, item 1): the best any configuration reaches on a task, in hindsight, on held-out seeds.

A broad sweep: every optimizer the search offers (the task's, Adam, Prodigy, schedule-free AdamW) × four
policy shapes (constant, cosine decay, one-cycle, warm-up-stable-decay) × seven LRs on a log grid from well
below to well above the LRs people use (for an LR-free optimizer, seven multipliers of its own estimate
around 1), plus the baselines as the search runs them. Every configuration trains the whole budget on the
held-out seeds (no stop at the target, no early stop), evaluated every ``--eval-every`` updates on test
until it reaches the target, and after that at the budget only: the run continues from its state at the
crossing (the fork itself is exact, as compose's), which skips the evaluations nothing reads; at
``--eval-every 25`` about four fifths of a lenet training's time is spent evaluating. For most optimizers
the result is the one a run evaluated every ``--eval-every`` updates gives. A schedule-free optimizer is
the exception: its switch to evaluation weights and back is a lerp each way and rounds, so fewer
evaluations leave it on a run that differs by rounding (lenet, seed 8, WSD 0.01: 0.8954 at the budget
against 0.8940; mlp: 0.8833 against 0.8834; updates to the target the same).
Per configuration: updates to the target on test (mean ± std when every seed reached it) and test accuracy
at the budget (mean ± std). The limit is the best of each over the configurations; the table lists the
best ten by each, and where the baselines stand.

    .venv/bin/python experiments/limit_sweep.py --task fashion-mnist-mlp --jobs 2 --json out/limit-mlp.json
    .venv/bin/python experiments/limit_sweep.py --table out/limit-mlp.json
    .venv/bin/python experiments/limit_sweep.py --table out/line-a.json out/line-b.json   # a task's parts as one
    .venv/bin/python experiments/limit_sweep.py --task fashion-mnist-lenet --only "AdamWScheduleFree wsd" \
        --json out/line-lenet.json        # one line of the grid (a partial sweep: not the limit)

A rerun with the same ``--json`` file trains only what the file does not hold yet.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from _results import load, merge_sweeps, save, sweep_scope, union_only

SHAPES = {
    "constant": "FIX(k0={lr:.6g})",
    "cosine": "cosine(max_lr={lr:.6g}, total_steps={b})",
    "onecycle": "onecycle(max_lr={lr:.6g}, total_steps={b})",
    "wsd": "wsd(max_lr={lr:.6g}, warmup_steps={w}, stable_steps={s}, decay_steps={d})",
}
#: the optimizer -> its LR grid (an LR-free optimizer's is a multiplier of its own estimate)
GRIDS = {
    "sgd": np.geomspace(0.003, 3.0, 7), "momentum": np.geomspace(0.0003, 0.3, 7),
    "adam": np.geomspace(1e-4, 0.1, 7), "schedulefree:AdamWScheduleFree": np.geomspace(1e-4, 0.1, 7),
    "prodigyopt:Prodigy": np.geomspace(0.1, 10.0, 7),
}


def configs(task, budget: int, extra: tuple[float, ...] = ()) -> list[tuple[str, str, dict, str, str]]:
    """``(label, optimizer, kwargs, spec, lr driver)`` of every configuration: the grid (each optimizer's LRs,
    and ``extra``), then the baselines."""
    from lrkit.lrbench.run.steps import optimizer_setup
    from lrkit.lrbench.study.baselines import BASELINES, baseline_method
    from lrkit.lrbench.study.config import StudyConfig
    from lrkit.lrbench.tasks.optimizers import canonical

    out = []
    w, d = budget // 20, budget // 5
    for name in dict.fromkeys((canonical(task.optimizer), "adam", "prodigyopt:Prodigy",
                               "schedulefree:AdamWScheduleFree")):
        opt, kwargs = optimizer_setup(task, name, {})
        for shape, pattern in SHAPES.items():
            for lr in sorted({*GRIDS[name], *extra}):
                spec = pattern.format(lr=lr, b=budget, w=w, s=budget - w - d, d=d)
                out.append((f"{name.split(':')[-1]} {shape} {lr:.3g}", opt, kwargs, spec, "policy"))
    high = task_lr(task)
    config = StudyConfig(task=task.name, target=task.target, budget=budget, optimizer=canonical(task.optimizer),
                         lr_range=(high / 3, high), default_spec=task.default_policy)
    for name in BASELINES:
        m = baseline_method(name, config, task)
        out.append((f"baseline {name}", m.optimizer, m.optimizer_kwargs, m.spec, m.lr_driver))
    return out


def task_lr(task) -> float:
    """The OneCycle baseline's LR: the range test's, as the search finds it (``lrkit.lrbench.run.lr_range``)."""
    from lrkit.lrbench.run.lr_range import find_lr_range

    return find_lr_range(task, "auto", seed=0).high


def train(task_name: str, label: str, opt: str, kwargs: dict, spec: str, driver: str, seed: int, budget: int,
          eval_every: int) -> dict:
    """One configuration on one seed: the whole budget, judged on test (the validation split is not measured)."""
    from lrkit.lrbench.run.runner import run_trial
    from lrkit.lrbench.tasks.catalogue import get_task

    torch.set_num_threads(1)
    task = get_task(task_name)
    common = dict(budget=budget, seed=seed, optimizer=opt, optimizer_kwargs=kwargs, early_stop=False, on="test",
                  test_only=True, lr_driver=driver)  # the figures of test only: a third less evaluation
    r = run_trial(task, spec, eval_every=eval_every, stop_at_target=True, keep_state=True, **common)
    if r.state is not None and r.state.step < budget:  # reached: the rest needs only the budget's evaluation
        r = run_trial(task, spec, eval_every=budget, stop_at_target=False, start=r.state, **common)
    return {"label": label, "optimizer": opt, "spec": spec, "seed": seed, "steps": r.test_steps_to_target,
            "final_acc": r.final_acc, "status": r.status}


def summarize(runs: list[dict], seeds: list[int]) -> list[dict]:
    rows: dict[str, dict] = {}
    for r in runs:
        row = rows.setdefault(r["label"], {"label": r["label"], "optimizer": r["optimizer"], "spec": r["spec"],
                                           "steps": [], "acc": []})
        row["steps"].append(r["steps"])
        row["acc"].append(r["final_acc"] if r["final_acc"] == r["final_acc"] else 0.0)
    for row in rows.values():
        reached = [s for s in row["steps"] if s is not None]
        row["reached"] = f"{len(reached)}/{len(row['steps'])}"
        row["mean_steps"] = statistics.mean(reached) if len(reached) == len(seeds) else None
        row["std_steps"] = statistics.pstdev(reached) if len(reached) == len(seeds) else None
        row["mean_acc"], row["std_acc"] = statistics.mean(row["acc"]), statistics.pstdev(row["acc"])
    return list(rows.values())


def table(result: dict) -> str:
    rows = result["rows"]
    only = result.get("only") or []
    best = f"best of {sweep_scope(only, len(rows))}" if only else "limit"
    fast = sorted((r for r in rows if r["mean_steps"] is not None), key=lambda r: (r["mean_steps"], -r["mean_acc"]))
    accurate = sorted(rows, key=lambda r: -r["mean_acc"])
    lines = [f"**{result['task']}**: target {result['target']:g} test accuracy, budget {result['budget']}, evaluated "
             f"every {result['eval_every']}, seeds {result['seeds']}; {len(rows)} configurations, "
             f"{result['seconds']:.0f} s of training.", "",
             f"- **{best}, updates to target**: {fast[0]['mean_steps']:.0f} ± {fast[0]['std_steps']:.0f} "
             f"({fast[0]['label']}: `{fast[0]['spec']}`)" if fast else "- no configuration reached the target on every seed",
             f"- **{best}, test accuracy at the budget**: {accurate[0]['mean_acc']:.4f} ± {accurate[0]['std_acc']:.4f} "
             f"({accurate[0]['label']}: `{accurate[0]['spec']}`)", "",
             "| configuration | spec | reached | updates to target | test acc at the budget |", "|---|---|---|---|---|"]
    shown = fast[:10] + [r for r in accurate[:5] if r not in fast[:10]] + \
        [r for r in rows if r["label"].startswith("baseline") and r not in fast[:10] and r not in accurate[:5]]
    for r in shown:
        steps = "-" if r["mean_steps"] is None else f"{r['mean_steps']:.0f} ± {r['std_steps']:.0f}"
        name = f"**{r['label']}**" if r["label"].startswith("baseline") else r["label"]
        lines.append(f"| {name} | `{r['spec']}` | {r['reached']} | {steps} | {r['mean_acc']:.4f} ± {r['std_acc']:.4f} |")
    return "\n".join(lines)


def words_start(label: str, prefix: str) -> bool:
    """Whether ``label``'s words begin with ``prefix``'s (``"Prodigy wsd 1"`` does not start ``"Prodigy wsd 10"``)."""
    words = prefix.split()
    return label.split()[:len(words)] == words


def merged_only(before: dict, only: list[str]) -> list[str]:
    """The prefixes a resumed file holds: [] (the whole grid) once any run of it was not limited."""
    return union_only(before.get("only", only), only)


def saved_only(before: dict, only: list[str], rows: list[dict], final: bool) -> list[str]:
    """The prefixes a file is saved with: :func:`merged_only`, except that until a run of the whole grid ends,
    its file is a partial sweep of the configurations it holds (each label is its own prefix), so that a
    stopped run is never read as the limit."""
    return merged_only(before, only) or ([] if final else [r["label"] for r in rows])


def first_of(chosen: list[tuple], first: list[str]) -> list[tuple]:
    """``chosen`` with the configurations that ``first``'s prefixes match moved to the front, in their order (the
    rest keep the grid's): a run that may be stopped trains first what can move the limit."""
    return sorted(chosen, key=lambda c: next((i for i, p in enumerate(first) if words_start(c[0], p)), len(first)))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fashion-mnist-mlp")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", nargs="+", default=[],
                        help="train only the configurations whose label starts with one of these, word by word "
                             "(e.g. 'AdamWScheduleFree wsd'; 'Prodigy wsd 1' is not 'Prodigy wsd 10'): a partial "
                             "sweep, not the limit")
    parser.add_argument("--extra-lrs", type=float, nargs="+", default=[],
                        help="LRs (multipliers for an LR-free optimizer) added to every optimizer's grid, to refine "
                             "it between two of its points (pick them with --only)")
    parser.add_argument("--first", nargs="+", default=[],
                        help="train the configurations these prefixes match first, in this order (which ones are "
                             "trained does not change): e.g. the likely fastest, in a run that may be stopped")
    parser.add_argument("--json")
    parser.add_argument("--table", nargs="+",
                        help="print the table of these result files (the files of a task as one: e.g. its lines)")
    return parser.parse_args()


def main() -> None:
    from lrkit.lrbench.tasks.catalogue import get_task

    args = parse_args()
    if args.table:
        print("\n\n".join(table(res) for res in merge_sweeps(load(args.table)).values()))
        return
    torch.set_num_threads(1)
    task = get_task(args.task)
    before = load([args.json])[0] if args.json and os.path.exists(args.json) else {}
    done = before.get("runs", [])
    have = {(r["label"], r["seed"]) for r in done}
    chosen = [c for c in configs(task, task.budget, tuple(args.extra_lrs))
              if not args.only or any(words_start(c[0], p) for p in args.only)]
    todo = [(c, s) for c in first_of(chosen, args.first) for s in args.seeds if (c[0], s) not in have]
    start = time.monotonic()

    def result(final: bool = False) -> dict:  # the file as it stands: every run so far, its rows, its seconds
        rows = summarize(done, args.seeds)
        return {"task": args.task, "target": task.target, "budget": task.budget, "eval_every": args.eval_every,
                "seeds": args.seeds, "only": saved_only(before, args.only, rows, final),
                "seconds": before.get("seconds", 0.0) + time.monotonic() - start, "runs": done,
                "rows": rows}

    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(train, args.task, *c, s, task.budget, args.eval_every) for c, s in todo]
        for i, f in enumerate(futures, 1):
            done.append(f.result())
            label, seed = todo[i - 1][0][0], todo[i - 1][1]
            print(f"{i}/{len(futures)} trainings done ({label}, seed {seed}; {time.monotonic() - start:.0f} s)",
                  flush=True)  # a line per training: each takes minutes
            save(result(), args.json)
    final = result(final=True)
    save(final, args.json)
    print(table(final))


if __name__ == "__main__":
    main()
