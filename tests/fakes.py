"""``FakeRunner``: ``run_trial``'s signature and contract on a closed-form model, so a search takes milliseconds.

Accuracy after ``s`` updates is ``0.99 (1 - exp(-k * speed(optimizer) * sum_{t<s} lr(t)))`` on the test
set, and ``val_shift`` lower (or higher, if negative) on the validation split; ``k`` shrinks with the
seed when ``seeded``. Its statuses, ``on_eval`` (pruning), ``on`` and stop-at-target behave as the real
runner's do: with ``stop_at_target`` it stops once the judged metric and the test metric both reached
the target.
"""

from __future__ import annotations

import math

import numpy as np

from lrkit.lrbench.run.result import EvalPoint, TrialResult
from lrkit.spec import parse

EVAL = 100


class FakeRunner:
    def __init__(self, k: float = 0.1, interrupt_at: int | None = None, speed: dict[str, float] | None = None,
                 val_shift: float = 0.0, seeded: bool = False) -> None:
        self.k, self.calls, self.interrupt_at, self.updates = k, [], interrupt_at, 0
        self.speed, self.val_shift, self.seeded = speed or {}, val_shift, seeded
        self.seen: list[dict] = []

    def __call__(self, task, spec, *, budget, target, seed, device, optimizer, optimizer_kwargs, on_eval=None,
                 stop_at_target=True, early_stop=True, eval_every=None, on="test", lr_driver="policy", val_offset=0.0):
        self.calls.append(spec)
        self.seen.append({"spec": spec, "seed": seed, "optimizer": optimizer, "kwargs": dict(optimizer_kwargs or {}),
                          "on": on, "lr_driver": lr_driver, "val_offset": val_offset})
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        k = self.k * self.speed.get(optimizer, 1.0) * ((1 - 0.1 * seed) if self.seeded else 1)
        lrs = parse(spec).values(np.arange(budget, dtype=float))
        curve, status, reached = [], "budget", {"val": None, "test": None}
        for s in list(range(EVAL, budget + 1, EVAL)) or [budget]:
            acc = 0.99 * (1 - math.exp(-k * lrs[:s].sum()))
            val = min(1.0, max(0.0, acc - self.val_shift))
            point = EvalPoint(s, float(lrs[s - 1]), 1 - acc, 1 - acc, acc, s / 1000, 1 - val, val)
            curve.append(point)
            stop = bool(on_eval(point)) if on_eval else False
            for key, value, goal in (("val", val, target + val_offset), ("test", acc, target)):
                if reached[key] is None and value >= goal:
                    reached[key] = s
            if stop_at_target and reached[on] is not None and reached["test"] is not None:
                break
            if stop:
                status = "stopped"
                break
        self.updates += curve[-1].step
        best = max(p.test_acc for p in curve)
        return TrialResult(status="pass" if reached[on] else status, steps_to_target=reached[on],
                           final_acc=curve[-1].test_acc, best_acc=best, avg_confidence=best, confidence_std=0.1,
                           train_loss=0.1, test_loss=0.1, loss_gap=0.0, steps=curve[-1].step, seconds=0.01,
                           curve=curve, spec=spec, task=task.name, optimizer=optimizer, seed=seed, device=device,
                           versions={}, reason="", target=target, budget=budget,
                           optimizer_kwargs=dict(optimizer_kwargs or {}), on=on,
                           best_val_acc=max(p.val_acc for p in curve), final_val_acc=curve[-1].val_acc,
                           test_steps_to_target=reached["test"], val_steps_to_target=reached["val"],
                           lr_driver=lr_driver, val_target=target + val_offset if val_offset else None)


def finished_trial(role: str, spec: str, seed: int, steps: int | None, *, optimizer: str = "adam",
                   baseline: str | None = None, budget: int = 1000):
    """A finished Optuna trial as a study stores one (``study.add_trial`` it): ``role``'s training of ``spec``
    with ``optimizer`` on ``seed``, at the target 0.9 on validation after ``steps`` updates (None: missed)."""
    import optuna

    from lrkit.lrbench.study import schema
    from lrkit.lrbench.study.baselines import Method
    from lrkit.lrbench.study.queue import trial_key

    acc = 0.91 if steps else 0.8
    result = {"on": "val", "target": 0.9, "budget": budget, "steps_to_target": steps, "val_steps_to_target": steps,
              "test_steps_to_target": steps, "best_val_acc": acc, "best_acc": acc, "final_acc": acc, "seed": seed,
              "steps": steps or budget, "curve": [{"step": steps or budget, "val_acc": acc, "test_acc": acc}]}
    attrs = {schema.ATTR_ROLE: role, schema.ATTR_SPEC: spec, schema.ATTR_OPTIMIZER: optimizer,
             schema.ATTR_OPT_KWARGS: {}, schema.ATTR_SEED: seed, schema.ATTR_RESULT: result,
             schema.ATTR_CURVE: trial_key(Method(optimizer, {}, spec), budget)}
    if baseline:
        attrs[schema.ATTR_BASELINE] = baseline
    return optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=float(steps or 2 * budget),
                                     user_attrs=attrs)
