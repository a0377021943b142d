"""Core speed: PolicyLR.step() against CosineAnnealingLR.step(), and Policy.values against a
scheduler loop, on the same cosine curve, measured in one run.

(a) ``PolicyLR.step()`` / ``CosineAnnealingLR.step()`` on a small model's SGD optimizer
    (goal <= 0.5). Also shown: two param groups, and PolicyLR evaluating ``policy(t)`` once
    per update instead of in blocks of 256 updates, to show where the time goes.
(b) ``Policy.values(range(1e6))`` / stepping CosineAnnealingLR on a dummy optimizer 1e6 times
    and reading the LR each time (goal <= 1/200).

Timings are process CPU time (``time.process_time``: time this process spent on a core, so
other processes on a shared machine do not inflate it), in interleaved repeats (policy,
baseline, policy, ...); the medians are reported.

Run:  .venv/bin/python benchmarks/bench_core.py [--quick]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import torch

import lrkit
from lrkit.lrbench.tasks.models import lenet
from lrkit.torch import PolicyLR

TOTAL = 1_000_000
MAX_LR = 0.1
SPEC = f"cosine(max_lr={MAX_LR}, total_steps={TOTAL})"


class _PerCallPolicyLR(PolicyLR):
    """Ablation: one ``Policy.__call__`` (a 0-d numpy evaluation) per update instead of blocks."""

    def _lrs(self, t: int) -> list[float]:
        value = self.policies[0](t)
        return [value * r for r in self._ratios()]


def _sgd(groups: int = 1) -> torch.optim.Optimizer:
    model = lenet((1, 28, 28), 10)
    params = list(model.parameters())
    if groups == 1:
        return torch.optim.SGD(params, lr=MAX_LR, momentum=0.9)
    half = len(params) // 2
    return torch.optim.SGD([{"params": params[:half]}, {"params": params[half:], "lr": MAX_LR * 10}],
                           lr=MAX_LR, momentum=0.9)


def _prepared(make_scheduler, groups: int = 1):
    opt = _sgd(groups)
    sched = make_scheduler(opt)
    opt.step()  # no gradients: a no-op update that satisfies the step-order check
    return sched


def _per_step_seconds(sched, steps: int) -> float:
    step = sched.step
    start = time.process_time()
    for _ in range(steps):
        step()
    return (time.process_time() - start) / steps


def _interleaved(candidates: dict[str, object], steps: int, repeats: int) -> dict[str, float]:
    """Median seconds per step of each scheduler, measured in alternation."""
    samples: dict[str, list[float]] = {k: [] for k in candidates}
    for name, sched in candidates.items():  # warm-up: imports, first block, caches
        _per_step_seconds(sched, 1000)
    for _ in range(repeats):
        for name, sched in candidates.items():
            samples[name].append(_per_step_seconds(sched, steps))
    return {k: statistics.median(v) for k, v in samples.items()}


def part_a(steps: int, repeats: int) -> dict[str, float]:
    policy = lrkit.parse(SPEC)
    cosine = lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=TOTAL)  # noqa: E731
    ours = lambda opt: PolicyLR(opt, policy)  # noqa: E731

    # the same curve: compare the first updates of both (PyTorch's chainable form drifts by rounding)
    a, b = _prepared(ours), _prepared(cosine)
    lr_a, lr_b = [], []
    for _ in range(5000):
        lr_a.append(a.get_last_lr()[0])
        lr_b.append(b.get_last_lr()[0])
        a.step()
        b.step()
    drift = float(np.max(np.abs(np.array(lr_a) - np.array(lr_b))))

    candidates = {
        "PolicyLR, 1 group": _prepared(ours),
        "CosineAnnealingLR, 1 group": _prepared(cosine),
        "PolicyLR, 2 groups": _prepared(ours, groups=2),
        "CosineAnnealingLR, 2 groups": _prepared(cosine, groups=2),
    }
    result = _interleaved(candidates, steps, repeats)
    per_call = lambda opt: _PerCallPolicyLR(opt, policy)  # noqa: E731
    result["PolicyLR calling policy(t) per update, 1 group"] = _interleaved(
        {"x": _prepared(per_call)}, steps, max(3, repeats // 3))["x"]
    result["max |lr difference| over the first 5000 updates"] = drift
    return result


def part_b(repeats_values: int, repeats_loop: int) -> dict[str, float]:
    policy = lrkit.parse(SPEC)
    steps = np.arange(TOTAL)

    def with_values() -> np.ndarray:
        return policy.values(steps)

    def with_scheduler() -> list[float]:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=MAX_LR)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=TOTAL)
        opt.step()
        group = opt.param_groups[0]
        out = []
        for _ in range(TOTAL):
            out.append(group["lr"])
            sched.step()
        return out

    with_values()  # warm-up
    values_times, loop_times = [], []
    curve = None
    for i in range(max(repeats_values, repeats_loop)):
        if i < repeats_values:
            start = time.process_time()
            curve = with_values()
            values_times.append(time.process_time() - start)
        if i < repeats_loop:
            start = time.process_time()
            simulated = with_scheduler()
            loop_times.append(time.process_time() - start)
    assert curve is not None
    return {"values(1e6 steps) s": statistics.median(values_times),
            "scheduler loop (1e6 steps) s": statistics.median(loop_times),
            "max |lr difference| over 1e6 updates": float(np.max(np.abs(curve - np.array(simulated))))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # PyTorch's deprecation chatter is not part of the measurement
    steps, repeats = (2000, 5) if args.quick else (5000, 15)
    rv, rl = (3, 1) if args.quick else (7, 3)

    print(f"# lrkit core benchmark — Python {platform.python_version()}, torch {torch.__version__}, "
          f"numpy {np.__version__}, {platform.machine()}")
    print(f"curve: {SPEC}  ==  CosineAnnealingLR(T_max={TOTAL}, eta_min=0), SGD(momentum=0.9) on lenet\n")

    a = part_a(steps, repeats)
    print(f"(a) scheduler.step(): median of {repeats} interleaved repeats x {steps} steps")
    for name in ("PolicyLR, 1 group", "CosineAnnealingLR, 1 group", "PolicyLR, 2 groups",
                 "CosineAnnealingLR, 2 groups", "PolicyLR calling policy(t) per update, 1 group"):
        print(f"    {name:<48} {a[name] * 1e6:8.2f} us/step")
    ratio1 = a["PolicyLR, 1 group"] / a["CosineAnnealingLR, 1 group"]
    ratio2 = a["PolicyLR, 2 groups"] / a["CosineAnnealingLR, 2 groups"]
    print(f"    ratio PolicyLR / CosineAnnealingLR: {ratio1:.3f} (1 group), {ratio2:.3f} (2 groups); goal <= 0.5 "
          f"-> {'met' if ratio1 <= 0.5 and ratio2 <= 0.5 else 'MISSED'}")
    print(f"    same curve: max |lr difference| over the first 5000 updates = "
          f"{a['max |lr difference| over the first 5000 updates']:.3g}\n")

    b = part_b(rv, rl)
    ratio = b["values(1e6 steps) s"] / b["scheduler loop (1e6 steps) s"]
    print(f"(b) 1,000,000 steps: values() median of {rv}, scheduler loop median of {rl}")
    print(f"    Policy.values                      {b['values(1e6 steps) s'] * 1e3:8.1f} ms")
    print(f"    CosineAnnealingLR stepping loop    {b['scheduler loop (1e6 steps) s'] * 1e3:8.1f} ms")
    print(f"    ratio values / loop: {ratio:.5f} = 1/{1 / ratio:.0f}; goal <= 1/200 -> "
          f"{'met' if ratio <= 1 / 200 else 'MISSED'}")
    print(f"    same curve: max |lr difference| over 1e6 updates = "
          f"{b['max |lr difference| over 1e6 updates']:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
