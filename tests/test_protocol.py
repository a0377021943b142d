"""The training protocol (lrkit.lrbench.run.protocol): a user's train(run) judged as a built-in task is."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from lrkit.errors import LRKitError
from lrkit.lrbench import Task, run_trial, task_defaults
from lrkit.lrbench.run.protocol import ProtocolError
from lrkit.spec import as_policy

_g = torch.Generator().manual_seed(0)
X = torch.randn(512, 8, generator=_g)
W = torch.randn(8, 3, generator=_g)
Y = (X @ W).argmax(1)
VX = torch.randn(256, 8, generator=_g)
VY = (VX @ W).argmax(1)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean()


def make_train(seen: dict | None = None, *, ignore_stop: bool = False, model_to_run: bool = True):
    """A small classifier's training function; ``seen`` collects the LR of every update and the draws."""

    def train(run):
        if seen is not None:
            seen["draws"] = (torch.rand(1).item(), float(np.random.rand()), random.random())
        model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
        opt = run.optimizer(model if model_to_run else model.parameters())
        loader = DataLoader(TensorDataset(X, Y), batch_size=32, shuffle=True, generator=run.generator)
        batches = (b for _ in range(100) for b in loader) if ignore_stop else run.batches(loader)
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            if seen is not None:
                seen.setdefault("lrs", []).append(opt.param_groups[0]["lr"])
            opt.step()
            run.step(loss)
            if run.due():
                with torch.no_grad():
                    val_loss = F.cross_entropy(model(VX), VY)
                run.report(val_acc=accuracy(model, VX, VY), test_acc=accuracy(model, VX, VY), val_loss=val_loss)

    return train


def task_of(train, **kw) -> Task:
    return Task.from_function(train, **{"budget": 200, "target": 0.9, "eval_every": 20, **kw})


def test_every_update_uses_the_policy_lr_and_updates_are_counted():
    seen: dict = {}
    policy = as_policy("TRI(k0=0.001, k1=0.02, l=50)")
    result = run_trial(task_of(make_train(seen), target=0.999), policy, optimizer="adam", early_stop=False)
    assert result.steps == 200 and len(seen["lrs"]) == 200
    np.testing.assert_allclose(seen["lrs"], policy.values(np.arange(200, dtype=np.float64)), rtol=1e-12)
    assert [p.step for p in result.curve] == list(range(20, 201, 20))
    assert result.curve[0].lr == pytest.approx(policy(19))


def test_seeding_makes_a_trial_repeatable_and_seeds_differ():
    draws = []
    curves = []
    for seed in (3, 3, 4):
        seen: dict = {}
        r = run_trial(task_of(make_train(seen)), "FIX(k0=0.01)", optimizer="adam", seed=seed, stop_at_target=False,
                      early_stop=False)
        draws.append(seen["draws"])
        curves.append([(p.step, p.val_acc, p.train_loss) for p in r.curve])
    assert draws[0] == draws[1] and draws[0] != draws[2]  # torch, numpy and random all seeded
    assert curves[0] == curves[1] and curves[0] != curves[2]


def test_the_stop_decision_ends_run_batches_and_a_loop_that_ignores_it():
    for ignore in (False, True):
        r = run_trial(task_of(make_train(ignore_stop=ignore)), "FIX(k0=0.01)", optimizer="adam", on="val")
        assert r.status == "pass" and r.steps_to_target == 40 and r.steps == 40  # stopped where it passed
        assert r.metric == "val_acc" and r.reason.startswith("reached 0.9 (val_acc) at update 40")


def test_a_loss_is_judged_downwards_and_shown_as_itself():
    task = task_of(make_train(), metric="val_loss", mode="min", target=0.3)
    r = run_trial(task, "FIX(k0=0.01)", optimizer="adam")
    assert r.status == "pass" and r.mode == "min"
    losses = [p.metrics["val_loss"] for p in r.curve]
    assert losses[-1] <= 0.3 < min(losses[:-1])
    assert r.shown(r.best_val_acc) == pytest.approx(min(losses))
    miss = run_trial(task.replace(target=0.01), "FIX(k0=0.0001)", optimizer="sgd", early_stop=False)
    assert miss.status == "budget" and "best val_loss" in miss.reason and "> target 0.01" in miss.reason


