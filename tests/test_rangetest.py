"""The range test end to end: exact restore, group ratios, data cycling, stops, AMP, accumulation, policies."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest
import torch
from torch import nn

import lrkit
from lrkit.errors import LRKitError
from lrkit.rangetest import range_test

torch.set_num_threads(1)


def data(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, generator=g)
    y = (x[:, :4].sum(1) > 0).long() + 2 * (x[:, 4:8].sum(1) > 0).long()
    return x, y


def net(seed: int = 0, norm: bool = True) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(12, 32)]
    if norm:
        layers += [nn.BatchNorm1d(32)]
    layers += [nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 4)]
    model = nn.Sequential(*layers)
    model.register_buffer("extra", torch.zeros(3), persistent=False)
    return model


def everything(model: nn.Module, opt: torch.optim.Optimizer) -> dict:
    """A deep copy of every value the range test must leave as it found."""
    state = opt.state_dict()
    return {
        "params": [p.detach().clone() for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "buffers": [b.detach().clone() for b in model.buffers()],
        "modes": [m.training for m in model.modules()],
        "opt_state": {k: {n: v.clone() if torch.is_tensor(v) else v for n, v in s.items()}
                      for k, s in state["state"].items()},
        "groups": [{k: (v.clone() if torch.is_tensor(v) else v) for k, v in g.items()} for g in state["param_groups"]],
        "opt_dict": set(opt.__dict__),
        "rng": (torch.get_rng_state().clone(), random.getstate(), np.random.get_state()[1].copy()),
    }


def assert_same(a: dict, b: dict) -> None:
    for key in ("params", "buffers"):
        assert all(torch.equal(x, y) for x, y in zip(a[key], b[key])), key
    assert all((x is None and y is None) or torch.equal(x, y) for x, y in zip(a["grads"], b["grads"]))
    assert a["modes"] == b["modes"]
    assert a["opt_state"].keys() == b["opt_state"].keys()
    for k in a["opt_state"]:
        for n, v in a["opt_state"][k].items():
            w = b["opt_state"][k][n]
            assert torch.equal(v, w) if torch.is_tensor(v) else v == w
    assert len(a["groups"]) == len(b["groups"])
    for g, h in zip(a["groups"], b["groups"]):
        assert g.keys() == h.keys()  # no "initial_lr" left behind
        for k in g:
            assert torch.equal(g[k], h[k]) if torch.is_tensor(g[k]) else g[k] == h[k], k
    assert a["opt_dict"] == b["opt_dict"]  # no patched `step` left behind
    assert torch.equal(a["rng"][0], b["rng"][0]) and a["rng"][1] == b["rng"][1]
    assert np.array_equal(a["rng"][2], b["rng"][2])


def warm(model: nn.Module, opt: torch.optim.Optimizer) -> None:
    """Two real updates so the optimizer has state and the parameters have grads."""
    x, y = data(64, seed=5)
    for _ in range(2):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("where", ["cpu", "disk"])
def test_state_is_restored_bit_for_bit(where: str, tmp_path) -> None:
    model = net()
    head = list(model[-1].parameters())
    body = [p for p in model.parameters() if all(p is not h for h in head)]
    opt = torch.optim.Adam([{"params": body, "lr": 1e-3}, {"params": head, "lr": 1e-2}])
    warm(model, opt)
    model.eval()  # the sweep trains; the mode must come back
    torch.manual_seed(123)
    random.seed(7)
    np.random.seed(9)
    before = everything(model, opt)
    result = range_test(model, opt, nn.functional.cross_entropy, data(), steps=40, end_lr=10.0, batch_size=32,
                        snapshot=where, snapshot_dir=str(tmp_path))
    assert len(result.lrs) >= 10 and np.ptp(result.losses) > 0.05  # it really trained
    assert_same(before, everything(model, opt))
    assert list(tmp_path.iterdir()) == []  # the disk snapshot is cleaned up
    # the optimizer still works as a plain optimizer afterwards, with the user's LRs
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-2]
    warm(model, opt)


def test_tensor_lrs_are_restored_in_place() -> None:
    model = net(norm=False)
    lr = torch.tensor(0.01)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    range_test(model, opt, nn.functional.cross_entropy, data(), steps=20, batch_size=64)
    assert opt.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(0.01)
    assert "initial_lr" not in opt.param_groups[0]


def test_group_ratios_are_kept_and_lrs_follow_the_sweep() -> None:
    model = net(norm=False)
    opt = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.1},
                           {"params": model[-1].parameters(), "lr": 1.0}])
    seen: list[tuple[float, float]] = []
    handle = opt.register_step_pre_hook(lambda o, *_: seen.append((o.param_groups[0]["lr"], o.param_groups[1]["lr"])))
    result = range_test(model, opt, nn.functional.cross_entropy, data(), steps=30, start_lr=1e-4, end_lr=1e-1,
                        batch_size=64)
    handle.remove()
    assert len(result.lrs) == 30 and result.lrs[0] == 1e-4 and result.lrs[-1] == 1e-1
    assert np.allclose([a for a, _ in seen], result.lrs, rtol=1e-12)
    assert np.allclose([b / a for a, b in seen], 10.0)
    assert result.group_ratios == (1.0, 10.0)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 1.0]


def test_data_cycles_when_the_sweep_outlasts_it() -> None:
    x, y = data(96)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    result = range_test(net(), torch.optim.SGD(net().parameters(), lr=0.1), nn.functional.cross_entropy, loader,
                        steps=25, end_lr=0.1)
    assert len(result.lrs) == 25 and "completed" in result.stop_reason


def test_divergence_stops_the_sweep() -> None:
    model = net(norm=False)
    result = range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.functional.cross_entropy, data(),
                        steps=150, start_lr=1e-3, end_lr=1e4, batch_size=64)
    assert result.stopped_early and len(result.lrs) < 150
    assert "exceeded 4 x its best" in result.stop_reason or "became" in result.stop_reason
    last = result.smoothed_losses[-1]
    assert not np.isfinite(last) or last > 4 * np.min(result.smoothed_losses[:-1])


def test_nan_loss_stops_the_sweep_and_suggestions_use_the_finite_part() -> None:
    model = net(norm=False)
    calls = {"n": 0}

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = nn.functional.cross_entropy(out, y)
        return loss * float("nan") if calls["n"] > 40 else loss

    result = range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), loss_fn, data(), steps=60,
                        start_lr=1e-3, end_lr=3.0, batch_size=32)
    assert len(result.lrs) == 41 and "nan" in result.stop_reason
    picks = result.picks()
    assert all(p.index < 40 for p in picks.values() if p.available)
    import json

    saved = json.loads(json.dumps(result.to_dict(), allow_nan=False))  # strict JSON: the NaN is null
    assert saved["losses"][-1] is None


def test_validation_mode_and_accuracy_metric() -> None:
    model = net(norm=False)
    result = range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.functional.cross_entropy, data(256),
                        val_data=data(128, seed=1), steps=30, start_lr=1e-3, end_lr=3.0, batch_size=64,
                        metric="accuracy")
    assert result.measured_on == "validation" and result.train_losses is not None
    assert len(result.accuracies) == len(result.lrs) and np.all((result.accuracies >= 0) & (result.accuracies <= 1))
    assert not np.allclose(result.losses, result.train_losses)


def test_accumulation_matches_one_big_batch() -> None:
    x, y = data(256)
    runs = []
    for batch, accumulate in ((64, 1), (32, 2)):
        model = net(norm=False)
        model.eval()  # no dropout, so the two runs see the same function
        torch.manual_seed(0)
        batches = [(x[i:i + batch], y[i:i + batch]) for i in range(0, 256, batch)]
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        runs.append(range_test(model, opt, nn.functional.cross_entropy, batches, steps=12, start_lr=1e-2,
                               end_lr=1.0, accumulation_steps=accumulate))
    assert np.allclose(runs[0].losses, runs[1].losses, rtol=1e-5, atol=1e-6)


def test_amp_bfloat16_on_cpu_runs_and_restores() -> None:
    model = net(norm=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.clone() for p in model.parameters()]
    result = range_test(model, opt, nn.functional.cross_entropy, data(), steps=20, batch_size=64, amp=True)
    assert np.all(np.isfinite(result.losses))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_grad_scaler_skipped_updates_are_not_points() -> None:
    model = net(norm=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 127, growth_interval=1000)
    scale_before = scaler.get_scale()
    # scale x loss overflows float32 for the first few updates: the scaler skips them and halves the scale
    result = range_test(model, opt, lambda out, y: 100 * nn.functional.cross_entropy(out, y), data(), steps=15,
                        batch_size=64, grad_scaler=scaler)
    assert result.skipped_updates > 0 and len(result.lrs) == 15
    assert result.lrs[0] == 1e-6  # the skipped updates did not advance the sweep
    assert scaler.get_scale() == scale_before  # the scaler's state is restored too


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fp16_amp() -> None:  # pragma: no cover - no GPU in CI
    model = net(norm=False).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = data()
    before = [p.clone() for p in model.parameters()]
    result = range_test(model, opt, nn.functional.cross_entropy, (x.cuda(), y.cuda()), steps=30, amp=True)
    assert np.all(np.isfinite(result.losses[:10]))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_result_builds_policies_from_its_bounds(tmp_path) -> None:
    model = net(norm=False)
    result = range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.functional.cross_entropy, data(),
                        steps=60, start_lr=1e-4, end_lr=10.0, batch_size=32, metric="accuracy")
    best = result.suggest()
    assert best.method in best.all and best.base_lr < best.lr and best.reason
    tri = result.policy("TRI", l=100)
    assert (tri.k0, tri.k1) == (best.base_lr, best.lr)
    assert result.policy("FIX").k0 == best.lr
    valley = result.suggest("valley")
    assert result.policy("FIX", method="valley").k0 == valley.lr
    if "triangular2" in lrkit.policies():
        p = result.policy("triangular2", step_size=200)
        assert p(0) == pytest.approx(best.base_lr) and p(200) == pytest.approx(best.lr)
    with pytest.raises(LRKitError, match="also needs l"):
        result.policy("TRI")
    with pytest.raises(LRKitError, match="unknown policy"):
        result.policy("TIR", l=3)
    fig = result.plot(str(tmp_path / "r.png"))
    assert (tmp_path / "r.png").stat().st_size > 1000 and fig is not None
    assert result.to_dict()["recommended"]["lr"] == best.lr
    assert result.sweep.spec().startswith("exp_sweep(")


def test_linear_mode_uses_the_linear_policy() -> None:
    if "linear" not in lrkit.policies():
        pytest.skip("the linear curve is not registered yet")
    model = net(norm=False)
    result = range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.functional.cross_entropy, data(),
                        steps=11, start_lr=0.01, end_lr=0.11, mode="linear", batch_size=64)
    assert np.allclose(result.lrs, np.linspace(0.01, 0.11, 11))
    assert result.sweep.name == "linear"


@pytest.mark.parametrize("kwargs, message", [
    ({"start_lr": 1.0, "end_lr": 0.1}, "end_lr > start_lr"),
    ({"start_lr": 0.0}, "start_lr > 0"),
    ({"steps": 1}, "steps >= 2"),
    ({"mode": "cosine"}, "`mode` must be one of"),
    ({"metric": "f1"}, "`metric` must be"),
    ({"snapshot": "gpu"}, "`snapshot` must be one of"),
    ({"diverge_factor": 1.0}, "diverge_factor > 1"),
])
def test_bad_arguments_raise_lrkit_errors(kwargs: dict, message: str) -> None:
    model = net(norm=False)
    with pytest.raises(LRKitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.functional.cross_entropy, data(),
                   **kwargs)


def test_one_shot_iterator_cannot_cycle() -> None:
    model = net(norm=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = everything(model, opt)
    with pytest.raises(LRKitError, match="one-shot iterator"):
        range_test(model, opt, nn.functional.cross_entropy, iter([data(32)] * 3), steps=10)
    assert_same(before, everything(model, opt))  # restored on the error path too


def test_snapshot_memory_is_one_cpu_copy_or_none_on_disk(tmp_path) -> None:
    from lrkit.rangetest.state import Snapshot

    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    size = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    in_memory = Snapshot(model, opt)
    assert in_memory.nbytes == size  # no grads yet: exactly one copy of parameters and buffers
    on_disk = Snapshot(model, opt, where="disk", directory=str(tmp_path))
    assert on_disk.nbytes == 0 and len(list(tmp_path.iterdir())) == 1
    on_disk.restore()
    assert list(tmp_path.iterdir()) == []
    in_memory.discard()


def test_iters_per_epoch_is_recorded_for_sizing_a_policy() -> None:
    model = net(norm=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    result = range_test(model, opt, nn.functional.cross_entropy, data(250), steps=12, batch_size=50,
                        accumulation_steps=2)
    assert result.iters_per_epoch == 2  # 5 batches of 50, two per update
    one_shot = range_test(model, opt, nn.functional.cross_entropy, (b for b in [data(32)] * 12), steps=10)
    assert one_shot.iters_per_epoch is None


def test_the_default_step_size_is_four_epochs_when_the_epoch_is_known() -> None:
    from lrkit.rangetest.result import STEP_SIZE_EPOCHS

    model = net(norm=False)
    result = range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.functional.cross_entropy,
                        data(256), steps=60, batch_size=32)  # 30: the loss only starts to fall
    assert result.iters_per_epoch == 8 and STEP_SIZE_EPOCHS == 4 and result.default_step_size() == 32
    best = result.suggest()
    assert result.policy("triangular2") == lrkit.parse(
        f"triangular2(base_lr={best.base_lr!r}, max_lr={best.lr!r}, step_size=32)")
    assert result.policy("exp_range", gamma=0.999).step_size == 32
    assert result.policy("triangular", step_size=5).step_size == 5  # given wins
    assert result.policy("TRI", l=7).l == 7  # no step_size parameter: nothing added
    one_shot = range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.functional.cross_entropy,
                          (b for b in [data(32)] * 30), steps=10)
    assert one_shot.iters_per_epoch is None and one_shot.default_step_size() is None
    with pytest.raises(LRKitError, match="also needs step_size"):
        one_shot.policy("triangular2")


def test_progress_is_quiet_by_default_and_a_line_per_interval_when_not_a_terminal(capsys, monkeypatch) -> None:
    from lrkit import progress

    model = net(norm=False)

    def run(**kwargs):
        return range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.functional.cross_entropy, data(),
                          steps=20, batch_size=32, **kwargs)

    run()
    assert capsys.readouterr() == ("", "")  # a library call prints nothing unless asked
    run(progress=True)
    assert capsys.readouterr() == ("", "")  # shorter than the interval: nothing either
    monkeypatch.setattr(progress, "INTERVAL", 0.0)
    result = run(progress=True)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == len(result.lrs) + 1  # one per point, then a last one
    assert lines[0].startswith("range test: 1/20 points after ") and ", lr=1e-06, loss=" in lines[0]
    assert lines[-1].startswith(f"range test: {len(result.lrs)}/20 points") and "\r" not in err


def test_progress_draws_a_bar_on_a_terminal(capsys, monkeypatch) -> None:
    model = net(norm=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.functional.cross_entropy, data(),
               steps=20, batch_size=32, progress=True)
    err = capsys.readouterr().err
    assert "range test:" in err and "20/20" in err and "\r" in err  # tqdm redraws in place


def test_plot_draws_from_plain_data_and_keeps_an_existing_file_when_asked(tmp_path) -> None:
    from lrkit.rangetest.plot import plot_curve

    lrs = np.geomspace(1e-4, 1, 50)
    losses = 2 - np.exp(-((np.log10(lrs) + 2) ** 2))  # a dip at lr=0.01
    fig = plot_curve(lrs, losses, losses, title="plain arrays", path=tmp_path / "curve")
    assert fig is not None and (tmp_path / "curve.png").stat().st_size > 1000
    model = net(norm=False)
    result = range_test(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.functional.cross_entropy, data(),
                        steps=30, batch_size=32, metric="accuracy")
    target = tmp_path / "r.png"
    target.write_bytes(b"keep me")
    with pytest.raises(LRKitError, match="already exists"):
        result.plot(target, overwrite=False)
    assert target.read_bytes() == b"keep me"
    result.plot(target)  # from Python a rerun replaces its file, like savefig
    assert target.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(LRKitError, match="does not exist"):
        result.plot(tmp_path / "missing" / "r.png")


def test_the_policies_the_bounds_build_are_those_range_test_policy_names() -> None:
    from lrkit.cli.main import build_parser
    from lrkit.rangetest.result import bound_fields, policies_from_bounds, policy_class, still_needed

    accepted = policies_from_bounds()
    assert sorted(accepted) == ["FIX", "constant", "triangular", "triangular2"]
    assert bound_fields(policy_class("TRI")) == {"k0": "base_lr", "k1": "lr"} and still_needed(policy_class("TRI")) == ["l"]
    assert bound_fields(policy_class("join")) == {} and "cosine" not in accepted
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["range-test"].format_help().split())
    assert "the policy to build from the bounds: constant, FIX, triangular or triangular2" in help_text
    with pytest.raises(LRKitError, match="unknown policy 'TIR'"):
        policy_class("TIR")


@pytest.mark.parametrize("start_lr", [-1.0, 0.0, float("nan")])
def test_a_tasks_range_test_names_start_lr_not_the_optimizers_lr(start_lr: float) -> None:
    from lrkit.lrbench.run.lr_range import task_range_test

    with pytest.raises(LRKitError, match=r"^`start_lr > 0` must hold, but got \(start_lr="):
        task_range_test("digits-mlp", start_lr=start_lr)
