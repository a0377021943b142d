"""The recommender's pruner: stop a candidate only when it can no longer rank first.

Optuna's stock pruners (median, percentile, successive halving, Hyperband) compare trials' intermediate
values *at the same step*. That is unfair to a policy that decays late: at half the budget a cosine or
WSD schedule still runs at a high LR and trails a constant LR that has already settled, yet it often
finishes far ahead. ``TargetPruner`` therefore judges a trial only against what the ranking itself needs.

Each trial reports ``error(s) = 1 - test_acc(s)`` at every evaluation ``s``. Four rules:

1. **Dominated on updates-to-target (exact).** The ranking puts trials that reached the target first,
   ordered by updates-to-target. Once some finished trial reached the target at ``s*`` updates, a trial
   that is at ``s >= s*`` and has not reached the target can only rank below it: prune. No judgement
   about the shape of the schedule is involved.
2. **No optimistic path to the best accuracy (heuristic, only while no trial has reached the target).**
   From the finished trials' own curves take the largest late gain seen after the same fraction of
   the budget, ``G(s) = max_c [best_acc_c - best_acc_c(<= s)]``. A late-decaying finished trial makes
   ``G`` large, so the bound is as generous to late decay as the schedules actually observed are.
   Prune when ``best_acc(<= s) + G(s) + margin < max_c best_acc_c``, but never before
   ``warmup_fraction`` of the budget nor before ``n_startup_trials`` trials have finished.

3. **Successive halving at a rung (ASHA's rule, one rung, target-aware).** At its first evaluation at or
   past the rung ``R = ceil(rung_fraction * budget)`` a candidate that has not reached the target is
   compared with every candidate on its seed that has reached the rung (itself included, whatever state
   they are in now): it goes on only when its best accuracy up to there is within the top ``1 / eta``
   of theirs (ASHA's promotion rule, Li et al., MLSys 2020), else it stops there. A candidate whose
   policy has not yet reached its peak LR by the rung (a one-cycle or a rising cycle still warming up)
   is not judged there, nor counted among the others: what it has done so far says little about where it
   ends. With ``eta = 2`` at ``B / 9``, replaying the candidates' curves of 16 stored searches on the
   Fashion tasks through this rule (``benchmarks/successive_halving.py``) cut the candidates' updates to
   0.74x and never stopped the candidate that became the recommendation.

4. **A repeat that can no longer be the recommendation (exact).** A candidate's run on a further seed (a
   repeat) stops once it has not reached the target after as many updates as the worst seed of another
   candidate that reached it on every seed the repeated candidate will have run: its own worst seed can
   then only be slower, so it ranks below that one. The first-ranked candidate is repeated first and alone
   (:func:`lrkit.lrbench.search.loop.contenders`), so this rule stops the repeats of the candidates
   brought into contention after it, not its own: a first-ranked candidate that missed the target on its
   second seed still runs the whole budget there.

Candidates are judged only against candidates: a faster baseline is reported beside them, never used to
stop them. The yardsticks (the task's default and the baselines) on the study's first seed are judged only
against each other, by rule 1 with a slack (:meth:`TargetPruner.outpaced`): one that has not reached the
target when it is :data:`YARDSTICK_SLACK` times past the updates another yardstick on the same seed took
stops there. It ranks below that one (its tier is "pruned"), and the best yardstick, the bar the
recommendation is measured against, is exact; the slack keeps a yardstick that is only a few evaluations
slower (within the validation calibration's shift of the target) running to its end. The trial runner's
own early stop (divergence, target out of reach) still applies to every trial.
The cost and the accuracy it gives up are measured in benchmarks/recommender_cost.py.
"""

from __future__ import annotations

import math
from typing import Any

import optuna

from lrkit.errors import LRKitError, require
from lrkit.lrbench.study.schema import (ATTR_LR_DRIVER, ATTR_OPT_KWARGS, ATTR_OPTIMIZER, ATTR_REPEAT, ATTR_ROLE,
                                        ATTR_SEED, ATTR_SPEC)

