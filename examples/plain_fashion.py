"""LRBench on a plain PyTorch loop: Fashion-MNIST through a DataLoader with augmentation, a small CNN.

``train(run)`` is an ordinary training loop with a handful of lrkit lines in it: the optimizer comes from
``run``, the batches from ``run.batches(loader)``, every update is counted with ``run.step(loss)``, and
the metrics are reported when ``run.due()``. The decorator gives the defaults the commands use::

    lrkit verify --task examples/plain_fashion.py:train --policy "FIX(k0=0.001)"
    lrkit recommend --task examples/plain_fashion.py:train
    python examples/plain_fashion.py "FIX(k0=0.001)"     # the same verification from Python

55,000 training images (5,000 more are held out for validation), 10,000 test. The target: Adam at 1e-3
(the default) reaches 0.76 validation accuracy after 350 and 400 of the 600 updates (seeds 0 and 1; 0.79
at the end); at 3e-3 after 200 (seed 0; 0.83 at the end), so a policy can lose or win against it. 600
updates take 2.5 minutes on one CPU thread. Fashion-MNIST comes from Debian's ``dataset-fashion-mnist``
(``sudo apt-get install dataset-fashion-mnist``) or ``$LRKIT_DATA_DIR``. ``LRKIT_EXAMPLE_SMALL=1``
trains on 2,000 images (500 validation, 500 test) instead.
"""

from __future__ import annotations

import functools
import os

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lrkit.lrbench import task_defaults


@task_defaults(budget=600, target=0.76, metric="val_acc", eval_every=50)
def train(run):
    """A CNN3-sized network on Fashion-MNIST with random crops and flips, batch 128."""
    train_set, val, test = fashion(small())
    loader = DataLoader(train_set, batch_size=128, shuffle=True, generator=run.generator, drop_last=True)
    model = Net().to(run.device)
    opt = run.optimizer(model)                     # the trial's optimizer; its LR follows the policy
    for x, y in run.batches(loader):               # epoch after epoch, until lrkit says stop
        x, y = x.to(run.device), y.to(run.device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.step(loss)                             # counts the update, sets the next LR
        if run.due():                              # every eval_every updates, and at the end
            val_loss, val_acc = evaluate(model, *val, run.device)
            _, test_acc = evaluate(model, *test, run.device)
            run.report(val_acc=val_acc, val_loss=val_loss, test_acc=test_acc)


class Net(nn.Sequential):
    """LRBench's CNN3 (Caffe's cifar10_quick) on 28×28: three 5×5 conv layers (32, 32, 64), 64 units, 10 classes."""

    def __init__(self) -> None:
        super().__init__(
            nn.Conv2d(1, 32, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(64 * 3 * 3, 64), nn.ReLU(), nn.Linear(64, 10))


class Augmented(Dataset):
    """Images padded by 2 pixels, a random 28×28 crop of each, flipped left-right half the time."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = F.pad(x, (2, 2, 2, 2)), y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        top, left = torch.randint(0, 5, (2,)).tolist()  # torch's generator: seeded by the trial
        image = self.x[i, :, top:top + 28, left:left + 28]
        return (image.flip(-1) if torch.rand(()) < 0.5 else image), self.y[i]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: str) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)`` (in eval mode, batches of 1,000)."""
    model.eval()
    loss, correct = torch.zeros((), device=device), torch.zeros((), device=device)
    for i in range(0, len(y), 1000):
        xb, yb = x[i:i + 1000].to(device), y[i:i + 1000].to(device)
        logits = model(xb)
        loss += F.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    model.train()
    return loss.item() / len(y), correct.item() / len(y)


def small() -> bool:
    """``LRKIT_EXAMPLE_SMALL=1``: a subset of the data, for tests."""
    return os.environ.get("LRKIT_EXAMPLE_SMALL", "") == "1"


@functools.lru_cache(maxsize=2)
def fashion(small: bool = False) -> tuple[Augmented, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """The augmented training set, the validation split (5,000 images carved from train) and the test set.

    lrkit's own loader reads Debian's idx files (no torchvision, no download); the split is fixed.
    """
    from lrkit.lrbench.tasks.datasets import load_fashion_mnist, split_validation

    data = split_validation(load_fashion_mnist(), 5000, seed=0)
    sizes = (2000, 500, 500) if small else (None, None, None)
    pairs = [(torch.from_numpy(x[:n]), torch.from_numpy(y[:n])) for (x, y), n in zip(
        ((data.train_x, data.train_y), (data.val_x, data.val_y), (data.test_x, data.test_y)), sizes)]
    return Augmented(*pairs[0]), pairs[1], pairs[2]


if __name__ == "__main__":
    import sys

    from lrkit.lrbench import Task, verify

    policy = sys.argv[1] if len(sys.argv) > 1 else "FIX(k0=0.001)"
    result = verify(Task.from_function(train, name="plain_fashion", **train.lrbench_defaults), policy, seeds=(0, 1),
                    optimizer="adam", on="val")
    print(result.summary())
