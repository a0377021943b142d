"""The examples in examples/ run through the training protocol as a user runs them (``path.py:train``).

With ``LRKIT_EXAMPLE_SMALL=1`` each trains on a subset of its data, a few updates per trial. What is
checked: the trial is judged on the metric the example reports (an accuracy to maximise, a loss to
minimise), the optimizer's LR at every update is the policy's, the same seed gives the same curve,
and ``verify`` passes an easy target and misses an impossible one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lrkit.lrbench import Task, run_trial, verify
from lrkit.lrbench.tasks.catalogue import get_task
from lrkit.spec import as_policy

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def small(monkeypatch):
    monkeypatch.setenv("LRKIT_EXAMPLE_SMALL", "1")


def example(name: str) -> Task:
    return get_task(f"{EXAMPLES / name}:train")


def spying(task: Task, seen: list[float]) -> Task:
    """``task`` with its optimizer's LR recorded just before every update (what the update really used)."""
    def spy(run):
        build = run.optimizer

        def optimizer(params, **kwargs):
            opt = build(params, **kwargs)
            opt.register_step_pre_hook(lambda o, args, kw: seen.append(o.param_groups[0]["lr"]))
            return opt

        run.optimizer = optimizer
        task.train(run)

    return task.replace(train=spy)


def curve(result) -> list[tuple]:
    return [(p.step, p.lr, p.train_loss, p.metrics) for p in result.curve]


def check_lrs(result, seen: list[float], policy: str) -> None:
    p = as_policy(policy)
    # the adapter's scalar path and the judge's vector path may round an ulp apart (see lrkit.policies.base)
    assert seen == pytest.approx([p(t) for t in range(result.steps)], rel=1e-12, abs=0)
    assert [q.lr for q in result.curve] == pytest.approx([p(q.step - 1) for q in result.curve], rel=1e-12, abs=0)


@pytest.fixture(scope="module")
def fashion_task():
    from lrkit.lrbench.tasks.datasets import DatasetMissing, fashion_mnist_dir

    try:
        fashion_mnist_dir()
    except DatasetMissing as err:
        pytest.skip(str(err))
    return example("plain_fashion.py")


def test_defaults_need_no_flags(fashion_task):
    lm = example("char_lm.py")
    f = fashion_task
    assert (f.budget, f.target, f.metric, f.mode, f.eval_every) == (600, 0.76, "val_acc", "max", 50)
    assert (lm.budget, lm.target, lm.metric, lm.mode) == (1000, 2.2, "val_loss", "min")
    assert f.optimizer == lm.optimizer == "adam" and f.default_policy == lm.default_policy == "FIX(k0=0.001)"


def test_fashion_trial_is_judged_on_val_acc_with_the_policys_lr_and_repeats(fashion_task):
    policy = "STEP(k0=0.002, gamma=0.5, l=3)"
    runs = []
    for _ in range(2):
        seen: list[float] = []
        result = run_trial(spying(fashion_task, seen), policy, budget=8, eval_every=4, on="val",
                           stop_at_target=False, early_stop=False)
        check_lrs(result, seen, policy)
        runs.append(result)
    first = runs[0]
    assert first.metric == "val_acc" and first.mode == "max" and first.on == "val" and first.steps == 8
    assert [p.step for p in first.curve] == [4, 8]
    for p in first.curve:
        assert set(p.metrics) == {"val_acc", "val_loss", "test_acc"}
        assert (p.val_acc, p.test_acc, p.val_loss) == tuple(p.metrics[k] for k in ("val_acc", "test_acc", "val_loss"))
        assert 0 <= p.val_acc <= 1 and p.train_loss > 0
    assert first.best_val_acc == max(p.metrics["val_acc"] for p in first.curve)
    assert curve(runs[1]) == curve(first)


def test_fashion_verify_passes_an_easy_target(fashion_task):
    result = verify(fashion_task, "FIX(k0=0.001)", target=0.2, budget=8, eval_every=4, seeds=(0, 1), optimizer="adam")
    assert result.passed, result.reason
    assert all(t.metric == "val_acc" and t.steps_to_target in (4, 8) for t in result.trials)


def test_char_lm_is_judged_on_val_loss_with_the_policys_lr_and_repeats():
    task = example("char_lm.py")
    policy = "EXP(k0=0.01, gamma=0.97)"
    runs = []
    for seed in (0, 0, 1):
        seen: list[float] = []
        # 36 updates cross the first epoch (31 batches of the small text): run.batches goes on to the next
        result = run_trial(spying(task, seen), policy, budget=36, eval_every=12, seed=seed, target=0.01,
                           stop_at_target=False, early_stop=False)
        check_lrs(result, seen, policy)
        runs.append(result)
    first = runs[0]
    assert first.metric == "val_loss" and first.mode == "min" and first.status == "budget" and first.steps == 36
    val = [p.metrics["val_loss"] for p in first.curve]
    assert [p.step for p in first.curve] == [12, 24, 36]
    assert first.shown(first.best_val_acc) == min(val) > 0
    assert [first.shown(p.val_acc) for p in first.curve] == val
    assert [first.shown(p.test_acc) for p in first.curve] == [p.metrics["test_loss"] for p in first.curve]
    assert val[-1] < val[0] < torch.log(torch.tensor(128.0)).item()  # it learns, from below a uniform guess
    assert curve(runs[1]) == curve(first)
    assert curve(runs[2]) != curve(first)


def test_char_lm_verify_passes_an_easy_target_and_misses_an_impossible_one():
    task = example("char_lm.py")
    easy = verify(task, "FIX(k0=0.01)", target=3.6, budget=20, eval_every=5, seeds=(0, 1), optimizer="adam")
    assert easy.passed, easy.reason
    assert all(t.status == "pass" and t.steps_to_target <= 20 and t.shown(t.target) == 3.6 for t in easy.trials)
    assert all(t.shown(t.curve[-1].val_acc) <= 3.6 for t in easy.trials)
    hard = verify(task, "FIX(k0=0.01)", target=0.01, budget=20, eval_every=5, seeds=(0, 1), optimizer="adam")
    assert not hard.passed
    assert all(t.status in ("budget", "unreachable") and t.steps_to_target is None for t in hard.trials)
    assert all(0.01 < t.shown(t.best_val_acc) < 4 for t in hard.trials)
