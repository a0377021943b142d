"""How LRBench's code is laid out, in numbers (issue 16): files per folder, the longest function,
import lines inside ``lrkit/lrbench/``, and the files on the call path from ``lrkit recommend`` to the
optimizer's ``param_groups``.

    .venv/bin/python benchmarks/layout_metrics.py

The call path is read from a real run: the stack at the ``torch.optim.Optimizer.__init__`` of the first
candidate's trial of a one-trial ``digits-mlp`` recommendation, from the CLI down, counting lrkit's files in
the order the stack visits them; "returns" counts files that appear on it again after another file.
"""

from __future__ import annotations

import ast
import contextlib
import io
import sys
import tempfile
from pathlib import Path

import lrkit

SRC = Path(lrkit.__file__).resolve().parent


def folders() -> dict[str, int]:
    return {str(d.relative_to(SRC.parent)): sum(1 for f in d.glob("*.py") if f.name != "__init__.py")
            for d in sorted([SRC, *SRC.rglob("*")]) if d.is_dir() and any(d.glob("*.py"))}


def longest_functions(top: int = 3) -> list[tuple[int, str]]:
    found = []
    for path in SRC.rglob("*.py"):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    body = body[1:]
                if body:
                    code = [x for x in lines[body[0].lineno - 1:node.end_lineno]
                            if x.strip() and not x.strip().startswith("#")]
                    found.append((len(code), f"{path.relative_to(SRC.parent)}:{node.lineno} {node.name}()"))
    return sorted(found, reverse=True)[:top]


def lrbench_import_lines() -> int:
    count = 0
    for path in (SRC / "lrbench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("lrkit")):
                count += 1
            elif isinstance(node, ast.Import) and any(a.name.startswith("lrkit") for a in node.names):
                count += 1
    return count


def call_path() -> tuple[list[str], list[str]]:
    import torch
    from lrkit.cli.main import main

    stacks: list[tuple[list[str], int]] = []
    calls: list[str] = []
    original = torch.optim.Optimizer.__init__

    def profile(frame, event, arg):
        name = frame.f_code.co_filename
        if event == "call" and name.startswith(str(SRC / "lrbench")):
            calls.append(str(Path(name).relative_to(SRC.parent)))

    def spy(self, *args, **kwargs):
        frame, stack = sys._getframe(1), []
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith(str(SRC)):
                stack.append(str(Path(name).relative_to(SRC.parent)))
            frame = frame.f_back
        stacks.append((stack[::-1], len(calls)))
        original(self, *args, **kwargs)

    torch.optim.Optimizer.__init__ = spy
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        sys.setprofile(profile)
        try:
            main(["recommend", "--task", "digits-mlp", "--target", "0.9", "--budget", "50", "--trials", "1",
                  "--baselines", "adam", "--storage", f"sqlite:///{tmp}/m.db", "--no-progress"])
        except SystemExit:
            pass
        finally:
            sys.setprofile(None)
    torch.optim.Optimizer.__init__ = original
    # the first candidate's trial (the objective trains it); the range tests come before it
    path, upto = next((s for s in stacks if any(f.endswith("objective.py") for f in s[0])), max(stacks, key=lambda s: len(s[0])))
    return path, calls[:upto]


def main() -> None:
    print("modules per folder (no __init__):")
    for folder, n in folders().items():
        print(f"  {folder:36s} {n}")
    print("longest functions (lines of code, docstring aside):")
    for n, where in longest_functions():
        print(f"  {n:4d}  {where}")
    print(f"import lines of lrkit modules inside lrkit/lrbench: {lrbench_import_lines()}")
    path, calls = call_path()
    files = [f for i, f in enumerate(path) if i == 0 or path[i - 1] != f]
    print(f"the stack from the CLI to a candidate's optimizer: {len(path)} frames in {len(set(files))} files, "
          f"{len(files) - len(set(files))} returns to a file already on it")
    print("  " + " -> ".join(files))
    print(f"lrbench files whose functions ran before that optimizer was made: {len(set(calls))}")


if __name__ == "__main__":
    main()
