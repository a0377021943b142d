"""A study's trials as records, their ranking, and tables (``lrkit results``).

Ranking (methods.md §1.4): trials that reached the target first, by updates-to-target (fewer is better);
then best test accuracy (higher); then robustness: the spread of updates-to-target (or of best accuracy)
across the trials of the same spec with other seeds, and the train/test loss gap when a spec ran once
(both smaller is better). Only trials with a recorded result are ranked; pruned trials are ranked after
those that ran their course, since their accuracy is a lower bound.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from lrkit.lrbench.storage import ATTR_FAMILY, ATTR_RESULT, ATTR_ROLE, ATTR_SPEC

FORMATS = ("table", "json", "csv")
COLUMNS = ("rank", "number", "state", "role", "family", "status", "steps_to_target", "best_acc", "final_acc",
           "steps", "seconds", "loss_gap", "seeds", "spread", "spec")


@dataclass
class TrialRecord:
    """One trial as stored: its Optuna state and number, and the lrkit result (or None if it has none)."""

    number: int
    state: str
    role: str
    family: str
    spec: str
    result: dict[str, Any] | None
    rank: int | None = None
    spread: float | None = None
    retried_from: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        if self.result is None:
            return default
        value = self.result.get(key, default)
        return default if value is None else value

    @property
    def reached(self) -> bool:
        return self.get("steps_to_target") is not None

    def row(self) -> dict[str, Any]:
        return {"rank": self.rank, "number": self.number, "state": self.state, "role": self.role,
                "family": self.family, "status": self.get("status", ""),
                "steps_to_target": self.get("steps_to_target"), "best_acc": self.get("best_acc"),
                "final_acc": self.get("final_acc"), "steps": self.get("steps"), "seconds": self.get("seconds"),
                "loss_gap": self.get("loss_gap"), "seeds": self.extra.get("seeds"), "spread": self.spread,
                "spec": self.spec}


def records(study: Any) -> list[TrialRecord]:
    """Every trial of the study, in trial-number order."""
    out = []
    for t in study.get_trials(deepcopy=False):
        result = t.user_attrs.get(ATTR_RESULT)
        out.append(TrialRecord(number=t.number, state=t.state.name, role=t.user_attrs.get(ATTR_ROLE, "candidate"),
                               family=t.user_attrs.get(ATTR_FAMILY, t.params.get("family", "")),
                               spec=t.user_attrs.get(ATTR_SPEC, (result or {}).get("spec", "")), result=result,
                               retried_from=t.system_attrs.get("failed_trial")))
    return out


def _spread(values: list[float]) -> float | None:
    return statistics.pstdev(values) if len(values) > 1 else None


def rank(recs: list[TrialRecord]) -> list[TrialRecord]:
    """The records that have a result, best first, with ``rank`` (1-based) and ``spread`` filled in.

    Repeats (the same spec with other seeds, role ``"repeat"``) are not ranked themselves. When a spec
    ran with several seeds it is ranked by its worst seed: it reached the target only if every seed did,
    its updates-to-target is the largest and its accuracy the smallest over its seeds (``extra``), so a
    policy that fails on another seed does not stay first. ``spread`` is the standard deviation of
    updates-to-target over its seeds when every seed reached the target, else of best accuracy.
    """
    scored = [r for r in recs if r.result is not None]
    by_spec: dict[str, list[TrialRecord]] = {}
    for r in scored:
        by_spec.setdefault(r.spec, []).append(r)
    scored = [r for r in scored if r.role != "repeat"]
    for group in by_spec.values():
        reached = [float(r.get("steps_to_target")) for r in group if r.reached]
        all_reached = len(reached) == len(group)
        spread = _spread(reached) if all_reached else _spread([r.get("best_acc", 0.0) for r in group])
        worst = {"seeds": len({r.get("seed") for r in group}), "reached_all": all_reached,
                 "worst_steps": max(reached) if all_reached else None,
                 "worst_acc": min(r.get("best_acc", 0.0) for r in group)}
        for r in group:
            r.spread = spread
            r.extra.update(worst)

    def key(r: TrialRecord) -> tuple:
        gap = r.get("loss_gap", math.inf)
        several = r.extra.get("seeds", 1) > 1
        reached = r.extra["reached_all"] if several else r.reached
        steps = r.extra["worst_steps"] if several else r.get("steps_to_target")
        acc = r.extra["worst_acc"] if several else r.get("best_acc", 0.0)
        return (not reached, r.state == "PRUNED", steps if steps is not None else math.inf, -acc,
                r.spread if r.spread is not None else math.inf, gap if math.isfinite(gap) else math.inf, r.number)

    ranked = sorted(scored, key=key)
    for i, r in enumerate(ranked, 1):
        r.rank = i
    return ranked


def best_candidate(ranked: list[TrialRecord]) -> TrialRecord | None:
    """The first-ranked trial that is not the task's default policy (the recommendation)."""
    return next((r for r in ranked if r.role == "candidate"), None)


def default_record(recs: list[TrialRecord]) -> TrialRecord | None:
    return next((r for r in recs if r.role == "default" and r.result is not None), None)


def speedup(best: TrialRecord | None, default: TrialRecord | None) -> tuple[float | None, str]:
    """``default updates-to-target / recommended updates-to-target``, and a sentence saying what it means.

    A recommendation that ran with several seeds counts by its worst seed; if some seed missed the
    target there is no speed-up, and the sentence says on how many seeds it was reached.
    """
    if best is None or not best.reached:
        return None, "no candidate reached the target"
    seeds = best.extra.get("seeds", 1)
    if seeds > 1 and not best.extra.get("reached_all"):
        return None, (f"none: the recommendation reached the target with seed {best.get('seed')} but not with "
                      f"every one of its {seeds} seeds (worst best accuracy {best.extra.get('worst_acc', 0):.4f}); "
                      "no candidate that ran with several seeds reached it on all")
    if default is None:
        return None, "the default policy has not run yet"
    ours = best.extra["worst_steps"] if seeds > 1 else best.get("steps_to_target")
    over = f" (worst of {seeds} seeds)" if seeds > 1 else ""
    if default.reached:
        ratio = default.get("steps_to_target") / ours
        return ratio, (f"{ratio:.2f}x fewer updates than the default ({default.get('steps_to_target')} vs "
                       f"{ours}{over})")
    budget = default.get("budget") or default.get("steps")
    ratio = budget / ours
    return ratio, (f">= {ratio:.2f}x: the default did not reach the target within {budget} updates "
                   f"(best {default.get('best_acc', 0):.4f}); ours took {ours}{over}")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else (f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}")
    return str(value)


def format_records(recs: list[TrialRecord], fmt: str = "table", *, spec_width: int = 70) -> str:
    """``table`` (aligned text), ``json`` (a list of objects, each with the full stored result) or ``csv``."""
    if fmt == "json":
        return json.dumps([{**r.row(), "result": r.result, "retried_from": r.retried_from} for r in recs], indent=1)
    rows = [r.row() for r in recs]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()
    if fmt != "table":
        from lrkit.errors import LRKitError

        raise LRKitError(f"unknown format {fmt!r}; use one of {FORMATS}")
    cols = [c for c in COLUMNS if c not in ("loss_gap",)]
    cells = [[_fmt(row[c]) for c in cols] for row in rows]
    for line in cells:
        if len(line[-1]) > spec_width:
            line[-1] = line[-1][: spec_width - 3] + "..."
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(cols)]
    out = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    out += ["  ".join(v.ljust(w) for v, w in zip(line, widths)) for line in cells]
    return "\n".join(line.rstrip() for line in out)
