"""The ranking as text, JSON or CSV (``lrkit results``, ``lrkit recommend``): what
:mod:`lrkit.lrbench.study.ranking` computes, written for a reader or a program.

Tables are :func:`lrkit.text.table` (columns aligned by two spaces), cells :func:`lrkit.text.fmt`;
JSON and CSV carry every value whole (a spec is never cut there).
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from lrkit.lrbench.study.ranking import MethodRecord, TrialRecord, failure_note
from lrkit.text import check_format, csv_text, fmt, table

#: a table's spec column is cut to what the terminal leaves, but never narrower than this
MIN_SPEC_WIDTH = 24


def spread_text(row: dict[str, Any]) -> str:
    """A method's spread across seeds (:meth:`MethodRecord.row`) with its unit: ``±25 updates``, ``±1.92 pts``, ``-``.

    Example:
        >>> spread_text({"spread": 25.0, "spread_unit": "updates"}), spread_text({"spread": 1.9234, "spread_unit": "pts"})
        ('±25 updates', '±1.92 pts')
    """
    if row["spread"] is None:
        return "-"
    unit = row["spread_unit"]
    return f"±{row['spread']:.0f} {unit}" if unit == "updates" else f"±{row['spread']:.2f} {unit}"


def reached_text(row: dict[str, Any]) -> str:
    """Seeds reached / seeds run, marked ``(unconfirmed)`` when the only seed reached the target."""
    return row["seeds"] + (" (unconfirmed)" if row["tier"] == "unconfirmed" else "")


def method_text(row: dict[str, Any]) -> str:
    """The method's label, marked ``[lookup]`` when another study of the task found it, ``[portfolio]`` when
    it is a draw from lrkit's shipped portfolio (:mod:`lrkit.lrbench.search.known`), ``[fork of N]`` when it
    is a decay fork of trial N (:mod:`lrkit.lrbench.search.forking`)."""
    return (row["method"] + (" [lookup]" if row["from_lookup"] else "")
            + (" [portfolio]" if row.get("from_portfolio") else "")
            + (f" [fork of {row['fork_of']}]" if row.get("fork_of") is not None else ""))


def shown_rows(rows: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """Rows whose metric values are scores (a "min" metric negated) with the metric's own values back."""
    if mode == "max":
        return rows
    return [{**r, **{k: -r[k] for k in ("acc", "test_acc") if isinstance(r.get(k), (int, float))}} for r in rows]


def format_methods(ranked: list[MethodRecord], format_: str = "table", *, on: str = "val", spec_width: int = 60,
                   width: int | None = None, metric: str | None = None, mode: str = "max") -> str:
    """The ranking as ``table`` (aligned text), ``json`` or ``csv`` (one row per method).

    A table cuts each spec to ``spec_width`` characters or, given the terminal's ``width``, to what fits
    beside the other columns (when that leaves it :data:`MIN_SPEC_WIDTH` or more); json and csv keep every
    spec whole. With ``metric`` (a training function's, in ``mode``) the value columns hold it, by name.
    """
    rows = shown_rows([m.row() for m in ranked], mode)
    if format_ == "json":
        return json.dumps(rows, indent=1)
    if format_ == "csv":
        return csv_text(rows)
    check_format(format_)
    judged, reported = _metric_columns(metric, on)
    header = ["rank", "method", "family", "reached", f"{on} updates", "spread", judged, "test updates", reported, "spec"]
    cells = [[fmt(row["rank"]), method_text(row), row["family"], reached_text(row), fmt(row["updates"]),
              spread_text(row), fmt(row["acc"]), fmt(row["test_updates"]), fmt(row["test_acc"]), row["spec"]]
             for row in rows]
    note = (f"ranked by the worst seed on {metric or on + ' accuracy'}: reached on every seed first (confirmed by two or "
            "more), then fewest updates-to-target (ties: the earlier interpolated crossing); 'reached' counts seeds reached / seeds run")
    if on == "test":  # judged on test: the reported test columns would repeat the judged ones
        header, cells = header[:7] + header[9:], [c[:7] + c[9:] for c in cells]
    else:
        note += "; test columns are reported, not ranked on"
    if width is not None:  # the spec gets what the other columns leave of the terminal's width
        others = sum(max([len(h)] + [len(c[i]) for c in cells]) + 2 for i, h in enumerate(header[:-1]))
        if width - 1 - others >= MIN_SPEC_WIDTH:  # narrower, the lines wrap anyway: the spec keeps spec_width
            spec_width = width - 1 - others
        note = textwrap.fill(note, max(40, width - 1))
    for c in cells:
        c[-1] = c[-1] if len(c[-1]) <= spec_width else c[-1][: spec_width - 3] + "..."
    return table(header, cells) + "\n" + note


def _metric_columns(metric: str | None, on: str) -> tuple[str, str]:
    """The headers of the judged and the reported value columns."""
    if metric is None:
        return f"{on} acc", "test acc"
    reported = "test_" + metric[4:] if metric.startswith("val_") else metric
    return metric, reported


def format_trials(recs: list[TrialRecord], format_: str = "table") -> str:
    """One row per trial (``lrkit results --all``), in trial-number order; a table ends with the failures."""
    rows = [r.row() for r in recs]
    if format_ == "json":
        return json.dumps([{**row, "result": r.result, "retried_from": r.retried_from, "traceback": r.traceback}
                           for row, r in zip(rows, recs)], indent=1)
    if format_ == "csv":
        return csv_text(rows)
    check_format(format_)
    header = ["trial", "state", "role", "optimizer", "seed", "status", "updates", "on", "val acc", "test updates",
              "test acc", "spec"]
    cells = [[fmt(r["number"]), r["state"], r["role"], r["optimizer"], fmt(r["seed"]), r["status"] or "-",
              fmt(r["steps_to_target"]), r["on"] or "-", fmt(r["best_val_acc"]), fmt(r["test_steps_to_target"]),
              fmt(r["best_test_acc"]), _spec_cell(r)] for r in rows]
    note = failure_note(recs)
    return table(header, cells) + (f"\n\n{note}" if note else "")


def _spec_cell(row: dict[str, Any]) -> str:
    """A trial's spec, with where its result came from when it was not trained here, or why it failed."""
    where = ""
    if row["duplicate_of"] is not None:
        where = f" (= trial {row['duplicate_of']})"
    elif row.get("reused_from"):
        where = f" (= trial {row['reused_from']['trial']} of study {row['reused_from']['study']})"
    return row["spec"] + where + (f" (failed: {row['error']})" if row["error"] else "")


def format_by_optimizer(by_optimizer: dict[str, dict[str, dict[str, Any]]], format_: str = "table") -> str:
    """The mutual-impact table (:func:`lrkit.lrbench.study.ranking.by_optimizer`): a row per family, a column
    per optimizer."""
    if format_ == "json":
        return json.dumps(by_optimizer, indent=1)
    opts = sorted({o for row in by_optimizer.values() for o in row})
    if format_ == "csv":
        return csv_text([{"family": fam, "optimizer": o, **cell} for fam, row in by_optimizer.items()
                         for o, cell in row.items()])
    check_format(format_)
    cells = [[fam] + [("-" if o not in row else f"{fmt(row[o]['updates'])} / {row[o]['acc']:.3f}") for o in opts]
             for fam, row in sorted(by_optimizer.items())]
    return (table(["family"] + opts, cells) +
            "\ncells: best worst-seed updates-to-target / best worst-seed accuracy of the methods that ran there")


__all__ = ["MIN_SPEC_WIDTH", "format_by_optimizer", "format_methods", "format_trials", "method_text", "reached_text",
           "spread_text"]
