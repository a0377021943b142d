"""lrkit's range test against torch-lr-finder 0.2.2 on the same model, data order, seed and sweep.

1. Curves: both run the same exponential sweep on the same initial weights and the same batches.
   With smoothing and the divergence stop off, their raw losses are compared point by point; then
   each tool's own smoothing (torch-lr-finder: EMA started at the first loss; lrkit: debiased EMA)
   is compared on those raw losses; then both run with their defaults (stop at 5x / 4x).
2. Suggestions: torch-lr-finder's steepest gradient against lrkit's four rules. Which is better is
   judged by training: a fresh model from the same initial weights trains at a fixed LR equal to
   each suggestion for ``--train-steps`` updates, over ``--num-seeds`` seeds (each seed its own range
   tests, init and batch order); test accuracy mean ± std.

Run: nice -n 10 .venv/bin/python benchmarks/rangetest_compare.py [--optimizer sgd|adam] [--num-seeds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch_lr_finder import LRFinder  # noqa: E402

import lrkit  # noqa: E402
from lrkit.lrbench.tasks.datasets import load_fashion_mnist  # noqa: E402
from lrkit.lrbench.tasks.models import mlp  # noqa: E402


def loader(x: torch.Tensor, y: torch.Tensor, seed: int, batch: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch, shuffle=True,
                                       generator=torch.Generator().manual_seed(seed))


OPTIMIZER = "sgd"


def fresh(init: dict, lr: float) -> tuple[nn.Module, torch.optim.Optimizer]:
    model = mlp((1, 28, 28), 10)
    model.load_state_dict(init)
    if OPTIMIZER == "adam":
        return model, torch.optim.Adam(model.parameters(), lr=lr)
    return model, torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def tlf(init, data, seed, args, smooth_f, diverge_th):  # noqa: ANN001, ANN201
    model, opt = fresh(init, args.start_lr)
    finder = LRFinder(model, opt, nn.CrossEntropyLoss())
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder.range_test(loader(*data, seed, args.batch), start_lr=args.start_lr, end_lr=args.end_lr,
                          num_iter=args.steps, step_mode="exp", smooth_f=smooth_f, diverge_th=diverge_th)
        suggestion = None
        if len(finder.history["lr"]) >= 17:
            _, ax = plt.subplots()
            _, suggestion = finder.plot(skip_start=10, skip_end=5, ax=ax, suggest_lr=True)
            plt.close("all")
    finder.reset()
    return np.array(finder.history["lr"]), np.array(finder.history["loss"]), suggestion


def ours(init, data, seed, args, diverge):  # noqa: ANN001, ANN201
    model, opt = fresh(init, args.start_lr)
    return lrkit.range_test(model, opt, nn.CrossEntropyLoss(), loader(*data, seed, args.batch),
                            start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps, mode="exp",
                            diverge_factor=diverge, metric="accuracy")


def tlf_smoothing(raw: np.ndarray, f: float = 0.05) -> np.ndarray:
    out = [raw[0]]
    for value in raw[1:]:
        out.append(f * value + (1 - f) * out[-1])
    return np.array(out)


def train_fixed(init, data, test, seed, lr, steps, batch):  # noqa: ANN001, ANN201
    model, opt = fresh(init, lr)
    batches = iter(())
    stream = loader(*data, seed + 1000, batch)
    model.train()
    for _ in range(steps):
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(stream)
            x, y = next(batches)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        if not torch.isfinite(loss):
            return 0.1
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return float((model(test[0]).argmax(1) == test[1]).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-limit", type=int, default=20000)
    parser.add_argument("--test-limit", type=int, default=5000)
    parser.add_argument("--num-seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--start-lr", type=float, default=1e-5)
    parser.add_argument("--end-lr", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=600)
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="sgd: momentum 0.9")
    args = parser.parse_args()
    global OPTIMIZER
    OPTIMIZER = args.optimizer
    torch.set_num_threads(1)
    t0, cpu0 = time.time(), time.process_time()
    ds = load_fashion_mnist()
    data = (torch.from_numpy(ds.train_x[:args.train_limit]), torch.from_numpy(ds.train_y[:args.train_limit]))
    test = (torch.from_numpy(ds.test_x[:args.test_limit]), torch.from_numpy(ds.test_y[:args.test_limit]))
    print(f"Fashion-MNIST MLP 784-256-128-10, {args.optimizer} (sgd: momentum 0.9), batch {args.batch}, first {args.train_limit} "
          f"train / {args.test_limit} test images; sweep exp {args.start_lr:g}..{args.end_lr:g} in {args.steps} points")
    picks: dict[str, list[float]] = {}
    accs: dict[str, list[float]] = {}
    for seed in range(args.num_seeds):
        torch.manual_seed(seed)
        init = {k: v.clone() for k, v in mlp((1, 28, 28), 10).state_dict().items()}
        # 1. raw curves, no smoothing, no stop
        their_lrs, their_raw, _ = tlf(init, data, seed, args, smooth_f=0.0, diverge_th=1e30)
        mine = ours(init, data, seed, args, diverge=1e30)
        n = min(len(their_raw), len(mine.losses))
        finite = np.isfinite(their_raw[:n]) & np.isfinite(mine.losses[:n])
        diff = np.abs(their_raw[:n] - mine.losses[:n])[finite]
        lr_equal = int(np.sum(their_lrs[:n] == mine.lrs[:n]))
        lr_rel = float(np.max(np.abs(their_lrs[:n] / mine.lrs[:n] - 1)))
        first_diff = int(np.argmax(their_raw[:n] != mine.losses[:n])) if np.any(their_raw[:n] != mine.losses[:n]) \
            else None
        print(f"\nseed {seed}: {n} points; LRs bit-equal at {lr_equal}/{n} (max rel diff {lr_rel:.1e}); raw losses "
              f"bit-equal at {int(np.sum(their_raw[:n] == mine.losses[:n]))}/{n}, max |diff| {diff.max():.2e}, "
              f"first difference at point {first_diff}")
        theirs_s, ours_s = tlf_smoothing(mine.losses), mine.smoothed_losses
        gap = np.abs(theirs_s - ours_s) / np.abs(ours_s)
        print(f"  smoothing on the same raw curve: rel gap max {np.nanmax(gap[:20]):.3f} in points 0-19, "
              f"{np.nanmax(gap[20:60]):.3f} in 20-59, {np.nanmax(gap[60:]):.2e} from 60 on (debiasing; 0.95^60 = "
              f"{0.95 ** 60:.3f})")
        # 2. defaults: torch-lr-finder smooth 0.05 / stop 5x; lrkit debiased EMA / stop 4x
        t_lrs, t_loss, t_pick = tlf(init, data, seed, args, smooth_f=0.05, diverge_th=5)
        result = ours(init, data, seed, args, diverge=4.0)
        print(f"  defaults: torch-lr-finder stopped after {len(t_lrs)} points (lr {t_lrs[-1]:.3g}); lrkit after "
              f"{len(result.lrs)} (lr {result.lrs[-1]:.3g}): {result.stop_reason}")
        row = {"torch-lr-finder steepest": t_pick}
        for method, pick in result.picks().items():
            row[f"lrkit {method}"] = pick.lr
        row["lrkit recommended"] = result.suggest().lr
        print("  picks: " + ", ".join(f"{k}={v:.3g}" if v else f"{k}=-" for k, v in row.items()))
        for key, lr in row.items():
            picks.setdefault(key, []).append(lr if lr else np.nan)
            if lr and key != "lrkit recommended":
                accs.setdefault(key, []).append(train_fixed(init, data, test, seed, lr, args.train_steps, args.batch))
    print(f"\n| suggestion | LR (per seed) | test acc after {args.train_steps} updates at that fixed LR, mean ± std |")
    print("|---|---|---|")
    for key in picks:
        lrs = ", ".join(f"{v:.3g}" for v in picks[key])
        a = np.array(accs.get(key, [np.nan]))
        print(f"| {key} | {lrs} | {a.mean():.4f} ± {a.std():.4f} (n={len(a)}) |" if key in accs else
              f"| {key} | {lrs} | (the recommended pick is one of the rows above) |")
    print(f"\nwall {time.time() - t0:.0f} s, CPU {time.process_time() - cpu0:.0f} s")


if __name__ == "__main__":
    main()
