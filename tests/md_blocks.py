"""The fenced code blocks of a Markdown file, as the tests that run a document's examples read them.

A block preceded by the line ``<!-- not run by tests/RUNNER: REASON -->`` (blank lines may come
between), where RUNNER is the test file that runs the document, is not run, with that reason; a marker
without a reason, or one not right before a block, is an error.
"""

from __future__ import annotations

import dataclasses
import re
import shlex

#: the lrkit commands a test of a document's shell blocks runs: quick and torch-free
TORCH_FREE = ("policies", "show", "plot", "simulate")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>\w*)\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int  # 1-based line of the opening fence
    skip: str | None  # the marker's reason, or None when the block runs


def blocks(text: str, runner: str, name: str) -> list[Block]:
    """The fenced blocks of ``text`` (the file ``name``), each with the reason ``runner`` skips it (if marked)."""
    marker_of = re.compile(rf"^\s*<!--\s*not run by tests/{re.escape(runner)}:(?P<reason>.*?)-->\s*$")
    found: list[Block] = []
    lines = text.splitlines()
    i, pending = 0, None
    while i < len(lines):
        marker, fence = marker_of.match(lines[i]), FENCE.match(lines[i])
        if marker:
            reason = marker["reason"].strip()
            if not reason:
                raise ValueError(f"{name}:{i + 1}: a skip marker needs a reason after the colon")
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
            raise ValueError(f"{name}:{i + 1}: a skip marker must come right before a code block")
        i += 1
    return found


def lrkit_commands(code: str, console: bool = False) -> list[list[str]]:
    """The ``lrkit`` command lines of a shell block, as argv lists without the ``lrkit`` (``console``: only the
    ``$ `` lines, the rest being output); each must be a single command."""
    found = []
    for line in code.replace("\\\n", " ").splitlines():
        if console and not line.startswith("$ "):
            continue
        words = shlex.split(line.removeprefix("$ ") if console else line, comments=True)
        if len(words) >= 2 and words[0] == "lrkit":
            assert not {";", "|", "&&", ">"} & set(words), f"not a single command: {line}"
            found.append(words[1:])
    return found
