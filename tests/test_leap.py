"""LEAP: per-element perturbed LRs equal a reference, sigma=0 is bit-for-bit, resume is exact."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lrkit import rng  # noqa: E402
from lrkit.errors import LRKitError  # noqa: E402
from lrkit.torch import PolicyLR  # noqa: E402
from lrkit.torch.leap import LEAP  # noqa: E402
from lrkit.torch.rng import normal  # noqa: E402

torch.set_num_threads(1)
SEED = 5
X = torch.randn(16, 5, generator=torch.Generator().manual_seed(1))
Y = torch.randn(16, 2, generator=torch.Generator().manual_seed(2))


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


def _groups(model, lr=0.05):
    first, second = model[0], model[2]
    return [{"params": [first.weight, first.bias]}, {"params": [second.weight, second.bias], "lr": 3 * lr}]


def _grad(model):
    model.zero_grad(set_to_none=True)
    loss = ((model(X) - Y) ** 2).mean()
    loss.backward()
    return loss


def _train(opt, model, steps, sched=None):
    for _ in range(steps):
        _grad(model)
        opt.step()
        if sched is not None:
            sched.step()
    return [p.detach().clone() for p in model.parameters()]


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


OPTIMIZERS = {
    "sgd": (torch.optim.SGD, {}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9, "dampening": 0.1}),
    "nesterov_wd": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    "sgd_maximize": (torch.optim.SGD, {"momentum": 0.5, "maximize": True}),
    "adam": (torch.optim.Adam, {"weight_decay": 0.01}),
    "adam_amsgrad": (torch.optim.Adam, {"amsgrad": True}),
    "adamw": (torch.optim.AdamW, {"weight_decay": 0.1}),
}


def _reference(name, steps, sigma, relative=True, clamp=False, lr=0.05):
    """An independent per-element-LR implementation of each optimizer (plain tensors, float64 noise)."""
    cls, kw = OPTIMIZERS[name]
    model = _model()
    params = list(model.parameters())
    lrs = [lr, lr, 3 * lr, 3 * lr]
    offsets = np.cumsum([0] + [p.numel() for p in params])[:-1]
    state = [{} for _ in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    wd = kw.get("weight_decay", 0.0)
    for t in range(steps):
        _grad(model)
        with torch.no_grad():
            for k, p in enumerate(params):
                xi = torch.from_numpy(rng.normal(SEED, t, offsets[k] + np.arange(p.numel()))).reshape(p.shape)
                eta = (lrs[k] * (1 + sigma * xi) if relative else lrs[k] + sigma * xi).float()
                eta = eta.clamp(min=0) if clamp else eta
                g = -p.grad if kw.get("maximize") else p.grad.clone()
                if cls is torch.optim.SGD:
                    g = g + wd * p
                    m = kw.get("momentum", 0.0)
                    if m:
                        buf = state[k].get("buf")
                        buf = g.clone() if buf is None else m * buf + (1 - kw.get("dampening", 0.0)) * g
                        state[k]["buf"] = buf
                        u = g + m * buf if kw.get("nesterov") else buf
                    else:
                        u = g
                else:
                    if cls is torch.optim.AdamW:
                        p.mul_(1 - lrs[k] * wd)  # decoupled decay on the nominal LR
                    else:
                        g = g + wd * p
                    s = state[k]
                    s["t"] = s.get("t", 0) + 1
                    s["m"] = b1 * s.get("m", 0 * p) + (1 - b1) * g
                    s["v"] = b2 * s.get("v", 0 * p) + (1 - b2) * g * g
                    v = s["v"]
                    if kw.get("amsgrad"):
                        s["vmax"] = v = torch.maximum(s.get("vmax", 0 * p), v)
                    u = (s["m"] / (1 - b1 ** s["t"])) / ((v / (1 - b2 ** s["t"])).sqrt() + eps)
                p.sub_(eta * u)
    return _flat(model)


STEPS = {"sgd_maximize": 6}  # ascent on a quadratic diverges; later steps only amplify rounding


def _leap(name, lr=0.05, **leap_kw):
    cls, kw = OPTIMIZERS[name]
    model = _model()
    return model, LEAP(cls(_groups(model, lr), lr=lr, **kw), **{"seed": SEED, **leap_kw})


# ---- the noise ---------------------------------------------------------------------------
def test_torch_noise_equals_the_numpy_generator():
    for start, n in ((0, 1), (7, 1000), (2**40 + 1, 33)):
        want = rng.normal(3, 9, start + np.arange(n))
        np.testing.assert_allclose(normal(3, 9, start, n, dtype=torch.float64).numpy(), want, rtol=0, atol=1e-12)
        np.testing.assert_allclose(normal(3, 9, start, n).numpy(), want, rtol=0, atol=1e-5)


def test_element_lrs_are_a_function_of_seed_step_and_index():
    model, opt = _leap("sgd", sigma=0.3)
    params = list(model.parameters())
    first = opt.element_lrs(0.05, params)
    again = opt.element_lrs(0.05, params[::-1])[::-1]  # order of the list does not matter
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    # index 20 = model[0].bias[0] (weight has 20 elements)
    want = 0.05 * (1 + 0.3 * rng.normal(SEED, 0, [20])[0])
    assert first[1][0].item() == pytest.approx(want, rel=1e-6)
    opt.t = 1
    assert not torch.equal(opt.element_lrs(0.05, params)[0], first[0])


def test_noise_is_the_same_across_chunk_boundaries(monkeypatch):
    import lrkit.torch.rng as trng

    monkeypatch.setitem(trng._CHUNK, "cpu", 7)  # many small chunks, both parities of start
    for start, n in ((3, 101), (4, 100), (0, 1), (9, 14)):
        want = torch.from_numpy(rng.normal(4, 2, start + np.arange(n)))
        torch.testing.assert_close(normal(4, 2, start, n, dtype=torch.float64), want, rtol=0, atol=1e-12)


# ---- equality claims ---------------------------------------------------------------------
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_sigma_zero_is_bit_for_bit_the_base_optimizer(name):
    cls, kw = OPTIMIZERS[name]
    plain_model = _model()
    plain = _train(cls(_groups(plain_model), lr=0.05, **kw), plain_model, 12)
    for fast in (None, False):
        model, opt = _leap(name, sigma=0.0, fast=fast)
        assert all(torch.equal(a, b) for a, b in zip(_train(opt, model, 12), plain))


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_fast_path_equals_per_element_lr_reference(name):
    model, opt = _leap(name, sigma=0.3)
    assert opt.fast_path() is not None
    steps = STEPS.get(name, 15)
    _train(opt, model, steps)
    torch.testing.assert_close(_flat(model), _reference(name, steps, 0.3), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov_wd", "sgd_maximize", "adam", "adam_amsgrad"])
def test_generic_path_equals_per_element_lr_reference(name):
    model, opt = _leap(name, sigma=0.3, fast=False)
    assert opt.fast_path() is None
    steps = STEPS.get(name, 15)
    _train(opt, model, steps)
    torch.testing.assert_close(_flat(model), _reference(name, steps, 0.3), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fast", [None, False])
def test_absolute_noise_and_clamp(fast):
    model, opt = _leap("momentum", sigma=0.04, relative=False, clamp=True, fast=fast)
    _train(opt, model, 10)
    torch.testing.assert_close(_flat(model), _reference("momentum", 10, 0.04, relative=False, clamp=True),
                               rtol=1e-5, atol=1e-6)
    stats = opt.stats()
    assert stats["frac_below_zero"] > 0.05  # sigma=0.04 around lr=0.05: many draws below zero, clamped


def test_absolute_noise_at_zero_lr_still_moves_generic_and_fast_alike():
    ends = []
    for fast in (None, False):
        model, opt = _leap("momentum", lr=0.0, sigma=0.01, relative=False, fast=fast)
        before = _flat(model)
        _train(opt, model, 3)
        assert not torch.equal(_flat(model), before)
        ends.append(_flat(model))
    torch.testing.assert_close(ends[0], ends[1], rtol=1e-5, atol=1e-7)


def test_generic_path_scales_any_optimizers_step_per_element():
    deltas = []
    for wrap in (False, True):
        model = _model()
        opt = torch.optim.RMSprop(model.parameters(), lr=0.01, momentum=0.5)
        opt = LEAP(opt, sigma=0.2, seed=1) if wrap else opt
        before = _flat(model)
        _train(opt, model, 1)
        deltas.append(_flat(model) - before)
    xi = torch.from_numpy(rng.normal(1, 0, np.arange(34))).float()
    torch.testing.assert_close(deltas[1], deltas[0] * (1 + 0.2 * xi), rtol=1e-5, atol=1e-8)


def test_float64_params_and_a_param_without_grad():
    torch.manual_seed(0)
    a, b, c = (torch.nn.Parameter(torch.randn(n, dtype=torch.float64)) for n in (3, 4, 5))
    opt = LEAP(torch.optim.SGD([a, b, c], lr=0.1), sigma=0.5, seed=2)
    a.grad, c.grad = torch.ones(3, dtype=torch.float64), torch.ones(5, dtype=torch.float64)
    a0, c0 = a.detach().clone(), c.detach().clone()
    opt.step()
    eta = 0.1 * (1 + 0.5 * torch.from_numpy(rng.normal(2, 0, np.arange(12))))
    torch.testing.assert_close(a0 - a.detach(), eta[:3], rtol=1e-12, atol=0)
    torch.testing.assert_close(c0 - c.detach(), eta[7:], rtol=1e-12, atol=0)  # b keeps indices 3..6


# ---- reproducibility -----------------------------------------------------------------------
@pytest.mark.parametrize("name, fast", [("nesterov_wd", None), ("adamw", None), ("adam", False)])
def test_resume_from_a_checkpoint_is_exact(name, fast):
    spec = "join([FIX(k0=0.05), FIX(k0=0.02)], boundaries=[6])"
    model, opt = _leap(name, sigma=0.3, fast=fast)
    sched = PolicyLR(opt, spec)
    whole = _train(opt, model, 10, sched)

    model, opt = _leap(name, sigma=0.3, fast=fast)
    sched = PolicyLR(opt, spec)
    _train(opt, model, 4, sched)
    ckpt = copy.deepcopy({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()})
    model, opt = _leap(name, sigma=0.3, fast=fast)
    sched = PolicyLR(opt, spec)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["opt"])
    sched.load_state_dict(ckpt["sched"])
    assert opt.t == 4
    resumed = _train(opt, model, 6, sched)
    assert all(torch.equal(a, b) for a, b in zip(whole, resumed))


def test_state_dict_is_the_base_one_plus_leap_and_refuses_a_different_seed():
    model, opt = _leap("adam", sigma=0.1)
    _train(opt, model, 2)
    sd = opt.state_dict()
    assert sd["leap"] == {"step": 2, "sigma": 0.1, "relative": True, "clamp": False, "seed": SEED}
    plain = torch.optim.Adam(_groups(_model()), lr=0.05)
    plain.load_state_dict({k: v for k, v in sd.items() if k != "leap"})  # the base can read it
    other = LEAP(torch.optim.Adam(_groups(_model()), lr=0.05), sigma=0.1, seed=SEED + 1)
    with pytest.raises(LRKitError, match="seed"):
        other.load_state_dict(sd)


# ---- an optimizer like any other -----------------------------------------------------------
def test_shares_param_groups_and_works_under_torch_schedulers():
    model, opt = _leap("momentum", sigma=0.2)
    assert opt.param_groups is opt.optimizer.param_groups and opt.state is opt.optimizer.state
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    means = []
    for _ in range(4):
        _grad(model)
        opt.step()
        sched.step()
        means.append(opt.stats()["mean"])
    # group 0 has 24 elements at lr, group 1 has 10 at 3 lr: mean ~ lr * (24 + 30) / 34
    assert means[2] / means[0] == pytest.approx(0.1, rel=0.3)
    assert means[0] == pytest.approx(0.05 * 54 / 34, rel=0.3)


def test_policy_lr_counting_updates_sees_leap_steps():
    model, opt = _leap("sgd", sigma=0.2)
    sched = PolicyLR(opt, "FIX(k0=0.01)", count="updates")
    _train(opt, model, 3, sched)
    assert sched.t == 3 and opt.t == 3


def test_grad_scaler_skips_do_not_advance_the_noise_step():
    model, opt = _leap("sgd", sigma=0.2)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    for bad in (False, True, False):
        opt.zero_grad()
        loss = ((model(X) - Y) ** 2).mean() * (float("inf") if bad else 1.0)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    assert opt.t == 2 and scaler.get_scale() == 512.0


def test_zero_grad_deepcopy_and_closure():
    model, opt = _leap("adam", sigma=0.2)
    _grad(model)
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    loss = opt.step(lambda: _grad(model))
    assert loss is not None and opt.t == 1
    clone = copy.deepcopy(opt)
    assert clone.t == 1 and clone.param_groups[0]["lr"] == 0.05


def test_stats_report_the_applied_distribution():
    w = torch.nn.Parameter(torch.zeros(50_000))
    opt = LEAP(torch.optim.SGD([w], lr=0.1), sigma=0.5, seed=0)
    w.grad = torch.ones_like(w)
    opt.step()
    s = opt.stats()
    assert s["n"] == 50_000 and s["step"] == 0
    assert s["mean"] == pytest.approx(0.1, rel=0.02) and s["std"] == pytest.approx(0.05, rel=0.02)
    assert s["frac_below_zero"] == pytest.approx(0.5 * math.erfc(2 / math.sqrt(2)), abs=0.004)  # P(xi < -2)
    assert s["mean"] == pytest.approx(float(-w.detach().mean()), rel=1e-6)  # what it reports is what it applied


@pytest.mark.parametrize("kw, rule", [
    ({"sigma": -1.0}, "sigma >= 0"), ({"sigma": float("nan")}, "sigma >= 0"), ({"seed": -2}, "0 <= seed < 2"),
    ({"relative": 1}, "relative"), ({"fast": "yes"}, "fast"),
])
def test_bad_arguments_raise(kw, rule):
    with pytest.raises(LRKitError, match=rule):
        LEAP(torch.optim.SGD(_model().parameters(), lr=0.1), **kw)


def test_fast_true_refuses_an_optimizer_without_a_fast_path():
    with pytest.raises(LRKitError, match="fast=True"):
        LEAP(torch.optim.RMSprop(_model().parameters(), lr=0.1), fast=True)
    with pytest.raises(LRKitError, match="torch.optim.Optimizer"):
        LEAP(object())  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_noise_is_made_on_the_gpu_and_matches_the_cpu():
    gpu = normal(1, 2, 3, 10_000, device="cuda")
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), normal(1, 2, 3, 10_000), rtol=0, atol=1e-5)
