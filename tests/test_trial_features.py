"""The trial runner's judging on held-out data, any optimizer, schedule-free's protocol, OneCycleLR, and forks."""

from __future__ import annotations

import pytest
import torch

import lrkit
from lrkit.errors import LRKitError
from lrkit.lrbench.tasks.datasets import load_digits, split_validation
from lrkit.lrbench.tasks.catalogue import get_task
from lrkit.lrbench.run.runner import run_trial

DIGITS = get_task("digits-mlp")
LOG: list = []


class ModeSGD(torch.optim.SGD):
    """SGD with schedule-free's train()/eval() protocol: a step in eval mode is an error, as there."""

    def __init__(self, params, lr=0.1, momentum=0.0):  # noqa: ANN001
        super().__init__(params, lr=lr, momentum=momentum)
        self.mode = "train"
        self.register_step_pre_hook(self._check)

    def train(self) -> None:
        self.mode = "train"
        LOG.append("train")

    def eval(self) -> None:
        self.mode = "eval"
        LOG.append("eval")

    @staticmethod
    def _check(optimizer, args, kwargs) -> None:  # noqa: ANN001
        assert optimizer.mode == "train", "a step in eval mode"
        LOG.append(("momentum", optimizer.param_groups[0]["momentum"]))


def _curve(result):
    return [(p.step, p.lr, p.train_loss, p.test_loss, p.test_acc, p.val_loss, p.val_acc) for p in result.curve]


def test_the_validation_split_is_seeded_disjoint_and_held_out_of_training() -> None:
    data = split_validation(load_digits(), 0.1, seed=0)
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (1294, 144, 359)
    again = split_validation(load_digits(), 0.1, seed=0)
    assert (data.val_x == again.val_x).all()
    rows = {r.tobytes() for r in load_digits().train_x}
    assert {r.tobytes() for r in data.val_x} <= rows
    assert not {r.tobytes() for r in data.val_x} & {r.tobytes() for r in data.train_x}
    assert (split_validation(load_digits(), 0.1, seed=1).val_x != data.val_x).any()


def test_a_trial_judged_on_val_records_both_and_stops_when_both_reached() -> None:
    result = run_trial(DIGITS, "FIX(k0=0.1)", budget=600, target=0.9, on="val", eval_every=25)
    assert result.on == "val" and all(p.val_acc is not None for p in result.curve)
    assert result.steps_to_target == result.val_steps_to_target
    first_val = next(p.step for p in result.curve if p.val_acc >= 0.9)
    first_test = next(p.step for p in result.curve if p.test_acc >= 0.9)
    assert (result.val_steps_to_target, result.test_steps_to_target) == (first_val, first_test)
    assert result.steps == max(first_val, first_test)  # it ran on until the test accuracy got there too
    assert result.best_val_acc == max(p.val_acc for p in result.curve)


def test_judging_on_val_needs_a_validation_split() -> None:
    with pytest.raises(LRKitError, match="no validation split"):
        run_trial(DIGITS.replace(val_size=0), "FIX(k0=0.1)", budget=10, on="val")
    with pytest.raises(LRKitError, match=r"`on in \('val', 'test'\)` must hold, but got \(on='train'\)"):
        run_trial(DIGITS, "FIX(k0=0.1)", budget=10, on="train")


def test_test_only_skips_the_validation_split_and_leaves_every_test_figure_as_it_was() -> None:
    both = run_trial(DIGITS, "FIX(k0=0.1)", budget=200, target=0.9, eval_every=25, stop_at_target=False)
    only = run_trial(DIGITS, "FIX(k0=0.1)", budget=200, target=0.9, eval_every=25, stop_at_target=False,
                     test_only=True)
    assert all(p.val_acc is not None for p in both.curve) and all(p.val_acc is None for p in only.curve)
    assert [c[:5] for c in _curve(only)] == [c[:5] for c in _curve(both)]  # one run: the same path computes both
    assert (only.test_steps_to_target, only.final_acc, only.best_val_acc) == (both.test_steps_to_target,
                                                                             both.final_acc, None)
    for kwargs, why in (({"on": "val"}, "judged on 'val'"), ({"policy": "plateau([FIX(k0=0.1), FIX(k0=0.01)], patience=3, monitor=val_loss)"}, "plateau")):
        policy = kwargs.pop("policy", "FIX(k0=0.1)")
        with pytest.raises(LRKitError, match=rf"`test_only` needs a built-in task .*{why}.*test_only=True"):
            run_trial(DIGITS, policy, budget=10, test_only=True, **kwargs)


def test_verify_names_the_parameter_it_refuses() -> None:
    with pytest.raises(LRKitError, match=r"`0 < target <= 1 \(an accuracy\)` must hold, but got \(target=1.5\)"):
        lrkit.verify("digits-mlp", "FIX(k0=0.1)", 1.5, 100)
    with pytest.raises(LRKitError, match=r"`budget >= 1` must hold, but got \(budget=0\)"):
        lrkit.verify("digits-mlp", "FIX(k0=0.1)", 0.9, 0)


