"""The yardsticks of a study: the task's default policy and the baselines (the peers a user would train with
instead), queued on every judging seed beside the search's candidates.

They are the same trainings in every study of a task with the same judging (target, budget, evaluation
interval, split, metric) and seed, so a storage runs each once: a yardstick whose training another
study of the storage finished takes that result (:func:`reusable`; stored with ``ATTR_REUSED_FROM``), and
its updates are not counted in this study's cost."""

from __future__ import annotations

from typing import Any

from lrkit.lrbench.run.steps import optimizer_setup
from lrkit.lrbench.search.space import family_of
from lrkit.lrbench.study.baselines import Method, baseline_method
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.queue import alive_keys, queue


def default_method_of(config: StudyConfig, task: Any) -> Method:
    """The task's default: its policy with its optimizer and the task's arguments (none of the user's)."""
    name, kwargs = optimizer_setup(task, config.optimizer, {})
    return Method(name, kwargs, config.default_spec)


def queue_yardsticks(study: Any, config: StudyConfig, task: Any) -> int:
    """Queue the task's default and every baseline on every judging seed (once each); returns how many."""
    have, default = alive_keys(study), default_method_of(config, task)
    queued = 0
    for seed in config.judging_seeds:
        queued += queue(study, config, default, seed, "default", family=family_of(default.spec), have=have)
        for name in config.baselines:
            method = baseline_method(name, config, task)
            queued += queue(study, config, method, seed, "baseline", family=family_of(method.spec), baseline=name,
                            have=have)
    return queued


def _same_judging(a: StudyConfig, b: StudyConfig) -> bool:
    keys = ("task", "target", "budget", "eval_every", "on", "metric", "mode", "ranks")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def reusable(study: Any, config: StudyConfig, key: str, seed: int) -> tuple[str, Any] | None:
    """``(study name, trial)`` of a finished trial of another study in ``study``'s storage that trained
    exactly this yardstick (the same curve key and seed, under the same judging), or None."""
    from optuna.trial import TrialState

    from lrkit.errors import LRKitError
    from lrkit.lrbench.study.schema import ATTR_CURVE, ATTR_RESULT, ATTR_SEED
    from lrkit.lrbench.study.storage import load_study, study_names

    storage = study._storage
    for name in study_names(storage):
        if name == study.study_name:
            continue
        try:
            other, other_config = load_study(storage, name)
        except LRKitError:  # not an lrkit study
            continue
        if not _same_judging(config, other_config):
            continue
        for t in other.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            attrs = t.user_attrs
            if (attrs.get(ATTR_CURVE) == key and attrs.get(ATTR_SEED) == seed
                    and attrs.get(ATTR_RESULT) is not None):
                return name, t
    return None


__all__ = ["default_method_of", "queue_yardsticks", "reusable"]
