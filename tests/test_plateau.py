"""``plateau``: the decision rule, the join it is, its structure, and plateaus inside other policies."""

from __future__ import annotations

import dataclasses
import doctest
import math

import numpy as np
import pytest

import lrkit
from lrkit.errors import PolicyError
from lrkit.policies import plateau as plateaus, summary
from lrkit.policies.plateau import Plateau, PlateauTracker

THREE = "[FIX(k0=0.1), FIX(k0=0.01), FIX(k0=0.001)]"


def _plateau(patience=1, monitor="val_loss", **kw) -> Plateau:
    extra = "".join(f", {k}={v}" for k, v in kw.items())
    return lrkit.parse(f"plateau({THREE}, patience={patience}, monitor={monitor}{extra})")


def _feed(p: Plateau, values, every: int = 100, tracker=None):
    """Observe ``values`` at t = every, 2 every, ...; returns the plateau, the tracker and the t of each switch."""
    switched = []
    for i, v in enumerate(values, start=1):
        before = p.switched_at
        p, tracker = p.observe(tracker, v, i * every)
        if p.switched_at != before:
            switched.append(i * every)
    return p, tracker, switched


def test_the_docstring_example_runs():
    assert doctest.testmod(plateaus).failed == 0


# ---- the rule -------------------------------------------------------------------------------------
def test_switches_at_evaluation_patience_plus_one_without_improvement():
    # loss improves twice, then stalls: with patience 2 the 3rd stalled evaluation switches
    p, tracker, switched = _feed(_plateau(patience=2), [1.0, 0.9, 0.9, 0.9, 0.9])
    assert switched == [500] and p.switched_at == (500.0,)
    assert tracker == PlateauTracker(best=0.9, bad=0, last_t=500.0)  # best is kept, the count restarts
    # the next function gets patience + 1 stalled evaluations of its own before the next switch
    for t, bad in ((600, 1), (700, 2)):
        p, tracker = p.observe(tracker, 0.9, t)
        assert p.switched_at == (500.0,) and tracker.bad == bad
    p, tracker = p.observe(tracker, 0.9, 800)
    assert p.switched_at == (500.0, 800.0) and tracker.bad == 0


def test_the_next_function_is_judged_against_the_best_so_far():
    p, tracker, switched = _feed(_plateau(patience=2), [1.0, 0.9, 0.9, 0.9, 0.9, 0.95, 0.95, 0.85, 0.95, 0.95, 0.95])
    # switch 1 after evaluations 3-5; 0.95 twice is worse than the kept best 0.9; 0.85 improves (count 0);
    # then three more stalls switch again
    assert switched == [500, 1100] and p.switched_at == (500.0, 1100.0) and tracker.best == 0.85


@pytest.mark.parametrize("monitor, values, switched", [
    ("val_loss", [1.0, 1.1, 1.2], [300]),          # a rising loss stalls
    ("val_acc", [0.5, 0.4, 0.3], [300]),           # a falling accuracy stalls
    ("val_loss", [1.0, 0.9, 0.8, 0.7], []),        # a falling loss improves every time
    ("val_acc", [0.5, 0.6, 0.7, 0.8], []),         # a rising accuracy improves every time
])
def test_the_monitor_sets_the_direction(monitor, values, switched):
    assert _feed(_plateau(patience=1, monitor=monitor), values)[2] == switched


def test_relative_and_absolute_thresholds():
    # rel: 0.995 is not below 1.0 - 1% of 1.0 = 0.99; abs 0.001: it is below 1.0 - 0.001
    rel = _plateau(patience=0, threshold=0.01)
    absolute = _plateau(patience=0, threshold=0.001, threshold_mode="abs")
    assert _feed(rel, [1.0, 0.995])[2] == [200]
    assert _feed(absolute, [1.0, 0.995])[2] == []
    assert _feed(absolute, [1.0, 0.9995])[2] == [200]
    # an accuracy must rise by more than the threshold: 0.505 > 0.5 + 0.01 * 0.5 is False
    acc = _plateau(patience=0, monitor="val_acc", threshold=0.01)
    assert _feed(acc, [0.5, 0.505])[2] == [200] and _feed(acc, [0.5, 0.506])[2] == []


