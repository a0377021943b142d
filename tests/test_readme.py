"""README.md's snippets run as written: every ```python block in a fresh namespace, and the
``lrkit policies|show|plot|simulate`` lines of the ```bash blocks, each in an empty folder.

A block preceded by the line ``<!-- not run by tests/test_readme.py: REASON -->`` (blank lines may
come between) is skipped with that reason; a marker without a reason fails.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import pytest

from lrkit.cli.main import main

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = re.compile(r"^\s*<!--\s*not run by tests/test_readme\.py:(?P<reason>.*?)-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>\w*)\s*$")
#: the commands the bash blocks may run: quick and torch-free (the others train or need data)
COMMANDS = ("policies", "show", "plot", "simulate")


@dataclasses.dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int  # 1-based line of the opening fence
    skip: str | None  # the marker's reason, or None when the block runs


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, each with the reason it is skipped (if marked)."""
    found: list[Block] = []
    lines = text.splitlines()
    i, pending = 0, None
    while i < len(lines):
        marker, fence = MARKER.match(lines[i]), FENCE.match(lines[i])
        if marker:
            reason = marker["reason"].strip()
            if not reason:
                raise ValueError(f"README.md:{i + 1}: a skip marker needs a reason after the colon")
            pending = reason
        elif fence and fence["lang"]:
            indent, start = len(fence["indent"]), i
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i][indent:])
                i += 1
            found.append(Block(fence["lang"], "\n".join(body) + "\n", start + 1, pending))
            pending = None
        elif lines[i].strip() and pending is not None:
            raise ValueError(f"README.md:{i + 1}: a skip marker must come right before a code block")
        i += 1
    return found


def commands(code: str) -> list[list[str]]:
    """The ``lrkit policies|show|plot|simulate`` command lines of a bash block, as argv lists."""
    found = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if len(words) >= 2 and words[0] == "lrkit" and words[1] in COMMANDS:
            assert not {";", "|", "&&", ">"} & set(words), f"not a single command: {line}"
            found.append(words[1:])
    return found


ALL = blocks(README.read_text())
PYTHON = [b for b in ALL if b.lang == "python"]
BASH = [b for b in ALL if b.lang == "bash"]


def _param(block: Block) -> object:
    marks = [pytest.mark.skip(reason=f"README.md:{block.line}: {block.skip}")] if block.skip else []
    return pytest.param(block, id=f"line{block.line}", marks=marks)


@pytest.mark.parametrize("block", [_param(b) for b in PYTHON])
def test_python_block_runs(block: Block, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    exec(compile(block.code, f"README.md:{block.line}", "exec"), namespace)  # noqa: S102 - our own README


@pytest.mark.parametrize("block", [_param(b) for b in BASH if commands(b.code)])
def test_bash_block_lrkit_lines_run(block: Block, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in commands(block.code):
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 0, f"README.md:{block.line}: lrkit {shlex.join(argv)} exited {code}: {err}"
        assert out, argv


def test_the_snippets_of_the_four_sections_are_there_and_run():
    text = README.read_text()
    sections = ["## Policies", "## PyTorch: `PolicyLR`", "## The LR range test", "## Random plugins: RALR and LEAP"]
    starts = [text.index(title) for title in sections]
    lines = [text[:start].count("\n") + 1 for start in starts]
    for title, line in zip(sections, lines):
        first = next(b for b in PYTHON if b.line > line)
        assert first.skip is None, title
    assert {argv[0] for b in BASH for argv in commands(b.code)} == set(COMMANDS)


def test_markers_skip_the_next_block_and_need_a_reason():
    text = ("intro\n<!-- not run by tests/test_readme.py: trains for ten minutes -->\n\n```python\nslow()\n```\n"
            "```python\nfast()\n```\n  ```bash\n  lrkit show X --steps 3  # a comment\n  lrkit verify ...\n  ```\n")
    found = blocks(text)
    assert [(b.lang, b.code, b.skip) for b in found] == [
        ("python", "slow()\n", "trains for ten minutes"), ("python", "fast()\n", None),
        ("bash", "lrkit show X --steps 3  # a comment\nlrkit verify ...\n", None)]
    assert commands(found[2].code) == [["show", "X", "--steps", "3"]]
    with pytest.raises(ValueError, match="needs a reason"):
        blocks("<!-- not run by tests/test_readme.py: -->\n```python\nx\n```\n")
    with pytest.raises(ValueError, match="right before a code block"):
        blocks("<!-- not run by tests/test_readme.py: slow -->\ntext\n```python\nx\n```\n")
