"""The database lookup (LRBench's second stage): start a study from what the storage already knows.

Before searching, ``recommend`` and ``compose`` look through the *other* studies in the same storage
for the same task, take the best methods there (candidates that reached their study's target on every
seed, with an optimizer this study searches), and verify them here: each is queued as a candidate of
this study, run with this study's target, budget and seeds, and marked as coming from the lookup
(``ATTR_LOOKUP``: the study and trial it came from; the ranking shows ``[lookup]``). They come on top
of the sampled candidates (``n_trials`` counts only those). ``lookup=False`` (``--no-lookup``) turns
it off.
"""

from __future__ import annotations

from typing import Any

from lrkit.lrbench.search.space import family_of
from lrkit.lrbench.study import ranking as res
from lrkit.lrbench.study.baselines import Method
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.schema import ATTR_LOOKUP
from lrkit.lrbench.study.queue import queue
from lrkit.lrbench.study.storage import load_study, study_names

#: methods taken from each other study
PER_STUDY = 3


def known_methods(storage: Any, config: StudyConfig, exclude: str, per_study: int = PER_STUDY) -> list[tuple[Method, dict]]:
    """The best methods other studies of ``config.task`` found, for the optimizers ``config`` searches.

    Returns ``(method, origin)`` pairs, best first within each study, each method once; ``origin`` is
    ``{"study": name, "trials": [numbers], "worst_steps": n}``.
    """
    from lrkit.errors import LRKitError

    found: list[tuple[Method, dict]] = []
    seen: set[tuple] = set()
    for name in study_names(storage):
        if name == exclude:
            continue
        try:
            study, other = load_study(storage, name)
        except LRKitError:  # not an lrkit study
            continue
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


def queue_known(study: Any, storage: Any, config: StudyConfig, *, log: Any = None) -> int:
    """Queue the lookup's methods in ``study`` (on its first judging seed); returns how many were queued."""

    queued = 0
    for method, origin in known_methods(storage, config, study.study_name):
        queued += queue(study, config, method, config.seed, "candidate", family=family_of(method.spec),
                        extra={ATTR_LOOKUP: origin})
    if log is not None and queued:
        log(f"lookup: queued {queued} methods other studies of {config.task} found best")
    return queued


__all__ = ["PER_STUDY", "known_methods", "queue_known"]
