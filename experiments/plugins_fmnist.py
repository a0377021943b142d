"""RALR and LEAP against their base schedule: a small CNN on Fashion-MNIST, many seeds.

Every configuration trains the same CNN (conv 16 - pool - conv 32 - pool - linear) with SGD
(momentum 0.9, weight decay 5e-4), batch 128, under the base schedule
``COS(k0=lr/100, k1=lr, l=total_steps)``; RALR wraps that schedule, LEAP wraps the optimizer.
Each seed fixes the initialisation, the batch order and the plugin's seed, so a row differs from
the base row only by the plugin. The table gives final test accuracy, mean ± std over seeds,
and the mean paired difference to the base (same seed) with its standard error.

CPU run recorded in benchmarks/RESULTS.md (a fixed 5k-image training subset, the full
test set, 10 epochs so that per-epoch RALR draws happen 10 times per run)::

    nice -n 10 .venv/bin/python experiments/plugins_fmnist.py --train-size 5000 --epochs 10 --num-seeds 5

A larger run on a GPU: ``--device cuda --train-size 60000 --epochs 30 --num-seeds 5``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn

import lrkit
from lrkit.lrbench.tasks.datasets import load_fashion_mnist
from lrkit.torch import PolicyLR
from lrkit.torch.leap import LEAP

# name -> (RALR spec arguments or None, LEAP keyword arguments or None)
CONFIGS: dict[str, tuple[str | None, dict | None]] = {
    "base": (None, None),
    "ralr p=0.1": ("p=0.1", None),
    "ralr p=0.2": ("p=0.2", None),
    "ralr p=0.3": ("p=0.3", None),
    "ralr p=0.2 factor[1,2]": ("p=0.2, draw=factor, min_factor=1, max_factor=2, max_lr=1", None),
    "ralr p=0.2 quiet last 20%": ("p=0.2, final_fraction=0.2", None),
    "leap rel sigma=0.1": (None, {"sigma": 0.1, "relative": True}),
    "leap rel sigma=0.3": (None, {"sigma": 0.3, "relative": True}),
    "leap rel sigma=1.0": (None, {"sigma": 1.0, "relative": True}),
    "leap abs sigma=0.01": (None, {"sigma": 0.01, "relative": False}),
}
DEFAULT = ["base", "ralr p=0.1", "ralr p=0.2", "ralr p=0.3", "ralr p=0.2 factor[1,2]", "leap rel sigma=0.1",
           "leap rel sigma=0.3", "leap abs sigma=0.01"]


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )


def run(config: str, seed: int, data: dict, args: argparse.Namespace) -> dict:
    ralr_args, leap_kw = CONFIGS[config]
    device = torch.device(args.device)
    n = data["train_x"].shape[0]
    per_epoch = n // args.batch
    total = per_epoch * args.epochs
    spec = f"COS(k0={args.lr / 100}, k1={args.lr}, l={total})"
    if ralr_args is not None:
        spec = f"ralr({spec}, iters_per_epoch={per_epoch}, {ralr_args}, total_steps={total}, seed={seed})"
    policy = lrkit.parse(spec)
    torch.manual_seed(seed)
    model = small_cnn().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    if leap_kw is not None:
        opt = LEAP(opt, seed=seed, **leap_kw)
    sched = PolicyLR(opt, policy)
    order = torch.Generator().manual_seed(seed)
    below = []
    for _ in range(args.epochs):
        perm = torch.randperm(n, generator=order).to(device)
        model.train()
        for b in range(per_epoch):
            idx = perm[b * args.batch:(b + 1) * args.batch]
            loss = nn.functional.cross_entropy(model(data["train_x"][idx]), data["train_y"][idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if leap_kw is not None:
            below.append(opt.stats()["frac_below_zero"])
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x).argmax(1) == y).sum())
                      for x, y in zip(data["test_x"].split(1000), data["test_y"].split(1000)))
    lrs = policy.values(np.arange(total))
    base = lrkit.parse(f"COS(k0={args.lr / 100}, k1={args.lr}, l={total})").values(np.arange(total))
    return {"config": config, "seed": seed, "spec": spec, "test_acc": correct / data["test_y"].shape[0],
            "final_loss": float(loss.detach()), "amplified_frac": float(np.mean(lrs > base)),
            "leap_frac_below_zero": float(np.mean(below)) if below else None}


def load(args: argparse.Namespace) -> dict:
    ds = load_fashion_mnist(args.data_dir)
    pick = np.random.default_rng(0).permutation(ds.train_x.shape[0])[:args.train_size]
    arrays = {"train_x": ds.train_x[pick], "train_y": ds.train_y[pick], "test_x": ds.test_x, "test_y": ds.test_y}
    return {k: torch.from_numpy(v).to(args.device) for k, v in arrays.items()}


def table(rows: list[dict]) -> str:
    base = {r["seed"]: r["test_acc"] for r in rows if r["config"] == "base"}
    out = ["| configuration | test accuracy % (mean ± std) | paired diff vs base (pp, mean ± s.e.) | "
           "amplified updates | LEAP LRs < 0 |", "|---|---|---|---|---|"]
    for config in dict.fromkeys(r["config"] for r in rows):
        mine = [r for r in rows if r["config"] == config]
        acc = [100 * r["test_acc"] for r in mine]
        diffs = [100 * (r["test_acc"] - base[r["seed"]]) for r in mine if r["seed"] in base]
        diff = "—" if config == "base" or len(diffs) < 2 else \
            f"{statistics.mean(diffs):+.2f} ± {statistics.stdev(diffs) / len(diffs) ** 0.5:.2f}"
        amp = f"{100 * statistics.mean(r['amplified_frac'] for r in mine):.0f}%"
        neg = "—" if mine[0]["leap_frac_below_zero"] is None else \
            f"{100 * statistics.mean(r['leap_frac_below_zero'] for r in mine):.3f}%"
        out.append(f"| {config} | {statistics.mean(acc):.2f} ± {statistics.stdev(acc) if len(acc) > 1 else 0:.2f} "
                   f"(n={len(acc)}) | {diff} | {amp} | {neg} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--num-seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--configs", nargs="*", default=DEFAULT, choices=list(CONFIGS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="also write every run as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = load(args)
    rows, start = [], time.process_time()
    for seed in range(args.num_seeds):
        for config in args.configs:
            rows.append(run(config, seed, data, args))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(f"# {args.train_size} training images, full test set, {args.epochs} epochs, {args.num_seeds} seeds, "
          f"device {args.device}; torch {torch.__version__}, Python {platform.python_version()}; "
          f"CPU time {time.process_time() - start:.0f} s")
    print("# command: " + shlex.join(["python", "experiments/plugins_fmnist.py", *(argv or sys.argv[1:])]))
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "runs": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
