"""What is known before a search: what other studies in the storage found, and lrkit's shipped portfolio.

**The database lookup** (LRBench's second stage). Before searching, ``recommend`` and ``compose`` look
through the *other* studies in the same storage for the same task, take the best methods there (candidates
that reached their study's target on every
seed, with an optimizer this study searches), and verify them here: each is queued as a candidate of
this study, run with this study's target, budget and seeds, and marked as coming from the lookup
(``ATTR_LOOKUP``: the study and trial it came from; the ranking shows ``[lookup]``). They come on top
of the sampled candidates (``n_trials`` counts only those). ``lookup=False`` (``--no-lookup``) turns
it off.

Studies of **other tasks** in the storage lend their best sampled candidate too (:func:`transferred`, at
most :data:`TRANSFERS` in all), carried over the way the shipped portfolio
(below) is: not its LR, which belongs to the other task, but its draw. Its
peak becomes a multiple of the other study's range-test ``high`` for that optimizer, placed at the same
multiple of this study's ``high`` in this study's window, and its other parameters (the floor's ratio,
fractions of the budget, shapes) are kept as they are. It is queued as Optuna trial parameters, so its
policy is built in this study's terms; the ranking marks it ``[lookup]`` like the others.

**The portfolio**: the first candidates of a search, the configurations that were fastest in hindsight.

A search's first draws are otherwise random (TPE starts by sampling), and a short search of 6-10
candidates over several optimizers and 14 families rarely draws the few configurations that win. So
``recommend`` first queues a few entries of :data:`PORTFOLIO`, learned from the limit sweep on
fashion-mnist-mlp (``experiments/limit_sweep.py``; benchmarks/RESULTS.md, "the limit": 118
configurations, each trained the whole budget on three held-out seeds):

| entry | optimizer | policy | on fashion-mnist-mlp (updates to 0.85, held-out seeds) |
|---|---|---|---|
| ``sf-wsd`` | schedule-free AdamW | WSD, 5 % warm-up, 20 % linear decay, peak 3.7x the range test's
``high`` | 192 +- 12 (the fastest of all) |
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

import json
from dataclasses import dataclass, field
from typing import Any

from lrkit.lrbench.search.space import (PLAIN_WINDOW, SCHEDULE_FREE_WINDOW, SearchContext, family_of, in_range,
                                        position_in, queued_params)
from lrkit.lrbench.study import ranking as res
from lrkit.lrbench.study.baselines import Method
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.schema import ATTR_LOOKUP, ATTR_PORTFOLIO, ATTR_WINDOW
from lrkit.lrbench.study.queue import queue
from lrkit.lrbench.study.storage import other_studies
from lrkit.lrbench.tasks.optimizers import LR_FREE_RANGE

#: methods taken from each other study of the same task
PER_STUDY = 3
#: draws carried over from studies of other tasks (the best of each, the most-recent studies first)
TRANSFERS = 2


def known_methods(storage: Any, config: StudyConfig, exclude: str, per_study: int = PER_STUDY) -> list[tuple[Method, dict]]:
    """The best methods other studies of ``config.task`` found, for the optimizers ``config`` searches.

    Returns ``(method, origin)`` pairs, best first within each study, each method once; ``origin`` is
    ``{"study": name, "trials": [numbers], "worst_steps": n}``.
    """
    found: list[tuple[Method, dict]] = []
    seen: set[tuple] = set()
    for name, study, other in other_studies(storage, exclude):
        if other.task != config.task:
            continue
        ranked = res.rank(res.records(study))
        good = [m for m in ranked if m.role == "candidate" and m.reached_all and m.optimizer in config.searched]
        for m in good[:per_study]:
            key = (m.optimizer, repr(sorted(m.optimizer_kwargs.items())), m.spec, m.lr_driver)
            if key in seen:
                continue
            seen.add(key)
            found.append((Method(m.optimizer, dict(m.optimizer_kwargs), m.spec, m.lr_driver),
                          {"study": name, "trials": [r.number for r in m.trials], "worst_steps": m.worst_steps}))
    return found


def transferred(storage: Any, config: StudyConfig, exclude: str) -> list[tuple[dict[str, Any], dict]]:
    """The best sampled candidate of each study of another task in ``storage`` (at most :data:`TRANSFERS`),
    as ``(params, origin)``: the Optuna parameters that draw it in a study configured as ``config`` (module
    docstring), and ``{"study", "task", "trials", "worst_steps", "multiple"}`` (its peak / ``high`` there)."""
    found: list[tuple[dict[str, Any], dict]] = []
    for name, study, other in other_studies(storage, exclude, newest_first=True):
        if len(found) >= TRANSFERS:
            break
        if other.task == config.task:
            continue
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        for m in res.rank(res.records(study)):
            if m.role != "candidate" or not m.reached_all:
                continue
            moved = _moved(trials[m.trials[0].number], other, m, config)
            if moved is not None:
                found.append((moved[0], {"study": name, "task": other.task, "trials": [r.number for r in m.trials],
                                         "worst_steps": m.worst_steps, "multiple": round(moved[1], 4)}))
                break
    return found


def _moved(trial: Any, other: StudyConfig, m: Any, config: StudyConfig) -> tuple[dict[str, Any], float] | None:
    """The draw of ``m`` (first trained in ``trial`` of a study configured as ``other``) in ``config``'s terms,
    and its peak's multiple of ``high``; None when it cannot move (not a sampled draw, RALR (built on that
    study's best), an optimizer or family ``config`` does not search)."""
    from lrkit.lrbench.search.objective import contexts

    params, window = dict(trial.params), trial.user_attrs.get(ATTR_WINDOW)
    family, opt = params.get("family"), m.optimizer
    key = f"{family}.peak_pos"
    if window is None or key not in params or family == "ralr" or family not in config.families \
            or opt not in config.searched or not other.lr_range_of(opt)[1] > 0:
        return None
    peak = in_range(SearchContext(other.budget, *window), params[key])
    multiple = peak / other.lr_range_of(opt)[1]
    here = contexts(config, 1, None)[opt]
    params[key] = min(1.0, max(0.0, position_in(multiple * config.lr_range_of(opt)[1], (here.low, here.high))))
    params.pop("optimizer", None)
    return queued_params(opt, {"optimizer": opt, **params} if len(config.searched) > 1 else params), multiple


