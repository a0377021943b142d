"""LRBench on a data-parallel training function: every trial runs as two processes (DistributedDataParallel).

``@task_defaults(..., ranks=2)`` makes every trial of ``train`` a job of two processes, started and ended
by lrkit (gloo on CPU, NCCL with ``--device cuda``); the search still sees one trial. Each rank trains on
its shard of the data (``DistributedSampler``, which ``run.batches`` gives ``set_epoch``) and the
validation accuracy is all-reduced, so every rank reports the same number; rank 0 judges, and every rank
stops at the same update::

    lrkit verify --task examples/ddp_mlp.py:train --policy "FIX(k0=0.1)" --seeds 0,1
    lrkit recommend --task examples/ddp_mlp.py:train --trials 8

Three Gaussian classes in 16 dimensions and a 16-64-3 perceptron: a trial takes seconds, most of them two
Pythons importing torch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from lrkit.lrbench import task_defaults


@task_defaults(budget=200, target=0.88, eval_every=20, ranks=2, optimizer="sgd", default_policy="FIX(k0=0.01)")
def train(run):
    # lrkit has already called init_process_group: run.rank and run.world_size say which process this is
    model = DistributedDataParallel(nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 3)).to(run.device))
    opt = run.optimizer(model)                       # the same policy on every rank
    train_set, (val_x, val_y) = data()
    sampler = DistributedSampler(train_set, run.world_size, run.rank, shuffle=True, seed=run.seed)
    for x, y in run.batches(DataLoader(train_set, batch_size=32, sampler=sampler)):
        loss = F.cross_entropy(model(x.to(run.device)), y.to(run.device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.step(loss)
        if run.due():                                # on every rank: the report is collective
            part = slice(run.rank, None, run.world_size)   # this rank's share of the validation set
            with torch.no_grad():
                correct = (model(val_x[part].to(run.device)).argmax(1).cpu() == val_y[part]).sum().float()
            dist.all_reduce(correct)
            run.report(val_acc=correct / len(val_y))


def data() -> tuple[TensorDataset, tuple[torch.Tensor, torch.Tensor]]:
    """2,048 training and 512 validation points of three Gaussian classes (the same on every rank)."""
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 16, generator=gen)
    labels = torch.randint(0, 3, (2560,), generator=gen)
    points = centres[labels] + 1.5 * torch.randn(2560, 16, generator=gen)
    return TensorDataset(points[:2048], labels[:2048]), (points[2048:], labels[2048:])


if __name__ == "__main__":
    from lrkit.lrbench import get_task, verify

    print(verify(get_task(f"{__file__}:train"), "FIX(k0=0.1)", seeds=(0, 1)).summary())
