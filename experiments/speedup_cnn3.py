"""Speed-up of the recommended policy over the task's default, on fashion-mnist-cnn3, over several seeds.

Takes the recommendation from the main job's study (``out/lrkit.db``, study ``cnn3-main``) or ``--spec``,
and trains it and the task's default policy (``FIX(k0=0.001)``, momentum 0.9, weight decay 0.004, batch
100: cifar10_quick's solver, the default LRBench compares CNN3 policies against) with seeds the search
did not use. Both stop at the target; neither is stopped early otherwise. The default gets
``--default-budget`` updates; when it misses the target there, its speed-up is a lower bound (">=").

    nice -n 10 .venv/bin/python experiments/speedup_cnn3.py --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="sqlite:///out/lrkit.db")
    parser.add_argument("--study", default="cnn3-main")
    parser.add_argument("--spec", help="the policy to compare (default: the study's recommendation)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--default-budget", type=int, help="updates for the default (default: 2x the study's)")
    parser.add_argument("--default-eval-every", type=int, default=200,
                        help="evaluation interval of the default's runs (its updates-to-target resolution)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from lrkit.lrbench.search.recommend import summarize
    from lrkit.lrbench.study.storage import load_study, open_storage
    from lrkit.lrbench.tasks.catalogue import get_task
    from lrkit.lrbench.run.runner import run_trial

    study, config = load_study(open_storage(args.storage), args.study)
    spec = args.spec or summarize(study, config).spec
    task = get_task(config.task)
    default_budget = args.default_budget or 2 * config.budget
    rows = []
    for seed in args.seeds:
        t0 = time.process_time()
        ours = run_trial(task, spec, budget=config.budget, target=config.target, seed=seed, early_stop=False,
                         eval_every=config.eval_every, optimizer=config.optimizer,
                         optimizer_kwargs=config.optimizer_kwargs)
        base = run_trial(task, task.default_policy, budget=default_budget, target=config.target, seed=seed,
                         early_stop=False, eval_every=args.default_eval_every, optimizer=config.optimizer,
                         optimizer_kwargs=config.optimizer_kwargs)
        row = {"seed": seed, "ours_steps": ours.steps_to_target, "ours_best": ours.best_acc,
               "default_acc_at_budget": base.final_acc,
               "default_steps": base.steps_to_target, "default_best": base.best_acc,
               "default_budget": default_budget, "cpu_s": time.process_time() - t0}
        if ours.steps_to_target:
            row["speedup"] = (base.steps_to_target or default_budget) / ours.steps_to_target
            row["lower_bound"] = base.steps_to_target is None
        rows.append(row)
        print(json.dumps(row), flush=True)
    ups = [r["speedup"] for r in rows if "speedup" in r]
    print(f"\n{config.task}, target {config.target}, recommended {spec} (budget {config.budget}) vs default "
          f"{task.default_policy} (budget {default_budget}), seeds {args.seeds}")
    if ups:
        bound = " (lower bound: the default missed the target on some seeds)" if any(
            r.get("lower_bound") for r in rows) else ""
        print(f"speed-up in updates-to-target: {statistics.mean(ups):.2f} ± {statistics.pstdev(ups):.2f} "
              f"over {len(ups)}/{len(rows)} seeds where ours reached the target{bound}")
    else:
        print("the recommended policy reached the target on no seed")
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(json.dumps({"spec": spec, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