def queue_known(study: Any, storage: Any, config: StudyConfig, *, log: Any = None) -> int:
    """Queue the lookup's methods in ``study`` (on its first judging seed): those other studies of the task
    found best, then the draws carried over from other tasks (each once per study); returns how many were
    queued."""
    queued = 0
    for method, origin in known_methods(storage, config, study.study_name):
        queued += queue(study, config, method, config.seed, "candidate", family=family_of(method.spec),
                        extra={ATTR_LOOKUP: origin})
    if log is not None and queued:
        log(f"lookup: queued {queued} methods other studies of {config.task} found best")
    have = {json.dumps(t.user_attrs.get(ATTR_LOOKUP), sort_keys=True) for t in study.get_trials(deepcopy=False)}
    moved = [(p, o) for p, o in transferred(storage, config, study.study_name)
             if json.dumps(o, sort_keys=True) not in have]
    for params, origin in moved:
        study.enqueue_trial(params, user_attrs={ATTR_LOOKUP: origin})
    if log is not None and moved:
        log(f"lookup: queued the best draws of {', '.join(o['task'] for _, o in moved)} at the same multiples "
            "of the range test's high")
    return queued + len(moved)


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


#: best first; see "The portfolio" in the module docstring for where each comes from
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


__all__ = ["PER_STUDY", "PORTFOLIO", "TRANSFERS", "Entry", "entries_for", "known_methods", "queue_known",
           "queue_portfolio", "transferred"]
