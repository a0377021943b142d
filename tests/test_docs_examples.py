"""Every ```python block of docs/*.md runs, as a reader runs a page: in order, in one namespace per page;
every ``lrkit`` command of its shell blocks is taken by lrkit's parser, and the torch-free ones run.

Most blocks are excerpts of a training script: they use ``model``, ``optimizer`` (or ``opt``),
``loader``/``train_loader``, ``loss_fn``, ``evaluate(model)``, ``eval_every``, ``spec`` and ``path``
without defining them. Each page starts from :func:`script`, a small classifier's script that defines
them, in a folder of its own. A block marked ``<!-- not run by tests/test_docs_examples.py: REASON -->``
is not run (see tests/md_blocks.py): a fragment, or what needs a server or a framework's elided
arguments; the examples/ files run those things whole.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import torch

from lrkit.cli.main import build_parser, main

from md_blocks import TORCH_FREE, blocks, lrkit_commands

DOCS = sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.md"))


def script(folder: Path) -> dict:
    """The names the excerpts take from the script around them: a 4-class classifier on 512 random points,
    labelled by a random linear map (learnable, so that a range test finds its bounds)."""
    torch.manual_seed(0)
    x = torch.randn(512, 20)
    y = (x @ torch.randn(20, 4)).argmax(1)
    model = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def evaluate(m: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(loss_fn(m(x[:128]), y[:128]))

    return {"torch": torch, "model": model, "optimizer": optimizer, "opt": optimizer, "loader": loader,
            "train_loader": loader, "loss_fn": loss_fn, "evaluate": evaluate, "eval_every": 4,
            "spec": "cosine(max_lr=0.1, total_steps=64)", "path": str(folder / "checkpoint.pt")}


def python_blocks(doc: Path) -> list:
    return [b for b in blocks(doc.read_text(), "test_docs_examples.py", f"docs/{doc.name}") if b.lang == "python"]


@pytest.mark.parametrize("doc", [d for d in DOCS if python_blocks(d)], ids=lambda d: d.name)
def test_every_python_block_of_the_page_runs_in_order(doc: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = script(tmp_path)
    ran = 0
    for block in python_blocks(doc):
        if block.skip is None:
            exec(compile(block.code, f"docs/{doc.name}:{block.line}", "exec"), namespace)  # noqa: S102
            ran += 1
    assert ran, f"docs/{doc.name}: every python block is marked not run"


def test_the_script_is_what_the_excerpts_need() -> None:
    """The stand-in script trains: a step of an excerpt's loop moves the model and the loss is finite."""
    names = script(Path("."))
    before = [p.clone() for p in names["model"].parameters()]
    x, y = next(iter(names["loader"]))
    names["loss_fn"](names["model"](x), y).backward()
    names["optimizer"].step()
    assert any((a != b).any() for a, b in zip(before, names["model"].parameters()))
    assert names["evaluate"](names["model"]) > 0


def doc_commands(doc: Path) -> list[tuple[str, list[str]]]:
    """``(where, argv)`` of each ``lrkit`` command of the page's shell blocks (a console block's ``$`` lines;
    one with ``...`` elides its arguments and is left out)."""
    return [(f"docs/{doc.name}:{block.line}", argv)
            for block in blocks(doc.read_text(), "test_docs_examples.py", f"docs/{doc.name}")
            if block.lang in ("bash", "sh", "console") and block.skip is None
            for argv in lrkit_commands(block.code, console=block.lang == "console") if "..." not in argv]


COMMANDS = [c for d in DOCS for c in doc_commands(d)]


@pytest.mark.parametrize("where, argv", COMMANDS, ids=[f"{w} {a[0]}" for w, a in COMMANDS])
def test_every_lrkit_command_parses_and_the_torch_free_ones_run(where: str, argv: list[str], tmp_path,
                                                               monkeypatch) -> None:
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: lrkit {shlex.join(argv)} does not parse")
    if argv[0] in TORCH_FREE:
        monkeypatch.chdir(tmp_path)
        assert main(argv) == 0, f"{where}: lrkit {shlex.join(argv)} failed"


def test_the_commands_are_found() -> None:
    assert len(COMMANDS) >= 25 and ("docs/policies.md:23", ["policies"]) in COMMANDS
