"""LEAP's cost: step time of LEAP / the plain optimizer, for a ResNet-18-sized model.

Two ratios, each against a baseline measured in the same run, plain and LEAP interleaved:

- ``optimizer step``: ``opt.step()`` alone (gradients fixed), 11.2M parameters;
- ``training step``: forward + backward + ``opt.step()`` on a batch (CIFAR-shaped input).

The goal (issue 4) is a training-step ratio <= 1.2 on an H100; on CUDA the noise is generated on
the GPU and timing uses CUDA events around only the timed steps. On CPU (one thread) the
process's CPU time is measured, so other load on a shared machine does not enter the ratio.

    nice -n 10 .venv/bin/python benchmarks/bench_leap.py                 # CPU (1 thread)
    python benchmarks/bench_leap.py --device cuda --batch 256 --repeats 50   # GPU
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

from lrkit.torch.leap import LEAP


def _block(cin: int, cout: int, stride: int) -> nn.Module:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                      nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
            self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.body(x) + self.skip(x))

    return Block()


def resnet18(num_classes: int = 10) -> nn.Module:
    """ResNet-18 for 32×32 inputs (11.2M parameters, 62 tensors)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [_block(cin, cout, stride), _block(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers)


def _timer(device: torch.device):
    if device.type == "cuda":
        def timed(fn) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1000
    else:
        def timed(fn) -> float:  # CPU time of this single-threaded process: robust to a shared machine
            start = time.process_time()
            fn()
            return time.process_time() - start
    return timed


def measure(kind: str, device: torch.device, batch: int, repeats: int, optim: str) -> dict[str, list[float]]:
    model = resnet18().to(device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    make = {"sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4),
            "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.05)}[optim]
    opts = {"plain": make(model.parameters()), "leap": LEAP(make(model.parameters()), sigma=0.1, seed=0)}
    timed = _timer(device)

    def train_step(opt) -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    for opt in opts.values():  # warm-up: state allocation, kernels, caches
        train_step(opt)
        train_step(opt)
    times: dict[str, list[float]] = {name: [] for name in opts}
    for _ in range(repeats):
        for name, opt in opts.items():
            times[name].append(timed(lambda: train_step(opt)) if kind == "training" else timed(opt.step))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=None, help="default: 256 on CUDA, 16 on CPU")
    parser.add_argument("--repeats", type=int, default=None, help="default: 50 on CUDA, 5 on CPU")
    parser.add_argument("--optim", nargs="*", default=["sgd", "adamw"], choices=["sgd", "adamw"])
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(1)
    batch = args.batch or (256 if device.type == "cuda" else 16)
    repeats = args.repeats or (50 if device.type == "cuda" else 5)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} thread"
    print(f"# {where}; torch {torch.__version__}, Python {platform.python_version()}; ResNet-18 (11.2M params), "
          f"batch {batch}, {repeats} repeats after 2 warm-up steps; median seconds "
          f"({'CUDA events' if device.type == 'cuda' else 'process CPU time'})")
    print("| optimizer | what is timed | plain (s) | LEAP (s) | LEAP / plain |")
    print("|---|---|---|---|---|")
    for optim in args.optim:
        for kind in ("optimizer", "training"):
            t = measure(kind, device, batch, repeats, optim)
            plain, leap = statistics.median(t["plain"]), statistics.median(t["leap"])
            print(f"| {optim} | {kind} step | {plain:.4f} | {leap:.4f} | {leap / plain:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
