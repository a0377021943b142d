"""README.md's snippets run as a reader runs them: in order, in one folder.

Every ```python block runs (each in a fresh namespace), and so does every ``lrkit`` line of the
```bash blocks that is quick: the torch-free commands (``policies show plot simulate``) and the
LRBench commands on the bundled digits task (``tasks``, and ``verify recommend compose`` with
``--task digits-mlp``, then ``results report`` on what they stored). The other ``lrkit`` lines
(they need Fashion-MNIST, a server, or minutes) are checked without running: lrkit's own parser
takes them, and a file they would write must not be there already unless ``--force`` is given;
the file then counts as written for the lines after it.

A block preceded by the line ``<!-- not run by tests/test_readme.py: REASON -->`` (blank lines may
come between) is not run, with that reason, only checked; a marker without a reason fails.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from lrkit.cli.main import build_parser, main

import md_blocks
from md_blocks import Block

README = Path(__file__).resolve().parents[1] / "README.md"
#: the commands the bash blocks run: quick and torch-free
COMMANDS = md_blocks.TORCH_FREE
#: the LRBench commands the bash blocks run when they train on the bundled digits (seconds), or read what did
DIGITS_TASK = "digits-mlp"
LRBENCH = ("tasks", "verify", "recommend", "compose", "results", "report")


def blocks(text: str) -> list[Block]:
    """README.md's fenced blocks, each with the reason this file skips it (if marked)."""
    return md_blocks.blocks(text, "test_readme.py", "README.md")


def commands(code: str) -> list[list[str]]:
    """The ``lrkit`` command lines of a bash block, as argv lists without the ``lrkit``."""
    return md_blocks.lrkit_commands(code)


def runs(argv: list[str]) -> bool:
    """Whether the test runs this command line (else it only checks it): quick, and needs no data set."""
    if argv[0] in COMMANDS:
        return True
    task = argv[argv.index("--task") + 1] if "--task" in argv else None
    return argv[0] in LRBENCH and task in (None, DIGITS_TASK) and "--storage" not in argv


def check_without_running(argv: list[str], where: str) -> None:
    """What can go wrong before a command starts: lrkit's parser refuses it, or it would not replace a file."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: lrkit {shlex.join(argv)} does not parse")
    for name in ("output", "json"):  # the files a command writes (--json FILE, '-' being stdout)
        path = getattr(args, name, None)
        if isinstance(path, str) and path != "-":
            assert getattr(args, "force", False) or not Path(path).exists(), (
                f"{where}: lrkit {shlex.join(argv)} would refuse to replace {path}, which a snippet above wrote")
            Path(path).touch()


ALL = blocks(README.read_text())
PYTHON = [b for b in ALL if b.lang == "python"]
BASH = [b for b in ALL if b.lang == "bash"]


def test_the_readme_runs_in_order_in_one_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for block in ALL:
        where = f"README.md:{block.line}"
        if block.lang == "python" and block.skip is None:
            namespace = {"__name__": "__readme__"}
            exec(compile(block.code, where, "exec"), namespace)  # noqa: S102 - our own README
        elif block.lang == "bash":
            for argv in commands(block.code):
                if block.skip is not None or not runs(argv):
                    check_without_running(argv, where)
                    continue
                code = main(argv)
                out, err = capsys.readouterr()
                assert code == 0, f"{where}: lrkit {shlex.join(argv)} exited {code}: {err}"
                assert out, argv


def test_the_snippets_of_the_four_sections_are_there_and_run():
    text = README.read_text()
    sections = ["## Policies", "## PyTorch: `PolicyLR`", "## The LR range test", "## Random plugins: RALR and LEAP"]
    starts = [text.index(title) for title in sections]
    lines = [text[:start].count("\n") + 1 for start in starts]
    for title, line in zip(sections, lines):
        first = next(b for b in PYTHON if b.line > line)
        assert first.skip is None, title
    run = {argv[0] for b in BASH if b.skip is None for argv in commands(b.code) if runs(argv)}
    assert run == set(COMMANDS) | set(LRBENCH), run


def test_markers_skip_the_next_block_and_need_a_reason():
    text = ("intro\n<!-- not run by tests/test_readme.py: trains for ten minutes -->\n\n```python\nslow()\n```\n"
            "```python\nfast()\n```\n  ```bash\n  lrkit show X --steps 3  # a comment\n  lrkit verify ...\n  ```\n")
    found = blocks(text)
    assert [(b.lang, b.code, b.skip) for b in found] == [
        ("python", "slow()\n", "trains for ten minutes"), ("python", "fast()\n", None),
        ("bash", "lrkit show X --steps 3  # a comment\nlrkit verify ...\n", None)]
    assert commands(found[2].code) == [["show", "X", "--steps", "3"], ["verify", "..."]]
    assert [runs(argv) for argv in commands(found[2].code)] == [True, True]
    assert not runs(["range-test", "--task", "fashion-mnist-cnn3"]) and not runs(["verify", "--task", "mine.py:f"])
    assert not runs(["results", "--storage", "postgresql://h/db"]) and runs(["report", "--study", "s"])
    with pytest.raises(ValueError, match="needs a reason"):
        blocks("<!-- not run by tests/test_readme.py: -->\n```python\nx\n```\n")
    with pytest.raises(ValueError, match="right before a code block"):
        blocks("<!-- not run by tests/test_readme.py: slow -->\ntext\n```python\nx\n```\n")


def test_a_line_not_run_is_still_checked_against_the_parser_and_the_files_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "range.png").touch()  # as the Python range-test snippet leaves it
    with pytest.raises(AssertionError, match="would refuse to replace range.png"):
        check_without_running(["range-test", "--task", "fashion-mnist-cnn3", "-o", "range.png"], "README.md:1")
    with pytest.raises(AssertionError, match="range.png"):  # the default output counts too
        check_without_running(["range-test", "--task", "fashion-mnist-cnn3"], "README.md:1")
    check_without_running(["range-test", "--task", "fashion-mnist-cnn3", "--force"], "README.md:1")
    check_without_running(["range-test", "--task", "fashion-mnist-cnn3", "-o", "cnn3.png", "--json", "c.json"], "x")
    assert (tmp_path / "cnn3.png").exists() and (tmp_path / "c.json").exists()  # written, for the lines after
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        check_without_running(["verify", "--task", "digits-mlp", "--sedes", "0,1"], "README.md:2")
