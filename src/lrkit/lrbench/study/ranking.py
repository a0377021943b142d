"""A study's trials, grouped into methods, ranked the way a reader can check (``lrkit results``; the
text, JSON and CSV it prints are :mod:`lrkit.lrbench.report.formats`).

A **method** is what a trial trains with: optimizer, its arguments, the policy spec and how the LR is
applied. The trials of one method with different seeds form one :class:`MethodRecord`; the ranking
(LRBench's recommendation, Wu & Liu, ACM TIST 2022; docs/lrbench.md) is of methods, by their **worst seed**, in tiers:

1. reached the target on every seed, with at least two seeds (confirmed);
2. reached it on its only seed (unconfirmed until repeated);
3. missed it on some seed, every seed having run its course;
4. missed it on some seed that was pruned (its accuracy is a lower bound).

Within tiers 1-2: fewer worst-seed updates-to-target first, then the earlier worst-seed crossing of the
target interpolated between evaluations (:meth:`TrialRecord.crossing`: a tie at the evaluation interval's
resolution goes to the method that crossed first), then higher worst-seed accuracy, then the smaller
spread across seeds, then the smaller train/test loss gap. Within 3-4: higher worst-seed
accuracy first. Selection is on the metric the study judges on (validation accuracy, ``on="val"``);
the test columns are reported beside it, never ranked on. A method that missed the target on any seed
never ranks above one that reached it on all.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from lrkit.lrbench.run.judging import rejudged
from lrkit.lrbench.study.schema import (ATTR_BASELINE, ATTR_DUPLICATE_OF, ATTR_REUSED_FROM, ATTR_ERROR, ATTR_FAMILY,
                                        ATTR_KNOBS, ATTR_FORK,
                                        ATTR_LOOKUP, ATTR_PORTFOLIO, ATTR_LR_DRIVER, ATTR_OPT_KWARGS, ATTR_OPTIMIZER, ATTR_REPEAT, ATTR_RESULT,
                                        ATTR_ROLE, ATTR_SEED, ATTR_SPEC, ATTR_SURPLUS, ATTR_TRACEBACK,
                                        ATTR_VAL_CALIBRATION)

TIERS = ("confirmed", "unconfirmed", "missed", "pruned")


@dataclass
class TrialRecord:
    """One trial as stored: its Optuna state and number, what it trained with, and its result (or None)."""

    number: int
    state: str
    role: str
    family: str
    spec: str
    result: dict[str, Any] | None
    optimizer: str = ""
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)
    lr_driver: str = "policy"
    seed: int | None = None
    baseline: str | None = None
    repeat: bool = False
    duplicate_of: int | None = None
    reused_from: dict[str, Any] | None = None  # a yardstick another study of the storage trained
    retried_from: int | None = None
    lookup: dict[str, Any] | None = None
    portfolio: str | None = None    # the shipped portfolio entry the candidate's draw came from
    knobs: dict[str, Any] | None = None  # the optimizer arguments the search's knobs drew (a sampled candidate)
    fork: dict[str, Any] | None = None   # a decay fork: {"parent", "at", "state"} (lrkit.lrbench.search.forking)
    error: str | None = None        # a FAIL trial whose training raised: the error (its traceback: ``traceback``)
    traceback: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        if self.result is None:
            return default
        value = self.result.get(key, default)
        return default if value is None else value

    @property
    def on(self) -> str:
        return self.get("on", "test")

    @property
    def reached(self) -> bool:
        return self.get("steps_to_target") is not None

    def accuracy(self) -> float:
        """The best accuracy on the metric the trial was judged on."""
        key = "best_val_acc" if self.on == "val" else "best_acc"
        value = self.get(key, 0.0)
        return float(value) if math.isfinite(value) else 0.0

    def crossing(self) -> float | None:
        """Where the judged metric crossed the target, interpolated linearly between the last evaluation
        below it and the first at or above it (None when it never reached it): a tie-break finer than the
        evaluation interval (two methods first at the target at update 300 are told apart by where each
        crossed it between 250 and 300)."""
        reached, target = self.get("steps_to_target"), self.get("target")
        if self.on == "val" and self.get("val_target") is not None:  # a calibrated study's validation target
            target = self.get("val_target")
        if reached is None or target is None or not math.isfinite(target):
            return None if reached is None else float(reached)
        key = "val_acc" if self.on == "val" else "test_acc"
        before: tuple[float, float] | None = None
        for point in self.result.get("curve", []) if self.result else []:
            value = point.get(key)
            if value is None or not math.isfinite(value):
                continue
            if value >= target:
                if before is None or value <= before[1]:
                    return float(point["step"])
                return before[0] + (target - before[1]) / (value - before[1]) * (point["step"] - before[0])
            before = (float(point["step"]), float(value))
        return float(reached)

    def method_key(self) -> str:
        return json.dumps([self.optimizer, self.optimizer_kwargs, self.lr_driver, self.spec], sort_keys=True)

    def row(self) -> dict[str, Any]:
        return {"number": self.number, "state": self.state, "role": self.role, "optimizer": self.optimizer,
                "family": self.family, "seed": self.seed, "status": self.get("status", ""),
                "steps_to_target": self.get("steps_to_target"), "on": self.on if self.result is not None else None,
                "best_val_acc": self.get("best_val_acc"), "test_steps_to_target": self.get("test_steps_to_target"),
                "best_test_acc": self.get("best_acc"), "final_test_acc": self.get("final_acc"),
                "steps": self.get("steps"), "seconds": self.get("seconds"), "duplicate_of": self.duplicate_of,
                "reused_from": self.reused_from, "spec": self.spec, "error": self.error}


def records(study: Any) -> list[TrialRecord]:
    """Every trial of the study, in trial-number order; in a calibrated study, each judged at its validation
    target (:func:`lrkit.lrbench.run.judging.rejudged`)."""
    calibration = study.user_attrs.get(ATTR_VAL_CALIBRATION)
    out = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        result = attrs.get(ATTR_RESULT)
        if result is not None and calibration is not None and result.get("target") is not None:
            result = rejudged(result, result["target"] + calibration["offset"])
        spec = attrs.get(ATTR_SPEC, (result or {}).get("spec", ""))
        if attrs.get(ATTR_SURPLUS):
            spec = "(not trained: sampled when the study already had its candidates)"
        out.append(TrialRecord(
            number=t.number, state=t.state.name, role=attrs.get(ATTR_ROLE, "candidate"),
            family=attrs.get(ATTR_FAMILY, t.params.get("family", "")), spec=spec, result=result,
            optimizer=attrs.get(ATTR_OPTIMIZER, (result or {}).get("optimizer", "")),
            optimizer_kwargs=attrs.get(ATTR_OPT_KWARGS, (result or {}).get("optimizer_kwargs", {})),
            lr_driver=attrs.get(ATTR_LR_DRIVER, "policy"), seed=attrs.get(ATTR_SEED, (result or {}).get("seed")),
            baseline=attrs.get(ATTR_BASELINE), repeat=bool(attrs.get(ATTR_REPEAT, False)),
            duplicate_of=attrs.get(ATTR_DUPLICATE_OF), reused_from=attrs.get(ATTR_REUSED_FROM), retried_from=t.system_attrs.get("failed_trial"),
            lookup=attrs.get(ATTR_LOOKUP), portfolio=attrs.get(ATTR_PORTFOLIO), knobs=attrs.get(ATTR_KNOBS),
            fork=attrs.get(ATTR_FORK),
            error=attrs.get(ATTR_ERROR),
            traceback=attrs.get(ATTR_TRACEBACK)))
    return out


def failure_note(recs: list[TrialRecord]) -> str:
    """One line counting the trials whose training raised (empty when none did): they are kept, FAIL,
    with their errors (``lrkit results --all``), and the study went on without them."""
    failed = [r for r in recs if r.error is not None]
    if not failed:
        return ""
    last = failed[-1]
    return (f"{len(failed)} trial{'s' if len(failed) != 1 else ''} failed (not ranked; `lrkit results --all` shows "
            f"each error), the last: trial {last.number}, {last.error}")


@dataclass
class MethodRecord:
    """One method and every seed it ran with (its trials), with the numbers it is ranked on."""

    trials: list[TrialRecord]
    rank: int | None = None

    @property
    def first(self) -> TrialRecord:
        return min(self.trials, key=lambda r: (r.repeat, r.number))

    # what the method is: the same in every one of its trials (the method key), read from the first
    @property
    def role(self) -> str:
        return self.first.role

    @property
    def family(self) -> str:
        return self.first.family

    @property
    def spec(self) -> str:
        return self.first.spec

    @property
    def optimizer(self) -> str:
        return self.first.optimizer

    @property
    def optimizer_kwargs(self) -> dict[str, Any]:
        return self.first.optimizer_kwargs

    @property
    def lr_driver(self) -> str:
        return self.first.lr_driver

    @property
    def baseline(self) -> str | None:
        return self.first.baseline

    @property
    def lookup(self) -> dict[str, Any] | None:
        return self.first.lookup

    @property
    def portfolio(self) -> str | None:
        return self.first.portfolio

    @property
    def fork_of(self) -> int | None:
        """The trunk trial a decay fork was forked from (None for any other method)."""
        return self.first.fork["parent"] if self.first.fork else None

    @property
    def label(self) -> str:
        """How a reader names the method: a baseline's name (``adam``), ``default (OPTIMIZER)``, or
        ``OPTIMIZER (candidate)``, so a candidate never reads as the baseline of the same optimizer; a
        candidate whose optimizer arguments the search's knobs drew names them:
        ``OPTIMIZER (candidate; weight_decay=0.01)``."""
        if self.role == "baseline":
            return str(self.baseline)
        if self.role == "default":
            return f"default ({self.optimizer})"
        knobs = "".join(f"; {k}={v}" for k, v in (self.first.knobs or {}).items())
        return f"{self.optimizer} ({self.role}{knobs})"

    def _by_seed(self) -> list[TrialRecord]:
        seen: dict[Any, TrialRecord] = {}
        for r in sorted(self.trials, key=lambda r: r.number):
            seen.setdefault(r.seed, r)
        return list(seen.values())

    @property
    def seeds(self) -> list[Any]:
        return [r.seed for r in self._by_seed()]

    @property
    def seeds_reached(self) -> int:
        return sum(r.reached for r in self._by_seed())

    @property
    def reached_all(self) -> bool:
        return self.seeds_reached == len(self._by_seed())

    @property
    def pruned(self) -> bool:
        return any(r.state == "PRUNED" for r in self._by_seed())

    @property
    def tier(self) -> str:
        if self.reached_all:
            return "confirmed" if len(self._by_seed()) > 1 else "unconfirmed"
        return "pruned" if self.pruned else "missed"

    @property
    def worst_steps(self) -> int | None:
        """Worst-seed updates-to-target on the judged metric (None if some seed missed)."""
        return max(int(r.get("steps_to_target")) for r in self._by_seed()) if self.reached_all else None

    @property
    def worst_acc(self) -> float:
        return min(r.accuracy() for r in self._by_seed())

    @property
    def worst_crossing(self) -> float | None:
        """Worst-seed interpolated crossing of the target (:meth:`TrialRecord.crossing`; None if some seed missed)."""
        return max(r.crossing() or 0.0 for r in self._by_seed()) if self.reached_all else None

    def pace(self) -> tuple[int, float]:
        """The ranking's order within the tiers that reached the target on every seed: worst-seed
        updates-to-target, then the worst seed's interpolated crossing (a repeat can only raise either)."""
        return int(self.worst_steps or 0), float(self.worst_crossing or 0.0)

    def test_worst_steps(self) -> int | None:
        """Worst-seed updates to the target on test accuracy (None if some seed missed it there)."""
        steps = [r.get("test_steps_to_target") for r in self._by_seed()]
        return max(int(s) for s in steps) if steps and all(s is not None for s in steps) else None

    def test_worst_acc(self) -> float:
        return min(float(r.get("best_acc", 0.0)) for r in self._by_seed())

    def stopped_at(self) -> int | None:
        """The fewest updates a pruned seed that missed the target on test ran (None if no such seed): how
        far a method stopped before its budget is known to have gone without reaching it."""
        ran = [int(r.get("steps")) for r in self._by_seed()
               if r.state == "PRUNED" and r.get("test_steps_to_target") is None and r.get("steps") is not None]
        return min(ran) if ran else None

    def spread(self) -> tuple[float, str] | None:
        """Std across seeds: of updates-to-target when every seed reached it, else of accuracy (points)."""
        trials = self._by_seed()
        if len(trials) < 2:
            return None
        if self.reached_all:
            return statistics.pstdev(float(r.get("steps_to_target")) for r in trials), "updates"
        return 100 * statistics.pstdev(r.accuracy() for r in trials), "pts"

    def loss_gap(self) -> float:
        gaps = [r.get("loss_gap", math.inf) for r in self._by_seed()]
        finite = [g for g in gaps if isinstance(g, (int, float)) and math.isfinite(g)]
        return max(finite) if finite else math.inf

    def sort_key(self) -> tuple:
        spread = self.spread()
        if self.tier in ("confirmed", "unconfirmed"):
            return (TIERS.index(self.tier), *self.pace(), -self.worst_acc,
                    spread[0] if spread else math.inf,
                    self.loss_gap(), self.first.number)
        return (TIERS.index(self.tier), -self.worst_acc, self.first.number)

    def row(self) -> dict[str, Any]:
        spread = self.spread()
        return {"rank": self.rank, "role": self.role, "method": self.label, "optimizer": self.optimizer,
                "family": self.family, "tier": self.tier, "seeds": f"{self.seeds_reached}/{len(self.seeds)}",
                "updates": self.worst_steps, "spread": None if spread is None else round(spread[0], 3),
                "spread_unit": None if spread is None else spread[1], "acc": self.worst_acc,
                "test_updates": self.test_worst_steps(), "test_acc": self.test_worst_acc(),
                "trials": [r.number for r in self.trials], "from_lookup": self.lookup is not None,
                "from_portfolio": self.portfolio, "fork_of": self.fork_of, "spec": self.spec}


