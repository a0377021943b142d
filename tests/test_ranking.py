"""The ranking a reader can check: methods by their worst seed, in tiers, and the speed-ups stated honestly."""

from __future__ import annotations

import pytest

from lrkit.lrbench.report import formats
from lrkit.lrbench.study import ranking as res


def _trial(number, steps, acc, *, spec="FIX(k0=0.1)", seed=0, role="candidate", state="COMPLETE", test_steps="same",
           optimizer="sgd", gap=0.0, baseline=None):
    test_steps = steps if test_steps == "same" else test_steps
    result = {"steps_to_target": steps, "best_val_acc": acc, "best_acc": acc, "loss_gap": gap, "status": "x",
              "on": "val", "test_steps_to_target": test_steps, "seed": seed}
    return res.TrialRecord(number=number, state=state, role=role, family="fixed", spec=spec, result=result,
                           optimizer=optimizer, seed=seed, baseline=baseline)


def _seeds(spec, *outcomes, start=0, **kw):
    return [_trial(start + i, steps, acc, spec=spec, seed=i, **kw) for i, (steps, acc) in enumerate(outcomes)]


def test_a_method_is_all_its_seeds_ranked_by_the_worst() -> None:
    recs = (_seeds("A", (100, 0.95), (300, 0.95)) + _seeds("B", (200, 0.95), (200, 0.95), start=10)
            + _seeds("C", (150, 0.95), (250, 0.96), start=20))
    ranked = res.rank(recs)
    assert [m.spec for m in ranked] == ["B", "C", "A"]  # worst seeds 200, 250, 300
    assert [m.worst_steps for m in ranked] == [200, 250, 300] and [m.rank for m in ranked] == [1, 2, 3]
    assert ranked[2].spread() == (pytest.approx(100.0), "updates") and ranked[0].spread() == (0.0, "updates")


def test_tiers_confirmed_then_unconfirmed_then_missed_then_pruned() -> None:
    confirmed = _seeds("slow but confirmed", (400, 0.93), (400, 0.93))
    unconfirmed = _seeds("fast, one seed", (100, 0.95), start=10)
    fragile = _seeds("missed on seed 1", (50, 0.97), (None, 0.60), start=20)
    missed = _seeds("missed", (None, 0.89), (None, 0.88), start=30)
    pruned = [_trial(40, None, 0.99, spec="pruned", state="PRUNED")]
    ranked = res.rank(pruned + fragile + missed + unconfirmed + confirmed)
    assert [m.spec for m in ranked] == ["slow but confirmed", "fast, one seed", "missed", "missed on seed 1",
                                        "pruned"]
    assert [m.tier for m in ranked] == ["confirmed", "unconfirmed", "missed", "missed", "pruned"]
    # a method that missed on any seed never ranks above one that reached on all
    assert ranked.index(next(m for m in ranked if m.spec == "missed on seed 1")) > 1


def test_duplicates_are_not_methods_of_their_own() -> None:
    first = _trial(0, 200, 0.95, spec="A")
    copy = _trial(1, 200, 0.95, spec="A")
    copy.duplicate_of = 0
    ranked = res.rank([first, copy])
    assert len(ranked) == 1 and [r.number for r in ranked[0].trials] == [0]


def test_the_table_shows_what_it_ranks_on_with_units_and_integers() -> None:
    ranked = res.rank(_seeds("COS(k0=0, k1=0.1, l=50)", (200, 0.9512), (250, 0.9401))
                      + _seeds("FIX(k0=0.1)", (None, 0.8), start=10))
    text = formats.format_methods(ranked, on="val")
    header, first, second = text.splitlines()[:3]
    assert "reached" in header and "val updates" in header and "spread" in header and "test updates" in header
    assert "2/2" in first and " 250 " in first and "±25 updates" in first and "250.0" not in first
    assert "0/1" in second
    assert "ranked by the worst seed on val accuracy" in text


