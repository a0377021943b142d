"""The judge of one trial: its settings and the decisions on its evaluations.

:class:`TrialSettings` holds a trial's settings, checked and resolved by
:func:`lrkit.lrbench.run.runner.run_trial`. :class:`Judge` turns each report of the run into an
:class:`~lrkit.lrbench.run.result.EvalPoint` and decides whether the run goes on: the target on the judged
split, the divergence rule, the caller's ``on_eval`` (a pruner), the unreachable rule
(:mod:`lrkit.lrbench.run.judging` holds the rules), and the states kept for forks. The
:class:`~lrkit.lrbench.run.protocol.Run` asks it whether to stop; the runner reads the result off it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from lrkit.lrbench.run.judging import UnreachableRule, divergence_reason, unreachable_reason
from lrkit.lrbench.run.protocol import ProtocolError
from lrkit.lrbench.run.result import EvalPoint
from lrkit.lrbench.run.state import RunState

#: the splits a trial can be judged on
ON = ("val", "test")


@dataclass(frozen=True)
class TrialSettings:
    """One trial's settings, checked and resolved (see :func:`run_trial` for each): how it trains, when it
    evaluates, what it is judged on (``metric``, in ``mode``; ``target`` is a score: negated for "min")
    and when it stops."""

    seed: int
    device: str
    optimizer: str
    optimizer_kwargs: dict[str, Any]
    lr_driver: str
    budget: int
    target: float
    eval_every: int
    on: str
    stop_at_target: bool
    early_stop: bool
    on_eval: Callable[[EvalPoint], bool | None] | None
    unreachable_rule: UnreachableRule
    diverge_factor: float
    keep_state: bool
    metric: str = "test_acc"
    mode: str = "max"
    custom: bool = False  # judged on a named metric (a training function's, or not the built-in accuracy)
    val_offset: float = 0.0  # the validation split's target is target + val_offset (a search's calibration)
    keep_states_at: frozenset[int] = frozenset()  # copy the run's state after these evaluations (forks)

    def target_of(self, split: str) -> float:
        """The target of ``split`` (a score): the test target, or the validation split's (offset) one."""
        return self.target + self.val_offset if split == "val" else self.target


