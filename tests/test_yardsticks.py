"""What the yardsticks and the repeats cost: yardsticks stop once another on their seed is well ahead, they
run fastest first, a stopped one is reused only beside the one that stopped it, and repeats go only to
the candidates that can still rank first."""

from __future__ import annotations

import optuna
import pytest
from fakes import FakeRunner, finished_trial
from optuna.trial import TrialState, create_trial

from lrkit.lrbench.search.pruning import YARDSTICK_SLACK, TargetPruner
from lrkit.lrbench.search.loop import contenders
from lrkit.lrbench.search.recommend import recommend
from lrkit.lrbench.study import ranking as res
from lrkit.lrbench.study import schema

# schedule-free AdamW's baseline (FIX(k0=0.0025)) reaches 0.9 at 300 updates in this fake; Adam at 1e-3
# would take 750, Prodigy (lr 1 at speed 0.001) never gets there, nor does the digits-mlp default
SPEED = {"schedulefree:AdamWScheduleFree": 32.0, "adam": 32.0, "prodigyopt:Prodigy": 0.001}
BASELINES = ("adam", "prodigy", "schedulefree-adamw")


def _trial(role: str, seed: int, errors: dict[int, float], state=TrialState.COMPLETE):
    return create_trial(state=state, value=1.0 if state == TrialState.COMPLETE else None, intermediate_values=errors,
                        user_attrs={schema.ATTR_ROLE: role, schema.ATTR_SEED: seed})


def test_a_yardstick_stops_only_when_another_on_its_seed_reached_the_target_well_before() -> None:
    pruner, study = TargetPruner(1000, 0.9), optuna.create_study()
    study.add_trial(_trial("baseline", 0, {250: 0.2, 500: 0.05}))    # reached 0.9 at 500 on seed 0
    study.add_trial(_trial("baseline", 1, {100: 0.05}))              # seed 1's reached it at 100
    study.add_trial(_trial("candidate", 0, {100: 0.05}))             # a candidate is never a yardstick's rival
    slack = round(500 * YARDSTICK_SLACK)

    def prune(role, seed, step, error=0.2):
        return pruner.prune(study, _trial(role, seed, {step: error}))

    assert not prune("default", 0, slack - 25) and prune("default", 0, slack) and prune("baseline", 0, slack)
    assert not prune("baseline", 0, slack, error=0.05)   # it reached the target: never stopped
    assert prune("baseline", 1, 110) and not prune("baseline", 2, 900)   # each seed has its own bar
    # and candidates are still judged against candidates only (the seed-0 candidate reached it at 100)
    assert prune("candidate", 0, 100)


def _recommend(path, runner, **kw):
    args = dict(target=0.9, budget=1000, n_trials=2, storage=f"sqlite:///{path}", lr_range=(0.005, 0.2),
                runner=runner, seed=0, optimizer="sgd", baselines=BASELINES, repeats=0, lookup=False,
                portfolio=False, families=("fixed",))
    args.update(kw)
    return recommend("digits-mlp", **args)


def test_slower_yardsticks_stop_at_the_fastest_ones_bar_and_cost_only_that(tmp_path) -> None:
    runner = FakeRunner(speed=SPEED)
    rec = _recommend(tmp_path / "s.db", runner)
    yard = runner.seen[:4]
    # queued fastest first: schedule-free AdamW, then Prodigy, then the rest, the task's default last
    assert [s["optimizer"] for s in yard] == ["schedulefree:AdamWScheduleFree", "prodigyopt:Prodigy", "adam", "sgd"]
    by_name = {m.label: m for m in rec.ranked if m.role != "candidate"}
    assert by_name["schedulefree-adamw"].worst_steps == 300 and not by_name["schedulefree-adamw"].pruned
    stopped = [by_name[n] for n in ("adam", "prodigy")] + [rec.default]
    # the first evaluation at or past 1.1 x 300 = 330 updates (the fake evaluates every 100)
    assert all(m.pruned and m.stopped_at() == 400 and m.worst_steps is None for m in stopped)
    assert rec.cost.yardsticks == 300 + 3 * 400
    assert rec.best_baseline.baseline == "schedulefree-adamw"
    # a speed-up over a stopped yardstick is a lower bound from the updates it ran, and says so
    mine = rec.best.test_worst_steps()
    assert rec.speedup == pytest.approx(400 / mine) and "stopped at 400 updates" in rec.speedup_text

    # without pruning every yardstick runs its course: Adam to the target, the others to the budget
    free = _recommend(tmp_path / "n.db", FakeRunner(speed=SPEED), pruner="none")
    steps = {m.label: m.trials[0].get("steps") for m in free.ranked if m.role != "candidate"}
    assert steps["adam"] == 800 and steps["prodigy"] == 1000 and free.cost.yardsticks > rec.cost.yardsticks


