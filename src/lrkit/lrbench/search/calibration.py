"""The validation target that stands for the test target: a search judges on validation, and reports on test.

A search chooses on the validation split and reports the test set, at the same target. But the two
splits differ: on fashion-mnist-mlp every yardstick's validation accuracy ran 0.5-1 point above its
test accuracy near the target 0.85, so a candidate reached 0.85 on validation 50-400 updates before
it did on test (Adam: 500 against 700; D-Adaptation: 475 against 900). Judged at the same number, the
search optimises a lower bar than the one it reports, and favours curves that rise early and stall.

So a study calibrates: once the yardsticks (the task's default and the baselines) have finished on the
first judging seed, the **offset** is the median, over every evaluation of theirs whose test accuracy
lies within :data:`WINDOW` of the target, of validation minus test accuracy (clamped to
``±``:data:`MAX_OFFSET`). From then on, every trial of the study is judged on validation at
``target + offset`` (``run_trial(..., val_offset=offset)``; stored as ``val_target`` in its result),
and the ranking judges every trial there, from its stored curve
(:func:`lrkit.lrbench.run.judging.rejudged`): a trial that ran before the offset
was known and stopped at the target before its validation curve reached ``target + offset`` counts
the update it stopped at (the update at which its test accuracy reached the target, in its favour).
The offset, how many evaluations and yardsticks it came from, and the spread of the differences (the
noise of one validation reading against the test set's) are stored with the study
(:data:`~lrkit.lrbench.study.schema.ATTR_VAL_CALIBRATION`) and printed with the recommendation.

A study judged on test (no validation split), on a named metric without a test counterpart, or without a
target is not calibrated.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from lrkit.lrbench.run.judging import finite_number
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.schema import ATTR_RESULT, ATTR_ROLE, ATTR_SEED, ATTR_VAL_CALIBRATION

#: the largest offset applied (a larger measured one is clamped, and the text says so)
MAX_OFFSET = 0.02
#: evaluations whose test score is within this of the target are the ones compared
WINDOW = 0.03
#: yardsticks with such evaluations needed before a study calibrates
MIN_TRIALS = 3


@dataclass(frozen=True)
class Calibration:
    """A study's validation offset: ``offset`` (applied), ``measured`` (before clamping), ``noise`` (the
    standard deviation of validation minus test over the evaluations used), ``points`` and ``trials``."""

    offset: float
    measured: float
    noise: float
    points: int
    trials: int

    def text(self, target: float) -> str:
        """One line for the summary: the validation target and where it comes from."""
        clamped = f", clamped from {self.measured:+.4f}" if self.offset != self.measured else ""
        return (f"judged on validation at {target + self.offset:.4g} = the target {target:g} {self.offset:+.4f}"
                f"{clamped}: the median validation - test accuracy of {self.points} evaluations of {self.trials} "
                f"yardsticks near the target (their spread ±{self.noise:.4f})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Calibration":
        return cls(**{k: data[k] for k in ("offset", "measured", "noise", "points", "trials")})


def measure(curves: list[list[dict[str, Any]]], target: float) -> Calibration | None:
    """The offset from the curves of several trials (each a list of stored evaluations), or None when fewer
    than :data:`MIN_TRIALS` of them have evaluations with both accuracies within :data:`WINDOW` of ``target``.

    Example:
        >>> near = [[{"val_acc": 0.855, "test_acc": 0.845}, {"val_acc": 0.87, "test_acc": 0.86}]] * 3
        >>> c = measure(near, 0.85)
        >>> round(c.offset, 4), c.points, c.trials
        (0.01, 6, 3)
    """
    diffs: list[float] = []
    trials = 0
    for curve in curves:
        here = [p["val_acc"] - p["test_acc"] for p in curve
                if finite_number(p.get("val_acc")) and finite_number(p.get("test_acc"))
                and abs(p["test_acc"] - target) <= WINDOW]
        trials += bool(here)
        diffs += here
    if trials < MIN_TRIALS:
        return None
    measured = statistics.median(diffs)
    return Calibration(offset=max(-MAX_OFFSET, min(MAX_OFFSET, measured)), measured=measured,
                       noise=statistics.pstdev(diffs), points=len(diffs), trials=trials)


def calibration_of(study: Any, config: StudyConfig) -> Calibration | None:
    """The study's calibration: stored, or measured now (and stored) once every yardstick on the first
    judging seed has finished; None before, and for a study that is not calibrated (module docstring)."""
    stored = study.user_attrs.get(ATTR_VAL_CALIBRATION)
    if stored is not None:
        return Calibration.from_dict(stored)
    yardsticks = _finished_yardsticks(study, config)
    if yardsticks is None:
        return None
    target = config.target if config.mode == "max" else -config.target
    found = measure([(t.user_attrs.get(ATTR_RESULT) or {}).get("curve", []) for t in yardsticks], target)
    if found is not None:
        study.set_user_attr(ATTR_VAL_CALIBRATION, found.to_dict())
    return found


def _finished_yardsticks(study: Any, config: StudyConfig) -> list[Any] | None:
    """The yardsticks on the first judging seed once all have finished, for a study that calibrates; None
    before, and for a study that does not."""
    if config.on != "val" or config.target is None or not math.isfinite(config.target):
        return None
    yardsticks = [t for t in study.get_trials(deepcopy=False)
                  if t.user_attrs.get(ATTR_ROLE) in ("default", "baseline")
                  and t.user_attrs.get(ATTR_SEED, config.seed) == config.seed]
    if not yardsticks or any(not t.state.is_finished() for t in yardsticks):
        return None
    return yardsticks


def uncalibrated(study: Any, config: StudyConfig) -> str | None:
    """Why a study that calibrates is judged at the plain target (its yardsticks finished without enough
    evaluations near it), as a line for the summary; None when it is calibrated, still waits for its
    yardsticks, or does not calibrate."""
    if study.user_attrs.get(ATTR_VAL_CALIBRATION) is not None or _finished_yardsticks(study, config) is None:
        return None
    return (f"judged on validation at the target itself, uncalibrated: fewer than {MIN_TRIALS} yardsticks had "
            f"evaluations within {WINDOW:g} of the target on test, too few to measure validation's offset from it")


__all__ = ["MAX_OFFSET", "MIN_TRIALS", "WINDOW", "Calibration", "calibration_of", "measure", "uncalibrated"]
