"""What the training protocol costs per update: a loop through ``run_trial`` against the same loop without lrkit.

Three loops train the same model (LRBench's CNN3 on 28×28 by default, batch 128, momentum SGD) on the
same batches held in memory (synthetic images; the data does not change the cost of an update), for
the same number of updates, and read a cheap metric (the batch's loss) every ``--every`` updates:

- ``plain``: a torch optimizer at a fixed LR;
- ``plain+LambdaLR``: the same, with torch's ``LambdaLR`` stepped after every update (the fair
  comparison: lrkit writes the LR of every update too);
- ``lrkit``: the same loop as a training function (``Task.from_function``) run by ``run_trial``:
  ``run.optimizer(model)``, ``run.step(loss)`` after every update, ``run.due()`` and ``run.report(loss=...)``.
  The whole trial is timed, its set-up (policy values, optimizer, judging, the result) included.

The repetitions are interleaved (plain, LambdaLR, lrkit, plain, ...) after one warm-up of each, so
that a change in the machine's speed hits all three alike; the medians and their ratios are printed.
``--model tiny`` (a 32-32 linear layer) shows the overhead in absolute terms, where an update costs
almost nothing::

    nice -n 10 .venv/bin/python benchmarks/protocol_overhead.py --threads 1 --updates 200 --repeats 5
    nice -n 10 .venv/bin/python benchmarks/protocol_overhead.py --threads 1 --model tiny --updates 2000 --repeats 7
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from lrkit.lrbench import Task, run_trial
from lrkit.lrbench.tasks.models import cnn3

LR = 0.01


def make_model(kind: str) -> torch.nn.Module:
    return cnn3((1, 28, 28), 10) if kind == "cnn3" else torch.nn.Linear(32, 10)


def make_batches(kind: str, batch: int, count: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    shape = (batch, 1, 28, 28) if kind == "cnn3" else (batch, 32)
    return [(torch.randn(shape, generator=g), torch.randint(0, 10, (batch,), generator=g)) for _ in range(count)]


def plain(kind: str, batches: list, updates: int, every: int, scheduler: bool) -> float:
    """Seconds for ``updates`` updates of the plain loop (with ``LambdaLR`` stepped per update if ``scheduler``)."""
    start = time.perf_counter()
    torch.manual_seed(0)
    model = make_model(kind)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0) if scheduler else None
    metrics = []  # kept, as a report keeps them
    for t in range(updates):
        x, y = batches[t % len(batches)]
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if (t + 1) % every == 0 or t + 1 == updates:
            metrics.append(loss.item())
    return time.perf_counter() - start


def lrkit_task(kind: str, batches: list, updates: int, every: int) -> Task:
    def train(run: Any) -> None:
        model = make_model(kind).to(run.device)
        opt = run.optimizer(model)
        for t in run.updates():
            x, y = batches[t % len(batches)]
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            run.step(loss)
            if run.due():
                run.report(loss=loss.item())

    # a target no loss reaches: the trial runs its whole budget
    return Task.from_function(train, name="overhead", budget=updates, target=-1.0, metric="loss", mode="min",
                              eval_every=every, optimizer="momentum", default_policy=f"FIX(k0={LR})")


def through_lrkit(task: Task) -> float:
    start = time.perf_counter()
    result = run_trial(task, f"FIX(k0={LR})", threads=None, early_stop=False, stop_at_target=False)
    seconds = time.perf_counter() - start
    if result.status != "budget" or result.steps != task.budget:
        raise SystemExit(f"the lrkit trial ended early: {result.status} {result.reason}")
    return seconds


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("cnn3", "tiny"), default="cnn3")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--updates", type=int, default=200, help="updates per repetition")
    parser.add_argument("--every", type=int, default=100, help="updates between two reads of the metric")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions of each loop (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; torch {torch.__version__} with "
          f"{torch.get_num_threads()} thread(s); Python {platform.python_version()}")
    print(f"model {args.model}, batch {args.batch}, {args.updates} updates per repetition, metric read every "
          f"{args.every}, {args.repeats} interleaved repetitions after a warm-up")
    batches = make_batches(args.model, args.batch)
    task = lrkit_task(args.model, batches, args.updates, args.every)
    loops: dict[str, Callable[[], float]] = {
        "plain": lambda: plain(args.model, batches, args.updates, args.every, scheduler=False),
        "plain+LambdaLR": lambda: plain(args.model, batches, args.updates, args.every, scheduler=True),
        "lrkit": lambda: through_lrkit(task),
    }
    times: dict[str, list[float]] = {name: [] for name in loops}
    for repeat in range(args.repeats + 1):
        for name, loop in loops.items():
            seconds = loop()
            if repeat:  # the first round warms up
                times[name].append(seconds / args.updates)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    print()
    print("| loop | median per update | min | max |")
    print("|---|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {1e3 * med[name]:.3f} ms | {1e3 * min(ts):.3f} ms | {1e3 * max(ts):.3f} ms |")
    print()
    for base in ("plain", "plain+LambdaLR"):
        print(f"lrkit / {base}: {med['lrkit'] / med[base]:.4f} (overhead {1e6 * (med['lrkit'] - med[base]):+.1f} us "
              "per update)")
    pairs = [lr / pl for lr, pl in zip(times["lrkit"], times["plain+LambdaLR"])]
    print(f"lrkit / plain+LambdaLR, repetition by repetition: {', '.join(f'{r:.3f}' for r in pairs)}")


if __name__ == "__main__":
    main()
