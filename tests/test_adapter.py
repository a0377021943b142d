"""PolicyLR: writes policy(t) x group ratio, keeps only the step, resumes bit-for-bit."""

from __future__ import annotations

import io
import json
import pickle
import warnings

import pytest

torch = pytest.importorskip("torch")

import lrkit  # noqa: E402
from lrkit.torch import PolicyLR  # noqa: E402
from numerics import assert_lrs  # noqa: E402

torch.set_num_threads(1)

# TRI uses only + - * / and floor, which IEEE rounds the same on numpy's scalar and SIMD paths, so
# this file may compare LRs with ==; policies with transcendentals use numerics.assert_lrs
SPEC = "TRI(k0=0.001, k1=0.006, l=7)"
POLICY = lrkit.parse(SPEC)


@pytest.fixture(autouse=True)
def _no_warnings():
    # PolicyLR must not trigger PyTorch's get_lr / call-order / epoch warnings in normal use
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _model_params():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def _two_groups(head_lr: float = 1.0, base_lr: float = 0.1, cls=torch.optim.SGD, **kw):
    m = _model_params()
    return cls([{"params": [m.weight]}, {"params": [m.bias], "lr": head_lr}], lr=base_lr, **kw)


def _train(opt, sched, steps: int) -> list[list[float]]:
    seen = []
    for _ in range(steps):
        seen.append([float(g["lr"]) for g in opt.param_groups])
        opt.step()
        sched.step()
    return seen


def test_is_an_lr_scheduler_and_follows_the_policy():
    opt = _two_groups()
    sched = PolicyLR(opt, SPEC)
    assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler)
    assert opt.param_groups[0]["lr"] == POLICY(0)
    lrs = _train(opt, sched, 40)
    assert [row[0] for row in lrs] == [POLICY(t) for t in range(40)]
    assert sched.t == 40 and sched.get_last_lr()[0] == POLICY(40)


@pytest.mark.parametrize("form", [POLICY, SPEC, POLICY.to_dict()])
def test_accepts_policy_spec_or_dict(form):
    opt = _two_groups()
    sched = PolicyLR(opt, form)
    _train(opt, sched, 3)
    assert opt.param_groups[0]["lr"] == POLICY(3)


def test_head_group_keeps_its_ratio():
    opt = _two_groups(head_lr=1.0, base_lr=0.1)  # 10x head
    sched = PolicyLR(opt, SPEC)
    for t, (lr0, lr1) in enumerate(_train(opt, sched, 20)):
        assert lr0 == POLICY(t)
        assert lr1 == POLICY(t) * (1.0 / 0.1)
        assert lr1 == pytest.approx(10 * lr0, rel=1e-12)
    assert sched.group_ratios() == [1.0, 1.0 / 0.1]


def test_never_reads_the_old_lr_back():
    opt = _two_groups()
    sched = PolicyLR(opt, SPEC)
    opt.step()
    opt.param_groups[0]["lr"] = 123.0  # someone tampers between steps
    sched.step()
    assert opt.param_groups[0]["lr"] == POLICY(1)


def test_zero_group0_with_nonzero_others_is_an_error():
    with pytest.raises(lrkit.LRKitError, match="group 0"):
        PolicyLR(_two_groups(head_lr=0.5, base_lr=0.0), SPEC)
    opt = _two_groups(head_lr=0.0, base_lr=0.0)  # all zero: every group follows the policy
    PolicyLR(opt, SPEC)
    assert [g["lr"] for g in opt.param_groups] == [POLICY(0)] * 2


def test_one_policy_per_group():
    opt = _two_groups()
    sched = PolicyLR(opt, [SPEC, "FIX(k0=0.5)"])
    lrs = _train(opt, sched, 10)
    assert [row for row in lrs] == [[POLICY(t), 0.5] for t in range(10)]
    assert sched.state_dict()["policy"] == [SPEC, "FIX(k0=0.5)"]
    with pytest.raises(lrkit.LRKitError, match="len"):
        PolicyLR(_two_groups(), [SPEC])


def test_bad_arguments_raise_lrkit_errors():
    with pytest.raises(lrkit.LRKitError, match="Optimizer"):
        PolicyLR(object(), SPEC)  # type: ignore[arg-type]
    with pytest.raises(lrkit.LRKitError, match="count"):
        PolicyLR(_two_groups(), SPEC, count="epochs")  # type: ignore[arg-type]
    with pytest.raises(lrkit.SpecError):
        PolicyLR(_two_groups(), "TRI(k0=1")
    opt = _two_groups()
    sched = PolicyLR(opt, SPEC)
    with pytest.raises(lrkit.LRKitError, match="epoch"):
        sched.step(5)
    with pytest.raises(lrkit.LRKitError, match="step"):
        sched.load_state_dict({"last_epoch": 3})


