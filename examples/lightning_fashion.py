"""LRBench on a PyTorch Lightning ``Trainer``: a small CNN on a subset of Fashion-MNIST.

``train(run)`` builds an ordinary ``LightningModule`` and ``Trainer``; lrkit supplies three things:
the optimizer (``configure_optimizers`` returns ``run.optimizer(self)``: the trial's optimizer, its LR
following the trial's policy), the ``Trainer`` arguments (``lightning_trainer_kwargs(run)``: the
budget in updates, a validation every ``run.eval_every`` updates, no checkpoints or logger) and
``LRBenchCallback(run)``, which counts the updates, reports what ``validation_step`` logs
(``val_acc``, ``val_loss``, ``test_acc``, ``test_loss``) and stops the trainer when lrkit decides::

    lrkit verify --task examples/lightning_fashion.py:train --policy "FIX(k0=0.001)" --optimizer adam
    lrkit recommend --task examples/lightning_fashion.py:train
    python examples/lightning_fashion.py "FIX(k0=0.001)"     # the same verification from Python

6,000 training images (1,000 held out of the training set for validation, 1,000 test), so that the
200 updates take seconds on a CPU. The target: Adam at 1e-3 (the default) reaches 0.76-0.78
validation accuracy within the 200 updates (seeds 0 and 1), at 3e-3 0.83, at 1e-2 0.84-0.86, so the
target leaves room to lose and to win. Fashion-MNIST comes from Debian's ``dataset-fashion-mnist``
(``sudo apt-get install dataset-fashion-mnist``) or ``$LRKIT_DATA_DIR``. The same model through the
Hugging Face ``Trainer``: ``examples/hf_fashion.py``.
"""

from __future__ import annotations

import functools
import logging

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lrkit.lrbench import task_defaults
from lrkit.torch import LRBenchCallback, lightning_trainer_kwargs

logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # lrkit shows the progress


@task_defaults(budget=200, target=0.8, metric="val_acc", eval_every=50)
def train(run):
    """A small CNN on 6,000 Fashion-MNIST images through a Lightning Trainer, batch 64."""
    (x, y), val, test = fashion()
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=run.generator)
    evaluation = [DataLoader(TensorDataset(*val), batch_size=1000), DataLoader(TensorDataset(*test), batch_size=1000)]
    trainer = pl.Trainer(**lightning_trainer_kwargs(run), callbacks=[LRBenchCallback(run, monitor="val_acc")])
    trainer.fit(Classifier(run), loader, evaluation)


class Classifier(pl.LightningModule):
    """:func:`cnn` trained with cross-entropy; the first validation loader is ``val``, the second ``test``."""

    def __init__(self, run) -> None:
        super().__init__()
        self.run = run
        self.net = cnn()

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        x, y = batch
        logits = self.net(x)
        split = ("val", "test")[dataloader_idx]
        self.log(f"{split}_loss", F.cross_entropy(logits, y), add_dataloader_idx=False)
        self.log(f"{split}_acc", (logits.argmax(1) == y).float().mean(), add_dataloader_idx=False)

    def configure_optimizers(self):
        return self.run.optimizer(self)  # no scheduler: the trial's policy sets the LR of every update


def cnn() -> nn.Sequential:
    """Two 3×3 conv layers (16, 32 channels), each followed by 2×2 max-pooling, and a linear layer: 10 classes."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


@functools.lru_cache(maxsize=1)
def fashion() -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """``(x, y)`` of 6,000 training, 1,000 validation and 1,000 test images.

    lrkit's own loader reads Debian's idx files (no torchvision, no download); the validation images
    are held out of the training set by a fixed permutation.
    """
    from lrkit.lrbench.tasks.datasets import load_fashion_mnist, split_validation

    data = split_validation(load_fashion_mnist(), 5000, seed=0)
    return tuple((torch.from_numpy(x[:n]), torch.from_numpy(y[:n])) for x, y, n in (
        (data.train_x, data.train_y, 6000), (data.val_x, data.val_y, 1000), (data.test_x, data.test_y, 1000)))


if __name__ == "__main__":
    import sys

    from lrkit.lrbench import Task, verify

    policy = sys.argv[1] if len(sys.argv) > 1 else "FIX(k0=0.001)"
    result = verify(Task.from_function(train, name="lightning_fashion", **train.lrbench_defaults), policy,
                    seeds=(0, 1), optimizer="adam", on="val")
    print(result.summary())
