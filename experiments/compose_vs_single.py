"""A composed policy against the best single policy found with the same number of training updates (issue 9's evidence).

For every task named, with the task's optimizer, default target and budget, on seed 0:

1. ``lrkit compose`` (``--stages``, ``--candidates``, ``--beam``) composes a policy; its cost is the
   updates its stage trials trained (each from its parent's state) plus its range test;
2. ``lrkit recommend`` with the same optimizer, no baselines and no lookup, adds candidates one by one
   until its candidates and range test have trained at least as many updates; its best is the single
   policy;
3. both train the full budget (no stop at the target) on the held-out seeds (default 1, 2, 3), and the
   table gives test updates-to-target (mean ± std over the seeds that reached it, and how many did) and
   test accuracy at the budget (mean ± std). A loss is reported as it is.

    .venv/bin/python experiments/compose_vs_single.py --task fashion-mnist-lenet --json out/compose-lenet.json
    .venv/bin/python experiments/compose_vs_single.py --table out/compose-*.json
"""

from __future__ import annotations

import argparse
import time

import torch
from _results import load, mean_std, save


def _range_updates(study) -> int:  # noqa: ANN001
    details = study.user_attrs.get("lrkit_lr_range_details", {})
    return sum(int(d.get("updates", 0)) for d in details.values() if isinstance(d, dict))


def run(task_name: str, stages: int, candidates: int, beam: int, seeds: list[int], storage: str) -> dict:
    from lrkit.lrbench.composition.stagewise import compose
    from lrkit.lrbench.study.progress import line_logger
    from lrkit.lrbench.search.recommend import recommend
    from lrkit.lrbench.study.storage import load_study, open_storage
    from lrkit.lrbench.tasks.catalogue import get_task
    from lrkit.lrbench.run.runner import run_trial

    task = get_task(task_name)
    start = time.monotonic()
    comp = compose(task_name, stages=stages, candidates=candidates, beam=beam, storage=storage,
                   study_name=f"compose-{task_name}", lookup=False, progress=True, log=line_logger())
    compose_s = time.monotonic() - start
    by_number = {n.number: n for n in comp.nodes}
    trained = sum(n.until - (by_number[n.parent].until if n.parent is not None else 0) for n in comp.nodes)
    cstudy, config = load_study(open_storage(storage), comp.study_name)
    compose_cost = trained + _range_updates(cstudy)

    name, n_trials, start = f"single-{task_name}", 1, time.monotonic()
    while True:
        rec = recommend(task_name, optimizer=config.optimizer, n_trials=n_trials, storage=storage, study_name=name,
                        baselines=(), lookup=False, repeats=0, log=line_logger())
        sstudy, _ = load_study(open_storage(storage), name)
        spent = sum(int(r.get("steps", 0)) for m in rec.ranked if m.role == "candidate" for r in m.trials)
        spent += _range_updates(sstudy)
        if spent >= compose_cost:
            break
        n_trials += 1
    single_s = time.monotonic() - start
    rows = {}
    for label, opt, kwargs, spec in (("composed", config.optimizer, comp.best.optimizer_kwargs, comp.spec),
                                     ("best single", rec.best.optimizer, rec.best.optimizer_kwargs, rec.spec)):
        per_seed = []
        for seed in seeds:
            r = run_trial(task, spec, budget=config.budget, target=config.target, seed=seed, optimizer=opt,
                          optimizer_kwargs=kwargs, eval_every=config.eval_every, stop_at_target=False,
                          early_stop=False, on="test")
            per_seed.append({"seed": seed, "test_steps_to_target": r.test_steps_to_target, "final_acc": r.final_acc})
            print(f"{task_name} {label:<12} seed {seed}: updates to {config.target:g} {r.test_steps_to_target or '-'}, "
                  f"test acc at {config.budget}: {r.final_acc:.4f}", flush=True)
        rows[label] = {"optimizer": opt, "spec": spec, "seeds": per_seed}
    return {"task": task_name, "target": config.target, "budget": config.budget,
            "eval_every": config.eval_every or task.eval_every, "stages": config.compose["boundaries"],
            "candidates": candidates, "beam": beam, "held_out_seeds": seeds,
            "compose_updates": compose_cost, "compose_trials": len(comp.nodes), "compose_seconds": round(compose_s),
            "single_updates": spent, "single_trials": n_trials, "single_seconds": round(single_s), "rows": rows}


def table(results: list[dict]) -> str:
    lines = []
    for res in results:
        lines += [f"**{res['task']}** — target {res['target']:g} test accuracy within {res['budget']} updates, "
                  f"{res['rows']['composed']['optimizer']}; compose: stage ends {res['stages']}, {res['candidates']} "
                  f"candidates, beam {res['beam']}: {res['compose_trials']} stage trials, {res['compose_updates']} "
                  f"updates ({res['compose_seconds']} s); the single-policy search: {res['single_trials']} candidates, "
                  f"{res['single_updates']} updates ({res['single_seconds']} s); both on seed 0, reported on held-out "
                  f"seeds {res['held_out_seeds']}.", "",
                  "| method | policy | updates to target (reached) | test acc at the budget |", "|---|---|---|---|"]
        for label, row in res["rows"].items():
            reached = [s["test_steps_to_target"] for s in row["seeds"] if s["test_steps_to_target"] is not None]
            n = len(row["seeds"])
            steps = f"{mean_std(reached, 0)} ({len(reached)}/{n})" if reached else f"- (0/{n})"
            spec = row["spec"] if len(row["spec"]) <= 90 else row["spec"][:87] + "..."
            lines.append(f"| {label} | `{spec}` | {steps} | {mean_std([s['final_acc'] for s in row['seeds']], 4)} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", nargs="+", default=[])
    parser.add_argument("--stages", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--beam", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--storage", default="sqlite:///out/compose.db")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--table", nargs="*", help="print the markdown table of these result files")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.table is not None:
        print(table(load(args.table)))
        return
    results = [run(t, args.stages, args.candidates, args.beam, args.seeds, args.storage) for t in args.task]
    save(results, args.json)
    print(table(results))


if __name__ == "__main__":
    main()