OPTIMIZERS = sorted(n for n in dir(torch.optim) if isinstance(getattr(torch.optim, n), type)
                    and issubclass(getattr(torch.optim, n), torch.optim.Optimizer) and n != "Optimizer")


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_torch_optimizer(name):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3))
    opt = getattr(torch.optim, name)([w], lr=0.1)
    sched = PolicyLR(opt, SPEC)

    def closure():
        opt.zero_grad()
        loss = (w ** 2).sum()
        loss.backward()
        return loss

    for t in range(5):
        assert opt.param_groups[0]["lr"] == POLICY(t)
        if name == "SparseAdam":  # needs sparse gradients; an update without grads still counts
            opt.step()
        else:
            opt.step(closure)
        sched.step()


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_tensor_lr_is_filled_in_place(name):
    w = torch.nn.Parameter(torch.ones(3))
    head = torch.nn.Parameter(torch.ones(2))
    opt = getattr(torch.optim, name)([{"params": [w]}, {"params": [head], "lr": torch.tensor(0.4)}],
                                     lr=torch.tensor(0.1), foreach=False)
    tensors = [g["lr"] for g in opt.param_groups]
    sched = PolicyLR(opt, SPEC)
    for t in range(6):
        assert all(g["lr"] is x for g, x in zip(opt.param_groups, tensors))
        assert tensors[0].item() == pytest.approx(POLICY(t), rel=1e-6)  # float32 tensor
        assert tensors[1].item() == pytest.approx(4 * POLICY(t), rel=1e-6)
        (w.sum() + head.sum()).backward()
        opt.step()
        sched.step()
    last = sched.get_last_lr()
    assert isinstance(last[0], torch.Tensor) and last[0] is not tensors[0]


def _checkpoint(opt, sched) -> bytes:
    buf = io.BytesIO()
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, buf)
    return buf.getvalue()


@pytest.mark.parametrize("scheduler_first", [False, True])
def test_resume_is_bit_exact(scheduler_first):
    spec = "sequence([FIX(k0=0.1), TRI(k0=0.01, k1=0.05, l=13)], fractions=[0.3, 0.7], total_steps=100)"
    n, m = 37, 80  # runs past total_steps: the last segment continues, nothing raises
    opt = _two_groups(cls=torch.optim.AdamW)
    sched = PolicyLR(opt, spec)
    full = _train(opt, sched, n + m)

    opt = _two_groups(cls=torch.optim.AdamW)
    sched = PolicyLR(opt, spec)
    first = _train(opt, sched, n)
    blob = _checkpoint(opt, sched)

    opt2 = _two_groups(head_lr=3.0, cls=torch.optim.AdamW)  # constructor LRs are overridden by the checkpoint
    sched2 = PolicyLR(opt2, spec)
    state = torch.load(io.BytesIO(blob), weights_only=True)  # plain data loads with weights_only
    if scheduler_first:
        sched2.load_state_dict(state["scheduler"])
        opt2.load_state_dict(state["optimizer"])
    else:
        opt2.load_state_dict(state["optimizer"])
        sched2.load_state_dict(state["scheduler"])
    assert sched2.t == n
    second = _train(opt2, sched2, m)
    assert first + second == full  # bit-for-bit, both groups (the head keeps its 10x)


def test_state_dict_is_plain_data_and_pickles():
    opt = _two_groups()
    sched = PolicyLR(opt, SPEC, count="updates")
    _train(opt, sched, 4)
    state = sched.state_dict()
    assert state == {"step": 4, "pending_updates": 0, "count": "updates", "policy": SPEC}
    assert json.loads(json.dumps(state)) == state
    assert pickle.loads(pickle.dumps(state)) == state
    assert pickle.loads(pickle.dumps(sched.policies[0])) == POLICY


def test_changed_spec_on_resume_warns_with_both_specs():
    opt = _two_groups()
    sched = PolicyLR(opt, SPEC)
    _train(opt, sched, 5)
    state = sched.state_dict()
    other = PolicyLR(_two_groups(), "FIX(k0=0.2)")
    with pytest.warns(UserWarning) as caught:
        other.load_state_dict(state)
    message = str(caught[0].message)
    assert SPEC in message and "FIX(k0=0.2)" in message
    assert other.t == 5 and other.optimizer.param_groups[0]["lr"] == 0.2