def test_no_host_synchronisation_per_update(monkeypatch):
    calls = []
    real = torch.Tensor.item

    def counted(self):  # a read-back from lrkit's own code (torch's Adam reads its step count on CPU itself)
        import sys

        if "/lrkit/" in sys._getframe(1).f_code.co_filename:
            calls.append(1)
        return real(self)

    train = make_train()
    task = task_of(train, budget=200, eval_every=100, target=0.999)
    monkeypatch.setattr(torch.Tensor, "item", counted)
    run_trial(task, "FIX(k0=0.01)", optimizer="adam", early_stop=False)
    # per evaluation: the loss sum, the three metrics (and the first loss once): not one per update
    assert len(calls) <= 2 * 5 + 1


@pytest.mark.parametrize("body, message", [
    ("returns", "without calling run.report"),
    ("no_step", "without calling run.step()"),
    ("backwards", "went backwards"),
    ("report_first", "before any run.step()"),
    ("twice", "twice at update"),
    ("no_optimizer", "before the trial had an optimizer"),
])
def test_protocol_mistakes_are_one_clear_message(body, message):
    def train(run):
        model = nn.Linear(8, 3)
        if body == "no_optimizer":
            run.step()
        opt = run.optimizer(model)
        if body == "report_first":
            run.report(val_acc=0.5)
        for i, (x, y) in enumerate(run.batches(DataLoader(TensorDataset(X, Y), batch_size=64))):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if body == "no_step":
                if i == 10:
                    return
                continue
            run.step(loss, update=0 if body == "backwards" and i == 3 else None)
            if body == "returns" and i == 10:
                return
            if run.due():
                run.report(val_acc=0.5)
                if body == "twice":
                    run.report(val_acc=0.5)

    with pytest.raises(ProtocolError, match=message):
        run_trial(task_of(train), "FIX(k0=0.01)", optimizer="sgd")


def test_a_metric_never_reported_lists_those_that_were():
    with pytest.raises(ProtocolError, match=r"'val_los' was never reported: run.report\(...\) got test_acc, "
                                            r"val_acc, val_loss; did you mean 'val_loss'\?"):
        run_trial(task_of(make_train(), metric="val_los", mode="min", target=0.3), "FIX(k0=0.01)", optimizer="adam")


def test_a_nan_metric_is_a_divergence_recorded_not_raised():
    def train(run):
        opt = run.optimizer(nn.Linear(2, 2))
        for t in run.updates():
            opt.step()
            run.step()
            if run.due():
                run.report(val_loss=float("nan") if t >= 39 else 1.0)

    r = run_trial(task_of(train, metric="val_loss", mode="min", target=0.1), "FIX(k0=0.01)", optimizer="sgd")
    assert r.status == "diverged" and r.steps == 40 and "val_loss became nan" in r.reason


def test_the_users_exception_comes_out_as_it_is():
    def train(run):
        raise ValueError("my data is broken")

    with pytest.raises(ValueError, match="my data is broken"):
        run_trial(task_of(train), "FIX(k0=0.01)", optimizer="sgd")


def test_a_run_continued_from_its_state_goes_on_as_the_straight_run():
    task = task_of(make_train(), target=0.999)
    straight = run_trial(task, "FIX(k0=0.01)", optimizer="adam", stop_at_target=False, early_stop=False)
    first = run_trial(task, "FIX(k0=0.01)", optimizer="adam", budget=60, stop_at_target=False, early_stop=False,
                      keep_state=True)
    assert first.state is not None and first.state.step == 60
    rest = run_trial(task, "FIX(k0=0.01)", optimizer="adam", start=first.state, stop_at_target=False,
                     early_stop=False)
    assert [(p.step, p.val_acc, p.train_loss) for p in rest.curve] == \
        [(p.step, p.val_acc, p.train_loss) for p in straight.curve]


