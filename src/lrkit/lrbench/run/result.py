"""The record of one trial: :class:`EvalPoint` (one evaluation) and :class:`TrialResult` (everything kept).

Both are plain dataclasses with a JSON-able :meth:`TrialResult.to_dict` and its inverse, so a
result can be stored (Optuna user attributes, a database, a file) and read back unchanged. The one
exception is :attr:`TrialResult.state`, the run's end state when it was asked for: live tensors, never
stored, compared or printed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

STATUSES = ("pass", "budget", "diverged", "unreachable", "stopped")


@dataclass
class EvalPoint:
    """One evaluation: after ``step`` updates, the LR of the last update, the mean training loss since
    the previous evaluation, test loss and accuracy, training seconds so far (evaluations excluded),
    and validation loss and accuracy (None for a task without a validation split)."""

    step: int
    lr: float
    train_loss: float
    test_loss: float
    test_acc: float
    seconds: float
    val_loss: float | None = None
    val_acc: float | None = None
    #: every metric a training function reported (None for a built-in task: its four are the fields above)
    metrics: dict[str, float] | None = None

    def acc(self, on: str) -> float:
        """The accuracy on ``"val"`` or ``"test"``."""
        value = self.val_acc if on == "val" else self.test_acc
        if value is None:
            raise KeyError(f"no {on} accuracy at update {self.step}")
        return value


@dataclass
class TrialResult:
    """Everything measured in one trial: LRBench's utility, cost and robustness metrics (Wu & Liu, ACM TIST 2022;
    the table in docs/lrbench-verify.md, "One trial"). ``status`` is one of :data:`STATUSES`.

    The trial is judged on ``on`` (``"val"``: the validation split, as a search does; ``"test"``:
    the test set, as ``lrkit verify`` does): ``steps_to_target`` and ``status`` refer to it.
    ``final_acc``/``best_acc`` are always test accuracy, ``final_val_acc``/``best_val_acc``
    validation accuracy (None without a split), and ``test_steps_to_target`` /
    ``val_steps_to_target`` the first evaluation at which each reached the target. For a policy
    holding a ``plateau``, ``spec`` is the policy as given and ``realized_spec`` the pure ``join`` of
    the switches the run made (it replays the run). ``state`` is the run's end state with
    ``run_trial(..., keep_state=True)`` (None otherwise, and after a divergence): a run can continue
    from it; it is not part of :meth:`to_dict`, equality or ``repr``.
    """

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
    on: str = "test"
    best_val_acc: float | None = None
    final_val_acc: float | None = None
    test_steps_to_target: int | None = None
    val_steps_to_target: int | None = None
    lr_driver: str = "policy"
    realized_spec: str | None = None
    #: the metric a training function's trial was judged on (None: accuracy, as a built-in task) and its
    #: direction; with "min", every accuracy field and the target hold the metric negated (a score)
    metric: str | None = None
    mode: str = "max"
    #: the validation split's target when a search calibrated it (``target`` + the offset; None: ``target``)
    val_target: float | None = None
    # a lrkit.lrbench.run.state.RunState (typed Any: the state module builds on EvalPoint, so it imports this one)
    state: Any = field(default=None, compare=False, repr=False, metadata={"stored": False})
    #: every update's training loss with ``run_trial(..., keep_losses=True)`` (a numpy array; not stored)
    losses: Any = field(default=None, compare=False, repr=False, metadata={"stored": False})
    #: ``{step: RunState}`` taken at the updates ``run_trial(..., keep_states_at=...)`` named (not stored)
    fork_states: Any = field(default=None, compare=False, repr=False, metadata={"stored": False})

    def shown(self, value: float | None) -> float | None:
        """A stored score as the metric's own value (a "min" metric's sign restored)."""
        return value if value is None or self.mode == "max" else -value

    @property
    def passed(self) -> bool:
        return self.status == "pass" or self.steps_to_target is not None

    def best(self, on: str | None = None) -> float:
        """The best accuracy on ``on`` (default: what the trial was judged on); 0 when unknown."""
        value = self.best_val_acc if (on or self.on) == "val" else self.best_acc
        return 0.0 if value is None or not math.isfinite(value) else float(value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite floats become None, which JSON has no other way to hold)."""
        data = asdict(replace(self, state=None, losses=None, fork_states=None))  # (asdict would copy the state's tensors)
        return {k: _jsonable(v) for k, v in data.items() if k in _STORED}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrialResult":
        """The inverse of :meth:`to_dict` (unknown keys are ignored, so older records still load)."""
        values = {k: v for k, v in data.items() if k in _STORED}
        values["curve"] = [EvalPoint(**{k: _point_value(k, v) for k, v in p.items()}) for p in data.get("curve", [])]
        for key in ("final_acc", "best_acc", "avg_confidence", "confidence_std", "train_loss", "test_loss",
                    "loss_gap", "seconds", "target", "eval_seconds"):  # (the val accuracies may stay None)
            if key in values and values[key] is None:
                values[key] = math.nan
        return cls(**values)


#: the fields to_dict writes and from_dict reads (all but ``state``, ``losses`` and ``fork_states``)
_STORED = frozenset(f.name for f in fields(TrialResult) if f.metadata.get("stored", True))


def _point_value(key: str, value: Any) -> Any:
    """A stored evaluation's value as it was measured: JSON's None back to NaN (also inside ``metrics``)."""
    if key == "metrics":
        return None if value is None else {k: math.nan if v is None else v for k, v in value.items()}
    return math.nan if value is None else value


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


__all__ = ["STATUSES", "EvalPoint", "TrialResult"]