def test_a_run_continued_from_its_state_is_the_uninterrupted_run_bit_for_bit() -> None:
    spec, kw = "COS(k0=0.001, k1=0.1, l=100)", dict(stop_at_target=False, early_stop=False, on="val", target=0.99)
    full = run_trial(DIGITS, spec, budget=300, optimizer="momentum", **kw)
    head = run_trial(DIGITS, spec, budget=150, optimizer="momentum", keep_state=True, **kw)
    assert head.state.step == 150 and head.state.nbytes() > 0
    tail = run_trial(DIGITS, spec, budget=300, optimizer="momentum", start=head.state, **kw)
    assert _curve(tail) == _curve(full) and tail.final_acc == full.final_acc
    # a fork: another policy from the same state differs from there on, and only from there on
    other = run_trial(DIGITS, f"join([{spec}, FIX(k0=0.01)], boundaries=[150])", budget=300, optimizer="momentum",
                      start=head.state, **kw)
    assert _curve(other)[:3] == _curve(full)[:3] and _curve(other)[3:] != _curve(full)[3:]


def test_a_state_kept_mid_run_forks_a_run_that_is_the_from_scratch_run_bit_for_bit() -> None:
    kw = dict(budget=300, optimizer="momentum", stop_at_target=False, early_stop=False, on="val", target=0.99)
    trunk = "wsd(max_lr=0.05, min_lr=0.0, warmup_steps=20, stable_steps=220, decay_steps=60)"
    branch = "wsd(max_lr=0.05, min_lr=0.0, warmup_steps=20, stable_steps=130, decay_steps=150)"
    run = run_trial(DIGITS, trunk, keep_states_at=(100, 150), **kw)
    assert sorted(run.fork_states) == [100, 150] and run.fork_states[150].step == 150
    assert "fork_states" not in run.to_dict()
    fork = run_trial(DIGITS, branch, start=run.fork_states[150], **kw)
    assert _curve(fork) == _curve(run_trial(DIGITS, branch, **kw))  # the branch trained from scratch
    assert _curve(fork)[:3] == _curve(run)[:3] and _curve(fork)[3:] != _curve(run)[3:]
    # the trunk itself went on unchanged by the copies
    assert _curve(run) == _curve(run_trial(DIGITS, trunk, **kw))
    with pytest.raises(LRKitError, match=r"step % eval_every == 0.*keep_states_at=\[120\]"):
        run_trial(DIGITS, trunk, keep_states_at=(120,), **kw)


def test_a_module_class_optimizer_trains_and_is_recorded_by_that_name() -> None:
    result = run_trial(DIGITS, "FIX(k0=0.002)", budget=60, optimizer="torch.optim:NAdam",
                       optimizer_kwargs={"betas": [0.9, 0.99]}, stop_at_target=False)
    assert result.optimizer == "torch.optim:NAdam" and result.optimizer_kwargs == {"betas": [0.9, 0.99]}
    assert result.best_acc > 0.3


def test_a_train_eval_optimizer_is_in_eval_mode_for_every_evaluation_and_saved_state() -> None:
    LOG.clear()
    result = run_trial(DIGITS, "FIX(k0=0.1)", budget=100, eval_every=25, optimizer="test_trial_features:ModeSGD",
                       stop_at_target=False, early_stop=False, keep_state=True)
    modes = [m for m in LOG if isinstance(m, str)]
    # train at the start, then eval at each of the 4 evaluations and train after each but the last
    assert modes == ["train"] + ["eval", "train"] * 3 + ["eval"] and len(result.curve) == 4
    # continuing from the saved state goes back to train mode before the first step
    LOG.clear()
    run_trial(DIGITS, "FIX(k0=0.1)", budget=150, eval_every=25, optimizer="test_trial_features:ModeSGD",
              stop_at_target=False, early_stop=False, start=result.state)
    assert [m for m in LOG if isinstance(m, str)][0] == "train"


def test_pytorchs_onecycle_drives_the_lr_and_cycles_momentum() -> None:
    LOG.clear()
    spec = "onecycle(max_lr=0.1, total_steps=120)"
    result = run_trial(DIGITS, spec, budget=120, optimizer="test_trial_features:ModeSGD",
                       optimizer_kwargs={"momentum": 0.9}, lr_driver="torch-onecycle", stop_at_target=False)
    momenta = [m[1] for m in LOG if isinstance(m, tuple)]
    assert len(momenta) == 120 and min(momenta) == pytest.approx(0.85) and max(momenta) == pytest.approx(0.95)
    assert result.lr_driver == "torch-onecycle"
    with pytest.raises(LRKitError, match="from an onecycle policy"):
        run_trial(DIGITS, "FIX(k0=0.1)", budget=10, lr_driver="torch-onecycle")
