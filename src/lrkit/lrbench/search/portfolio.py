"""The portfolio: the first candidates of a search, the configurations that were fastest in hindsight.

A search's first draws are otherwise random (TPE starts by sampling), and a short search of 6-10
candidates over several optimizers and 14 families rarely draws the few configurations that win. So
``recommend`` first queues a few entries of :data:`PORTFOLIO`, learned from the limit sweep on
fashion-mnist-mlp (``experiments/limit_sweep.py``; benchmarks/RESULTS.md, "the limit": 118
configurations, each trained the whole budget on three held-out seeds):

| entry | optimizer | policy | on fashion-mnist-mlp (updates to 0.85, held-out seeds) |
|---|---|---|---|
| ``sf-wsd`` | schedule-free AdamW | WSD, 5 % warm-up, 20 % linear decay, peak 3.7x the range test's ``high`` | 192 +- 12 (the fastest of all) |
| ``sf-wsd-high`` | schedule-free AdamW | the same at 7x ``high`` | 192-250 at 3.7-12x (see below) |
| ``adam-cosine`` | Adam | cosine to ``peak / 1000``, peak 1.35x ``high`` | 425-475 at 0.8-2.4x |
| ``prodigy-cosine`` | Prodigy | cosine, multiplier 0.46 | 367 +- 20 |

``sf-wsd-high`` hedges ``sf-wsd`` on the side where the other tasks' best LRs lie: one line of the
sweep (schedule-free AdamW + WSD at 0.00316, 0.01 and 0.0316, held-out seeds 2-4) found the fastest
peak at about 6x ``high`` on fashion-mnist-lenet and 5-15x on fashion-mnist-cnn3, where 3.7x took
1.2x their updates. (It replaced an entry at 1.5x, which no task's sweep favoured.)

Each entry is written in the search space's own terms (:mod:`lrkit.lrbench.search.space`): a
position in the optimizer's peak window and fractions of the budget, not an LR, so it carries over
to a task whose LRs and budget differ. It is queued as Optuna trial parameters (``enqueue_trial``), so
it is an ordinary candidate: it counts among ``--trials``, the pruner judges it, and the sampler learns
from it. An entry is queued only when its optimizer is searched and the family is in ``--families``,
at most ``n_trials // 2`` of them (the sampler draws the rest), each once per study; the ranking marks
them ``[portfolio]``. ``portfolio=False`` (``--no-portfolio``) turns it off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lrkit.lrbench.search.space import PLAIN_WINDOW, SCHEDULE_FREE_WINDOW, position_in, queued_params
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.schema import ATTR_PORTFOLIO
from lrkit.lrbench.tasks.optimizers import LR_FREE_RANGE


@dataclass(frozen=True)
class Entry:
    """One portfolio configuration: the optimizer it is for, and the search-space parameters that draw it."""

    name: str
    optimizer: str
    family: str
    params: dict[str, Any] = field(default_factory=dict)

    def trial_params(self, searched: tuple[str, ...]) -> dict[str, Any]:
        """The Optuna parameters of the draw (the optimizer's only when the study chooses among several); the
        optimizer's knobs as it is otherwise built (:func:`~lrkit.lrbench.search.space.queued_params`)."""
        head = {"optimizer": self.optimizer} if len(searched) > 1 else {}
        return queued_params(self.optimizer, {**head, "family": self.family,
                                              **{f"{self.family}.{k}": v for k, v in self.params.items()}})


#: best first; see the module docstring for where each comes from
PORTFOLIO: tuple[Entry, ...] = (
    Entry("sf-wsd", "schedulefree:AdamWScheduleFree", "wsd",
          {"peak_pos": position_in(3.7, SCHEDULE_FREE_WINDOW), "ratio": 1e-3, "warmup": 0.05, "decay": 0.2,
           "shape": "linear"}),
    Entry("prodigy-cosine", "prodigyopt:Prodigy", "cosine",
          {"peak_pos": position_in(0.46, LR_FREE_RANGE), "ratio": 1e-3}),
    Entry("sf-wsd-high", "schedulefree:AdamWScheduleFree", "wsd",
          {"peak_pos": position_in(7.0, SCHEDULE_FREE_WINDOW), "ratio": 1e-3, "warmup": 0.05, "decay": 0.2,
           "shape": "linear"}),
    Entry("adam-cosine", "adam", "cosine", {"peak_pos": position_in(1.35, PLAIN_WINDOW), "ratio": 1e-3}),
)


def entries_for(config: StudyConfig) -> list[Entry]:
    """The entries a study queues: those whose optimizer it searches and whose family it allows, at most
    ``n_trials // 2``."""
    fitting = [e for e in PORTFOLIO if e.optimizer in config.searched and e.family in config.families]
    return fitting[: config.n_trials // 2]


def queue_portfolio(study: Any, config: StudyConfig, *, log: Any = None) -> int:
    """Queue the portfolio's entries in ``study`` (each once per study); returns how many were queued now."""
    have = {t.user_attrs.get(ATTR_PORTFOLIO) for t in study.get_trials(deepcopy=False)}
    queued = [e for e in entries_for(config) if e.name not in have]
    for entry in queued:
        study.enqueue_trial(entry.trial_params(config.searched), user_attrs={ATTR_PORTFOLIO: entry.name})
    if log is not None and queued:
        log(f"portfolio: queued {', '.join(e.name for e in queued)} as the first candidates")
    return len(queued)


__all__ = ["PORTFOLIO", "Entry", "entries_for", "queue_portfolio"]
