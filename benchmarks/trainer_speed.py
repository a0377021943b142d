"""Updates per second of lrkit's trial runner, against a plain DataLoader loop measured in the same run.

The runner (``lrkit.lrbench.run.runner``) keeps the data on the device, indexes seeded batches, and reads
the loss back only at evaluations. The baseline is the loop most tutorials show: a shuffling
``DataLoader`` over a ``TensorDataset`` and ``loss.item()`` every update. Both use one CPU thread,
the same model, optimizer and batch size; only training time is timed (no evaluation).

    nice -n 10 .venv/bin/python benchmarks/trainer_speed.py --tasks digits-mlp fashion-mnist-cnn3 --steps 200
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lrkit.lrbench.tasks.optimizers import make_optimizer
from lrkit.lrbench.tasks.catalogue import get_task
from lrkit.lrbench.run.steps import BatchOrder, prepare_data, train_step
from lrkit.torch import PolicyLR


def runner_rate(task, steps: int, device: str, seed: int) -> float:
    data = prepare_data(task, device)
    torch.manual_seed(seed)
    model = task.make_model().to(device)
    opt = make_optimizer(task.optimizer, model.parameters(), 0.01, **task.optimizer_kwargs)
    sched = PolicyLR(opt, task.default_policy)
    order = BatchOrder(len(data.train_y), task.batch_size, seed, device)
    loss_sum = torch.zeros((), device=device)
    start = time.perf_counter()
    for t in range(steps):
        idx = order.indices(t)
        loss_sum += train_step(model, opt, data.train_x[idx], data.train_y[idx])
        sched.step()
    loss_sum.item()  # the one synchronisation, as at an evaluation
    return steps / (time.perf_counter() - start)


def baseline_rate(task, steps: int, device: str, seed: int) -> float:
    data = task.load_data()
    ds = torch.utils.data.TensorDataset(torch.from_numpy(data.train_x), torch.from_numpy(data.train_y))
    loader = torch.utils.data.DataLoader(ds, batch_size=task.batch_size, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    model = task.make_model().to(device)
    opt = make_optimizer(task.optimizer, model.parameters(), 0.01, **task.optimizer_kwargs)
    sched = PolicyLR(opt, task.default_policy)
    done = 0
    start = time.perf_counter()
    while done < steps:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
            loss.item()
            done += 1
            if done == steps:
                break
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["digits-mlp", "fashion-mnist-cnn3"])
    parser.add_argument("--steps", type=int, default=200, help="timed updates per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}")
    print("| task | batch | runner updates/s | DataLoader loop updates/s | ratio |")
    print("|---|---|---|---|---|")
    for name in args.tasks:
        task = get_task(name)
        runner_rate(task, max(5, args.steps // 10), args.device, 0)  # warm-up: allocator, caches
        baseline_rate(task, max(5, args.steps // 10), args.device, 0)
        ours, base = [], []
        for r in range(args.repeats):  # interleaved, so background load hits both alike
            ours.append(runner_rate(task, args.steps, args.device, r))
            base.append(baseline_rate(task, args.steps, args.device, r))
        ratio = [a / b for a, b in zip(ours, base)]

        def fmt(v: list[float]) -> str:
            return f"{statistics.mean(v):.1f} ± {statistics.stdev(v) if len(v) > 1 else 0:.1f}"

        print(f"| {name} | {task.batch_size} | {fmt(ours)} | {fmt(base)} | "
              f"{statistics.mean(ratio):.2f} ± {statistics.stdev(ratio) if len(ratio) > 1 else 0:.2f} |")


if __name__ == "__main__":
    main()