def test_speedup_is_on_test_updates_and_says_when_ours_is_slower() -> None:
    ours = res.rank(_seeds("ours", (200, 0.95, ), (200, 0.95), test_steps=300))[0]
    fast_peer = res.rank(_seeds("peer", (100, 0.95), (100, 0.96), test_steps=150, role="baseline",
                                baseline="prodigy", start=10))[0]
    ratio, text = res.speedup(ours, fast_peer, 1000, "the best baseline (prodigy)")
    assert ratio == pytest.approx(0.5) and "ours is slower" in text and "150" in text and "300" in text
    slow = res.rank(_seeds("default", (None, 0.7), (None, 0.7), test_steps=None, role="default", start=20))[0]
    ratio, text = res.speedup(ours, slow, 1000, "the default")
    assert ratio == pytest.approx(1000 / 300) and text.startswith(">=")
    missed = res.rank(_seeds("x", (200, 0.95), (200, 0.95), test_steps=None, start=30))[0]
    assert res.speedup(missed, slow, 1000, "the default")[0] is None


def test_the_mutual_impact_table() -> None:
    recs = (_seeds("FIX(k0=0.1)", (300, 0.9), (300, 0.9)) + _seeds("FIX(k0=0.01)", (200, 0.9), (250, 0.92), start=10)
            + _seeds("FIX(k0=0.001)", (100, 0.95), start=20, optimizer="adam")
            + _seeds("FIX(k0=1)", (None, 0.5), start=30, optimizer="prodigyopt:Prodigy"))
    table = res.by_optimizer(res.rank(recs))
    assert table["fixed"]["sgd"] == {"updates": 250, "acc": 0.9, "methods": 2}
    assert table["fixed"]["adam"]["updates"] == 100
    assert table["fixed"]["prodigyopt:Prodigy"]["updates"] is None
    text = formats.format_by_optimizer(table)
    assert "250 / 0.900" in text and "prodigyopt:Prodigy" in text.splitlines()[0]


def test_a_method_says_what_it_is_through_declared_properties() -> None:
    # what the method trains with is the same in every trial (it is the method key): read from the first trial
    trials = _seeds("FIX(k0=0.1)", (200, 0.95), (250, 0.94), role="baseline", baseline="adam", optimizer="adam")
    m = res.rank(trials)[0]
    said = {name: getattr(m, name) for name in ("role", "family", "spec", "optimizer", "optimizer_kwargs", "lr_driver",
                                                "baseline", "lookup")}
    assert said == {"role": "baseline", "family": "fixed", "spec": "FIX(k0=0.1)", "optimizer": "adam",
                    "optimizer_kwargs": {}, "lr_driver": "policy", "baseline": "adam", "lookup": None}
    assert all(isinstance(getattr(res.MethodRecord, name), property) for name in said)  # visible to type checkers
    with pytest.raises(AttributeError):
        m.seed  # noqa: B018 (a trial has a seed; a method has seeds)


def test_a_tie_at_the_evaluation_interval_goes_to_the_earlier_interpolated_crossing():
    from lrkit.lrbench.study.ranking import MethodRecord, TrialRecord

    def rec(number: int, accs: list[float]) -> TrialRecord:
        curve = [{"step": 100 * (i + 1), "val_acc": a, "test_acc": a} for i, a in enumerate(accs)]
        reached = next(p["step"] for p in curve if p["val_acc"] >= 0.8)
        return TrialRecord(number=number, state="COMPLETE", role="candidate", family="fixed", spec=f"FIX(k0={number})",
                           result={"steps_to_target": reached, "target": 0.8, "on": "val", "curve": curve,
                                   "best_val_acc": max(accs)}, seed=0)

    slow, fast = rec(1, [0.5, 0.70, 0.81]), rec(2, [0.5, 0.70, 0.90])  # both first at 0.8 at update 300
    assert slow.crossing() == pytest.approx(200 + 100 / 1.1) and fast.crossing() == pytest.approx(250.0)
    ranked = sorted([MethodRecord([slow]), MethodRecord([fast])], key=MethodRecord.sort_key)
    assert [m.spec for m in ranked] == ["FIX(k0=2)", "FIX(k0=1)"]
