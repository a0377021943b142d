"""How many candidates a study has: what ``--trials`` counts, shared by the search loop and the objective.

Only sampled candidates count: not the default or the baselines, not repeats on more seeds, not a trial
that reused an identical training (a duplicate), not a policy looked up from another study, and not a
surplus trial (sampled when the study already had its candidates, and never trained).
"""

from __future__ import annotations

from typing import Any

from lrkit.lrbench.study.schema import ATTR_DUPLICATE_OF, ATTR_LOOKUP, ATTR_REPEAT, ATTR_ROLE, ATTR_SURPLUS


def _candidate(t: Any) -> bool:
    return (t.user_attrs.get(ATTR_ROLE, "candidate") == "candidate" and not t.user_attrs.get(ATTR_REPEAT)
            and t.user_attrs.get(ATTR_DUPLICATE_OF) is None and t.user_attrs.get(ATTR_LOOKUP) is None
            and not t.user_attrs.get(ATTR_SURPLUS))


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


__all__ = ["claimed", "counted", "surplus"]