def methods(recs: list[TrialRecord]) -> list[MethodRecord]:
    """The trials with a result, grouped by method (duplicates of an earlier identical training left out)."""
    groups: dict[str, list[TrialRecord]] = {}
    for r in recs:
        if r.result is not None and r.duplicate_of is None:
            groups.setdefault(r.method_key(), []).append(r)
    return [MethodRecord(g) for g in groups.values()]


def rank(recs: list[TrialRecord]) -> list[MethodRecord]:
    """The methods, best first, with ``rank`` (1-based) filled in (see the module docstring)."""
    ranked = sorted(methods(recs), key=MethodRecord.sort_key)
    for i, m in enumerate(ranked, 1):
        m.rank = i
    return ranked


def best_candidate(ranked: list[MethodRecord]) -> MethodRecord | None:
    """The first-ranked candidate (what the search found): not the task's default, not a baseline."""
    return next((m for m in ranked if m.role == "candidate"), None)


def best_baseline(ranked: list[MethodRecord]) -> MethodRecord | None:
    return next((m for m in ranked if m.role == "baseline"), None)


def default_method(ranked: list[MethodRecord]) -> MethodRecord | None:
    return next((m for m in ranked if m.role == "default"), None)


def speedup(ours: MethodRecord | None, other: MethodRecord | None, budget: int, what: str,
            who: str = "ours", metric: str | None = None, mode: str = "max") -> tuple[float | None, str]:
    """``other's / ours`` worst-seed updates to the target on **test** accuracy, and a sentence saying it.

    ``what`` names ``other`` and ``who`` names ``ours`` in the sentence (``"the best candidate"``, ...).
    A ratio below 1 means ours is slower (the sentence says so). When ``other`` missed the target on a
    seed within the budget, the ratio is a lower bound (``>=``): the budget over ours, or, when ``other`` was
    stopped before its budget (a yardstick slower than another), the updates it ran over ours. No ratio when
    ours missed it on a seed.
    ``metric`` and ``mode`` name the values of a study judged on a training function's metric.
    """
    def worst(m: MethodRecord) -> str:
        value = m.test_worst_acc()
        return f"worst best {'reported ' + metric if metric else 'test accuracy'} {value if mode == 'max' else -value:.4f}"

    if ours is None:
        return None, "no candidate finished"
    if other is None:
        return None, f"{what} has not run yet"
    mine = ours.test_worst_steps()
    if mine is None:
        return None, (f"none: {who} did not reach the target on {'reported ' + metric if metric else 'test accuracy'} on every seed "
                      f"({worst(ours)})")
    theirs = other.test_worst_steps()
    over = f" ({worst_of(len(ours.seeds))})"
    stopped = other.stopped_at() if theirs is None else None
    if stopped is not None:
        ratio = stopped / mine
        return ratio, (f">= {ratio:.2f}x: {what} had not reached the target when it was stopped at {stopped} "
                       f"updates, slower than another yardstick ({worst(other)}); {who} took {mine}{over}")
    if theirs is None:
        ratio = budget / mine
        return ratio, (f">= {ratio:.2f}x: {what} did not reach the target within {budget} updates on every seed "
                       f"({worst(other)}); {who} took {mine}{over}")
    ratio = theirs / mine
    verdict = "fewer" if ratio > 1 else ("as many" if ratio == 1 else f"more: {who} is slower")
    return ratio, f"{ratio:.2f}x ({verdict}): {what} took {theirs} updates, {who} {mine}{over}"


def worst_of(seeds: int) -> str:
    """The headline convention of a method judged on several seeds, named: ``worst of 3 seeds`` (``1 seed``).

    Example:
        >>> worst_of(2), worst_of(1)
        ('worst of 2 seeds', '1 seed')
    """
    return f"worst of {seeds} seeds" if seeds > 1 else "1 seed"


def by_optimizer(ranked: list[MethodRecord]) -> dict[str, dict[str, dict[str, Any]]]:
    """The mutual-impact table: family -> optimizer -> best worst-seed updates-to-target and best accuracy.

    Over every method that ran (candidates, the default and the baselines); ``updates`` is None where
    no method of that family and optimizer reached the target on all its seeds.
    """
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for m in ranked:
        cell = table.setdefault(m.family or "-", {}).setdefault(m.optimizer, {"updates": None, "acc": 0.0, "methods": 0})
        cell["methods"] += 1
        if m.worst_steps is not None and (cell["updates"] is None or m.worst_steps < cell["updates"]):
            cell["updates"] = m.worst_steps
        cell["acc"] = max(cell["acc"], m.worst_acc)
    return table
