"""What a search cost: the optimizer updates every part of a study trained, in full-budget trials.

A speed-up says how much faster the recommendation reaches the target than a peer; the cost says what
finding it took, in the same unit: ``updates trained ÷ budget``, the number of full-budget trials the
search was worth. The updates are the ones actually trained:

- a trial counts the updates it ran (``steps`` in its result): one stopped at the target or pruned
  counts up to there; a decay fork (:mod:`lrkit.lrbench.search.forking`) from its fork point on; one that
  reused an identical finished training (a duplicate) counts 0; a trial
  that raised, or was never trained (surplus, still running or waiting), counts 0;
- each LR range counts the updates its range test or grid stored with it (``updates`` in the study's
  :data:`~lrkit.lrbench.study.schema.ATTR_LR_RANGE_DETAILS`); a given range and an LR-free optimizer's
  multiplier range count 0.

Split by purpose: **candidates** (sampled and looked-up policies on the study's seed), **range tests**,
**yardsticks** (the task's default and the baselines on the study's seed) and **repeats** (every trial on
another judging seed: the candidates' repeats and the yardsticks', what ``repeats`` costs). A yardstick
that another study of the same storage had trained (reused, :mod:`lrkit.lrbench.search.yardsticks`) costs
nothing here: its updates were counted once, in the study that ran it.

Example:
    >>> c = SearchCost(budget=600, candidates=3660, range_tests=780, yardsticks=3000, repeats=1080)
    >>> c.text()
    '14.2 full-budget trials (candidates 6.1, range tests 1.3, yardsticks 5.0, repeats 1.8)'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lrkit.lrbench.study.ranking import TrialRecord, records
from lrkit.lrbench.study.schema import ATTR_LR_RANGE_DETAILS

#: the parts of a search, in the order they are printed: (attribute, what a reader calls it)
PARTS = (("candidates", "candidates"), ("range_tests", "range tests"), ("yardsticks", "yardsticks"),
         ("repeats", "repeats"))


@dataclass(frozen=True)
class SearchCost:
    """The updates a study trained, by purpose (see the module docstring), and the budget they are divided by.

    Attributes:
        budget: updates per full trial (the study's budget), > 0.
        candidates, range_tests, yardsticks, repeats: updates trained for each, >= 0.
        reused: yardstick trials whose results came from earlier studies of the storage (not trained here).
    """

    budget: int
    candidates: int = 0
    range_tests: int = 0
    yardsticks: int = 0
    repeats: int = 0
    reused: int = 0

    @property
    def updates(self) -> int:
        """Every update trained: the four parts summed."""
        return self.candidates + self.range_tests + self.yardsticks + self.repeats

    def trials(self, part: str | None = None) -> float:
        """``updates ÷ budget`` of one part (``"candidates"``, ...), or of all when ``part`` is None."""
        return (self.updates if part is None else getattr(self, part)) / self.budget

    def text(self) -> str:
        """``14.2 full-budget trials (candidates 6.1, range tests 1.3, yardsticks 5.0, repeats 1.8)``."""
        parts = ", ".join(f"{name} {self.trials(attr):.1f}" for attr, name in PARTS)
        reused = f"; {self.reused} yardstick trials reused from earlier studies" if self.reused else ""
        return f"{self.trials():.1f} full-budget trials ({parts}{reused})"

    def to_dict(self) -> dict[str, Any]:
        """The updates of each part, their sum, the budget, and each in full-budget trials."""
        return {"budget": self.budget, "updates": self.updates, "full_budget_trials": self.trials(),
                **{f"{attr}_updates": getattr(self, attr) for attr, _ in PARTS},
                **{f"{attr}_trials": self.trials(attr) for attr, _ in PARTS}, "reused_yardsticks": self.reused}


def trained_updates(r: TrialRecord) -> int:
    """The updates a trial actually trained (0 for a duplicate, a yardstick another study of the storage
    trained, or a trial without a result)."""
    if r.duplicate_of is not None or r.reused_from is not None or r.result is None:
        return 0
    return int(r.get("steps", 0)) - (int(r.fork["at"]) if r.fork else 0)


def search_cost(study: Any, budget: int, seed: int, recs: list[TrialRecord] | None = None) -> SearchCost:
    """The cost of ``study`` so far (see the module docstring); ``seed`` is the study's own seed (a trial on
    any other seed is a repeat); ``recs``: the study's :func:`records` when the caller has them already."""
    parts = {"candidates": 0, "yardsticks": 0, "repeats": 0}
    reused = 0
    for r in records(study) if recs is None else recs:
        if r.repeat or (r.seed is not None and r.seed != seed):
            part = "repeats"
        else:
            part = "candidates" if r.role == "candidate" else "yardsticks"
        parts[part] += trained_updates(r)
        reused += r.reused_from is not None
    details = study.user_attrs.get(ATTR_LR_RANGE_DETAILS, {}) or {}
    ranges = sum(int(d.get("updates", 0) or 0) for d in details.values() if isinstance(d, dict))
    return SearchCost(budget=budget, range_tests=ranges, reused=reused, **parts)


__all__ = ["PARTS", "SearchCost", "search_cost", "trained_updates"]