def test_a_negative_loss_still_needs_to_fall():
    # PyTorch's rel rule uses best * (1 - threshold), which for a negative best lies *above* it, so a
    # worse value would count as better; lrkit uses |best|
    p = _plateau(patience=0, threshold=0.1)
    assert p.improves(-1.05, -1.0) is False and p.improves(-1.2, -1.0) is True
    assert p.improves(0.95, 1.0) is False and p.improves(0.85, 1.0) is True  # as PyTorch for values >= 0


def test_nan_is_never_an_improvement_and_the_first_value_always_is():
    p = _plateau(patience=0)
    assert p.improves(5.0, None) and not p.improves(math.nan, None) and not p.improves(math.nan, 1.0)
    assert _feed(p, [math.nan, math.nan])[2] == [100, 200]


def test_never_switches_past_the_last_function():
    p, tracker, switched = _feed(_plateau(patience=0), [1.0] * 10)
    assert switched == [200, 300] and len(p.switched_at) == len(p.policies) - 1
    assert tracker.bad == 7  # it keeps counting; there is nothing left to switch to


def test_no_switch_at_the_step_where_the_function_started():
    p = _plateau(patience=0)
    p, tracker = p.observe(None, math.nan, 0)  # bad 1 > patience 0, but the first function started at 0
    assert p.switched_at == () and tracker.bad == 1
    p, tracker = p.observe(tracker, math.nan, 10)
    assert p.switched_at == (10.0,)
    p, tracker = p.observe(tracker, math.nan, 10)  # a second value at the same step: no empty segment
    assert p.switched_at == (10.0,) and tracker.bad == 1
    p, tracker = p.observe(tracker, math.nan, 11)
    assert p.switched_at == (10.0, 11.0)


def test_observe_refuses_bad_input_naming_it():
    p = _plateau()
    p, tracker = p.observe(None, 1.0, 100)
    with pytest.raises(PolicyError, match=r"previous observation's t.*t=50\.0, previous=100\.0"):
        p.observe(tracker, 1.0, 50)
    with pytest.raises(PolicyError, match="metric must be a real number"):
        p.observe(tracker, "1.0", 200)  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="metric must be a real number"):
        p.observe(tracker, True, 200)
    with pytest.raises(PolicyError, match=r"`t >= 0`"):
        p.observe(tracker, 1.0, -1)
    switched = dataclasses.replace(_plateau(), switched_at=(500,))
    with pytest.raises(PolicyError, match="last switch point"):
        switched.observe(None, 1.0, 400)
    with pytest.raises(PolicyError, match="PlateauTracker"):
        p.observe({"best": 1.0}, 1.0, 200)  # type: ignore[arg-type]


def test_observing_leaves_the_inputs_unchanged():
    p = _plateau(patience=0)
    tracker = PlateauTracker(best=1.0, bad=0, last_t=100.0)
    q, after = p.observe(tracker, 2.0, 200)
    assert p.switched_at == () and tracker == PlateauTracker(best=1.0, bad=0, last_t=100.0)
    assert q.switched_at == (200.0,) and after.last_t == 200.0


def test_tracker_round_trips_and_refuses_other_data():
    tracker = PlateauTracker(best=0.25, bad=3, last_t=700.0)
    assert PlateauTracker.from_dict(tracker.to_dict()) == tracker
    assert PlateauTracker.from_dict(PlateauTracker().to_dict()) == PlateauTracker()
    for bad in ({"best": 1.0}, {"best": "x", "bad": 0, "last_t": None}, {"best": None, "bad": -1, "last_t": None},
                {"best": None, "bad": 0, "last_t": -5}, [1, 2]):
        with pytest.raises(PolicyError, match="tracker"):
            PlateauTracker.from_dict(bad)


