"""The yardsticks of a study: the task's default policy and the baselines (the peers a user would train with
instead), queued beside the search's candidates on its first judging seed, and on the repeat seeds unless
they missed the target there.

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
from lrkit.lrbench.study.queue import alive_keys, queue, trial_key


def default_method_of(config: StudyConfig, task: Any) -> Method:
    """The task's default: its policy with its optimizer and the task's arguments (none of the user's)."""
    name, kwargs = optimizer_setup(task, config.optimizer, {})
    return Method(name, kwargs, config.default_spec)


def queue_yardsticks(study: Any, config: StudyConfig, task: Any) -> int:
    """Queue the task's default and every baseline on the first judging seed, and on each further seed (the
    repeats) those that did not miss the target (once each); returns how many were queued.

    A yardstick that finished below the target on a seed ranks below every method that reached it on all
    of theirs, whatever another seed says, so it is not repeated (:func:`missed_yardsticks`): a repeat
    would only cost (it trains to the budget, where it fell short before)."""
    have, default = alive_keys(study), default_method_of(config, task)
    missed = missed_yardsticks(study)
    queued = 0
    for i, seed in enumerate(config.judging_seeds):
        methods = [(default, "default", None)] + [(baseline_method(n, config, task), "baseline", n)
                                                  for n in config.baselines]
        for method, role, name in methods:
            if i and trial_key(method, config.budget) in missed:
                continue
            queued += queue(study, config, method, seed, role, family=family_of(method.spec), baseline=name,
                            have=have)
    return queued


def missed_yardsticks(study: Any) -> set[str]:
    """The curve keys of the yardsticks that finished below the target on some seed (judged as the ranking
    judges them: at the calibrated validation target when the study has one)."""
    from lrkit.lrbench.study import ranking as res
    from lrkit.lrbench.study.schema import ATTR_CURVE

    curve = {t.number: t.user_attrs.get(ATTR_CURVE) for t in study.get_trials(deepcopy=False)}
    return {curve[r.number] for r in res.records(study)
            if r.role in ("default", "baseline") and r.result is not None and not r.reached}


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


__all__ = ["default_method_of", "missed_yardsticks", "queue_yardsticks", "reusable"]
