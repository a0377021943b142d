"""How safe and how useful is verify's "unreachable" early stop? Replayed on complete training curves.

Every (policy, seed) is trained once for the whole budget without stopping; the stop rule is then
replayed on each prefix of the curve, for several targets. A *false stop* is a run the rule would
have stopped although it reached the target later in the budget; *saved* is the share of the
budget the rule spares on the runs that never reach the target. lrkit's rule is compared with
two bolder variants, to show what its caution costs and buys.

    nice -n 10 .venv/bin/python benchmarks/verify_early_stop.py --num-seeds 3
"""

from __future__ import annotations

import argparse
import math

import torch

import lrkit
from lrkit.lrbench.run.judging import UnreachableRule
from lrkit.lrbench.tasks.catalogue import get_task
from lrkit.lrbench.run.judge import unreachable
from lrkit.lrbench.run.runner import run_trial

POLICIES = [
    "FIX(k0=0.003)", "FIX(k0=0.01)", "FIX(k0=0.03)", "FIX(k0=0.1)",
    "STEP(k0=0.03, gamma=0.1, l=1500)", "NSTEP(k0=0.05, gamma=0.1, l=[1200, 1600])",
    "EXP(k0=0.1, gamma=0.999)", "INV(k0=0.01, gamma=0.0001, p=0.75)",
    "cosine(max_lr=0.05, total_steps=2000)", "TRI(k0=0.001, k1=0.05, l=400)",
    "linear(start_lr=0.001, end_lr=0.1, total_steps=2000)", "join([FIX(k0=0.002), FIX(k0=0.05)], boundaries=[1400])",
]
RULES = {
    "lrkit (half budget, best recent pace, +0.02, LR-change veto)": UnreachableRule(),
    "no LR-change veto": UnreachableRule(lr_change=math.inf),
    "bold (quarter budget, no slack, no veto)": UnreachableRule(min_fraction=0.25, slack=0.0, lr_change=math.inf),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="digits-mlp")
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--num-seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.90, 0.95, 0.97])
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = get_task(args.task)
    [lrkit.parse(spec) for spec in POLICIES]  # a typo fails now, not after an hour of training
    runs = []
    for spec in POLICIES:
        for seed in range(args.num_seeds):
            r = run_trial(task, spec, budget=args.budget, seed=seed, stop_at_target=False, early_stop=False)
            runs.append((lrkit.parse(spec), r))
    print(f"{len(POLICIES)} policies x {args.num_seeds} seeds on {args.task}, budget {args.budget}, "
          f"eval every {task.eval_every}; targets {args.targets}")
    print("| rule | runs reaching target | false stops | runs never reaching | stopped early | budget saved on those |")
    print("|---|---|---|---|---|---|")
    for label, rule in RULES.items():
        reach = false_stop = never = stopped = 0
        saved = 0.0
        for target in args.targets:
            for pol, r in runs:
                reached = next((p.step for p in r.curve if p.test_acc >= target), None)
                stop = next((p.step for i, p in enumerate(r.curve)
                             if (reached is None or p.step < reached)
                             and unreachable(r.curve[:i + 1], pol, target, args.budget, rule)), None)
                if reached is not None:
                    reach += 1
                    false_stop += stop is not None
                else:
                    never += 1
                    if stop is not None:
                        stopped += 1
                        saved += (args.budget - stop) / args.budget
        share = f"{saved / never:.0%} of budget (mean over never-reaching runs)" if never else "-"
        print(f"| {label} | {reach} | {false_stop} | {never} | {stopped} | {share} |")


if __name__ == "__main__":
    main()