#: a yardstick stops when it has not reached the target this many times past another's updates-to-target
YARDSTICK_SLACK = 1.1
#: rule 3's rung, as a fraction of the budget, and the fraction of candidates that go on past it (1 / eta)
RUNG_FRACTION = 1 / 9
ETA = 2
#: the roles of the yardsticks
YARDSTICKS = ("default", "baseline")


def _best_acc_upto(values: dict[int, float], step: float) -> float | None:
    seen = [1 - v for s, v in values.items() if s <= step]
    return max(seen) if seen else None


class TargetPruner(optuna.pruners.BasePruner):
    """An Optuna pruner fair to schedules that decay late.

    Args:
        budget: the trial budget in updates, >= 1.
        target: the target accuracy in (0, 1].
        warmup_fraction: rule 2 waits for this fraction of the budget, in [0, 1].
        n_startup_trials: rule 2 waits for this many finished trials, >= 1.
        margin: accuracy (fraction, e.g. 0.01 = 1 point) added to the optimistic bound of rule 2, >= 0.
        rung_fraction: rule 3's rung as a fraction of the budget, in (0, 1]; None: no rung.
        eta: rule 3 lets the top ``1 / eta`` of the candidates at the rung go on, >= 1.
    """

    def __init__(self, budget: int, target: float, *, warmup_fraction: float = 0.3, n_startup_trials: int = 3,
                 margin: float = 0.01, rung_fraction: float | None = RUNG_FRACTION, eta: float = ETA) -> None:
        require(budget >= 1, "budget >= 1", budget=budget)
        require(0 <= warmup_fraction <= 1, "0 <= warmup_fraction <= 1", warmup_fraction=warmup_fraction)
        require(n_startup_trials >= 1, "n_startup_trials >= 1", n_startup_trials=n_startup_trials)
        require(margin >= 0, "margin >= 0", margin=margin)
        require(rung_fraction is None or 0 < rung_fraction <= 1, "0 < rung_fraction <= 1", rung_fraction=rung_fraction)
        require(eta >= 1, "eta >= 1", eta=eta)
        self.budget, self.target = budget, target
        self.warmup_fraction, self.n_startup_trials, self.margin = warmup_fraction, n_startup_trials, margin
        self.rung = None if rung_fraction is None else math.ceil(rung_fraction * budget)
        self.eta = eta

    def prune(self, study: Any, trial: Any) -> bool:
        from optuna.trial import TrialState

        step = trial.last_step
        if step is None:
            return False
        values = trial.intermediate_values
        mine = _best_acc_upto(values, step)
        if mine is None or mine >= self.target:
            return False
        # candidates are judged against candidates only: a baseline or the default that is faster must not
        # get every slower candidate pruned (it is reported beside them instead)
        yardstick = trial.user_attrs.get(ATTR_ROLE) in YARDSTICKS
        peers = YARDSTICKS if yardstick else ("candidate",)
        finished = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if t.intermediate_values and t.user_attrs.get(ATTR_ROLE, "candidate") in peers]
        if yardstick:
            seed = trial.user_attrs.get(ATTR_SEED)
            return self.outpaced(step, [t for t in finished if t.user_attrs.get(ATTR_SEED) == seed])
        if trial.user_attrs.get(ATTR_REPEAT):
            return self.beaten(step, trial, study)
        return self.dominated(step, finished) or self.halved(step, trial, study) or self.hopeless(step, mine, finished)

    def halved(self, step: int, trial: Any, study: Any) -> bool:
        """Rule 3: at its first evaluation at or past the rung, the trial is not within the top ``1 / eta`` of
        the candidates on its seed (not repeats, in any state) that reported an evaluation at or past it (those
        whose policy had reached its peak by then: the others are not judged there, nor judge)."""
        values, seed, rung = trial.intermediate_values, trial.user_attrs.get(ATTR_SEED), self.rung
        if rung is None or step < rung or any(rung <= s < step for s in values):
            return False
        if not _at_peak(trial.user_attrs.get(ATTR_SPEC), rung, self.budget):
            return False
        mine = _best_acc_upto(values, step)
        others = [_best_acc_upto(t.intermediate_values, min(s for s in t.intermediate_values if s >= rung))
                  for t in study.get_trials(deepcopy=False)
                  if t.number != trial.number and t.user_attrs.get(ATTR_ROLE, "candidate") == "candidate"
                  and not t.user_attrs.get(ATTR_REPEAT) and t.user_attrs.get(ATTR_SEED) == seed
                  and any(s >= rung for s in t.intermediate_values)
                  and _at_peak(t.user_attrs.get(ATTR_SPEC), rung, self.budget)]
        ranked = sorted([mine, *others], reverse=True)
        return mine < ranked[math.ceil(len(ranked) / self.eta) - 1]

    def beaten(self, step: int, trial: Any, study: Any) -> bool:
        """Rule 4, for a repeat: ``step`` is at least the worst-seed updates-to-target of another candidate that
        reached the target on every seed the repeated method runs (this one included), as the ranking judges
        them. (Not a baseline's: a faster baseline never stops a candidate, so the best candidate's comparison
        with it stays exact.)"""
        from lrkit.lrbench.study import ranking as res

        attrs = trial.user_attrs
        method = (attrs.get(ATTR_OPTIMIZER, ""), attrs.get(ATTR_OPT_KWARGS) or {}, attrs.get(ATTR_LR_DRIVER, "policy"),
                  attrs.get(ATTR_SPEC, ""))
        ranked = res.rank(res.records(study))
        mine = next((m for m in ranked if (m.optimizer, m.optimizer_kwargs, m.lr_driver, m.spec) == method), None)
        seeds = {*(mine.seeds if mine else ()), attrs.get(ATTR_SEED)}
        bars = [m.worst_steps for m in ranked if m is not mine and m.role == "candidate"
                and m.reached_all and seeds <= set(m.seeds)]
        return bool(bars) and step >= min(bars)

    def outpaced(self, step: int, finished: list[Any]) -> bool:
        """A yardstick's rule: another finished yardstick on its seed reached the target, and ``step`` is
        :data:`YARDSTICK_SLACK` times past the updates it took."""
        return self.dominated(math.ceil(step / YARDSTICK_SLACK), finished)

    def dominated(self, step: int, finished: list[Any]) -> bool:
        """Rule 1: a finished trial reached the target in at most ``step`` updates."""
        reached = [min(s for s, v in t.intermediate_values.items() if 1 - v >= self.target)
                   for t in finished if any(1 - v >= self.target for v in t.intermediate_values.values())]
        return bool(reached) and step >= min(reached)

    def hopeless(self, step: int, mine: float, finished: list[Any]) -> bool:
        """Rule 2: even the largest late gain seen so far would not lift this trial to the best accuracy."""
        if len(finished) < self.n_startup_trials or step < self.warmup_fraction * self.budget:
            return False
        best = max(_best_acc_upto(t.intermediate_values, float("inf")) for t in finished)
        gains = []
        for t in finished:
            at = _best_acc_upto(t.intermediate_values, step)
            if at is not None:
                gains.append(_best_acc_upto(t.intermediate_values, float("inf")) - at)
        return bool(gains) and mine + max(gains) + self.margin < best


def _at_peak(spec: str | None, rung: int, budget: int) -> bool:
    """Whether the policy ``spec`` has used its peak LR (within 0.1 %) before update ``rung``."""
    if not spec:
        return True
    import numpy as np

    from lrkit.spec import parse

    lrs = parse(spec).values(np.arange(budget, dtype=np.float64))
    return bool(lrs[:rung].max() >= 0.999 * lrs.max())


def make_pruner(kind: str, budget: int, target: float) -> optuna.pruners.BasePruner:
    """``"target"``: :class:`TargetPruner`; ``"none"``: Optuna's NopPruner (every candidate runs its course)."""
    if kind == "target":
        return TargetPruner(budget, target)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise LRKitError(f"unknown pruner {kind!r}; use 'target' or 'none'")