# ---- the policy: a join of what was decided ----------------------------------------------------
def test_it_is_the_join_of_the_functions_so_far():
    spec = ("plateau([COS(k0=0.001, k1=0.1, l=700), SINEXP(k0=0.001, k1=0.006, gamma=0.9999, l=300), "
            "FIX(k0=0.0001)], patience=3, monitor=val_acc, switched_at=[1234, 5000])")
    p = lrkit.parse(spec)
    join = lrkit.parse("join([COS(k0=0.001, k1=0.1, l=700), SINEXP(k0=0.001, k1=0.006, gamma=0.9999, l=300), "
                       "FIX(k0=0.0001)], boundaries=[1234, 5000])")
    assert p.as_join() == join
    ts = np.arange(0, 8000, dtype=np.float64)
    assert np.array_equal(p.values(ts), join.values(ts))  # the same code evaluates both
    assert [p(t) for t in (0, 1233, 1234, 4999, 5000, 10**9)] == [join(t) for t in (0, 1233, 1234, 4999, 5000, 10**9)]
    first = lrkit.parse("plateau([FIX(k0=0.1), FIX(k0=0.01)], patience=1, monitor=val_loss)")
    assert first.as_join() == lrkit.parse("join([FIX(k0=0.1)], boundaries=[])")
    assert first(10**9) == 0.1  # with no switch yet the first function runs on


def test_a_join_replays_the_blocks_a_run_computed_before_and_after_a_switch():
    # a run computes a block with the plateau as it was, switches mid-block, and computes the block
    # again; the join of the final state gives the bits of both parts
    f = "SINEXP(k0=0.001, k1=0.006, gamma=0.9999, l=37)"
    before = lrkit.parse(f"plateau([{f}, COS(k0=0, k1=0.05, l=90)], patience=0, monitor=val_loss)")
    after, _ = before.observe(PlateauTracker(best=1.0, bad=0, last_t=100.0), 2.0, 300)
    block = np.arange(256, 512, dtype=np.float64)
    replay = after.as_join().values(block)
    assert np.array_equal(replay[block < 300], before.values(block)[block < 300])
    assert np.array_equal(replay[block >= 300], after.values(block)[block >= 300])


def test_spec_rules_name_the_parameter():
    cases = {
        f"plateau({THREE}, patience=-1, monitor=val_loss)": "`patience >= 0`",
        f"plateau({THREE}, patience=1, monitor=loss)": "`monitor` must be one of 'val_loss', 'val_acc'",
        f"plateau({THREE}, patience=1, monitor=val_loss, threshold=-0.1)": "`threshold >= 0`",
        f"plateau({THREE}, patience=1, monitor=val_loss, threshold_mode=relative)": "`threshold_mode` must be one of",
        f"plateau({THREE}, patience=1, monitor=val_loss, switched_at=[5, 9, 12])":
            "len(switched_at) <= len(policies) - 1",
        f"plateau({THREE}, patience=1, monitor=val_loss, switched_at=[9, 5])": "0 < s_1 < s_2",
        f"plateau({THREE}, patience=1, monitor=val_loss, switched_at=[0])": "0 < s_1 < s_2",
        "plateau([], patience=1, monitor=val_loss)": "len(policies) >= 1",
        "plateau([FIX(k0=0.1)], monitor=val_loss)": "plateau needs 'patience'",
    }
    for text, fragment in cases.items():
        with pytest.raises(lrkit.SpecError) as err:
            lrkit.parse(text)
        assert fragment in str(err.value), (text, str(err.value))


