"""How many candidates a study has: what ``--trials`` counts, shared by the search loop and the objective.

Only sampled candidates count: not the default or the baselines, not repeats on more seeds, not a trial
that reused an identical training (a duplicate), not a policy looked up from another study, and not a
surplus trial (sampled when the study already had its candidates, and never trained).
"""

from __future__ import annotations

from typing import Any

from lrkit.lrbench.storage import ATTR_DUPLICATE_OF, ATTR_LOOKUP, ATTR_REPEAT, ATTR_ROLE, ATTR_SURPLUS


def _candidate(t: Any) -> bool:
    return (t.user_attrs.get(ATTR_ROLE, "candidate") == "candidate" and not t.user_attrs.get(ATTR_REPEAT)
            and t.user_attrs.get(ATTR_DUPLICATE_OF) is None and t.user_attrs.get(ATTR_LOOKUP) is None
            and not t.user_attrs.get(ATTR_SURPLUS))


def surplus(study: Any, trial_number: int, n_trials: int) -> bool:
    """Whether a trial just sampled is one too many: the finished candidates and those running with a
    lower number already make ``n_trials``. Two workers that both decided to sample the last candidate at
    the same moment see each other's trial here, and only the higher-numbered one yields (a candidate that
    turns out a duplicate stops counting when it ends, and the workers then sample another)."""
    from optuna.trial import TrialState

    earlier = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
               if t.number < trial_number and _candidate(t)]
    return counted(study) + len(earlier) >= n_trials


def counted(study: Any) -> int:
    """Sampled candidates that count towards the study's total: finished or pruned, not repeats, not
    duplicates, not from the lookup."""
    from optuna.trial import TrialState

    return sum(map(_candidate, study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))))


def claimed(study: Any) -> int:
    """:func:`counted` plus the candidates running now (in any worker): what a worker deciding whether to
    sample one more must count, or two workers each start the last trial (one that turns out a duplicate
    stops counting when it ends, and then another is sampled)."""
    from optuna.trial import TrialState

    return counted(study) + sum(map(_candidate, study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))))


__all__ = ["claimed", "counted", "surplus"]
