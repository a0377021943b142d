"""Queueing a study's trials and counting its candidates: what ``recommend``, ``compose`` and ``lrkit worker`` share.

- :func:`curve_key` / :func:`trial_key` identify a training (optimizer, arguments, the LR curve; a stage
  trial also by where it starts and ends), so the same training is never queued or trained twice.
- :func:`queue` puts one trial of a method (an optimizer, its arguments, a policy, how the LR is
  applied) with a seed into the study, unless the same training is already there (run, running or
  waiting), so every queueing call is idempotent and a rerun of a command continues its study.
- :func:`queue_yardsticks`: the task's default and the baselines, on every judging seed.
- :func:`counted`, :func:`claimed`, :func:`surplus`: what ``--trials`` counts. Only sampled candidates
  count: not the default or the baselines, not repeats on more seeds, not a trial that reused an
  identical training (a duplicate), not a policy looked up from another study, not a search's decay fork
  (:mod:`lrkit.lrbench.search.forking`), and not a surplus trial (sampled when the study already had its
  candidates, and never trained).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from lrkit.lrbench.study.baselines import Method
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.schema import (ATTR_BASELINE, ATTR_CURVE, ATTR_DUPLICATE_OF, ATTR_ERROR, ATTR_FAMILY,
                                        ATTR_FORK, ATTR_LOOKUP, ATTR_LR_DRIVER, ATTR_OPT_KWARGS, ATTR_OPTIMIZER, ATTR_PARENT,
                                        ATTR_REPEAT, ATTR_ROLE, ATTR_SEED, ATTR_SPEC, ATTR_SURPLUS, ATTR_UNTIL)


def curve_key(method: Method, budget: int) -> str:
    """What identifies a training: optimizer, arguments, LR driver and the LR curve over the budget.

    The curve is rounded to 33 mantissa bits (about 10 significant digits), so two curves that differ
    only by rounding (another machine's SIMD kernels) share a key.
    """
    from lrkit.spec import parse

    lrs = parse(method.spec).values(np.arange(budget, dtype=np.float64))
    mantissa, exponent = np.frexp(lrs)
    digest = hashlib.sha1(json.dumps([method.optimizer, method.optimizer_kwargs, method.lr_driver],
                                     sort_keys=True, default=str).encode())
    digest.update(np.round(mantissa * 2.0**33).astype(np.int64).tobytes())
    digest.update(exponent.astype(np.int64).tobytes())
    return digest.hexdigest()


def trial_key(method: Method, budget: int, parent: int | None = None, until: int | None = None) -> str:
    """:func:`curve_key`, and for a composition's stage trial also where it starts and ends: two stage
    trials train alike only from the same parent state to the same update."""
    key = curve_key(method, budget)
    return key if until is None else f"{key}|from {parent} to {until}"



def alive_keys(study: Any) -> set[tuple[str, int]]:
    """(curve key, seed) of every trial that ran, runs or waits, and of queued trials (by their method)."""
    from optuna.trial import TrialState

    alive = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    # a trial whose training raised is a result too (kept with its error): queued again it would fail again
    return {(t.user_attrs.get(ATTR_CURVE), t.user_attrs.get(ATTR_SEED))
            for t in study.get_trials(deepcopy=False)
            if t.state in alive or (t.state == TrialState.FAIL and t.user_attrs.get(ATTR_ERROR) is not None)}


def queue(study: Any, config: StudyConfig, method: Method, seed: int, role: str, *, family: str,
          baseline: str | None = None, repeat: bool = False, extra: dict[str, Any] | None = None,
          have: set[tuple[str, int]] | None = None) -> bool:
    """Queue one trial of ``method`` with ``seed`` unless the same training is already there; True if queued.

    ``family`` is what the ranking calls the trial's policy (the search space's family, or a stage's kind).
    """
    extra = extra or {}
    key = trial_key(method, config.budget, extra.get(ATTR_PARENT), extra.get(ATTR_UNTIL))
    have = alive_keys(study) if have is None else have
    if (key, seed) in have:
        return False
    attrs = {ATTR_ROLE: role, ATTR_SPEC: method.spec, ATTR_OPTIMIZER: method.optimizer,
             ATTR_OPT_KWARGS: method.optimizer_kwargs, ATTR_LR_DRIVER: method.lr_driver, ATTR_SEED: seed,
             ATTR_CURVE: key, ATTR_FAMILY: family, ATTR_REPEAT: repeat, **extra}
    if baseline:
        attrs[ATTR_BASELINE] = baseline
    study.enqueue_trial({}, user_attrs=attrs)
    have.add((key, seed))
    return True


# ---- counting ---------------------------------------------------------------------------------------------
def _candidate(t: Any) -> bool:
    return (t.user_attrs.get(ATTR_ROLE, "candidate") == "candidate" and not t.user_attrs.get(ATTR_REPEAT)
            and t.user_attrs.get(ATTR_DUPLICATE_OF) is None and t.user_attrs.get(ATTR_LOOKUP) is None
            and t.user_attrs.get(ATTR_FORK) is None and not t.user_attrs.get(ATTR_SURPLUS))


def counted(study: Any) -> int:
    """The candidates that count towards the study's total and have finished (complete or pruned)."""
    from optuna.trial import TrialState

    return sum(map(_candidate, study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))))


def claimed(study: Any, before: int | None = None) -> int:
    """:func:`counted` plus the candidates running now in any worker (with ``before``, only those numbered
    below it): what a worker must count before it samples one more, or two workers each start the last."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
    return sum(_candidate(t) and (t.state != TrialState.RUNNING or before is None or t.number < before)
               for t in trials)


def surplus(study: Any, trial_number: int, n_trials: int) -> bool:
    """Whether a trial just sampled is one too many: the finished candidates and those running with a
    lower number already make ``n_trials``. Two workers that sampled the last candidate at the same moment
    each see the other's trial here, and only the higher-numbered one yields (a candidate that turns out a
    duplicate stops counting when it ends, and the workers then sample another)."""
    return claimed(study, before=trial_number) >= n_trials


__all__ = ["alive_keys", "claimed", "counted", "curve_key", "queue", "surplus", "trial_key"]