def test_spec_round_trip_keeps_the_switch_points():
    p = dataclasses.replace(_plateau(), switched_at=(250, 900))
    assert p.spec().endswith("switched_at=[250, 900])")
    assert lrkit.parse(p.spec()) == p and lrkit.from_dict(p.to_dict()) == p


# ---- structure: what lrkit show reads --------------------------------------------------------
def test_children_are_the_functions_that_took_over_and_switches_say_the_rest_waits():
    p = _plateau(patience=4)
    assert [(c.policy.k0, c.start, c.end) for c in p.children()] == [(0.1, 0, None)]
    assert p.switches() == ((0.0, "segment 1 runs until val_loss stalls (patience 4); 2 more wait"),)
    p = dataclasses.replace(p, switched_at=(300,))
    assert [(c.policy.k0, c.start, c.end) for c in p.children()] == [(0.1, 0, 300), (0.01, 300, None)]
    assert p.switches() == ((300, "segment 2 starts (val_loss stalled) and runs until it stalls again; 1 more waits"),)
    p = dataclasses.replace(p, switched_at=(300, 800))
    assert p.switches() == ((300, "segment 2 starts (val_loss stalled)"), (800, "segment 3 starts (val_loss stalled)"))


def test_show_lists_the_first_function_and_the_wait(capsys):
    from lrkit.cli.main import main

    spec = f"warmup(plateau({THREE}, patience=2, monitor=val_acc), steps=50)"
    assert main(["show", spec, "--steps", "1000"]) == 0
    out = capsys.readouterr().out
    assert "\n   0  0              start\n" in out
    assert "\n  50  0.1            warm-up ends, segment 1 runs until val_acc stalls (patience 2); 2 more wait" in out
    assert summary.switch_points(lrkit.parse(spec)) == [(50.0, "warm-up ends"), (
        50.0, "segment 1 runs until val_acc stalls (patience 2); 2 more wait")]


# ---- plateaus inside other policies -------------------------------------------------------------
def test_a_plateau_inside_warmup_observes_on_its_own_clock_from_the_end_of_the_warm_up():
    policy = lrkit.parse(f"warmup(plateau({THREE}, patience=0, monitor=val_loss), steps=100)")
    assert [(f.path, f.start, f.end) for f in plateaus.find_plateaus(policy)] == [((0,), 100.0, None)]
    trackers: dict = {}
    policy, trackers = plateaus.observe_all(policy, trackers, 1.0, 50)  # during the warm-up: not in charge
    assert trackers == {} and policy.policy.switched_at == ()
    policy, trackers = plateaus.observe_all(policy, trackers, 1.0, 150)
    policy, trackers = plateaus.observe_all(policy, trackers, 1.0, 250)
    assert policy.policy.switched_at == (150.0,)  # in the plateau's clock: update 250 of the warmup's
    assert trackers[(0,)] == PlateauTracker(best=1.0, bad=0, last_t=150.0)
    assert policy(249) == 0.1 and policy(250) == 0.01


def test_a_plateau_in_a_later_join_segment_gets_values_only_while_in_charge():
    inner = f"plateau({THREE}, patience=0, monitor=val_loss)"
    policy = lrkit.parse(f"join([FIX(k0=0.5), {inner}, FIX(k0=0.2)], boundaries=[100, 1000])")
    trackers: dict = {}
    for t in (50, 100, 200, 300, 1000, 1100):
        policy, trackers = plateaus.observe_all(policy, trackers, 1.0, t)
    # t=100 and 200 reach it at its clock's 0 and 100 (switch at 100); 300 is its 200 (switch); later ones are past
    assert policy.policies[1].switched_at == (100.0, 200.0)
    assert list(trackers) == [(1,)] and trackers[(1,)].last_t == 200.0
    assert [policy(t) for t in (99, 100, 199, 200, 299, 300, 999, 1000)] == [0.5, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001,
                                                                             0.2]


