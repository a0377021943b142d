"""LRBench on the Hugging Face ``Trainer``: a small CNN on a subset of Fashion-MNIST.

``train(run)`` is an ordinary ``Trainer`` set-up; lrkit supplies the ``TrainingArguments`` of the trial
(``hf_training_args(run, ...)``: the budget in updates, an evaluation every ``run.eval_every`` updates,
the seed, nothing saved or logged) and ``hf_trainer_kwargs(run, model, ...)``: the trial's optimizer
(its LR following the trial's policy, the Trainer's own scheduler kept out) and a callback that counts
the updates, reports each evaluation and stops the Trainer when lrkit decides. The evaluation sets
are named ``val`` and ``test``, so the Trainer's ``eval_val_acc`` and ``eval_test_acc`` are reported
as ``val_acc`` and ``test_acc``::

    lrkit verify --task examples/hf_fashion.py:train --policy "FIX(k0=0.001)" --optimizer adam
    lrkit recommend --task examples/hf_fashion.py:train
    python examples/hf_fashion.py "FIX(k0=0.001)"     # the same verification from Python

The model and data are those of ``examples/lightning_fashion.py``: 6,000 training images (1,000 held
out of the training set for validation, 1,000 test). The target: Adam at 1e-3 (the default) reaches
0.77-0.78 validation accuracy within the 200 updates (seeds 0 and 1), at 3e-3 0.82-0.83, at 1e-2
0.84-0.85, so the target leaves room to lose and to win. The Trainer clips gradients at
``max_grad_norm=1.0`` unless told otherwise. Fashion-MNIST comes from Debian's
``dataset-fashion-mnist`` (``sudo apt-get install dataset-fashion-mnist``) or ``$LRKIT_DATA_DIR``.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PrinterCallback, Trainer, TrainingArguments

from lrkit.lrbench import task_defaults
from lrkit.torch import hf_trainer_kwargs, hf_training_args


@task_defaults(budget=200, target=0.8, metric="val_acc", eval_every=50)
def train(run):
    """A small CNN on 6,000 Fashion-MNIST images through the Hugging Face Trainer, batch 64."""
    train_set, val_set, test_set = fashion()
    model = Classifier().to(run.device)
    args = TrainingArguments(**hf_training_args(run, per_device_train_batch_size=64, per_device_eval_batch_size=1000))
    trainer = Trainer(model=model, args=args, train_dataset=train_set, compute_metrics=accuracy,
                      **hf_trainer_kwargs(run, model, eval_dataset={"val": val_set, "test": test_set}))
    trainer.remove_callback(PrinterCallback)  # lrkit shows the progress
    trainer.train()


class Classifier(nn.Module):
    """Two 3×3 conv layers (16, 32 channels), each followed by 2×2 max-pooling, and a linear layer: 10 classes.

    It returns what the Trainer reads: the cross-entropy ``loss`` and the ``logits``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 10))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.net(x)
        return {"loss": F.cross_entropy(logits, labels), "logits": logits}


def accuracy(prediction) -> dict[str, float]:
    """``compute_metrics``: top-1 accuracy, which the Trainer reports as ``eval_<set>_acc``."""
    return {"acc": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


class Images(torch.utils.data.Dataset):
    """Images and labels as the Trainer's collator wants them: ``{"x": image, "labels": label}``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "labels": self.y[i]}


@functools.lru_cache(maxsize=1)
def fashion() -> tuple[Images, Images, Images]:
    """6,000 training, 1,000 validation and 1,000 test images.

    lrkit's own loader reads Debian's idx files (no torchvision, no download); the validation images
    are held out of the training set by a fixed permutation.
    """
    from lrkit.lrbench.tasks.datasets import load_fashion_mnist, split_validation

    data = split_validation(load_fashion_mnist(), 5000, seed=0)
    return tuple(Images(torch.from_numpy(x[:n]), torch.from_numpy(y[:n])) for x, y, n in (
        (data.train_x, data.train_y, 6000), (data.val_x, data.val_y, 1000), (data.test_x, data.test_y, 1000)))


if __name__ == "__main__":
    import sys

    from lrkit.lrbench import Task, verify

    policy = sys.argv[1] if len(sys.argv) > 1 else "FIX(k0=0.001)"
    result = verify(Task.from_function(train, name="hf_fashion", **train.lrbench_defaults), policy,
                    seeds=(0, 1), optimizer="adam", on="val")
    print(result.summary())
