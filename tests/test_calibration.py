"""The validation target that stands for the test target: measured on the yardsticks, applied to every trial."""

from __future__ import annotations

import pytest
from fakes import FakeRunner

import lrkit.lrbench.study.storage as st
from lrkit.lrbench.run.judging import rejudged
from lrkit.lrbench.run.runner import run_trial
from lrkit.lrbench.search.calibration import MAX_OFFSET, MIN_TRIALS, calibration_of, measure
from lrkit.lrbench.search.recommend import recommend
from lrkit.lrbench.tasks.catalogue import get_task


def _curve(pairs, every=100):
    return [{"step": every * (i + 1), "val_acc": v, "test_acc": t} for i, (v, t) in enumerate(pairs)]


def test_the_offset_is_the_median_gap_near_the_target_and_is_clamped() -> None:
    near = [_curve([(0.70, 0.60), (0.86, 0.85), (0.875, 0.865)])] * MIN_TRIALS  # the 0.1 gap far below is ignored
    found = measure(near, 0.85)
    assert found is not None and found.offset == pytest.approx(0.01) and found.points == 2 * MIN_TRIALS
    assert found.trials == MIN_TRIALS and found.noise == pytest.approx(0.0, abs=1e-12)
    wide = measure([_curve([(0.90, 0.85)])] * MIN_TRIALS, 0.85)
    assert wide.offset == MAX_OFFSET and wide.measured == pytest.approx(0.05)
    assert "clamped from +0.0500" in wide.text(0.85)
    assert measure([_curve([(0.86, 0.85)])] * (MIN_TRIALS - 1), 0.85) is None  # too few yardsticks
    assert measure([_curve([(0.5, 0.4)])] * MIN_TRIALS, 0.85) is None  # none near the target


def test_a_stored_result_is_judged_again_at_the_calibrated_target() -> None:
    result = {"on": "val", "target": 0.85, "budget": 1000, "curve": _curve([(0.84, 0.83), (0.855, 0.845),
                                                                            (0.865, 0.852), (0.87, 0.86)]),
              "steps_to_target": 200, "val_steps_to_target": 200, "test_steps_to_target": 300}
    assert rejudged(result, 0.86)["steps_to_target"] == 300  # the first evaluation at or above 0.86
    assert rejudged(result, 0.84)["steps_to_target"] == 100  # a negative offset: earlier
    assert rejudged(result, 0.86)["val_target"] == 0.86 and result["steps_to_target"] == 200  # a copy
    stopped = {**result, "curve": result["curve"][:3]}  # stopped once both had reached 0.85, at 300
    assert rejudged(stopped, 0.87)["steps_to_target"] == 300  # counted where it stopped, in its favour
    ran_out = {**result, "budget": 400, "test_steps_to_target": 400}
    assert rejudged(ran_out, 0.9)["steps_to_target"] is None  # the budget ended it: not reached
    assert rejudged({**result, "on": "test"}, 0.9) == {**result, "on": "test"}


def test_the_runner_judges_validation_at_the_offset_target() -> None:
    task = get_task("digits-mlp")
    kw = dict(budget=300, target=0.9, seed=0, eval_every=25, on="val", stop_at_target=False, early_stop=False)
    plain = run_trial(task, "FIX(k0=0.05)", **kw)
    raised = run_trial(task, "FIX(k0=0.05)", val_offset=0.04, **kw)
    same = [[(p.step, p.val_acc, p.test_acc) for p in r.curve] for r in (plain, raised)]
    assert same[0] == same[1]  # the same run: only the judging differs
    vals = [(p.step, p.val_acc) for p in raised.curve]
    assert raised.val_target == pytest.approx(0.94) and plain.val_target is None
    assert raised.steps_to_target == next((s for s, v in vals if v >= 0.94), None)
    assert plain.steps_to_target == next((s for s, v in vals if v >= 0.9), None)
    assert raised.test_steps_to_target == plain.test_steps_to_target  # the test target is untouched


def test_a_study_calibrates_on_its_yardsticks_and_judges_every_trial_there(tmp_path) -> None:
    # validation reads 0.01 above test in this fake: judged at the same number, val would reach it early
    runner = FakeRunner(val_shift=-0.01, speed={"adam": 50.0, "adamw": 60.0, "prodigyopt:Prodigy": 0.05})
    rec = recommend("digits-mlp", target=0.9, budget=1000, n_trials=4, storage=f"sqlite:///{tmp_path / 's.db'}",
                    lr_range=(0.005, 0.2), runner=runner, seed=0, optimizer="sgd", repeats=0,
                    baselines=("adam", "prodigy", "adamw-cosine"))
    assert rec.calibration is not None and rec.calibration.offset == pytest.approx(0.01, abs=1e-6)
    study = st.load_study(st.open_storage(f"sqlite:///{tmp_path / 's.db'}"), None)[0]
    assert calibration_of(study, rec.config) == rec.calibration  # stored once, read back
    candidates = [s for s in runner.seen if s["spec"] not in ("FIX(k0=0.01)",) and s["optimizer"] == "sgd"]
    assert candidates and all(s["val_offset"] == pytest.approx(0.01) for s in candidates)
    both = [m for m in rec.ranked if m.worst_steps is not None and m.test_worst_steps() is not None]
    assert len(both) >= 3  # yardsticks and candidates
    for m in both:  # val updates now stand for test updates: here, where val is test + 0.01, equal
        assert m.worst_steps == m.test_worst_steps(), m.label
    assert "judged on validation at 0.91 = the target 0.9 +0.0100" in rec.summary()
    assert rec.to_dict()["val_calibration"]["offset"] == pytest.approx(0.01, abs=1e-6)
    assert rec.uncalibrated is None and "uncalibrated" not in rec.summary()


def test_a_study_with_too_few_yardsticks_near_the_target_says_it_went_uncalibrated(tmp_path) -> None:
    rec = recommend("digits-mlp", target=0.9, budget=1000, n_trials=2, storage=f"sqlite:///{tmp_path / 's.db'}",
                    lr_range=(0.005, 0.2), runner=FakeRunner(val_shift=-0.01), seed=0, optimizer="sgd", repeats=0,
                    baselines=("adam",))  # two yardsticks: fewer than MIN_TRIALS
    assert rec.calibration is None and rec.uncalibrated.startswith("judged on validation at the target itself")
    assert f"  {rec.uncalibrated}" in rec.summary().splitlines() and rec.to_dict()["uncalibrated"] == rec.uncalibrated


def test_a_study_judged_on_test_is_not_calibrated(tmp_path) -> None:
    rec = recommend("digits-mlp", target=0.9, budget=1000, n_trials=2, storage=f"sqlite:///{tmp_path / 's.db'}",
                    lr_range=(0.005, 0.2), runner=FakeRunner(val_shift=-0.01), seed=0, optimizer="sgd", repeats=0,
                    baselines=("adam", "prodigy", "adamw-cosine"), on="test")
    assert rec.calibration is None and rec.uncalibrated is None and "judged on validation" not in rec.summary()
