"""What the experiment scripts share: mean ± std cells and reading result files (one result or a list each)."""

from __future__ import annotations

import glob
import json
import statistics


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


def save(results: list[dict], path: str | None) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=1)