def test_a_function_without_its_model_cannot_be_continued():
    task = task_of(make_train(model_to_run=False), target=0.999)
    with pytest.raises(ProtocolError, match="lrkit compose forks runs"):
        run_trial(task, "FIX(k0=0.01)", optimizer="adam", budget=60, keep_state=True, early_stop=False)
    state = run_trial(task_of(make_train(), target=0.999), "FIX(k0=0.01)", optimizer="adam", budget=60,
                      keep_state=True, early_stop=False).state
    with pytest.raises(ProtocolError, match="pass it, run.optimizer\\(model\\)"):
        run_trial(task, "FIX(k0=0.01)", optimizer="adam", start=state)


def test_training_defaults_and_missing_ones():
    @task_defaults(budget=120, target=0.8, eval_every=40)
    def train(run):
        make_train()(run)

    from lrkit.lrbench.tasks.catalogue import is_training_function

    assert is_training_function(train)
    r = run_trial(Task.from_function(train, **train.lrbench_defaults), "FIX(k0=0.01)", optimizer="adam",
                  stop_at_target=False, early_stop=False)
    assert r.budget == 120 and [p.step for p in r.curve] == [40, 80, 120]
    with pytest.raises(LRKitError, match="without a default budget: give --budget"):
        run_trial(Task.from_function(make_train()), "FIX(k0=0.01)")
    with pytest.raises(LRKitError, match="target is a finite number"):
        Task.from_function(make_train(), budget=10, target=float("inf"), metric="val_loss", mode="min")


def test_without_a_target_a_run_goes_to_the_budget_and_says_what_it_reached():
    from lrkit.lrbench import verify

    result = verify(Task.from_function(make_train(), budget=100, eval_every=20), "FIX(k0=0.01)", optimizer="adam",
                    seeds=(0, 1))
    assert result.verdict == "DONE" and result.passed and [t.steps for t in result.trials] == [100, 100]
    text = result.summary()
    assert "no target, judged by val_acc" in text and "targets reached on every seed (worst seed)" in text
    import re

    for level, step in re.findall(r"([0-9.]+) by update (\d+)", text):  # each claim holds on every seed
        for t in result.trials:
            assert any(p.val_acc >= float(level) - 1e-4 and p.step <= int(step) for p in t.curve)


def test_a_study_where_every_method_missed_says_which_target_was_reachable(tmp_path):
    from lrkit.lrbench import recommend

    task = task_of(make_train(), budget=60, target=0.999)
    rec = recommend(task, n_trials=1, baselines=(), repeats=0, storage=f"sqlite:///{tmp_path / 's.db'}",
                    lr_range=(0.001, 0.01), optimizers=("adam",))
    line = rec.reachable_target()
    best = max(m.worst_acc for m in rec.ranked)
    assert f"the best worst-seed val_acc was {best:.4f}" in line and line in rec.summary()
    suggested = float(line.rsplit("--target ", 1)[1].rstrip(")"))
    assert best - 0.01 < suggested <= best


def test_a_stored_result_reads_back_its_metrics_nan_included():
    from lrkit.lrbench.run.result import TrialResult

    def train(run):
        opt = run.optimizer(nn.Linear(2, 2))
        for _ in run.updates():
            opt.step()
            run.step()
            if run.due():
                run.report(val_loss=float("nan"), val_acc=0.5)

    r = run_trial(task_of(train, metric="val_loss", mode="min", target=0.1), "FIX(k0=0.01)", optimizer="sgd")
    back = TrialResult.from_dict(r.to_dict())
    assert back.curve[0].metrics["val_acc"] == 0.5 and np.isnan(back.curve[0].metrics["val_loss"])
    assert back.metric == "val_loss" and back.mode == "min" and back.status == "diverged"


def test_a_policy_that_starts_at_zero_trains_an_optimizer_that_refuses_lr_0():
    seen: dict = {}
    policy = as_policy("wsd(max_lr=1, warmup_steps=10, stable_steps=150, decay_steps=40)")
    r = run_trial(task_of(make_train(seen), target=0.999), policy, optimizer="prodigyopt:Prodigy", early_stop=False)
    assert r.steps == 200 and seen["lrs"][0] == 0.0  # update 0 at policy(0) = 0, as the policy says
    np.testing.assert_allclose(seen["lrs"], policy.values(np.arange(200, dtype=np.float64)), rtol=1e-12)
