"""One trial of a study: decide what it trains (sampled or queued), run it, store everything.

:class:`Objective` is the Optuna objective. A trial queued with its method (the task's default, a
baseline, a repeat with another seed, a looked-up policy) trains that; any other trial lets the sampler
choose an optimizer, a policy and the optimizer's own knobs (:mod:`lrkit.lrbench.search.space`). Before
training, a trial whose training would be identical to one already finished (same optimizer and arguments,
the same LR curve over the budget to 10 significant digits, the same seed) reuses that trial's result
instead: it is stored with ``ATTR_DUPLICATE_OF`` and not counted among the study's candidates.

The trial runner knows nothing of Optuna: the pruner is asked from its ``on_eval`` hook, and the whole
``TrialResult`` goes into the trial's user attributes.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from lrkit.errors import LRKitError
from lrkit.lrbench.study.baselines import Method
from lrkit.lrbench.study.queue import surplus, trial_key
from lrkit.lrbench.study.interrupts import TrialFailed, trial_code
from lrkit.lrbench.search.space import SearchContext, suggest_knobs, suggest_optimizer, suggest_policy
from lrkit.lrbench.search import forking
from lrkit.lrbench.search.pruning import YARDSTICKS
from lrkit.lrbench.run.steps import optimizer_setup
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.schema import (ATTR_CURVE, ATTR_DUPLICATE_OF, ATTR_ERROR, ATTR_FAMILY, ATTR_FORK, ATTR_KNOBS,
                                        ATTR_LR_DRIVER, ATTR_OPT_KWARGS, ATTR_OPTIMIZER, ATTR_PARENT,
                                        ATTR_RESULT, ATTR_REUSED_FROM, ATTR_ROLE, ATTR_SEED, ATTR_SPEC, ATTR_SURPLUS,
                                        ATTR_LOOKUP, ATTR_PORTFOLIO, ATTR_TRACEBACK, ATTR_UNTIL, ATTR_WINDOW,
                                        save_trial_result)


def score(steps_to_target: int | None, best_acc: float, budget: int, accuracy: bool = True) -> float:
    """The minimised objective: updates-to-target, else ``budget * (2 - best_acc)`` for an accuracy, or
    ``budget * (1.5 - atan(best) / pi)`` for any other score (a named metric; higher is better): always
    above the budget, so always worse than reaching the target."""
    if steps_to_target is not None:
        return float(steps_to_target)
    if not accuracy:
        return budget * (1.5 - math.atan(best_acc) / math.pi) if math.isfinite(best_acc) else 2.0 * budget
    return budget * (2.0 - (best_acc if math.isfinite(best_acc) else 0.0))


def contexts(config: StudyConfig, epoch_steps: int, best_spec: str | None,
             best_peaks: dict[str, float] | None = None) -> dict[str, SearchContext]:
    """The search context (LR range, budget, RALR's base) of each searched optimizer; with ``best_peaks``
    (optimizer -> the peak LR of its best candidate so far), each window grown towards it
    (:func:`lrkit.lrbench.search.space.grown_window`; not a range the user gave)."""
    from lrkit.lrbench.search.space import grown_window, peak_window
    from lrkit.lrbench.tasks.optimizers import optimizer_class
    from lrkit.torch.modes import has_train_eval

    out = {}
    for name in config.searched:
        low, high = config.lr_range_of(name)
        method = (config.lr_ranges.get(name) or [0, 0, config.lr_range_method])[2]
        lo, hi = peak_window(low, high, method, schedule_free=has_train_eval(optimizer_class(name)[1]))
        if method != "given":
            lo, hi = grown_window(lo, hi, (best_peaks or {}).get(name))
        out[name] = SearchContext(budget=config.budget, low=lo, high=hi, best_spec=best_spec, epoch_steps=epoch_steps)
    return out


def peak_of(spec: str, budget: int) -> float:
    """The largest LR a policy uses within the budget."""
    import numpy as np

    from lrkit.spec import parse

    return float(parse(spec).values(np.arange(budget, dtype=np.float64)).max())


class Objective:
    """The Optuna objective: take the queued method or sample one, reuse an identical training, else train.

    Minimised value: :func:`score` on the judged metric. ``runner`` replaces ``run_trial`` (tests);
    ``stage_runner`` runs a composition's stage trials (``lrkit.lrbench.composition.stage_trial.run_stage_trial``,
    given by the composition and its workers: the search does not know how a composition forks).
    """

    def __init__(self, task: Any, config: StudyConfig, *, device: str = "cpu", prune: bool = True,
                 runner: Callable[..., Any] | None = None, progress: Any = None,
                 stage_runner: Callable[..., Any] | None = None) -> None:
        self.task, self.config, self.device, self.prune = task, config, device, prune
        self.runner, self.progress, self.stage_runner = runner, progress, stage_runner
        #: a ProtocolError a trial raised: the training function misuses the protocol, so the study stops
        self.fatal: Exception | None = None
        self.epoch_steps = max(1, _train_size(task) // task.batch_size)

    def raise_fatal(self) -> None:
        """Raise the :class:`~lrkit.lrbench.run.protocol.ProtocolError` a trial met, if one did."""
        if self.fatal is not None:
            raise self.fatal

    def _sample(self, trial: Any) -> tuple[str, Method]:
        from lrkit.lrbench.study import ranking as res
        from lrkit.spec import from_dict

        name = suggest_optimizer(trial, self.config.searched)
        # RALR amplifies the best policy found so far for the same optimizer (another's LRs are on another scale)
        ranked = res.rank(res.records(trial.study))
        best = next((m for m in ranked if m.role == "candidate" and m.optimizer == name
                     and not m.spec.startswith("ralr(")), None)
        # the window grows towards the best draw's peak, but a portfolio entry or a draw carried over from
        # another task keeps the window it was placed in
        placed = trial.user_attrs.get(ATTR_PORTFOLIO) is not None or trial.user_attrs.get(ATTR_LOOKUP) is not None
        peaks = {name: peak_of(best.spec, self.config.budget)} if best and not placed else None
        ctx = contexts(self.config, self.epoch_steps, best.spec if best else None, peaks)[name]
        trial.set_user_attr(ATTR_WINDOW, [ctx.low, ctx.high])
        family, policy = suggest_policy(trial, ctx, self.config.families)
        opt, kwargs = optimizer_setup(self.task, name, self.config.optimizer_kwargs)
        if self.config.knobs:
            drawn = suggest_knobs(trial, opt, kwargs, self.config.optimizer_kwargs, self.config.budget)
            knobs = {k: v for k, v in drawn.items() if kwargs.get(k, object()) != v}
            if knobs:
                trial.set_user_attr(ATTR_KNOBS, knobs)
            kwargs = drawn
        return family, Method(opt, kwargs, from_dict(policy).spec())

    def method_of(self, trial: Any) -> Method:
        """The method a trial trains (sampling it, and storing it in the trial, when none was queued)."""
        attrs = trial.user_attrs
        if attrs.get(ATTR_SPEC) is not None:  # queued with its method (or retried after its worker died)
            name = attrs.get(ATTR_OPTIMIZER) or self.config.optimizer
            kwargs = attrs.get(ATTR_OPT_KWARGS)
            if kwargs is None:
                name, kwargs = optimizer_setup(self.task, name, self.config.optimizer_kwargs)
            method = Method(name, kwargs, attrs[ATTR_SPEC], attrs.get(ATTR_LR_DRIVER, "policy"))
        else:
            family, method = self._sample(trial)
            trial.set_user_attr(ATTR_FAMILY, family)
        trial.set_user_attr(ATTR_ROLE, attrs.get(ATTR_ROLE, "candidate"))
        for key, value in ((ATTR_SPEC, method.spec), (ATTR_OPTIMIZER, method.optimizer),
                           (ATTR_OPT_KWARGS, method.optimizer_kwargs), (ATTR_LR_DRIVER, method.lr_driver)):
            trial.set_user_attr(key, value)
        return method

    def _identical(self, trial: Any, key: str, seed: int) -> Any:
        from optuna.trial import TrialState

        for other in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            attrs = other.user_attrs
            if (attrs.get(ATTR_CURVE) == key and attrs.get(ATTR_SEED, self.config.seed) == seed
                    and attrs.get(ATTR_RESULT) is not None and attrs.get(ATTR_DUPLICATE_OF) is None):
                return other
        return None

    def __call__(self, trial: Any) -> float:
        import optuna

        from lrkit.lrbench.run.protocol import ProtocolError

        with trial_code():
            try:
                return self._run(trial)
            except (optuna.TrialPruned, TrialFailed):
                raise
            except ProtocolError as err:  # the training function misuses the protocol: every trial would fail so;
                self.fatal = err           # stored FAIL with its traceback, and the study stops with the message
                raise failed(trial, err) from err
            except Exception as err:  # noqa: BLE001 (stored with its traceback; the study goes on)
                raise failed(trial, err) from err

    def _run(self, trial: Any) -> float:
        import optuna

        if trial.user_attrs.get(ATTR_SPEC) is None and surplus(trial.study, trial.number, self.config.n_trials):
            trial.set_user_attr(ATTR_SURPLUS, True)  # another worker sampled the last candidate at the same moment
            raise optuna.TrialPruned(f"not trained: the study already has its {self.config.n_trials} candidates")
        method = self.method_of(trial)
        role = trial.user_attrs[ATTR_ROLE]
        seed = int(trial.user_attrs.get(ATTR_SEED, self.config.seed))
        trial.set_user_attr(ATTR_SEED, seed)
        until = trial.user_attrs.get(ATTR_UNTIL)
        # pruned: candidates (a repeat only once it can no longer rank first), and the yardsticks on the first
        # seed (against each other); not a composition's stage trials (it compares them at the stage's end)
        prunable = until is None and (role == "candidate"
                                      or (role in YARDSTICKS and seed == self.config.judging_seeds[0]))
        key = trial_key(method, self.config.budget, trial.user_attrs.get(ATTR_PARENT), until)
        trial.set_user_attr(ATTR_CURVE, key)
        same = self._identical(trial, key, seed)
        if same is not None:
            return self._reuse(trial, same)
        if role in ("default", "baseline") and until is None:
            from lrkit.lrbench.search.yardsticks import reusable

            found = reusable(trial.study, self.config, key, seed)
            if found is not None:
                return self._reuse(trial, found[1], study_name=found[0])
        pruned: list[int] = []
        offset = self._val_offset(trial.study, until)
        on_eval = self._on_eval(trial, prunable, pruned, offset)
        if self.progress is not None:
            self.progress.trial_started(trial, method, seed)
        points = forking.trunk_points(self.config, method, trial.user_attrs, seed,
                                      self.config.eval_every or self.task.eval_every)
        extra = self._fork_args(trial, seed, offset, points)
        result = self._train(trial, method, seed, until, on_eval, offset, extra)
        save_trial_result(trial, result.to_dict())
        if points:
            forking.queue_forks(trial, self.config, method, seed, points, result)
        if trial.user_attrs.get(ATTR_FORK) is not None:
            forking.fork_done(trial.user_attrs[ATTR_FORK])
        if self.progress is not None:
            self.progress.trial_done(trial)
        if pruned:
            raise optuna.TrialPruned(f"pruned at update {pruned[0]}")
        return score(result.steps_to_target, result.best(), self.config.budget, accuracy=result.metric is None)

    def _reuse(self, trial: Any, same: Any, study_name: str | None = None) -> float:
        """Store ``same``'s result as this trial's (a duplicate of it, or with ``study_name`` a yardstick
        another study ran); its value, or pruned as it was."""
        import optuna

        if study_name is None:
            trial.set_user_attr(ATTR_DUPLICATE_OF, same.number)
            where = f"trial {same.number}"
        else:
            trial.set_user_attr(ATTR_REUSED_FROM, {"study": study_name, "trial": same.number})
            where = f"trial {same.number} of study {study_name!r}"
        save_trial_result(trial, same.user_attrs[ATTR_RESULT])
        if self.progress is not None:
            self.progress.trial_done(trial, note=f"same training as {where}; not run again")
        if same.state == optuna.trial.TrialState.PRUNED:
            raise optuna.TrialPruned(f"same training as pruned trial {same.number}")
        return float(same.value)

    def _val_offset(self, study: Any, until: int | None) -> float:
        """The validation target's offset for a trial starting now (:mod:`lrkit.lrbench.search.calibration`;
        0 until the study is calibrated, and for a composition's stage trial)."""
        from lrkit.lrbench.search.calibration import calibration_of

        found = None if until is not None else calibration_of(study, self.config)
        return found.offset if found is not None else 0.0

    def _error(self, point: Any, offset: float) -> float:
        """The judged error an evaluation reports to the pruner: ``1 -`` its validation accuracy less the
        study's ``offset`` (so that the pruner's target is the test target), or its test accuracy."""
        val = self.config.on == "val" and point.val_acc is not None
        return 1.0 - (point.val_acc - offset if val else point.test_acc)

    def _on_eval(self, trial: Any, prunable: bool, pruned: list[int], offset: float) -> Callable[[Any], bool]:
        """The runner's ``on_eval`` hook: report the judged error (a validation reading less the study's
        ``offset``, so that the pruner's target is the test target), show progress, and (for a ``prunable``
        trial, when pruning) stop the run when the pruner says so, appending the update to ``pruned``."""

        def on_eval(point: Any) -> bool:
            trial.report(self._error(point, offset), point.step)
            if self.progress is not None:
                self.progress.evaluation(trial, point)
            if self.prune and prunable and trial.should_prune():
                pruned.append(point.step)
                return True
            return False

        return on_eval

    def _fork_args(self, trial: Any, seed: int, offset: float, points: list[tuple[int, str]]) -> dict[str, Any]:
        """The runner's fork arguments: a trunk keeps its states at its fork ``points``; a decay fork starts
        from its trunk's state, whose evaluations it reports to the pruner first (its curve begins with them)."""
        fork = trial.user_attrs.get(ATTR_FORK)
        if fork is None:
            return {"keep_states_at": [at for at, _ in points]} if points else {}
        start = forking.fork_start(trial.study, self.config, self.task, fork, seed, self.device)
        for point in start.curve:
            trial.report(self._error(point, offset), point.step)
        return {"start": start}

    def _train(self, trial: Any, method: Method, seed: int, until: int | None,
               on_eval: Callable[[Any], bool], offset: float, extra: dict[str, Any] | None = None) -> Any:
        """Train the trial's method with the runner (``run_trial`` unless one was given; ``extra``: its fork
        arguments), or with the stage runner for a composition's stage trial."""
        from lrkit.lrbench.run.runner import run_trial

        if until is not None:  # a composition's stage: from the parent's state to the stage's end
            if self.stage_runner is None:
                raise LRKitError(f"trial {trial.number} is a composition's stage trial; run it with `lrkit compose` "
                                 "or `lrkit worker`, which know how to fork a run")
            return self.stage_runner(trial, self.task, self.config, method, seed, device=self.device, on_eval=on_eval)
        runner = self.runner or run_trial
        return runner(self.task, method.spec, budget=self.config.budget, target=self.config.target, seed=seed,
                      device=self.device, optimizer=method.optimizer, optimizer_kwargs=method.optimizer_kwargs,
                      eval_every=self.config.eval_every, on_eval=on_eval, on=self.config.on,
                      lr_driver=method.lr_driver, val_offset=offset, **(extra or {}))

#: the longest traceback kept with a failed trial (its end, where the error is)
TRACEBACK_CHARS = 20_000


def failed(trial: Any, err: BaseException) -> TrialFailed:
    """Store ``err`` (a one-line error and its traceback) with the trial; the exception that marks it FAIL."""
    import traceback

    error = f"{type(err).__name__}: {err}".strip().rstrip(":")
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    trial.set_user_attr(ATTR_ERROR, error)
    trial.set_user_attr(ATTR_TRACEBACK, text[-TRACEBACK_CHARS:])
    return TrialFailed(error)


def _train_size(task: Any) -> int:
    try:
        return len(task.split_data().train_y)
    except Exception:  # an unreadable data set shows up, with its message, when the first trial loads it
        return 100 * task.batch_size


__all__ = ["Objective", "contexts", "failed", "peak_of", "score"]
