"""Range test on Fashion-MNIST with a small CNN, then triangular2 from its bounds vs a fixed LR at its max.

Per seed: build the CNN (seeded), run ``lrkit.range_test`` (exp sweep, accuracy recorded on the
training batches), take ``suggest()``'s bounds, and train two copies of the same initial weights on
the same batch order: ``result.policy("triangular2", step_size=...)`` and ``FIX(k0=max_lr)``.
A third arm trains at the ``minimum/10`` loss rule's LR (what a finder user without an accuracy
curve would take). Test accuracy at the end of the budget, mean ± std over seeds. CPU only, one thread.

Run: nice -n 10 .venv/bin/python experiments/rangetest_fmnist.py [--num-seeds 3] [--budget 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

import lrkit
from lrkit.lrbench.tasks.datasets import load_fashion_mnist
from lrkit.torch import PolicyLR


def small_cnn() -> nn.Module:
    """conv3x3(8) - pool - conv3x3(16) - pool - linear: 6.9k parameters, ~40 ms per batch of 64 here."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def batches(x: torch.Tensor, y: torch.Tensor, seed: int, batch: int):  # noqa: ANN201
    g = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x) - batch + 1, batch):
            idx = order[i:i + batch]
            yield x[idx], y[idx]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(x), 1000))
    model.train()
    return correct / len(x)


def train(init: dict, policy: lrkit.Policy, data, test, seed: int, budget: int, batch: int,  # noqa: ANN001
          momentum: float) -> tuple[float, float]:
    model = small_cnn()
    model.load_state_dict(init)
    opt = torch.optim.SGD(model.parameters(), lr=policy(0), momentum=momentum)
    sched = PolicyLR(opt, policy)
    stream = batches(*data, seed + 1000, batch)
    losses = []
    for _ in range(budget):
        x, y = next(stream)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        if not torch.isfinite(loss):
            return 0.1, float("nan")
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return accuracy(model, *test), float(np.mean(losses[-100:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--train-limit", type=int, default=16000)
    parser.add_argument("--test-limit", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--budget", type=int, default=1000, help="training updates per run")
    parser.add_argument("--step-size", type=int, default=250, help="triangular2 half cycle in updates")
    parser.add_argument("--steps", type=int, default=200, help="range-test points")
    parser.add_argument("--momentum", type=float, default=0.9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    t0, cpu0 = time.time(), time.process_time()
    ds = load_fashion_mnist()
    data = (torch.from_numpy(ds.train_x[:args.train_limit]), torch.from_numpy(ds.train_y[:args.train_limit]))
    test = (torch.from_numpy(ds.test_x[:args.test_limit]), torch.from_numpy(ds.test_y[:args.test_limit]))
    epoch = args.train_limit // args.batch
    print(f"small CNN on Fashion-MNIST (first {args.train_limit} train / {args.test_limit} test images), SGD momentum "
          f"{args.momentum}, batch {args.batch} ({epoch} updates/epoch), budget {args.budget} updates, "
          f"triangular2 step_size {args.step_size}")
    rows: dict[str, list[float]] = {"triangular2": [], "fixed at max": [], "fixed at minimum/10": []}
    bounds: list[str] = []
    for seed in range(args.num_seeds):
        torch.manual_seed(seed)
        init = {k: v.clone() for k, v in small_cnn().state_dict().items()}
        model = small_cnn()
        model.load_state_dict(init)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=args.momentum)
        result = lrkit.range_test(model, opt, nn.CrossEntropyLoss(), data, start_lr=1e-5, end_lr=10.0,
                                  steps=args.steps, batch_size=args.batch, metric="accuracy")
        best = result.suggest()
        print(f"\nseed {seed}: {len(result.lrs)} points ({result.stop_reason})")
        print(best)
        if seed == 0:
            result.plot("experiments/rangetest_fmnist.png")
        tri = result.policy("triangular2", step_size=args.step_size)
        fixed = lrkit.parse(f"FIX(k0={best.lr!r})")
        tenth = result.policy("FIX", method="minimum")
        bounds.append(f"| {seed} | {best.method} | {best.base_lr:.3g} | {best.lr:.3g} | {tenth.k0:.3g} |")
        for name, policy in (("triangular2", tri), ("fixed at max", fixed), ("fixed at minimum/10", tenth)):
            acc, tail = train(init, policy, data, test, seed, args.budget, args.batch, args.momentum)
            rows[name].append(acc)
            print(f"  {policy.spec()}: test acc {acc:.4f}, mean train loss of the last 100 updates {tail:.4f}")
    print("\n| seed | rule | base_lr | max_lr | minimum/10 |\n|---|---|---|---|---|\n" + "\n".join(bounds))
    print(f"\n| policy | test accuracy after {args.budget} updates, mean ± std over {args.num_seeds} seeds | per seed |")
    print("|---|---|---|")
    for name, accs in rows.items():
        a = np.array(accs)
        print(f"| {name} | {a.mean():.4f} ± {a.std():.4f} | {', '.join(f'{v:.4f}' for v in a)} |")
    print(f"\nwall {time.time() - t0:.0f} s, CPU {time.process_time() - cpu0:.0f} s")


if __name__ == "__main__":
    main()