def test_get_lr_and_get_last_lr_do_not_warn():
    opt = _two_groups()
    sched = PolicyLR(opt, SPEC)
    _train(opt, sched, 3)
    assert sched.get_lr() == sched.get_last_lr() == [POLICY(3), POLICY(3) * 10.0]


def test_step_before_optimizer_step_warns():
    opt = _two_groups()
    sched = PolicyLR(opt, SPEC)
    with pytest.warns(UserWarning, match="before optimizer.step"):
        sched.step()


def test_updates_mode_does_not_advance_on_a_skipped_step():
    opt = _two_groups()
    sched = PolicyLR(opt, SPEC, count="updates")
    applied = 0
    for i in range(12):
        if i % 3 != 1:  # simulate a GradScaler that skips every third update (inf gradients)
            opt.step()
            applied += 1
        sched.step()
        assert sched.t == applied
        assert opt.param_groups[0]["lr"] == POLICY(applied)
    calls = PolicyLR(_two_groups(), SPEC)  # the default counts calls, as PyTorch's schedulers do
    for _ in range(3):
        calls.optimizer.step()
        calls.step()
    assert calls.t == 3


def test_updates_mode_with_a_real_grad_scaler():
    if not hasattr(torch.amp, "GradScaler"):  # torch < 2.3 has only the CUDA scaler
        pytest.skip("torch.amp.GradScaler('cpu') needs torch >= 2.3")
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    sched = PolicyLR(opt, SPEC, count="updates")
    scaler = torch.amp.GradScaler("cpu")
    for i in range(5):
        opt.zero_grad()
        loss = (w * w).sum() * (float("inf") if i == 2 else 1.0)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
    assert sched.t == 4  # one of five updates was skipped
    assert opt.param_groups[0]["lr"] == POLICY(4)


def test_docstring_says_t_counts_optimizer_updates():
    assert "optimizer updates" in (PolicyLR.__doc__ or "")


def test_group_added_later_keeps_its_own_ratio():
    m = _model_params()
    opt = torch.optim.SGD([m.weight], lr=0.1)
    sched = PolicyLR(opt, SPEC)
    _train(opt, sched, 3)
    opt.add_param_group({"params": [m.bias], "lr": 0.5})  # e.g. unfreezing a layer mid-run
    lrs = _train(opt, sched, 3)
    assert lrs[1] == [POLICY(4), POLICY(4) * (0.5 / 0.1)]


def test_lrs_at_is_a_pure_function_of_t():
    opt = _two_groups()
    sched = PolicyLR(opt, SPEC)
    for t in (10**9, 3, 511, 256, 0):  # any order, across evaluation blocks
        assert sched.lrs_at(t) == [POLICY(t), POLICY(t) * 10.0]
    assert sched.t == 0 and opt.param_groups[0]["lr"] == POLICY(0)  # nothing written
    with pytest.raises(lrkit.LRKitError, match="t >= 0"):
        sched.lrs_at(-1)


def test_a_failed_construction_leaves_no_hook_behind():
    opt = _two_groups(head_lr=0.5, base_lr=0.0)
    with pytest.raises(lrkit.LRKitError):
        PolicyLR(opt, SPEC, count="updates")
    assert not opt._optimizer_step_post_hooks


def test_a_group_added_to_per_group_policies_is_an_error():
    opt = _two_groups()
    sched = PolicyLR(opt, [SPEC, SPEC])
    opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(1))], "lr": 0.3})
    opt.step()
    with pytest.raises(lrkit.LRKitError, match="one policy per group"):
        sched.step()


def test_one_cycle_runs_past_its_last_step():
    # PyTorch's OneCycleLR raises past total_steps; a policy simply holds its final LR
    policy = lrkit.parse("onecycle(max_lr=0.1, total_steps=50)")
    opt = _two_groups()
    sched = PolicyLR(opt, policy)
    lrs = [row[0] for row in _train(opt, sched, 120)]
    assert_lrs(lrs, [policy(t) for t in range(120)])
    assert lrs[60:] == [lrs[49]] * 60 and lrs[49] == pytest.approx(policy(49), rel=1e-12)


def test_per_epoch_stepping_warns_once():
    opt = _two_groups()
    sched = PolicyLR(opt, SPEC)
    for epoch in range(3):
        for _ in range(5):  # five updates per "epoch"
            opt.step()
        if epoch == 0:
            with pytest.warns(UserWarning, match="ran 5 times since the last PolicyLR.step"):
                sched.step()
        else:
            sched.step()  # once is enough: the autouse fixture turns a second warning into an error
    assert sched.t == 3  # still counts calls: the warning changes nothing
