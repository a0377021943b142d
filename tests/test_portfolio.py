"""The search's first candidates (lrkit's shipped portfolio) and its peak windows (a schedule-free optimizer's;
a window grown towards the best draw)."""

from __future__ import annotations

import dataclasses

import pytest
from fakes import FakeRunner, finished_trial

import lrkit.lrbench.study.storage as st
from lrkit.lrbench.report.formats import format_methods
from lrkit.lrbench.search.objective import contexts
from lrkit.lrbench.search.known import PORTFOLIO, entries_for
from lrkit.lrbench.search.recommend import recommend
from lrkit.lrbench.search.space import FAMILIES, SCHEDULE_FREE_WINDOW, in_range
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.queue import counted
from lrkit.lrbench.study.schema import ATTR_PORTFOLIO
from lrkit.spec import parse

SF, PRODIGY = "schedulefree:AdamWScheduleFree", "prodigyopt:Prodigy"
SEARCHED = ("adam", PRODIGY, SF)


def _config(**kw) -> StudyConfig:
    args = dict(task="digits-mlp", target=0.9, budget=1000, optimizer="sgd", n_trials=8, optimizers=SEARCHED,
                families=tuple(FAMILIES))
    args.update(kw)
    return StudyConfig(**args)


def test_a_study_takes_the_entries_it_searches_at_most_half_its_candidates() -> None:
    assert [e.name for e in entries_for(_config())] == [e.name for e in PORTFOLIO]
    assert [e.name for e in entries_for(_config(n_trials=4))] == [e.name for e in PORTFOLIO[:2]]
    assert entries_for(_config(n_trials=1)) == []
    only_adam = entries_for(_config(optimizers=("adam",)))
    assert [e.optimizer for e in only_adam] == ["adam"]
    assert {e.family for e in entries_for(_config(families=("wsd",)))} == {"wsd"}
    assert entries_for(_config(optimizers=("sgd",))) == []  # no entry for a plain SGD search


def test_a_schedule_free_optimizer_searches_above_its_range_tests_high() -> None:
    config = _config(lr_ranges={SF: [1e-5, 0.002, "range-test"], "adam": [1e-5, 0.004, "range-test"],
                                PRODIGY: [0.25, 2.0, "lr-free"]})
    ctx = contexts(config, epoch_steps=10, best_spec=None)
    assert (ctx[SF].low, ctx[SF].high) == pytest.approx((0.002 * SCHEDULE_FREE_WINDOW[0], 0.002 * SCHEDULE_FREE_WINDOW[1]))
    assert (ctx["adam"].low, ctx["adam"].high) == pytest.approx((0.004 / 8, 0.008))  # unchanged for the others
    assert (ctx[PRODIGY].low, ctx[PRODIGY].high) == (0.25, 2.0)
    # the entry learned on fashion-mnist-mlp draws 3.7x the range test's high, outside the plain window
    sf_wsd = next(e for e in PORTFOLIO if e.name == "sf-wsd")
    assert in_range(ctx[SF], sf_wsd.params["peak_pos"]) == pytest.approx(3.7 * 0.002, rel=1e-3)


def _recommend(path, runner, **kw):
    args = dict(target=0.9, budget=1000, n_trials=6, storage=f"sqlite:///{path}", lr_range=(0.001, 0.01),
                runner=runner, seed=0, optimizers=SEARCHED, baselines=(), repeats=0)
    args.update(kw)
    return recommend("digits-mlp", **args)


def test_the_portfolio_runs_first_as_ordinary_counted_candidates(tmp_path) -> None:
    runner = FakeRunner(speed={SF: 2.0})
    rec = _recommend(tmp_path / "s.db", runner)
    trained = [s for s in runner.seen if s["spec"] != "FIX(k0=0.01)"]  # the task's default comes first
    first = [(s["optimizer"], parse(s["spec"]).to_dict()["name"]) for s in trained[:3]]
    assert first == [(SF, "wsd"), (PRODIGY, "cosine"), (SF, "wsd")]  # the entries, in the portfolio's order
    wsd = parse(trained[0]["spec"]).to_dict()
    # the given range (0.001, 0.01) is the window itself: the entry's position in it, 5 % warm-up, 20 % decay
    assert wsd["max_lr"] == pytest.approx(0.001 * 10 ** PORTFOLIO[0].params["peak_pos"], rel=1e-3)
    assert (wsd["warmup_steps"], wsd["decay_steps"]) == (50, 200)
    study = st.load_study(st.open_storage(f"sqlite:///{tmp_path / 's.db'}"), None)[0]
    assert counted(study) == 6  # 3 entries + 3 sampled: the portfolio counts among the candidates
    marked = [m for m in rec.ranked if m.portfolio]
    assert {m.portfolio for m in marked} == {"sf-wsd", "prodigy-cosine", "sf-wsd-high"}
    assert format_methods(rec.ranked).count("[portfolio]") == len(marked)
    # the sampler learns from them: they are trials with the search space's parameters
    sampled = [t for t in study.get_trials() if t.user_attrs.get(ATTR_PORTFOLIO)]
    assert all(t.params["family"] in ("wsd", "cosine") and "optimizer" in t.params for t in sampled)


