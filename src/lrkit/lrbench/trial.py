"""The record of one trial: :class:`EvalPoint` (one evaluation) and :class:`TrialResult` (everything kept).

Both are plain dataclasses with a JSON-able :meth:`TrialResult.to_dict` and its inverse, so a
result can be stored (Optuna user attributes, a database, a file) and read back unchanged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

STATUSES = ("pass", "budget", "diverged", "unreachable", "stopped")


@dataclass
class EvalPoint:
    """One evaluation: after ``step`` updates, the LR of the last update, the mean training loss since
    the previous evaluation, test loss and accuracy, and training seconds so far (evaluations excluded)."""

    step: int
    lr: float
    train_loss: float
    test_loss: float
    test_acc: float
    seconds: float


@dataclass
class TrialResult:
    """Everything measured in one trial (methods.md §1.3). ``status`` is one of :data:`STATUSES`."""

    status: str
    steps_to_target: int | None
    final_acc: float
    best_acc: float
    avg_confidence: float
    confidence_std: float
    train_loss: float
    test_loss: float
    loss_gap: float
    steps: int
    seconds: float
    curve: list[EvalPoint]
    spec: str
    task: str
    optimizer: str
    seed: int
    device: str
    versions: dict[str, str]
    reason: str
    target: float = float("nan")
    budget: int = 0
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 0
    eval_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "pass" or self.steps_to_target is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite floats become None, which JSON has no other way to hold)."""
        data = asdict(self)
        return {k: _jsonable(v) for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrialResult":
        """The inverse of :meth:`to_dict` (unknown keys are ignored, so older records still load)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["curve"] = [EvalPoint(**{k: (math.nan if v is None else v) for k, v in p.items()})
                           for p in data.get("curve", [])]
        for key in ("final_acc", "best_acc", "avg_confidence", "confidence_std", "train_loss", "test_loss",
                    "loss_gap", "seconds", "target", "eval_seconds"):
            if key in values and values[key] is None:
                values[key] = math.nan
        return cls(**values)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


__all__ = ["STATUSES", "EvalPoint", "TrialResult"]
