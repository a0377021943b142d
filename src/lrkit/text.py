"""Text for people: the one place for "did you mean", aligned tables, wrapped labels, HTML escaping and
what the terminal is. Every message, table and page of lrkit goes through these (no torch, no numpy).
"""

from __future__ import annotations

import difflib
import html
import os
import re
import shutil
import sys
import textwrap
from typing import IO, Any, Iterable, Sequence

#: how close a misspelling must be to a known name to be suggested (difflib's ratio)
SUGGEST_CUTOFF = 0.5


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The known name ``word`` most likely meant: the closest by spelling (``SUGGEST_CUTOFF``), else the
    one that differs only in case, else the only one that has ``word`` as a part between ``-``, ``_``, ``.``
    or ``:`` ("lenet" for "fashion-mnist-lenet"); None when nothing is close."""
    known = list(choices)
    close = difflib.get_close_matches(word, known, n=1, cutoff=SUGGEST_CUTOFF)
    if close:
        return close[0]
    lowered = {k.lower(): k for k in known}
    if word.lower() in lowered:
        return lowered[word.lower()]
    holding = [k for k in known if word.lower() in re.split(r"[-_.:]", k.lower())]
    return holding[0] if len(holding) == 1 else None


def did_you_mean(word: str, choices: Iterable[str], otherwise: str = "") -> str:
    """``"; did you mean 'X'?"`` for the closest known name, else ``otherwise`` (e.g. "; `lrkit tasks` lists
    them"), to end a message that names an unknown ``word``."""
    match = closest(word, choices)
    return f"; did you mean {match!r}?" if match else otherwise


def table(header: Sequence[str] | None, rows: Iterable[Sequence[str]], widths: Sequence[int] = ()) -> str:
    """Columns aligned by two spaces, each as wide as its widest cell (at least ``widths[i]`` where given, so a
    column of wrapped cells can keep its wrapping width); trailing spaces dropped."""
    rows = [list(map(str, r)) for r in rows]
    lines = ([list(map(str, header))] if header is not None else []) + rows
    if not lines:
        return ""
    least = list(widths) + [0] * max(map(len, lines))
    columns = [max([least[i]] + [len(line[i]) for line in lines if i < len(line)]) for i in range(max(map(len, lines)))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, columns)).rstrip() for line in lines)


def wrap(text: str, width: int, indent: str = "") -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken after commas or spaces where it can (never
    inside a word that fits a line; a longer word is cut), later lines indented by ``indent``."""
    lines = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False, subsequent_indent=indent)
    return lines or [text]


def escape(value: Any) -> str:
    """``value`` as text safe inside HTML or SVG, in element content and in quoted attributes."""
    return html.escape(str(value), quote=True)


def is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (default stdout) is a terminal; False for files, pipes and closed streams."""
    stream = sys.stdout if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def terminal_width(stream: IO[str] | None = None, default: int | None = None) -> int | None:
    """The terminal's width when ``stream`` (default stdout) is one; otherwise ``$COLUMNS`` when set, else
    ``default`` (None: the caller prints lines whole)."""
    if is_terminal(stream):
        return shutil.get_terminal_size((default or 100, 24)).columns
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else default


__all__ = ["SUGGEST_CUTOFF", "closest", "did_you_mean", "escape", "is_terminal", "table", "terminal_width", "wrap"]


# ---- cells and the machine-readable formats (lrkit results, lrkit compose, the report) ------------------
# (stdlib imports inside the functions: this part is appended to a module whose head others edit)

#: what ``--format`` takes: an aligned table, JSON, or CSV
FORMATS = ("table", "json", "csv")


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell: integers as integers, accuracies with ``digits`` decimals, yes/no, missing as ``-``.

    Example:
        >>> [fmt(None), fmt(True), fmt(250), fmt(250.0), fmt(0.95123), fmt(float("nan"))]
        ['-', 'yes', '250', '250', '0.9512', '-']
    """
    import math

    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return str(int(value)) if value.is_integer() and abs(value) >= 10 else f"{value:.{digits}f}"
    return str(value)


def check_format(format_: str) -> None:
    """Raise :class:`lrkit.errors.LRKitError` unless ``format_`` is one of :data:`FORMATS`."""
    if format_ not in FORMATS:
        from lrkit.errors import LRKitError

        raise LRKitError(f"unknown format {format_!r}; use one of {FORMATS}")


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV, a header from the first row's keys; lists and dicts in a cell as JSON."""
    import csv
    import io
    import json

    rows = [{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()} for row in rows]
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


__all__ += ["FORMATS", "check_format", "csv_text", "fmt"]
