"""The LR range test through the training protocol against ``lrkit.range_test``: same model, same batches.

``lrkit range-test --task mymod:train`` (and a study's LR range) runs the sweep as one trial of the user's
training function (:func:`lrkit.lrbench.run.lr_range.protocol_range_test`). This script runs both on the
built-in fashion-mnist-cnn3 model and a fixed list of Fashion-MNIST batches (``--task digits-mlp`` for a
quick look) and prints the two curves' largest difference, both suggestions, and both wall times.

    .venv/bin/python benchmarks/range_via_protocol.py [--task fashion-mnist-cnn3] [--steps 200] [--end-lr 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F


def main() -> None:
    from lrkit.lrbench import Task, get_task
    from lrkit.lrbench.run.lr_range import protocol_range_test
    from lrkit.lrbench.tasks.optimizers import make_optimizer
    from lrkit.rangetest import range_test

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fashion-mnist-cnn3")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--end-lr", type=float, default=1.0)
    parser.add_argument("--optimizer", default="sgd")
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = get_task(args.task)
    data = task.split_data()
    gen = np.random.default_rng(0)
    batches = []
    for _ in range(args.steps):
        idx = gen.choice(len(data.train_y), task.batch_size, replace=False)
        batches.append((torch.from_numpy(data.train_x[idx]), torch.from_numpy(data.train_y[idx])))

    def train(run):
        model = task.make_model()
        opt = run.optimizer(model)
        for x, y in run.batches(batches):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            run.step(loss)
            if run.due():
                run.report(val_loss=float(loss.detach()))

    tick = time.perf_counter()
    torch.manual_seed(0)
    model = task.make_model()
    opt = make_optimizer(args.optimizer, model.parameters(), lr=1e-6)
    direct = range_test(model, opt, F.cross_entropy, batches, steps=args.steps, end_lr=args.end_lr)
    direct_s = time.perf_counter() - tick
    tick = time.perf_counter()
    through = protocol_range_test(Task.from_function(train, budget=args.steps, metric="val_loss", mode="min"),
                                  optimizer=args.optimizer, steps=args.steps, end_lr=args.end_lr)
    protocol_s = time.perf_counter() - tick
    n = min(len(direct.losses), len(through.losses))
    print(f"task {args.task}, optimizer {args.optimizer}, {args.steps} points, torch {torch.__version__}, 1 thread")
    print(f"points: range_test {len(direct.losses)} ({direct.stop_reason}); protocol {len(through.losses)} "
          f"({through.stop_reason})")
    print(f"largest loss difference over the first {n} points: {np.max(np.abs(direct.losses[:n] - through.losses[:n])):.3g}")
    for name, result in (("range_test", direct), ("protocol", through)):
        picks = ", ".join(f"{m} {p.lr:.4g}" for m, p in sorted(result.picks().items()) if p.lr is not None)
        signal = result.no_signal
        print(f"{name:<10} picks: {picks}; " + (f"no signal: {signal}" if signal else f"suggests {result.suggest()}"))
    print(f"wall time: range_test {direct_s:.1f} s, protocol {protocol_s:.1f} s (ratio {protocol_s / direct_s:.2f})")


if __name__ == "__main__":
    main()