def test_the_portfolio_is_queued_once_per_study_and_can_be_turned_off(tmp_path) -> None:
    path = tmp_path / "s.db"
    _recommend(path, FakeRunner())
    again = FakeRunner()
    _recommend(path, again, n_trials=8)  # continued to 8: half of 8 makes room for the fourth entry only
    study = st.load_study(st.open_storage(f"sqlite:///{path}"), None)[0]
    names = [t.user_attrs.get(ATTR_PORTFOLIO) for t in study.get_trials() if t.user_attrs.get(ATTR_PORTFOLIO)]
    assert sorted(names) == ["adam-cosine", "prodigy-cosine", "sf-wsd", "sf-wsd-high"]
    assert sum(s["optimizer"] == "adam" and s["spec"].startswith("cosine(") for s in again.seen) >= 1
    off = FakeRunner()
    rec = _recommend(tmp_path / "off.db", off, portfolio=False)
    assert not [m for m in rec.ranked if m.portfolio]


def test_an_entry_is_a_frozen_picklable_value() -> None:
    import pickle

    entry = PORTFOLIO[0]
    assert pickle.loads(pickle.dumps(entry)) == entry
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.name = "other"  # type: ignore[misc]


def test_a_window_grows_towards_a_best_draw_at_its_edge() -> None:
    from lrkit.lrbench.search.space import MAX_DOUBLINGS, grown_window

    assert grown_window(0.001, 0.01, 0.005) == (0.001, 0.01)  # well inside: unchanged
    low, high = grown_window(0.001, 0.01, 0.0095)  # in the top tenth: the top doubles until it is not
    assert (low, high) == (0.001, 0.02)
    assert grown_window(0.001, 0.01, 0.00105)[0] < 0.001  # at the bottom: the bottom halves
    assert grown_window(0.001, 0.01, 10.0)[1] == 0.01 * 2 ** MAX_DOUBLINGS  # bounded


def test_the_search_draws_from_a_window_grown_towards_its_best_candidate() -> None:
    import optuna

    from lrkit.lrbench.search.objective import Objective
    from lrkit.lrbench.study.schema import ATTR_WINDOW
    from lrkit.lrbench.tasks.catalogue import get_task

    config = _config(optimizers=("adam",), optimizer="adam", lr_ranges={"adam": [1e-4, 0.004, "range-test"]})
    objective = Objective(get_task("digits-mlp"), config)
    study = optuna.create_study()
    trial = study.ask()
    objective._sample(trial)
    assert trial.user_attrs[ATTR_WINDOW] == pytest.approx([0.004 / 8, 0.008])  # no evidence yet: the window as read
    study.add_trial(finished_trial("candidate", "FIX(k0=0.0079)", 0, 200))  # the best so far, at the window's top
    trial = study.ask()
    objective._sample(trial)
    assert trial.user_attrs[ATTR_WINDOW] == pytest.approx([0.004 / 8, 0.016])
    given = Objective(get_task("digits-mlp"), dataclasses.replace(config, lr_ranges={"adam": [1e-4, 0.004, "given"]}))
    trial = study.ask()
    given._sample(trial)
    assert trial.user_attrs[ATTR_WINDOW] == pytest.approx([1e-4, 0.004])  # a range the user gave never grows


def test_another_tasks_best_draw_is_carried_over_at_the_same_multiple_of_high(tmp_path) -> None:
    import numpy as np

    from lrkit.lrbench.study.schema import ATTR_LOOKUP
    from lrkit.lrbench.tasks.catalogue import get_task

    url = f"sqlite:///{tmp_path / 's.db'}"
    common = dict(target=0.9, budget=1000, n_trials=4, storage=url, runner=FakeRunner(), seed=0, optimizer="sgd",
                  baselines=(), repeats=0, portfolio=False, families=("fixed", "wsd"))
    first = recommend("digits-mlp", lr_range=(0.005, 0.2), study_name="a", **common)
    lent = first.best_candidate
    runner = FakeRunner()
    other = get_task("digits-mlp").replace(name="digits-other")
    rec = recommend(other, lr_range=(0.01, 0.4), study_name="b", **{**common, "runner": runner})
    moved = [m for m in rec.ranked if m.lookup is not None]
    assert len(moved) == 1 and moved[0].lookup["task"] == "digits-mlp" and moved[0].lookup["study"] == "a"
    assert moved[0].family == lent.family and "[lookup]" in format_methods(rec.ranked)
    # the same multiple of the range's high: here high is twice the first study's, so the peak doubles
    theirs, ours = (float(parse(m.spec).values(np.arange(1000.0)).max()) for m in (lent, moved[0]))
    assert ours == pytest.approx(2 * theirs, rel=2e-3)
    assert moved[0].lookup["multiple"] == pytest.approx(theirs / 0.2, rel=1e-3)
    # after the default (the only yardstick), it runs first, on top of the counted candidates
    assert [s["spec"] for s in runner.seen][:2] == [rec.default.spec, moved[0].spec]
    assert counted(_study(url, "b")) == 4
    again = recommend(other, lr_range=(0.01, 0.4), study_name="b", **common)  # queued once per study
    assert sum(m.lookup is not None for m in again.ranked) == 1
    assert sum(t.user_attrs.get(ATTR_LOOKUP) is not None for t in _study(url, "b").get_trials()) == 1


def _study(url, name):
    return st.load_study(st.open_storage(url), name)[0]
