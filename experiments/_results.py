"""What the experiment scripts share: mean ± std cells, reading result files (one result or a list each), and
the files of a limit sweep (a partial sweep's prefixes and name, its parts read as one)."""

from __future__ import annotations

import glob
import json
import os
import statistics
from typing import Any


def mean_std(values: list[float], digits: int) -> str:
    """``"m ± s"`` (sample std; 0 for one value), ``-`` for none."""
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def load(patterns: list[str]) -> list[dict]:
    """Every result in the files matching ``patterns`` (a file holds one result or a list of them)."""
    out = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            with open(path) as f:
                data = json.load(f)
            out += data if isinstance(data, list) else [data]
    return out


def save(results: Any, path: str | None) -> None:
    """Write ``results`` to ``path`` as JSON (nothing without a path), whole or not at all: a file rewritten
    after every training to make a run resumable is never left half-written by an interrupt."""
    if path:
        with open(f"{path}.tmp", "w") as f:
            json.dump(results, f, indent=1)
        os.replace(f"{path}.tmp", path)


def union_only(a: list[str] | None, b: list[str] | None) -> list[str]:
    """The ``--only`` prefixes of two parts of a limit sweep together: empty (the whole grid) when either part
    was not limited, else both parts' prefixes, each once."""
    return list(dict.fromkeys([*a, *b])) if a and b else []


def sweep_scope(only: list[str], rows: int) -> str:
    """What the ``rows`` configurations of a partial limit sweep (``only``: its ``--only`` prefixes, not empty)
    are: named by their prefix when there is one; a bound on the limit, not the limit."""
    which = f"starting {only[0]!r}" if len(only) == 1 else "of a partial sweep"
    return f"the {rows} configurations {which} (not the limit)"


def merge_sweeps(results: list[dict]) -> dict[str, dict]:
    """Task -> its ``limit_sweep.py`` results as one: the rows of several files of a task together (e.g. the
    lines of a sweep trained apart), which must share the target, budget, seeds and evaluation interval; a
    configuration in two files must have the same row in both (it is kept once), and every file's seconds
    add up (a retrained configuration's too: they were spent)."""
    merged: dict[str, dict] = {}
    for res in results:
        have = merged.get(res["task"])
        if have is None:
            merged[res["task"]] = dict(res, rows=list(res["rows"]), only=res.get("only") or None)
            continue
        for key in ("target", "budget", "seeds", "eval_every"):
            if have.get(key) != res.get(key):
                raise SystemExit(f"the limit-sweep files of {res['task']} differ in {key} ({have.get(key)} and "
                                 f"{res.get(key)}); give files of one target, budget, seeds and evaluation interval")
        rows = {r["label"]: r for r in have["rows"]}
        for row in res["rows"]:
            if row["label"] in rows and rows[row["label"]] != row:
                raise SystemExit(f"the limit-sweep files of {res['task']} hold two different rows for "
                                 f"{row['label']!r}; keep one of them")
            rows.setdefault(row["label"], row)
        have.update(rows=list(rows.values()), seconds=have.get("seconds", 0.0) + res.get("seconds", 0.0),
                    only=union_only(have["only"], res.get("only")) or None)
    return merged
