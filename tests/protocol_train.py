"""A small training function of the protocol, for the command-line tests (``--task tests/protocol_train.py:train``).

Three Gaussian classes in 8 dimensions, a 8-32-3 perceptron; ``val_acc``, ``test_acc`` and ``val_loss``
reported every 20 updates. Trains 200 updates in well under a second.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lrkit.lrbench import task_defaults

_g = torch.Generator().manual_seed(0)
_W = torch.randn(8, 3, generator=_g)
X = torch.randn(512, 8, generator=_g)
Y = (X @ _W).argmax(1)
VX, TX = torch.randn(256, 8, generator=_g), torch.randn(256, 8, generator=_g)
VY, TY = (VX @ _W).argmax(1), (TX @ _W).argmax(1)


@torch.no_grad()
def _measure(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = model(x)
    return F.cross_entropy(logits, y), (logits.argmax(1) == y).float().mean()


@task_defaults(budget=200, target=0.9, eval_every=20, optimizer="adam")
def train(run):
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3)).to(run.device)
    opt = run.optimizer(model)
    loader = DataLoader(TensorDataset(X, Y), batch_size=32, shuffle=True, generator=run.generator)
    for x, y in run.batches(loader):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.step(loss)
        if run.due():
            val_loss, val_acc = _measure(model, VX, VY)
            test_loss, test_acc = _measure(model, TX, TY)
            run.report(val_acc=val_acc, test_acc=test_acc, val_loss=val_loss, test_loss=test_loss)
