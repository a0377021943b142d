"""The yardsticks of a study: the task's default policy and the baselines (the peers a user would train with
instead), queued beside the search's candidates on its first judging seed, and on the repeat seeds while
they contend for the first place.

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


#: the baselines queued first: schedule-free AdamW reached the target first among the peers on every built-in
#: Fashion task, the LR-free optimizers next (benchmarks/RESULTS.md, issues 8 and 18)
FIRST = ("schedulefree-adamw", "prodigy", "dadapt-adam")


def _order(name: str) -> int:
    return FIRST.index(name) if name in FIRST else len(FIRST)


def default_method_of(config: StudyConfig, task: Any) -> Method:
    """The task's default: its policy with its optimizer and the task's arguments (none of the user's)."""
    name, kwargs = optimizer_setup(task, config.optimizer, {})
    return Method(name, kwargs, config.default_spec)


def queue_yardsticks(study: Any, config: StudyConfig, task: Any) -> int:
    """Queue the task's default and every baseline on the first judging seed, and on each further seed (the
    repeats) those that still contend (once each); returns how many were queued.

    The ranking goes by the worst seed, so a yardstick contends for the first place only while it reached
    the target on every seed it ran and in no more updates than the best candidate's worst seed
    (:func:`settled_yardsticks`). Any other ranks below that candidate whatever another seed says, and
    repeating it would only cost; the repeats run again when a candidate's worst seed gets slower
    (:func:`lrkit.lrbench.search.loop.run_repeats`), so a yardstick that comes back into contention is
    repeated then.

    They are queued in the order most likely to set the bar early, since a yardstick on the first seed
    stops once it is well past the updates another took (:meth:`~lrkit.lrbench.search.pruning.TargetPruner.outpaced`):
    :data:`FIRST` before the other baselines, the task's default last (or where a baseline that trains the
    same would be: it is stored once, as the default)."""
    have, default = alive_keys(study), default_method_of(config, task)
    settled = settled_yardsticks(study)
    methods = [(baseline_method(n, config, task), "baseline", n) for n in sorted(config.baselines, key=_order)]
    # the default last, or in the place of a baseline that trains the same (which then is not queued again)
    key = trial_key(default, config.budget)
    same = [i for i, (m, _, _) in enumerate(methods) if trial_key(m, config.budget) == key]
    methods.insert(same[0] if same else len(methods), (default, "default", None))
    queued = 0
    for i, seed in enumerate(config.judging_seeds):
        for method, role, name in methods:
            if i and trial_key(method, config.budget) in settled:
                continue
            queued += queue(study, config, method, seed, role, family=family_of(method.spec), baseline=name,
                            have=have)
    return queued


def settled_yardsticks(study: Any) -> set[str]:
    """The curve keys of the yardsticks that no longer contend for the first place (judged as the ranking
    judges them, at the calibrated validation target when the study has one): those that finished below
    the target on some seed, and those behind the best candidate on the worst seed (more updates, or as
    many and a later crossing: :meth:`~lrkit.lrbench.study.ranking.MethodRecord.pace`)."""
    from lrkit.lrbench.study import ranking as res
    from lrkit.lrbench.study.schema import ATTR_CURVE

    curve = {t.number: t.user_attrs.get(ATTR_CURVE) for t in study.get_trials(deepcopy=False)}
    ranked = res.rank(res.records(study))
    bar = next((m.pace() for m in ranked if m.role == "candidate" and m.reached_all), None)
    out = set()
    for m in ranked:
        finished = [r for r in m.trials if r.result is not None]
        if m.role not in ("default", "baseline") or len(finished) < len(m.trials):
            continue
        if not m.reached_all or (bar is not None and m.pace() > bar):
            out |= {curve[r.number] for r in m.trials}
    return out


def _same_judging(a: StudyConfig, b: StudyConfig) -> bool:
    keys = ("task", "target", "budget", "eval_every", "on", "metric", "mode", "ranks")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def _same_yardsticks(a: StudyConfig, b: StudyConfig) -> bool:
    keys = ("baselines", "optimizer", "optimizer_kwargs", "default_spec")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def reusable(study: Any, config: StudyConfig, key: str, seed: int) -> tuple[str, Any] | None:
    """``(study name, trial)`` of a finished trial of another study in ``study``'s storage that trained
    exactly this yardstick (the same curve key and seed, under the same judging), or None. A yardstick
    that was stopped because another ran faster is taken only from a study with the same yardsticks
    (where the faster one is there too)."""
    from optuna.trial import TrialState

    from lrkit.lrbench.study.schema import ATTR_CURVE, ATTR_RESULT, ATTR_SEED
    from lrkit.lrbench.study.storage import other_studies

    for name, other, other_config in other_studies(study._storage, study.study_name):
        if not _same_judging(config, other_config):
            continue
        for t in other.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            attrs = t.user_attrs
            if (attrs.get(ATTR_CURVE) == key and attrs.get(ATTR_SEED) == seed and attrs.get(ATTR_RESULT) is not None
                    and (t.state == TrialState.COMPLETE or _same_yardsticks(config, other_config))):
                return name, t
    return None


__all__ = ["default_method_of", "queue_yardsticks", "reusable", "settled_yardsticks"]
