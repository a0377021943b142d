"""LRBench's auto-verification (Wu & Liu, ACM TIST 2022; docs/lrbench-verify.md, "verify"): does a policy
reach a target accuracy within a budget?

For each seed, :func:`~lrkit.lrbench.run.runner.run_trial` trains the task under the policy (with any
optimizer, ``module:Class`` included) for at most ``budget`` updates, evaluating every ``eval_every``,
and stops at the first evaluation whose test accuracy is ``>= target`` (LRBench's criterion; with
``on="val"``, the validation split's accuracy, as a search judges; both are recorded either way). A seed fails when the budget runs out first, when the run diverges
(NaN/inf loss, or a loss over 5× the first batch's), or when the target has become unreachable.

The verdict is PASS iff *every* seed passes: a policy that meets the target only on lucky seeds
is not verified. The headline is the worst seed, as ``lrkit recommend`` ranks and reports a pair
("worst of 3 seeds: update 500"; :attr:`VerifyResult.worst_steps_to_target`), with every seed's line
below it; ``steps_to_target`` is the median over the passing seeds.

The unreachable stop (:class:`~lrkit.lrbench.run.judging.UnreachableRule`) is deliberately cautious, so it
cannot kill a policy that decays late: it never fires before half the budget, only when even the
best recent accuracy gain per update, kept up for the whole remaining budget, plus a slack of 0.02,
stays below the target, and never while the LR ahead leaves (by more than 2×) the range of LRs
the recent trend was measured under, since a late decay or rise can change the pace suddenly.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from lrkit.lrbench.run.judging import UnreachableRule, spread
from lrkit.lrbench.tasks.catalogue import Task, check_task, get_task
from lrkit.lrbench.run.result import EvalPoint, TrialResult
from lrkit.lrbench.run.runner import check_trial_args, run_trial
from lrkit.errors import LRKitError
from lrkit.spec import as_policy


@dataclass
class VerifyResult:
    """The verdict of :func:`verify` and the trial behind every seed."""

    passed: bool
    task: str
    spec: str
    target: float | None
    budget: int
    trials: list[TrialResult]

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "DONE"  # no target: nothing to pass or fail, the metric at the budget is the answer
        return "PASS" if self.passed else "FAIL"

    @property
    def seeds(self) -> list[int]:
        return [t.seed for t in self.trials]

    @property
    def steps_to_target(self) -> int | None:
        """Median updates to reach the target over the seeds that reached it (None if none did)."""
        steps = [t.steps_to_target for t in self.trials if t.steps_to_target is not None]
        return int(statistics.median_low(steps)) if steps else None

    @property
    def worst_steps_to_target(self) -> int | None:
        """The headline: the worst seed's updates to the target (None unless every seed reached it)."""
        steps = [t.steps_to_target for t in self.trials]
        return max(steps) if steps and all(s is not None for s in steps) else None

    def milestones(self) -> str:
        """Without a target: what targets the runs reached, and when (the worst seed), at a few levels of the
        judged metric between its first evaluation and its best."""
        curves = [[(p.step, p.acc(t.on)) for p in t.curve if p.acc(t.on) is not None] for t in self.trials]
        if not all(curves):
            return "no evaluation reported"
        sign = 1 if self.trials[0].mode == "max" else -1
        best = min(max(v for _, v in c) for c in curves)  # the worst seed's best (scores: higher is better)
        start = max(c[0][1] for c in curves)
        levels = [start + (best - start) * f for f in (0.5, 0.8, 0.9, 1.0)] if best > start else [best]
        parts = []
        for level in dict.fromkeys(round(v, 4) for v in levels):
            steps = [next(s for s, v in c if v >= level - 1e-12) for c in curves]
            parts.append(f"{sign * level:.4g} by update {max(steps)}")
        return (f"targets reached on every seed (worst seed): {', '.join(parts)}; give --target to judge one "
                f"(e.g. --target {sign * levels[-2 if len(levels) > 1 else -1]:.4g})")

    @property
    def reason(self) -> str:
        """One line: where the target was met (the worst seed, named so), or why each failing seed failed."""
        if self.passed:
            steps = [t.steps_to_target for t in self.trials]
            if len(steps) == 1:
                return f"reached {self.target:g} on 1/1 seeds (1 seed) at update {steps[0]}"
            return (f"reached {self.target:g} on {len(steps)}/{len(steps)} seeds; worst of {len(steps)} seeds: "
                    f"update {self.worst_steps_to_target} (per seed {steps}; median {self.steps_to_target})")
        failed = [t for t in self.trials if not t.passed]
        return f"{len(failed)}/{len(self.trials)} seeds failed: " + "; ".join(
            f"seed {t.seed}: {t.reason}" for t in failed)

    def spread(self) -> dict[str, dict[str, Any]]:
        """Mean, std, min and max across seeds of the headline metrics (LRBench's robustness)."""
        keys = ("steps_to_target", "final_acc", "best_acc", "avg_confidence", "loss_gap", "seconds")
        return {k: spread([getattr(t, k) for t in self.trials]) for k in keys}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: verdict, reason, the worst seed's steps (the headline), median steps, spread and
        every trial."""
        return {"verdict": self.verdict, "passed": self.passed, "task": self.task, "spec": self.spec,
                "target": self.target, "budget": self.budget, "seeds": self.seeds,
                "worst_steps_to_target": self.worst_steps_to_target, "steps_to_target": self.steps_to_target,
                "reason": self.reason, "spread": self.spread(),
                "trials": [t.to_dict() for t in self.trials]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "VerifyResult":
        target = None if data["target"] is None else float(data["target"])
        return cls(bool(data["passed"]), data["task"], data["spec"], target, int(data["budget"]),
                   [TrialResult.from_dict(t) for t in data["trials"]])

    def summary(self) -> str:
        """The text ``lrkit verify`` prints."""
        first = self.trials[0]
        on = first.on
        from lrkit.lrbench.tasks.optimizers import describe

        if first.metric is not None:
            return self._metric_summary(describe(first.optimizer, first.optimizer_kwargs))
        lines = [f"{self.verdict}: {describe(first.optimizer, first.optimizer_kwargs)} with {self.spec} on {self.task}, "
                 f"{on} accuracy target {self.target:g} within {self.budget} updates",
                 f"  {self.reason}"]
        for t in self.trials:
            at = "-" if t.steps_to_target is None else str(t.steps_to_target)
            val = "" if t.best_val_acc is None else f"  best val acc {t.best_val_acc:.4f}"
            lines.append(f"  seed {t.seed}: {t.status:<11} to target {at:>6}  best test acc {t.best_acc:.4f}{val}  "
                         f"final test acc {t.final_acc:.4f}  updates {t.steps:>6}  {t.seconds:7.1f} s")
        if len(self.trials) > 1:
            acc = self.spread()["best_acc"]
            lines.append(f"  best accuracy across seeds: {acc['mean']:.4f} ± {acc['std']:.4f}")
        return "\n".join(lines)


    def _metric_summary(self, optimizer: str) -> str:
        """:meth:`summary` for trials judged on a named metric (a training function's): its own values."""
        first = self.trials[0]
        metric, sign = first.metric, ">=" if first.mode == "max" else "<="
        goal = f"target {metric} {sign} {self.target:g}" if self.target is not None else f"no target, judged by {metric}"
        lines = [f"{self.verdict}: {optimizer} with {self.spec} on {self.task}, {goal} within {self.budget} updates",
                 f"  {self.reason if self.target is not None else self.milestones()}"]
        for t in self.trials:
            at = "-" if t.steps_to_target is None else str(t.steps_to_target)
            best = t.shown(t.best(t.on) if t.curve else None)
            last = t.shown(t.curve[-1].acc(t.on)) if t.curve else None
            lines.append(f"  seed {t.seed}: {t.status:<11} to target {at:>6}  best {metric} {_num(best)}  "
                         f"final {metric} {_num(last)}  updates {t.steps:>6}  {t.seconds:7.1f} s")
        return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _progress(on_eval: Callable[[int, EvalPoint], None], seed: int) -> Callable[[EvalPoint], bool]:
    def hook(point: EvalPoint) -> bool:
        on_eval(seed, point)
        return False  # progress only: a verification is never pruned

    return hook


def verify(task: Task | str, policy: Any, target: float | None = None, budget: int | None = None,
           seeds: Iterable[int] = (0,), device: str = "cpu", *, optimizer: str | None = None,
           optimizer_kwargs: Mapping[str, Any] | None = None, eval_every: int | None = None,
           early_stop: bool = True, data_dir: str | None = None, unreachable_rule: UnreachableRule = UnreachableRule(),
           on_eval: Callable[[int, EvalPoint], None] | None = None, on: str = "test",
           lr_driver: str = "policy", metric: str | None = None, mode: str | None = None,
           ranks: int | None = None) -> VerifyResult:
    """Verify that ``policy`` trains ``task`` to ``target`` test accuracy within ``budget`` updates.

    Args:
        task: a :class:`Task` or a task name / ``"module:function"`` (see :func:`get_task`).
        policy: a :class:`lrkit.Policy`, spec string or dict.
        target: target top-1 test accuracy (default: the task's).
        budget: maximum updates per seed (default: the task's).
        seeds: the seeds themselves, one trial each, e.g. ``(0,)`` or ``range(3)`` (a bare int is refused:
            it would be ambiguous between a count and a seed); PASS iff every seed passes.
        device: ``"cpu"`` or ``"cuda"``.
        optimizer, optimizer_kwargs, eval_every: override the task's (see :func:`run_trial`).
        early_stop: stop a seed early when the target is unreachable (see the module docstring).
        on: ``"test"`` (default) or ``"val"``: the accuracy the target applies to.
        lr_driver: ``"policy"`` (PolicyLR) or ``"torch-onecycle"`` (see :func:`run_trial`).
        data_dir: where built-in tasks find Fashion-MNIST (when ``task`` is a name).
        on_eval: called as ``on_eval(seed, point)`` at every evaluation (progress display).
        metric, mode: judge on this reported metric, "max" or "min" (default: the task's; for a
            built-in task its accuracy on ``on``); ``target`` is a value of it.
        ranks: processes per trial of a training function (default: the task's).

    Example:
        >>> r = verify("digits-mlp", "FIX(k0=0.1)", target=0.9, budget=600)  # doctest: +SKIP
        >>> r.verdict, r.steps_to_target  # doctest: +SKIP
        ('PASS', 150)
    """
    task_obj = get_task(task, data_dir) if isinstance(task, str) else task
    if not isinstance(task_obj, Task):
        raise LRKitError(f"`task` must be a Task or a task name, but got {type(task).__name__}")
    task_obj = task_obj.judged_by(metric, mode, ranks)
    the_policy = as_policy(policy)
    if isinstance(seeds, (int, str)):
        raise LRKitError(f"`seeds` is a list of seeds, e.g. (0,) or range(3), but got (seeds={seeds!r}).")
    seed_list = list(seeds)
    if (not seed_list or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seed_list)
            or len(set(seed_list)) != len(seed_list)):
        raise LRKitError(f"`seeds` must be distinct integers >= 0, at least one, but got (seeds={seed_list!r}).")
    budget, target = task_obj.given(budget, target, need_target=False)
    check_trial_args(budget=budget, target=target, eval_every=eval_every, on=on, metric=task_obj.metric,
                     mode=task_obj.mode)
    check_task(task_obj)  # a mistake in the data is one error naming the array, not torch's traceback
    trials = []
    for seed in seed_list:
        hook = None if on_eval is None else _progress(on_eval, seed)
        trials.append(run_trial(task_obj, the_policy, budget=budget, target=target, seed=seed, device=device,
                                optimizer=optimizer, optimizer_kwargs=optimizer_kwargs, eval_every=eval_every,
                                stop_at_target=True, early_stop=early_stop, on_eval=hook,
                                unreachable_rule=unreachable_rule, on=on, lr_driver=lr_driver))
    return VerifyResult(target is None or all(t.passed for t in trials), task_obj.name, the_policy.spec(), target, budget, trials)
