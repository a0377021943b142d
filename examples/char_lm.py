"""LRBench on a model judged by a loss: a character-level language model of Python's own source code.

A GRU reads 64 characters and predicts each next one; the trial is judged on the validation loss
(mean cross-entropy per character, in nats), the lower the better: ``metric="val_loss", mode="min"``.
The text is the standard library's sources of the Python that runs it (``argparse.py``, ``typing.py``,
...), on every machine that has Python; three modules it never trains on, cut into pieces of 1,024
characters dealt alternately to validation and test, are the held-out text::

    lrkit verify --task examples/char_lm.py:train --policy "FIX(k0=0.001)"
    lrkit recommend --task examples/char_lm.py:train
    python examples/char_lm.py "FIX(k0=0.001)"     # the same verification from Python

The target: Adam at 1e-3 (the default) gets the validation loss to 2.2 nats per character after 600
of the 1,000 updates (seeds 0 and 1; 2.05-2.07 at the end, from 4.85 for a uniform guess); at 3e-3,
after 300 (seed 0), so a policy can lose or win against it. ``LRKIT_EXAMPLE_SMALL=1`` trains on 64,000
characters (8,192 validation, 8,192 test) instead.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lrkit.lrbench import task_defaults

TRAIN_MODULES = ("argparse", "ast", "configparser", "contextlib", "dataclasses", "difflib", "enum", "fractions",
                 "ftplib", "functools", "inspect", "pickle", "shutil", "smtplib", "statistics", "subprocess",
                 "tarfile", "threading", "tokenize", "typing")
HELD_OUT = ("calendar", "heapq", "textwrap")
CONTEXT = 64
PIECE = 1024  # validation and test take every other piece of the held-out text: the same mix of modules


@task_defaults(budget=1000, target=2.2, metric="val_loss", mode="min", eval_every=100)
def train(run):
    """A one-layer GRU (128 units) over characters of the standard library's sources; batch 32 × 64 characters."""
    train_text, val_text, test_text = texts(small())
    loader = DataLoader(Windows(train_text), batch_size=32, shuffle=True, generator=run.generator, drop_last=True)
    model = CharGRU().to(run.device)
    opt = run.optimizer(model)
    for x, y in run.batches(loader):
        x, y = x.to(run.device), y.to(run.device)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.step(loss)
        if run.due():
            run.report(val_loss=mean_loss(model, val_text, run.device),
                       test_loss=mean_loss(model, test_text, run.device))


class CharGRU(nn.Module):
    """Embedding (32) → GRU (128) → logits over the 128 ASCII characters."""

    def __init__(self, vocab: int = 128, embed: int = 32, hidden: int = 128) -> None:
        super().__init__()
        self.embed, self.gru, self.out = nn.Embedding(vocab, embed), nn.GRU(embed, hidden, batch_first=True), \
            nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.gru(self.embed(x))[0])


class Windows(Dataset):
    """The text cut into windows of ``CONTEXT + 1`` characters: item ``i`` is (window[:-1], window[1:])."""

    def __init__(self, text: torch.Tensor) -> None:
        self.text = text

    def __len__(self) -> int:
        return (len(self.text) - 1) // CONTEXT

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        chunk = self.text[i * CONTEXT: (i + 1) * CONTEXT + 1]
        return chunk[:-1], chunk[1:]


@torch.no_grad()
def mean_loss(model: nn.Module, text: torch.Tensor, device: str) -> float:
    """Mean cross-entropy per character (nats) of ``model`` on ``text``, window after window (eval mode)."""
    model.eval()
    windows = Windows(text)
    x = torch.stack([windows[i][0] for i in range(len(windows))]).to(device)
    y = torch.stack([windows[i][1] for i in range(len(windows))]).to(device)
    total = torch.zeros((), device=device)
    for i in range(0, len(x), 256):
        total += F.cross_entropy(model(x[i:i + 256]).flatten(0, 1), y[i:i + 256].flatten(), reduction="sum")
    model.train()
    return total.item() / y.numel()


def small() -> bool:
    """``LRKIT_EXAMPLE_SMALL=1``: a subset of the text, for tests."""
    return os.environ.get("LRKIT_EXAMPLE_SMALL", "") == "1"


@functools.lru_cache(maxsize=2)
def texts(small: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training, validation and test text as int64 character codes (non-ASCII characters become ``?``)."""
    def codes(modules: tuple[str, ...], limit: int | None) -> torch.Tensor:
        text = "".join(source(name) for name in modules)[:limit]
        return torch.frombuffer(bytearray(text.encode("ascii", "replace")), dtype=torch.uint8).long()

    held_out = codes(HELD_OUT, 2 * 8 * PIECE if small else None)
    pieces = held_out[: len(held_out) // (2 * PIECE) * 2 * PIECE].view(-1, 2, PIECE)
    return codes(TRAIN_MODULES, 64_000 if small else None), pieces[:, 0].flatten(), pieces[:, 1].flatten()


def source(module: str) -> str:
    """The source code of a standard-library module (found, not imported)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise FileNotFoundError(f"the source of the standard library's {module!r} is not on this machine")
    with open(spec.origin, encoding="utf-8") as f:
        return f.read()


if __name__ == "__main__":
    import sys

    from lrkit.lrbench import Task, verify

    policy = sys.argv[1] if len(sys.argv) > 1 else "FIX(k0=0.001)"
    result = verify(Task.from_function(train, name="char_lm", **train.lrbench_defaults), policy, seeds=(0, 1),
                    optimizer="adam", on="val")
    print(result.summary())
