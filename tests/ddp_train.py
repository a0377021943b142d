"""A data-parallel training function for tests/test_protocol_ddp.py: a tiny MLP under DistributedDataParallel.

Every rank trains on its shard (``DistributedSampler``) and reports the validation accuracy all-reduced
over the ranks' halves of the validation set. Environment variables steer it:

- ``DDP_TRAIN_LOG``: a folder; rank ``r`` writes ``rank{r}.json`` there: the LR of every update it
  took, the points it reported, where it stopped and whether lrkit had said stop.
- ``DDP_TRAIN_FAIL``: ``RANK:UPDATE:HOW[:SPEC]``: that rank, after that update, ``kill``s itself
  (SIGKILL), ``exit``s (``os._exit(3)``) or ``raise``s a ValueError; with SPEC, only in a trial whose
  policy's spec starts with it. The time it fails goes to ``DDP_TRAIN_LOG/failed_at``.
"""

from __future__ import annotations

import json
import os
import signal
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from lrkit.lrbench import task_defaults

_g = torch.Generator().manual_seed(0)
X = torch.randn(256, 8, generator=_g)
W = torch.randn(8, 3, generator=_g)
Y = (X @ W).argmax(1)
VX = torch.randn(128, 8, generator=_g)
VY = (VX @ W).argmax(1)


def _accuracy(model: torch.nn.Module, rank: int, world: int) -> torch.Tensor:
    """The validation accuracy over every rank's slice of the validation set (all-reduced)."""
    part = slice(rank * len(VX) // world, (rank + 1) * len(VX) // world)
    with torch.no_grad():
        correct = (model(VX[part]).argmax(1) == VY[part]).sum().float()
    dist.all_reduce(correct)
    return correct / len(VX)


def _failure(rank: int, spec: str) -> tuple[int, str] | None:
    text = os.environ.get("DDP_TRAIN_FAIL")
    if not text:
        return None
    who, update, how, *only = text.split(":", 3)
    if int(who) != rank or (only and not spec.startswith(only[0])):
        return None
    return int(update), how


def _fail(how: str) -> None:
    folder = os.environ.get("DDP_TRAIN_LOG")
    if folder:
        with open(os.path.join(folder, "failed_at"), "w") as f:
            f.write(repr(time.time()))
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "exit":
        os._exit(3)
    raise ValueError("the training function of this rank raised on purpose")


@task_defaults(budget=60, target=0.99, eval_every=10, ranks=2, optimizer="sgd", default_policy="FIX(k0=0.05)")
def train(run):
    rank, world = dist.get_rank(), dist.get_world_size()
    assert (run.rank, run.world_size) == (rank, world) == (int(os.environ["RANK"]), 2)
    model = DistributedDataParallel(torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),
                                                        torch.nn.Linear(16, 3)))
    opt = run.optimizer(model)
    data = TensorDataset(X, Y)
    loader = DataLoader(data, batch_size=16, sampler=DistributedSampler(data, world, rank, shuffle=True, seed=run.seed))
    failure = _failure(rank, run.policy.spec())
    lrs, points = [], []
    for x, y in run.batches(loader):
        lrs.append(opt.param_groups[0]["lr"])  # the LR of update run.steps
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.step(loss)
        if failure and run.steps == failure[0]:
            _fail(failure[1])
        if run.due():
            acc = float(_accuracy(model, rank, world))
            points.append([run.steps, acc])
            run.report(val_acc=acc, test_acc=acc)
    folder = os.environ.get("DDP_TRAIN_LOG")
    if folder:
        with open(os.path.join(folder, f"rank{rank}.json"), "w") as f:
            json.dump({"lrs": lrs, "points": points, "steps": run.steps, "stopped": run.should_stop}, f)