def test_a_stopped_yardstick_is_reused_only_beside_the_yardstick_that_stopped_it(tmp_path) -> None:
    _recommend(tmp_path / "y.db", FakeRunner(speed=SPEED), study_name="first")
    same = _recommend(tmp_path / "y.db", FakeRunner(speed=SPEED), study_name="same")
    assert same.cost.yardsticks == 0 and same.cost.reused == 4
    runner = FakeRunner(speed=SPEED)
    alone = _recommend(tmp_path / "y.db", runner, study_name="alone", baselines=("adam",))
    adam = next(m for m in alone.ranked if m.baseline == "adam")
    # the first study's Adam was stopped because schedule-free AdamW was faster; this study has no such
    # rival, so Adam runs again, to the target
    assert adam.trials[0].reused_from is None and adam.worst_steps == 800 and ("adam", "FIX(k0=0.001)") in {
        (s["optimizer"], s["spec"]) for s in runner.seen}


def _crossing_at(trial, before: float, after: float):
    """``trial`` (reached 0.9 at its ``steps``) with the evaluation 100 updates earlier at ``before`` and the
    one at ``steps`` at ``after``: it crossed 0.9 in between, where the two interpolate to 0.9."""
    result = trial.user_attrs[schema.ATTR_RESULT]
    step = result["steps_to_target"]
    result["curve"] = [{"step": step - 100, "val_acc": before, "test_acc": before},
                       {"step": step, "val_acc": after, "test_acc": after}]
    return trial


def test_repeats_go_to_the_candidates_that_can_still_rank_first() -> None:
    study = optuna.create_study()
    study.add_trial(finished_trial("candidate", "FIX(k0=0.003)", 0, 300))
    # every seed run: worst 400 updates, crossing 0.9 at 350 on that seed
    study.add_trial(_crossing_at(finished_trial("candidate", "FIX(k0=0.003)", 1, 400), 0.89, 0.91))
    study.add_trial(finished_trial("candidate", "FIX(k0=0.004)", 0, 350))   # could still be ahead of 400
    # at 400 too: the ranking's tie-break, the crossing, decides: 310 could still be ahead of 350, 383 not
    study.add_trial(_crossing_at(finished_trial("candidate", "FIX(k0=0.005)", 0, 400), 0.89, 0.99))
    study.add_trial(_crossing_at(finished_trial("candidate", "FIX(k0=0.008)", 0, 400), 0.85, 0.91))
    study.add_trial(finished_trial("candidate", "FIX(k0=0.006)", 0, 450))   # cannot: 450 > 400
    study.add_trial(finished_trial("candidate", "FIX(k0=0.007)", 0, None))  # missed it
    ranked = res.rank(res.records(study))
    assert {m.spec for m in contenders(ranked, (0, 1))} == {"FIX(k0=0.003)", "FIX(k0=0.004)", "FIX(k0=0.005)"}
    # before any candidate has every seed, only the first-ranked is repeated
    assert [m.spec for m in contenders(ranked, (0, 1, 2))] == ["FIX(k0=0.003)"]  # confirmed ranks first


def test_a_default_search_repeats_fewer_candidates_than_it_ran_and_confirms_the_first(tmp_path) -> None:
    runner = FakeRunner(seeded=True)
    # unpruned, so that several candidates reach the target on seed 0 at different speeds
    rec = _recommend(tmp_path / "r.db", runner, n_trials=8, baselines=(), repeats=1, pruner="none")
    assert rec.best.seeds == [0, 1] and rec.best.reached_all
    cands = [m for m in rec.ranked if m.role == "candidate" and m.reached_all]
    repeated = [m for m in cands if 1 in m.seeds]
    first_seed = {m.spec: next(r for r in m.trials if r.seed == 0).get("steps_to_target") for m in cands}
    # each repeated candidate could still pass the recommendation; one that could not was left on seed 0
    assert repeated and all(first_seed[m.spec] <= rec.best.worst_steps for m in repeated)
    assert any(m.seeds == [0] and first_seed[m.spec] > rec.best.worst_steps for m in cands)
