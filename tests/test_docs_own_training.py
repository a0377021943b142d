"""docs/lrbench.md's "LRBench on your own training": each code block is what a test runs.

Every ```python block there is an excerpt of a file in ``examples/`` (its lines, in order), and those
files are run by tests/test_examples_protocol.py, tests/test_protocol_trainers.py and
tests/test_protocol_ddp.py; every ``$ lrkit ...`` line is taken by lrkit's own parser and names a task
file that exists.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from lrkit.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "lrbench.md"


def section() -> str:
    text = DOC.read_text()
    start = text.index("## LRBench on your own training")
    return text[start:text.index("\n## ", start + 10)]


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section(), re.S)


def test_the_section_opens_the_doc_and_has_its_snippets():
    assert DOC.read_text().split("\n## ", 1)[1].startswith("LRBench on your own training")
    assert len(blocks("python")) >= 4 and len(blocks("console")) >= 2


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_each_python_snippet_is_an_excerpt_of_an_example(index):
    lines = [line.strip() for line in blocks("python")[index].splitlines() if line.strip()]
    sources = {p.name: [line.strip() for line in p.read_text().splitlines()] for p in (ROOT / "examples").glob("*.py")}

    def contains(source: list[str]) -> bool:
        at = 0
        for line in lines:
            try:
                at = source.index(line, at) + 1
            except ValueError:
                return False
        return True

    assert any(contains(src) for src in sources.values()), f"snippet {index} is in no examples/*.py:\n" + \
        "\n".join(lines)


def test_each_command_parses_and_names_a_task_that_exists():
    parser = build_parser()
    commands = [line[2:] for block in blocks("console") for line in block.splitlines() if line.startswith("$ lrkit")]
    assert commands
    for command in commands:
        argv = shlex.split(command.split("  #")[0])[1:]
        args = parser.parse_args(argv)
        task = getattr(args, "task", None)
        if task and task.startswith("examples/"):
            assert (ROOT / task.split(":")[0]).is_file(), command


def test_the_readme_shows_example_a_as_an_excerpt_of_it():
    text = (ROOT / "README.md").read_text()
    part = text[text.index("### LRBench on your own training"):]
    code = re.findall(r"```python\n(.*?)```", part, re.S)[0]
    source = [line.strip() for line in (ROOT / "examples" / "plain_fashion.py").read_text().splitlines()]
    lines = [line.strip() for line in code.splitlines() if line.strip()]
    assert 8 <= len(lines) <= 25 and all(line in source for line in lines)
    assert "run.optimizer(model)" in code and "run.step(loss)" in code and "run.report(" in code
