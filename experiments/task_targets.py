"""How each built-in task's default target and budget were chosen: the task's default against the peers.

For every task named, trains the task's default (optimizer and policy) and every baseline of
:mod:`lrkit.lrbench.study.baselines` for ``--budget`` updates (no stop at the target, no early stop),
evaluating every ``--eval-every``, on each seed, and prints per method the test accuracy at a few
update counts. A target discriminates when a well-chosen (optimizer, policy) reaches it within the
budget and the task's default does not; ``--propose`` prints, for the budgets listed, the highest
target the best peer reached on every seed while the default stayed below it on every seed (minus
a margin of 0.01 on both sides).

    .venv/bin/python experiments/task_targets.py --task fashion-mnist-cnn3 --budget 1500 --seeds 0 1 --json out/t.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def curves(task_name: str, budget: int, eval_every: int, seeds: list[int]) -> dict[str, dict[int, list]]:
    from lrkit.lrbench.study.baselines import BASELINES, baseline_method
    from lrkit.lrbench.search.yardsticks import default_method_of
    from lrkit.lrbench.study.config import StudyConfig
    from lrkit.lrbench.tasks.catalogue import get_task
    from lrkit.lrbench.run.runner import run_trial
    from lrkit.lrbench.run.lr_range import find_lr_range
    from lrkit.lrbench.run.steps import resolve_optimizer

    task = get_task(task_name)
    name, kwargs = resolve_optimizer(task, None, None)
    found = find_lr_range(task, "auto", optimizer=name, optimizer_kwargs=kwargs, seed=0, budget=budget)
    print(f"{task_name}: {name} LR range [{found.low:.3g}, {found.high:.3g}] by {found.method}", flush=True)
    config = StudyConfig(task=task_name, target=1.0, budget=budget, optimizer=name, default_spec=task.default_policy,
                         lr_ranges={name: [found.low, found.high, found.method]})
    methods = {"default": default_method_of(config, task), **{b: baseline_method(b, config, task) for b in BASELINES}}
    out: dict[str, dict[int, list]] = {}
    for label, m in methods.items():
        for seed in seeds:
            start = time.monotonic()
            r = run_trial(task, m.spec, budget=budget, target=1.0, seed=seed, optimizer=m.optimizer,
                          optimizer_kwargs=m.optimizer_kwargs, lr_driver=m.lr_driver, eval_every=eval_every,
                          stop_at_target=False, early_stop=False)
            out.setdefault(label, {})[seed] = [(p.step, p.test_acc, p.val_acc) for p in r.curve]
            print(f"  {label:<20} seed {seed}: test acc at the budget {r.final_acc:.4f}, best {r.best_acc:.4f} "
                  f"({time.monotonic() - start:.0f} s) | {m.optimizer} {m.spec}", flush=True)
    return out


def propose(data: dict[str, dict[int, list]], budgets: list[int], margin: float = 0.01) -> list[str]:
    lines = []
    for budget in budgets:
        def reached(label: str) -> float:  # the worst seed's best test accuracy within the budget
            return min(max(acc for step, acc, _ in curve if step <= budget) for curve in data[label].values())

        peers = {k: reached(k) for k in data if k != "default"}
        best = max(peers, key=peers.get)
        default_best = max(max(acc for step, acc, _ in curve if step <= budget) for curve in data["default"].values())
        if peers[best] - margin > default_best + margin:
            lines.append(f"budget {budget}: a target in ({default_best + margin:.3f}, {peers[best] - margin:.3f}] "
                         f"discriminates: the default's best {default_best:.4f}, {best}'s worst-seed best {peers[best]:.4f}")
        else:
            lines.append(f"budget {budget}: no target discriminates (default {default_best:.4f}, best peer {best} "
                         f"{peers[best]:.4f})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", nargs="+", required=True)
    parser.add_argument("--budget", type=int, required=True)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--propose", type=int, nargs="*", default=[], metavar="BUDGET")
    parser.add_argument("--json", help="write the curves here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = {t: curves(t, args.budget, args.eval_every, args.seeds) for t in args.task}
    for t in args.task:
        for line in propose(data[t], args.propose or [args.budget]):
            print(f"{t}: {line}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f)


if __name__ == "__main__":
    main()