def test_outer_plateau_switches_first_and_the_inner_one_starts_with_that_value():
    inner = f"plateau({THREE}, patience=5, monitor=val_loss)"
    policy = lrkit.parse(f"plateau([FIX(k0=1), {inner}], patience=0, monitor=val_loss)")
    policy, trackers = plateaus.observe_all(policy, {}, 1.0, 100)
    assert [f.path for f in plateaus.find_plateaus(policy)] == [()]  # the inner one waits: no clock yet
    policy, trackers = plateaus.observe_all(policy, trackers, 2.0, 200)  # outer switches at 200
    assert policy.switched_at == (200.0,)
    assert [(f.path, f.start) for f in plateaus.find_plateaus(policy)] == [((), 0.0), ((1,), 200.0)]
    assert trackers[(1,)] == PlateauTracker(best=2.0, bad=0, last_t=0.0)
    assert plateaus.replay(policy) == lrkit.parse(
        f"join([FIX(k0=1), join([FIX(k0=0.1)], boundaries=[])], boundaries=[200])")


def test_monitor_selects_plateaus_and_disagreeing_plateaus_need_it():
    policy = lrkit.parse(f"join([plateau({THREE}, patience=0, monitor=val_loss), "
                         f"plateau({THREE}, patience=0, monitor=val_acc)], boundaries=[1000])")
    with pytest.raises(PolicyError, match=r"monitor different metrics \(val_acc, val_loss\)"):
        plateaus.observe_all(policy, {}, 1.0, 10)
    policy, trackers = plateaus.observe_all(policy, {}, 1.0, 10, monitor="val_acc")
    assert trackers == {}  # the val_acc plateau is not in charge yet, the val_loss one was not asked
    policy, trackers = plateaus.observe_all(policy, trackers, 1.0, 10, monitor="val_loss")
    assert list(trackers) == [(0,)]
    with pytest.raises(PolicyError, match="`monitor` must be one of"):
        plateaus.observe_all(policy, trackers, 1.0, 10, monitor="loss")


def test_a_shared_plateau_object_is_refused():
    p = _plateau()
    shared = lrkit.policies()["join"](policies=[p, p], boundaries=[100])
    with pytest.raises(PolicyError, match="in one place only"):
        plateaus.check_unshared(shared)
    with pytest.raises(PolicyError, match="in one place only"):
        plateaus.observe_all(shared, {}, 1.0, 5)
    fix = lrkit.parse("FIX(k0=0.1)")
    plateaus.check_unshared(lrkit.policies()["join"](policies=[fix, fix], boundaries=[100]))  # no plateau: fine


def test_with_switches_restores_and_refuses_a_path_without_a_plateau():
    policy = lrkit.parse(f"warmup(plateau({THREE}, patience=0, monitor=val_loss), steps=100)")
    restored = plateaus.with_switches(policy, (0,), [400, 900])
    assert restored.policy.switched_at == (400.0, 900.0) and restored.steps == 100
    with pytest.raises(PolicyError, match="no plateau at path"):
        plateaus.with_switches(policy, (), [5])
    with pytest.raises(PolicyError, match="no policy at path"):
        plateaus.with_switches(policy, (0, 3), [5])


def test_replay_is_pure_and_gives_the_same_bits():
    policy = lrkit.parse("scale(warmup(plateau([SINEXP(k0=0.001, k1=0.006, gamma=0.9999, l=37), COS(k0=0, k1=0.05, "
                         "l=90)], patience=0, monitor=val_loss, switched_at=[333]), steps=20), factor=3)")
    pure = plateaus.replay(policy)
    assert not plateaus.contains_plateau(pure) and plateaus.contains_plateau(policy)
    ts = np.arange(0, 2048, dtype=np.float64)
    for start in range(0, 2048, 256):
        assert np.array_equal(pure.values(ts[start:start + 256]), policy.values(ts[start:start + 256]))
    fix = lrkit.parse("FIX(k0=0.1)")
    assert plateaus.replay(fix) is fix
