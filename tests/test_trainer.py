"""The trial runner: determinism, seeded batches, divergence, stops, metrics, serialisation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import lrkit
from lrkit.lrbench.run.judging import UnreachableRule, confidence_stats, divergence_reason, spread, unreachable_reason
from lrkit.lrbench.tasks.catalogue import Task, get_task
from lrkit.lrbench.run.result import EvalPoint, TrialResult
from lrkit.lrbench.run.runner import run_trial
from lrkit.lrbench.run.steps import BatchOrder, evaluate, resolve_optimizer, train_step
from lrkit.lrbench.tasks.datasets import ArrayDataset
from lrkit.errors import LRKitError

DIGITS = get_task("digits-mlp")


def blobs_task(n: int = 256, **changes) -> Task:
    """Two Gaussian blobs in 4 dimensions, shaped as 1×2×2 images; a linear model separates them."""
    def data() -> ArrayDataset:
        rng = np.random.default_rng(123)
        y = rng.integers(0, 2, size=2 * n)
        x = (rng.normal(size=(2 * n, 4)) + np.where(y[:, None] == 1, 1.5, -1.5)).astype(np.float32)
        x = x.reshape(-1, 1, 2, 2)
        return ArrayDataset("blobs", x[:n], y[:n].astype(np.int64), x[n:], y[n:].astype(np.int64))

    def model() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))

    settings = dict(batch_size=16, eval_every=10, budget=100, target=0.95, default_policy="FIX(k0=0.1)")
    settings.update(changes)
    return Task("blobs", "two blobs", model, data, **settings)


def curve_values(result: TrialResult) -> list[tuple]:
    return [(p.step, p.lr, p.train_loss, p.test_loss, p.test_acc) for p in result.curve]


def test_same_seed_same_run_other_seed_other_run() -> None:
    a = run_trial(DIGITS, "FIX(k0=0.05)", budget=300, seed=7, stop_at_target=False)
    b = run_trial(DIGITS, "FIX(k0=0.05)", budget=300, seed=7, stop_at_target=False)
    c = run_trial(DIGITS, "FIX(k0=0.05)", budget=300, seed=8, stop_at_target=False)
    assert curve_values(a) == curve_values(b)
    assert (a.final_acc, a.avg_confidence, a.train_loss) == (b.final_acc, b.avg_confidence, b.train_loss)
    assert curve_values(a) != curve_values(c)


def test_batch_order_is_a_pure_function_of_seed_and_step() -> None:
    order = BatchOrder(100, 30, seed=5)
    sequential = [order.indices(t) for t in range(12)]
    assert torch.equal(BatchOrder(100, 30, seed=5).indices(10), sequential[10])  # jump straight to t=10
    epoch0 = torch.cat(sequential[:3])
    assert len(set(epoch0.tolist())) == 90  # 3 full batches, no repeats, the remainder dropped
    assert not torch.equal(sequential[0], sequential[3])  # each epoch reshuffles
    assert not torch.equal(BatchOrder(100, 30, seed=6).indices(0), sequential[0])
    with pytest.raises(LRKitError, match="batch_size <= number of training examples"):
        BatchOrder(10, 11, seed=0)


def test_huge_lr_is_recorded_as_diverged_not_raised() -> None:
    result = run_trial(DIGITS, "FIX(k0=10000)", budget=500, seed=0)
    assert result.status == "diverged" and result.steps_to_target is None
    assert "diverged at update 50" in result.reason
    assert result.steps == 50  # stopped at the first evaluation, not at the budget
    json.dumps(result.to_dict(), allow_nan=False)  # NaN/inf are stored as null


def test_lr_past_float32_range_is_recorded_as_diverged_not_raised() -> None:
    result = run_trial(DIGITS, "FIX(k0=1e39)", budget=100, seed=0)
    assert result.status == "diverged" and "overflows" in result.reason
    json.dumps(result.to_dict(), allow_nan=False)


def test_policy_drives_the_lr_and_curve_records_it() -> None:
    policy = lrkit.parse("TRI(k0=0.01, k1=0.1, l=30)")
    result = run_trial(blobs_task(), policy, stop_at_target=False, budget=95)
    assert [p.step for p in result.curve] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 95]
    assert [p.lr for p in result.curve] == [policy(p.step - 1) for p in result.curve]  # TRI: + - * / floor only
    assert result.spec == policy.spec() and result.steps == 95


def test_target_reached_stops_or_continues() -> None:
    task = blobs_task()
    stopped = run_trial(task, "FIX(k0=0.5)", target=0.9)
    assert stopped.status == "pass" and stopped.steps == stopped.steps_to_target
    full = run_trial(task, "FIX(k0=0.5)", target=0.9, stop_at_target=False)
    assert full.status == "pass" and full.steps == 100 and full.steps_to_target == stopped.steps_to_target
    assert curve_values(full)[:len(stopped.curve)] == curve_values(stopped)


def test_on_eval_can_stop_a_trial() -> None:
    seen: list[EvalPoint] = []

    def prune(point: EvalPoint) -> bool:
        seen.append(point)
        return point.step >= 20

    result = run_trial(blobs_task(), "FIX(k0=0.001)", on_eval=prune)
    assert result.status == "stopped" and result.steps == 20 and [p.step for p in seen] == [10, 20]


def test_budget_runs_out() -> None:
    result = run_trial(blobs_task(), "FIX(k0=0)", target=0.99, early_stop=False)
    assert result.status == "budget" and result.steps == 100 and "budget of 100 updates ran out" in result.reason


def test_unreachable_stops_a_flat_run_but_not_a_late_decay() -> None:
    flat = run_trial(DIGITS, "FIX(k0=0.01)", budget=1000, target=0.99)
    assert flat.status == "unreachable" and 500 <= flat.steps < 900 and "unreachable" in flat.reason
    # the same run with a drop at 900 is kept alive until the drop has happened
    decaying = run_trial(DIGITS, "join([FIX(k0=0.01), FIX(k0=0.001)], boundaries=[900])", budget=1000, target=0.99)
    assert decaying.steps > 900 and decaying.status in ("budget", "unreachable")


def test_result_round_trips_through_json() -> None:
    result = run_trial(blobs_task(), "FIX(k0=0.2)", budget=30)
    again = TrialResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    assert result.versions["lrkit"] == lrkit.__version__ and result.versions["torch"] == torch.__version__
    assert result.device == "cpu" and result.optimizer == "sgd" and result.task == "blobs"


def test_loss_gap_and_metrics_are_consistent() -> None:
    result = run_trial(blobs_task(), "FIX(k0=0.2)", budget=50, stop_at_target=False)
    assert result.loss_gap == pytest.approx(result.test_loss - result.train_loss)
    assert result.final_acc == result.curve[-1].test_acc and result.best_acc == max(p.test_acc for p in result.curve)
    assert 0.5 < result.avg_confidence <= 1 and result.confidence_std >= 0


def test_a_task_can_name_its_loss() -> None:
    import functools

    plain = run_trial(blobs_task(), "FIX(k0=0.2)", budget=20, stop_at_target=False)
    smooth = run_trial(blobs_task(loss=functools.partial(torch.nn.functional.cross_entropy, label_smoothing=0.2)),
                       "FIX(k0=0.2)", budget=20, stop_at_target=False)
    assert smooth.curve[0].train_loss != plain.curve[0].train_loss
    assert smooth.test_loss > plain.test_loss  # smoothing keeps the loss away from 0


def test_every_optimizer_runs_a_trial() -> None:
    for name in ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "adadelta"):
        result = run_trial(blobs_task(), "FIX(k0=0.01)", optimizer=name, budget=10)
        assert result.optimizer == name and result.steps == 10 and result.status in ("pass", "budget")


def test_optimizer_override_keeps_compatible_task_arguments() -> None:
    task = get_task("fashion-mnist-lenet")  # momentum, weight_decay=5e-4; no data is loaded here
    assert resolve_optimizer(task, None, None) == ("momentum", {"weight_decay": 5e-4})
    assert resolve_optimizer(task, "adam", {"betas": (0.8, 0.9)}) == ("adam", {"weight_decay": 5e-4,
                                                                              "betas": (0.8, 0.9)})
    assert resolve_optimizer(task, None, {"momentum": 0.5}) == ("momentum", {"weight_decay": 5e-4, "momentum": 0.5})


@pytest.mark.parametrize("kwargs,message", [
    ({"budget": 0}, "budget >= 1"), ({"seed": -1}, "seed >= 0"), ({"target": 1.5}, "target <= 1"),
    ({"eval_every": 0}, "eval_every >= 1"), ({"device": "tpu"}, "device"), ({"optimizer": "sgdd"}, "did you mean"),
    ({"optimizer_kwargs": {"lr": 0.5}}, "comes from the policy"),
])
def test_bad_arguments_raise_lrkit_errors(kwargs, message: str) -> None:
    with pytest.raises(LRKitError, match=message):
        run_trial(blobs_task(), "FIX(k0=0.1)", **kwargs)


def test_threads_are_restored() -> None:
    before = torch.get_num_threads()
    run_trial(blobs_task(), "FIX(k0=0.1)", budget=10)
    assert torch.get_num_threads() == before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_trial_runs() -> None:
    result = run_trial(DIGITS, "FIX(k0=0.1)", budget=200, device="cuda")
    assert result.device.startswith("cuda") and result.steps > 0


# ---- metrics on hand-made examples -----------------------------------------------------------------
def test_evaluate_matches_a_hand_computation() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 0.5]])
    labels = torch.tensor([0, 1, 1, 0])  # samples 0 and 1 right, 2 and 3 wrong
    result = evaluate(torch.nn.Identity(), logits, labels, chunk=3)  # chunking must not matter
    p_right = np.array([1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(-1.0))])
    assert result.acc == 0.5
    assert result.avg_confidence == pytest.approx(p_right.mean())
    assert result.confidence_std == pytest.approx(p_right.std())
    expected_loss = torch.nn.functional.cross_entropy(logits, labels).item()
    assert result.loss == pytest.approx(expected_loss)


def test_confidence_stats_ignore_wrong_samples() -> None:
    assert confidence_stats([0.9, 0.99, 0.7], [True, False, True]) == pytest.approx((0.8, 0.1))
    assert confidence_stats([0.9], [False]) == (0.0, 0.0)


def test_spread_and_divergence_rules() -> None:
    assert spread([1.0, None, 3.0]) == {"n": 2, "mean": 2.0, "std": math.sqrt(2), "min": 1.0, "max": 3.0}
    assert divergence_reason(2.0, 2.0, 2.3) is None
    assert "exploded" in divergence_reason(12.0, 2.0, 2.3)
    assert "nan" in divergence_reason(float("nan"), 2.0, 2.3)
    assert "inf" in divergence_reason(1.0, float("inf"), 2.3)


def test_unreachable_rule_on_synthetic_curves() -> None:
    steps = [100, 200, 300, 400, 500, 600]
    flat = [0.50, 0.55, 0.56, 0.56, 0.57, 0.57]
    assert unreachable_reason(steps, flat, 0.9, 1000) is not None
    assert unreachable_reason(steps[:4], flat[:4], 0.9, 1000) is None  # before half the budget
    same = (0.1, 0.1)
    assert unreachable_reason(steps, flat, 0.9, 1000, same, (0.01, 0.1)) is None  # a decay ahead
    assert unreachable_reason(steps, flat, 0.9, 1000, same, (0.1, 0.5)) is None  # a rise ahead
    assert unreachable_reason(steps, flat, 0.9, 1000, same, (0.06, 0.19)) is not None  # within 2x: same regime
    rising = [0.30, 0.40, 0.45, 0.50, 0.55, 0.60]  # +0.05 per 100 updates: 0.60 + 0.2 + 0.02 < 0.9
    assert unreachable_reason(steps, rising, 0.9, 1000) is not None
    assert unreachable_reason(steps, rising, 0.8, 1000) is None  # 0.82 >= 0.8: plausible
    assert unreachable_reason(steps, flat, 0.9, 1000, rule=UnreachableRule(min_fraction=0.7)) is None
    jump = [0.50, 0.51, 0.52, 0.53, 0.54, 0.75]  # one fast recent interval keeps hope alive
    assert unreachable_reason(steps, jump, 0.9, 1000) is None


def test_train_step_returns_a_detached_device_loss() -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = train_step(model, opt, torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))
    assert loss.ndim == 0 and not loss.requires_grad