class Judge:
    """The curve of one trial and the decisions on it: each report becomes an :class:`EvalPoint`, judged
    against the target, the divergence rule, the pruner (``on_eval``) and the unreachable rule; the
    protocol's :class:`~lrkit.lrbench.run.protocol.Run` asks it whether to stop."""

    def __init__(self, policy: Any, lrs: np.ndarray, settings: TrialSettings, start: RunState | None) -> None:
        from lrkit.policies.plateau import contains_plateau, monitors

        self.policy, self.lrs, self.settings = policy, lrs, settings
        self.curve: list[EvalPoint] = [] if start is None else list(start.curve)
        self.started_with = len(self.curve)
        self.train_seconds = 0.0 if start is None else start.train_seconds
        self.first_loss = math.nan if start is None else start.first_loss
        self.eval_seconds = 0.0
        self.status, self.reason, self.stopped = "budget", "", False
        self.names: tuple[str, str] | None = None
        self.on = settings.on
        self.monitors = sorted(monitors(policy)) if contains_plateau(policy) else []
        self.run: Any = None  # the Run, once made (its scheduler takes the plateaus' reports)
        self.reached = {k: first_reached(self.curve, k, settings.target_of(k)) for k in ON}
        self.fork_states: dict[int, Any] = {}

    def lr_at(self, step: int) -> float:
        return float(self.lrs[min(step, len(self.lrs) - 1)])

    def _stop(self, status: str, reason: str) -> bool:
        self.status, self.reason, self.stopped = status, reason, True
        return True

    def diverge(self, reason: str) -> None:
        self._stop("diverged", reason)

    def user_stop(self, step: int, reason: str) -> None:
        self._stop("stopped", f"stopped by the training function at update {step}" + (f": {reason}" if reason else ""))

    def _point(self, step: int, values: dict[str, float], train_loss: float) -> EvalPoint:
        from lrkit.lrbench.run.protocol import metric_names, score

        metric, mode = self.settings.metric, self.settings.mode
        if metric not in values:
            from lrkit.text import did_you_mean

            raise ProtocolError(f"metric {metric!r} was never reported: run.report(...) got "
                                f"{', '.join(sorted(values)) or 'nothing'}{did_you_mean(metric, values)} (judge on one "
                                "of them with --metric NAME)")
        if self.names is None:
            self.names = metric_names(metric, values)
            self.on = "test" if metric == self.names[1] and metric.startswith("test_") else "val"
        val_name, test_name = self.names
        has_val = val_name in values and (val_name != test_name or self.on == "val")
        return EvalPoint(step, self.lr_at(step - 1), train_loss, values.get("test_loss", math.nan),
                         score(values.get(test_name, values[metric]), mode), self.train_seconds,
                         values.get("val_loss") if has_val else None,
                         score(values[val_name], mode) if has_val else None,
                         dict(values) if self.settings.custom else None)

    def record(self, step: int, values: dict[str, float], train_loss: float | None, first_loss: float,
               seconds: float) -> bool:
        """Record the evaluation after ``step`` updates (training ``seconds`` since the last); True to stop."""
        now = time.perf_counter()
        self.train_seconds += seconds
        if math.isnan(self.first_loss):
            self.first_loss = first_loss
        point = self._point(step, values, math.nan if train_loss is None else train_loss)
        self.curve.append(point)
        for k, acc in (("val", point.val_acc), ("test", point.test_acc)):
            if self.reached[k] is None and acc is not None and acc >= self.settings.target_of(k):
                self.reached[k] = step
        if self.monitors:
            self._report_plateaus(values)
        diverged = self._diverged(train_loss, values)
        stop_asked = bool(self.settings.on_eval(point)) if self.settings.on_eval is not None else False
        self.eval_seconds += time.perf_counter() - now
        decision = self._decide(step, diverged, stop_asked)
        if decision is not None:
            return self._stop(*decision)
        if step in self.settings.keep_states_at and self.run is not None:
            state = self.run._state()
            if state is None:
                raise ProtocolError("a fork needs this trial's state, so lrkit must be able to save the model: pass "
                                    "it, run.optimizer(model) or run.attach(opt, model=model)")
            self.fork_states[step] = state
        return False

    def _diverged(self, train_loss: float | None, values: dict[str, float]) -> str | None:
        """Why the run diverged (a judged metric or a loss not finite, a loss exploded), or None; a loss that
        was never given (``train_loss`` None, no ``test_loss``) is not judged."""
        bad = [k for k in (self.settings.metric, *(self.names or ())) if k in values and not math.isfinite(values[k])]
        if bad:
            return f"the metric {bad[0]} became {values[bad[0]]}"
        return divergence_reason(0.0 if train_loss is None else train_loss, values.get("test_loss", 0.0),
                                 self.first_loss, self.settings.diverge_factor)

    def _report_plateaus(self, values: dict[str, float]) -> None:
        """Give the plateaus the metric they monitor (the validation split's, else the test set's); after a
        switch, the LRs ahead follow the new policy."""
        switched = False
        for monitor in self.monitors:
            value = values.get(monitor, values.get(monitor.replace("val_", "test_")))
            if value is None:
                raise ProtocolError(f"the policy holds a plateau that monitors {monitor!r}, but run.report(...) gave "
                                    f"neither {monitor!r} nor {monitor.replace('val_', 'test_')!r}")
            switched |= self.run._scheduler.report(value, monitor=monitor if len(self.monitors) > 1 else None)
        if switched:
            self.policy = self.run._scheduler.policies[0]
            self.lrs = self.policy.values(np.arange(len(self.lrs), dtype=np.float64))

    def _decide(self, step: int, diverged: str | None, stop_asked: bool) -> tuple[str, str] | None:
        """After an evaluation: None to train on, or the ``(status, reason)`` the run stops with (``"budget"``
        when the result decides between a pass and a budget that ran out)."""
        settings = self.settings
        if diverged:
            return "diverged", f"diverged at update {step}: {diverged}"
        if settings.stop_at_target and self.reached[self.on] is not None and self.reached["test"] is not None:
            return "budget", ""  # both updates-to-target are known
        if stop_asked:
            return "stopped", f"stopped by on_eval at update {step}"
        if settings.early_stop and self.reached[self.on] is None and step < settings.budget:
            why = unreachable(self.curve, self.policy, settings.target_of(self.on), settings.budget,
                               settings.unreachable_rule,
                               self.on, settings.metric if settings.custom else "accuracy",
                               1 if settings.mode == "max" else -1)
            if why:
                return "unreachable", why
        if step >= settings.budget:
            return "budget", ""
        return None

    def judged(self, steps: int) -> tuple[str, str]:
        """The final status and reason: a pass once the judged metric reached the target, whatever stopped the run."""
        from lrkit.lrbench.run.protocol import score

        settings, on = self.settings, self.on
        name = settings.metric if settings.custom else f"{on} accuracy"
        if self.reached[on] is not None:
            return "pass", (f"reached {score(settings.target_of(on), settings.mode):g} ({name if settings.custom else on}) "
                            f"at update {self.reached[on]}" + (f" ({self.reason})" if self.reason else ""))
        if self.status == "budget" and math.isinf(settings.target):
            accs = [p.val_acc if on == "val" else p.test_acc for p in self.curve]
            best = max((a for a in accs if a is not None), default=math.nan)
            return "budget", f"no target: best {name} {score(best, settings.mode):.4f} within {steps} updates"
        if self.status == "budget":
            accs = [p.val_acc if on == "val" else p.test_acc for p in self.curve]
            best = max((a for a in accs if a is not None), default=0.0 if not settings.custom else math.nan)
            ended = (f"budget of {settings.budget} updates ran out" if steps >= settings.budget else
                     f"the training function returned after {steps} of {settings.budget} updates")
            return "budget", (f"{ended}; best {name} {score(best, settings.mode):.4f} "
                              f"{'<' if settings.mode == 'max' else '>'} target {score(settings.target_of(on), settings.mode):g}")
        return self.status, self.reason


def first_reached(curve: list[EvalPoint], on: str, target: float) -> int | None:
    """The first evaluation's update at which ``on``'s accuracy (a score) reached ``target``, or None."""
    for p in curve:
        acc = p.val_acc if on == "val" else p.test_acc
        if acc is not None and acc >= target:
            return p.step
    return None


def unreachable(curve: list[EvalPoint], policy: Any, target: float, budget: int, rule: UnreachableRule,
                 on: str = "test", metric: str = "accuracy", sign: int = 1) -> str | None:
    """Why ``rule`` says ``curve`` can no longer reach ``target`` within ``budget`` under ``policy``, or None."""
    steps = [p.step for p in curve]
    s = steps[-1]
    if s >= budget or len(steps) <= rule.window:
        return None
    recent = policy.values(np.arange(steps[-(rule.window + 1)], s, dtype=np.float64))
    future = policy.values(np.arange(s, budget, dtype=np.float64))
    return unreachable_reason(steps, [p.acc(on) for p in curve], target, budget,
                              (float(recent.min()), float(recent.max())), (float(future.min()), float(future.max())),
                              rule, metric, sign)


__all__ = ["ON", "Judge", "TrialSettings", "first_reached", "unreachable"]
