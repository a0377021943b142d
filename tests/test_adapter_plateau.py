"""PolicyLR with plateau policies: report() switches, the switch point is state, resume is bit-exact."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lrkit  # noqa: E402
from lrkit.policies.plateau import PlateauTracker  # noqa: E402
from lrkit.torch import PolicyLR  # noqa: E402

torch.set_num_threads(1)

# SINEXP and COS use sin/cos/power, which numpy's SIMD loops may round apart from its scalar ones:
# LRs are compared with == only where one call computes both sides (a rerun, a resume, a replay)
SPEC = ("plateau([SINEXP(k0=0.001, k1=0.006, gamma=0.9999, l=37), COS(k0=0.0001, k1=0.05, l=90), "
        "FIX(k0=0.0003)], patience=1, monitor=val_loss)")
# a loss that improves, stalls, improves once and stalls: evaluations every 40 updates
LOSSES = [2.0, 1.5, 1.5, 1.5, 1.4, 1.2, 1.3, 1.3, 1.3, 1.3, 1.3, 1.3]
EVERY = 40


@pytest.fixture(autouse=True)
def _no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _opt(groups: int = 1):
    torch.manual_seed(0)
    m = torch.nn.Linear(3, 2)
    params = [{"params": [m.weight]}, {"params": [m.bias], "lr": 1.0}][:groups]
    return torch.optim.SGD(params, lr=0.1)


def _run(opt, sched, start: int, stop: int, losses=LOSSES, every=EVERY) -> list[float]:
    """Updates ``start .. stop-1``, reporting ``losses[k-1]`` after update ``k * every``; the LR of each update."""
    seen = []
    for t in range(start, stop):
        assert sched.t == t
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        if (t + 1) % every == 0 and (t + 1) // every <= len(losses):
            sched.report(losses[(t + 1) // every - 1])
    return seen


def test_report_switches_and_the_switch_takes_effect_from_the_next_update():
    opt = _opt()
    sched = PolicyLR(opt, SPEC)
    seen = _run(opt, sched, 0, 500)
    # losses at t=40..: 2.0, 1.5 (better), 1.5 (bad 1), 1.5 (bad 2 > 1: switch at 160), 1.4, 1.2 (better),
    # 1.3 (bad 1), 1.3 (bad 2: switch at 320), then no function is left
    assert sched.policies[0].switched_at == (160.0, 320.0)
    f = [lrkit.parse(s) for s in ("SINEXP(k0=0.001, k1=0.006, gamma=0.9999, l=37)", "COS(k0=0.0001, k1=0.05, l=90)")]
    assert seen[159] == pytest.approx(f[0](159), rel=1e-12) and seen[160] == pytest.approx(f[1](0), rel=1e-12)
    assert seen[319] == pytest.approx(f[1](159), rel=1e-12) and seen[320] == 0.0003
    # the join written out after the run replays every LR bit for bit, through the adapter as directly
    replay = sched.replay_policy()
    assert replay == lrkit.parse("join([SINEXP(k0=0.001, k1=0.006, gamma=0.9999, l=37), COS(k0=0.0001, k1=0.05, "
                                 "l=90), FIX(k0=0.0003)], boundaries=[160, 320])")
    opt2 = _opt()
    again = PolicyLR(opt2, replay)
    assert _run(opt2, again, 0, 500, losses=[]) == seen
    assert np.array_equal(replay.values(np.arange(256.0, 512.0)), [sched.lrs_at(t)[0] for t in range(256, 512)])


def test_report_returns_whether_a_switch_happened_and_rewrites_the_lr_at_once():
    opt = _opt()
    sched = PolicyLR(opt, "plateau([FIX(k0=0.1), FIX(k0=0.01)], patience=0, monitor=val_acc)")
    _run(opt, sched, 0, 10, losses=[])
    assert sched.report(0.5) is False and opt.param_groups[0]["lr"] == 0.1
    assert sched.report(0.5) is True and opt.param_groups[0]["lr"] == 0.01  # the next update, update 10, uses it
    assert sched.policies[0].switched_at == (10.0,) and sched.get_last_lr() == [0.01]
    assert sched.report(0.4) is False  # nothing left to switch to


def test_a_report_between_optimizer_step_and_scheduler_step_switches_after_the_update_that_ran():
    for count, expected in (("calls", 11.0), ("updates", 11.0)):
        opt = _opt()
        sched = PolicyLR(opt, "plateau([FIX(k0=0.1), FIX(k0=0.01)], patience=0, monitor=val_loss)", count=count)
        _run(opt, sched, 0, 10, losses=[])
        sched.report(1.0)
        opt.step()  # update 10 runs with 0.1; the report comes before sched.step()
        assert sched.report(2.0) is True
        assert sched.policies[0].switched_at == (expected,), count
        sched.step()
        assert opt.param_groups[0]["lr"] == 0.01 and sched.t == 11


def test_group_policies_and_ratios():
    opt = _opt(groups=2)
    sched = PolicyLR(opt, ["plateau([FIX(k0=0.1), FIX(k0=0.05)], patience=0, monitor=val_loss)", "FIX(k0=0.3)"])
    _run(opt, sched, 0, 3, losses=[])
    sched.report(1.0)
    sched.report(1.0)
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.3]
    opt = _opt(groups=2)  # one policy, a 10x head: the ratio holds across the switch
    sched = PolicyLR(opt, "plateau([FIX(k0=0.1), FIX(k0=0.05)], patience=0, monitor=val_loss)")
    _run(opt, sched, 0, 3, losses=[])
    sched.report(1.0)
    sched.report(1.0)
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.05 * 10]


def test_resume_makes_the_same_switches_and_the_same_lrs_bit_for_bit():
    n = 500
    opt = _opt()
    full = _run(opt, PolicyLR(opt, SPEC), 0, n)
    for cut in (100, 160, 161, 200, 321, 400):  # before, at and after each switch; mid-block
        opt = _opt()
        sched = PolicyLR(opt, SPEC)
        head = _run(opt, sched, 0, cut)
        buf = io.BytesIO()
        torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
        buf.seek(0)
        state = torch.load(buf, weights_only=True)
        opt2 = _opt()
        sched2 = PolicyLR(opt2, SPEC)
        opt2.load_state_dict(state["opt"])
        sched2.load_state_dict(state["sched"])
        assert sched2.policies == sched.policies and sched2._trackers == sched._trackers, cut
        assert head + _run(opt2, sched2, cut, n) == full, cut


def test_state_dict_holds_the_switch_points_and_the_tracker_as_plain_data():
    opt = _opt()
    sched = PolicyLR(opt, SPEC)
    _run(opt, sched, 0, 200)
    state = sched.state_dict()
    assert state["plateaus"] == [{"group": 0, "path": [], "switched_at": [160.0],
                                  "tracker": {"best": 1.4, "bad": 0, "last_t": 200.0}}]
    assert state["policy"] == sched.policies[0].spec() and "switched_at=[160]" in state["policy"]
    assert "plateaus" not in PolicyLR(_opt(), "FIX(k0=0.1)").state_dict()  # other policies keep their state


def test_load_state_dict_restores_onto_the_constructors_policy():
    opt = _opt()
    sched = PolicyLR(opt, SPEC)
    _run(opt, sched, 0, 400)
    early = PolicyLR(_opt(), SPEC)
    _run(early.optimizer, early, 0, 100)
    sched.load_state_dict(early.state_dict())  # back to before any switch
    assert sched.policies[0].switched_at == () and sched._trackers[0][()].last_t == 80.0
    sched.load_state_dict({"step": 5})  # a dict without plateau state: the constructor's policy, fresh
    assert sched.policies == (lrkit.parse(SPEC),) and sched._trackers == [{}]
    assert sched.get_last_lr() == sched.lrs_at(5)


def test_a_checkpoint_that_does_not_fit_is_refused():
    sched = PolicyLR(_opt(), SPEC)
    entry = {"group": 0, "path": [], "switched_at": [10, 20, 30], "tracker": None}
    with pytest.raises(lrkit.LRKitError, match=r"does not fit.*len\(switched_at\) <= len\(policies\) - 1"):
        sched.load_state_dict({"step": 40, "plateaus": [entry]})
    assert sched.policies == (lrkit.parse(SPEC),)  # nothing was changed
    with pytest.raises(lrkit.LRKitError, match="no plateau at path"):
        PolicyLR(_opt(), "FIX(k0=0.1)").load_state_dict({"step": 3, "plateaus": [{**entry, "switched_at": [10]}]})
    with pytest.raises(lrkit.LRKitError, match="list of"):
        sched.load_state_dict({"step": 3, "plateaus": [{"group": 0}]})
    with pytest.raises(lrkit.LRKitError, match="group below 1"):
        sched.load_state_dict({"step": 3, "plateaus": [{**entry, "group": 4}]})
    with pytest.raises(lrkit.LRKitError, match="tracker"):
        sched.load_state_dict({"step": 3, "plateaus": [{**entry, "switched_at": [], "tracker": {"best": 1}}]})


def test_step_with_a_metric_reports_it_without_advancing_t():
    opt = _opt()
    sched = PolicyLR(opt, "plateau([FIX(k0=0.1), FIX(k0=0.01)], patience=0, monitor=val_loss)")
    opt.step()
    sched.step()
    sched.step(torch.tensor(1.0))  # as Lightning calls a scheduler config with "reduce_on_plateau": True
    sched.step(1.0)
    assert sched.t == 1 and opt.param_groups[0]["lr"] == 0.01
    for epoch_like in (3, torch.tensor(3), np.int64(3)):
        with pytest.raises(lrkit.LRKitError, match="takes no epoch"):
            sched.step(epoch_like)


def test_step_with_a_metric_warns_when_updates_ran_without_step():
    opt = _opt()
    sched = PolicyLR(opt, "plateau([FIX(k0=0.1), FIX(k0=0.01)], patience=0, monitor=val_loss)")
    for _ in range(3):
        opt.step()
    with pytest.warns(UserWarning, match="does not advance t"):
        sched.step(1.0)


def test_report_errors_name_the_problem():
    with pytest.raises(lrkit.LRKitError, match="no policy here is or holds a plateau"):
        PolicyLR(_opt(), "FIX(k0=0.1)").report(1.0)
    with pytest.raises(lrkit.LRKitError, match="takes no epoch"):
        PolicyLR(_opt(), "FIX(k0=0.1)").step(3)
    sched = PolicyLR(_opt(), SPEC)
    for bad in ("1.0", None, torch.tensor([1.0, 2.0]), True):
        with pytest.raises(lrkit.LRKitError, match="metric must be a real number"):
            sched.report(bad)
    with pytest.raises(lrkit.LRKitError, match=r"`monitor` must be one the plateaus here monitor \(val_loss\)"):
        sched.report(1.0, monitor="val_acc")
    two = PolicyLR(_opt(groups=2), ["plateau([FIX(k0=0.1)], patience=0, monitor=val_loss)",
                                    "plateau([FIX(k0=0.1)], patience=0, monitor=val_acc)"])
    with pytest.raises(lrkit.LRKitError, match="monitor different metrics"):
        two.report(1.0)
    two.report(0.5, monitor="val_acc")
    assert list(two._trackers[1]) == [()] and two._trackers[0] == {}


def test_a_shared_plateau_object_is_refused_at_construction():
    p = lrkit.parse("plateau([FIX(k0=0.1), FIX(k0=0.01)], patience=0, monitor=val_loss)")
    shared = lrkit.policies()["join"](policies=[p, p], boundaries=[100])
    with pytest.raises(lrkit.LRKitError, match="in one place only"):
        PolicyLR(_opt(), shared)


def test_a_nested_plateau_is_fed_and_resumed():
    spec = ("warmup(plateau([COS(k0=0.0001, k1=0.05, l=90), FIX(k0=0.0003)], patience=1, monitor=val_loss), "
            "steps=100)")
    opt = _opt()
    sched = PolicyLR(opt, spec)
    full = _run(opt, sched, 0, 400)
    # the reports at 40 and 80 fall in the warm-up; the plateau sees 1.5@120 (its first), 1.5@160 (bad 1),
    # 1.4@200 and 1.2@240 (better), 1.3@280 (bad 1), 1.3@320 (bad 2: switch), at its clock's 320 - 100
    assert sched.policies[0].policy.switched_at == (220.0,)
    state = sched.state_dict()
    assert state["plateaus"][0]["path"] == [0]
    opt2 = _opt()
    sched2 = PolicyLR(opt2, spec)
    _run(opt2, sched2, 0, 150)
    mid = sched2.state_dict()
    opt3 = _opt()
    sched3 = PolicyLR(opt3, spec)
    sched3.load_state_dict(mid)
    opt3.load_state_dict(opt2.state_dict())
    assert full[:150] + _run(opt3, sched3, 150, 400) == full
    assert sched3.replay_policy() == sched.replay_policy()

