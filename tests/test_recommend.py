"""The recommender: yardsticks, optimizer x policy search, duplicates, repeats, resume, and one real search.

Most tests use ``fakes.FakeRunner`` (accuracy in closed form of the LR trajectory), so a search takes
milliseconds and its outcome is known; one test runs the real trainer on digits-mlp.
"""

from __future__ import annotations

import dataclasses
import json
import shlex

import pytest
from fakes import FakeRunner, finished_trial
from optuna.trial import TrialState

import lrkit.lrbench.study.storage as st
from lrkit.lrbench.study import schema
from lrkit.errors import LRKitError
from lrkit.lrbench.report.formats import format_methods
from lrkit.lrbench.study import ranking as res
from lrkit.lrbench.search.recommend import recommend
from lrkit.lrbench.study.queue import counted
from lrkit.lrbench.search.objective import score


def _recommend(path, runner, **kw):
    # one seed unless a test asks for repeats: the counts below are of one seed's trials
    args = dict(target=0.9, budget=1000, n_trials=8, storage=f"sqlite:///{path}", lr_range=(0.005, 0.2),
                runner=runner, seed=0, optimizer="sgd", baselines=(), repeats=0)
    args.update(kw)
    return recommend("digits-mlp", **args)


def _study(path):
    return st.load_study(st.open_storage(f"sqlite:///{path}"), None)[0]


def test_score_prefers_reaching_the_target() -> None:
    assert score(999, 0.9, 1000) < score(None, 0.99, 1000) < score(None, 0.5, 1000)


def test_search_judges_on_validation_runs_the_default_once_and_prunes(tmp_path) -> None:
    runner = FakeRunner(val_shift=0.01)
    rec = _recommend(tmp_path / "s.db", runner)
    assert {s["on"] for s in runner.seen} == {"val"}  # digits-mlp has a validation split
    assert sum(m.role == "default" for m in rec.ranked) == 1
    assert runner.calls.count("FIX(k0=0.01)") == 1 and len(runner.calls) == 9
    assert rec.best is not None and rec.best.role == "candidate" and rec.best.reached_all
    assert rec.best.worst_steps == min(m.worst_steps for m in rec.ranked if m.worst_steps is not None)
    assert any(m.pruned for m in rec.ranked)
    # the FIX(k0=0.01) default reaches 0.63 at 1000 updates here: it misses the target
    assert rec.default.worst_steps is None and rec.speedup >= 1000 / rec.best.test_worst_steps()


def test_baselines_run_once_per_judging_seed_and_are_compared(tmp_path) -> None:
    # adam trains 3x faster than sgd in this fake: the prodigy baseline (an adam-like speed) wins
    runner = FakeRunner(speed={"adam": 3.0, "prodigyopt:Prodigy": 40.0})
    rec = _recommend(tmp_path / "s.db", runner, baselines=("adam", "prodigy"), repeats=1)
    kinds = [(s["optimizer"], s["spec"], s["seed"]) for s in runner.seen]
    assert kinds.count(("prodigyopt:Prodigy", "FIX(k0=1)", 0)) == 1 and kinds.count(("prodigyopt:Prodigy", "FIX(k0=1)", 1)) == 1
    # Adam at 1e-3 missed the target on seed 0 (0.26 at 1000 updates here): repeating it could not lift it
    # above a method that reached it, so it runs once (as does the default, which missed it too)
    adam_method = next(m for m in rec.ranked if m.baseline == "adam")
    assert adam_method.worst_steps is None and adam_method.seeds == [0]
    assert kinds.count(("adam", "FIX(k0=0.001)", 0)) == 1 and kinds.count(("adam", "FIX(k0=0.001)", 1)) == 0
    assert rec.default.seeds == [0]
    adam = next(s for s in runner.seen if s["optimizer"] == "adam")
    assert adam["kwargs"] == {}  # a baseline uses the optimizer's own defaults, as a user would
    assert rec.best_baseline is not None and rec.best_baseline.baseline == "prodigy"
    # no candidate beats prodigy: it is the recommendation, said to be a baseline
    assert rec.best is rec.best_baseline and rec.is_baseline
    # a faster baseline gets no candidate pruned: candidates compete only with each other
    cand = rec.best_candidate
    assert cand is not None and cand.reached_all and cand.role == "candidate"
    # and what the search found is compared with it honestly
    # ... and named: the recommendation is the baseline, so the candidate is never "ours"
    assert rec.baseline_speedup is not None and rec.baseline_speedup < 1
    assert "the best candidate (sgd, " in rec.baseline_speedup_text and "is slower" in rec.baseline_speedup_text
    assert "ours" not in rec.baseline_speedup_text
    text = rec.summary()
    assert "recommended: the baseline prodigy, " in text and "no candidate beat it on val accuracy" in text
    assert "the search's best candidate" in text and not rec.choice  # slower: nothing to choose between
    assert "--optimizer prodigyopt:Prodigy" in rec.rerun


def test_the_search_chooses_the_optimizer_with_its_own_range(tmp_path) -> None:
    runner = FakeRunner(speed={"adam": 50.0})
    rec = _recommend(tmp_path / "s.db", runner, optimizer=None, optimizers=("sgd", "adam"), n_trials=10)
    config = st.load_study(st.open_storage(f"sqlite:///{tmp_path / 's.db'}"), None)[1]
    assert set(config.lr_ranges) == {"sgd", "adam"} and config.searched == ("sgd", "adam")
    assert {s["optimizer"] for s in runner.seen} == {"sgd", "adam"}
    assert rec.best.optimizer == "adam"
    sgd = next(s for s in runner.seen if s["optimizer"] == "sgd")
    assert sgd["kwargs"] == {"momentum": 0.0} or sgd["kwargs"] == {}  # the task's own arguments


def test_an_optimizer_argument_goes_to_the_optimizers_that_take_it(tmp_path) -> None:
    runner = FakeRunner()
    _recommend(tmp_path / "s.db", runner, optimizer=None, optimizers=("momentum", "adam"), n_trials=6,
               optimizer_kwargs={"momentum": 0.8})
    for seen in runner.seen:
        if seen["optimizer"] == "momentum":
            assert seen["kwargs"]["momentum"] == 0.8
        if seen["optimizer"] == "adam":
            assert "momentum" not in seen["kwargs"]


def test_a_candidate_identical_to_a_finished_trial_is_not_trained_again(tmp_path) -> None:
    # a range this narrow leaves FIX only a few distinct 4-digit LRs: most samples repeat one already run
    runner = FakeRunner()
    rec = _recommend(tmp_path / "s.db", runner, families=("fixed",), lr_range=(0.1, 0.1002), n_trials=5)
    study = _study(tmp_path / "s.db")
    dups = [t for t in study.get_trials() if t.user_attrs.get(schema.ATTR_DUPLICATE_OF) is not None]
    assert dups, "expected duplicates in so narrow a range"
    assert len(runner.calls) == len(study.get_trials()) - len(dups)  # duplicates were never trained
    assert counted(study) <= 3 and len(dups) >= 20  # 3 distinct LRs at 4 digits: the study gave up sampling
    assert len({m.spec for m in rec.ranked}) == len(rec.ranked)  # no duplicate rows in the ranking


def test_repeats_confirm_the_recommendation_on_every_seed_and_are_idempotent(tmp_path) -> None:
    runner = FakeRunner(seeded=True)
    rec = _recommend(tmp_path / "s.db", runner, repeats=2)
    assert rec.best.tier == "confirmed" and rec.best.seeds == [0, 1, 2]
    assert rec.default.worst_steps is None and rec.default.seeds == [0]  # it missed the target: not repeated
    top3 = [m for m in rec.ranked if m.role == "candidate" and not m.pruned][:3]
    assert all(len(m.seeds) == 3 and m.spread() is not None for m in top3)
    again = FakeRunner(seeded=True)
    _recommend(tmp_path / "s.db", again, repeats=2)
    assert again.calls == []  # nothing new: the study is complete and its repeats ran


def test_interrupt_keeps_finished_trials_and_the_same_call_continues(tmp_path) -> None:
    path = tmp_path / "s.db"
    with pytest.raises(KeyboardInterrupt):
        _recommend(path, FakeRunner(interrupt_at=5))
    study = _study(path)
    first = {t.number: t.params for t in study.get_trials() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    assert len(first) == 4
    assert [t.state for t in study.get_trials() if t.number == 4] == [TrialState.FAIL]
    runner = FakeRunner()
    rec = _recommend(path, runner)
    study = _study(path)
    assert counted(study) == 8 and len(runner.calls) == 5  # only the missing trials ran
    again = {t.number: t.params for t in study.get_trials() if t.number in first}
    assert again == first and rec.best is not None
    # asking for more trials later continues the same study up to the new total
    _recommend(path, FakeRunner(), n_trials=10)
    assert counted(_study(path)) == 10


def test_a_continued_study_does_not_replay_the_first_sessions_candidates(tmp_path) -> None:
    first = FakeRunner()
    _recommend(tmp_path / "s.db", first, n_trials=3)
    later = FakeRunner()
    _recommend(tmp_path / "s.db", later, n_trials=6)
    candidates_before = set(first.calls[1:])  # calls[0] is the default policy
    assert len(later.calls) == 3 and not candidates_before & set(later.calls)


def test_arguments_are_checked_before_anything_is_stored(tmp_path) -> None:
    for kw, message in [({"n_trials": 0}, "`n_trials >= 1`"), ({"target": 1.5}, "target"),
                        ({"optimizer": "adamm"}, "did you mean 'adam'"),
                        ({"optimizer": None, "optimizers": ("sgd", "nope:X")}, "cannot import module 'nope'"),
                        ({"baselines": ("prodigy", "bogus")}, "unknown baselines"),
                        ({"optimizer_kwargs": {"momentum": "high"}}, "`momentum` must be a number"),
                        ({"optimizer_kwargs": {"betas": [0.9, 0.99]}}, r"optimizer 'sgd' has no argument 'betas' \(it takes "
                                                                       "momentum, "),
                        ({"optimizer": None, "optimizers": ("sgd", "momentum"), "optimizer_kwargs": {"betas": [0.9, 0.99]}},
                         r"no searched optimizer takes the argument 'betas' \(searched: sgd, momentum\)"),
                        ({"optimizer_kwargs": {"lr": 0.1}}, "the learning rate comes from the policy"),
                        ({"optimizer": None, "optimizers": ()}, "`optimizers` names at least one optimizer"),
                        ({"families": ()}, "`families` names at least one family when given")]:
        with pytest.raises(LRKitError, match=message):
            _recommend(tmp_path / "s.db", FakeRunner(), **kw)
    assert not (tmp_path / "s.db").exists() or not st.study_names(st.open_storage(f"sqlite:///{tmp_path / 's.db'}"))


def test_real_search_on_digits_and_the_printed_command_reruns_it(tmp_path, capsys) -> None:
    from lrkit.cli.main import main

    rec = recommend("digits-mlp", target=0.9, budget=300, n_trials=3, storage=f"sqlite:///{tmp_path / 'r.db'}",
                    lr_range=(0.02, 0.8), families=("fixed", "cosine"), optimizers=("sgd", "adam"),
                    baselines=("adam",), eval_every=50)
    assert rec.best is not None and rec.best.reached_all
    args = shlex.split(rec.rerun)
    assert args[:2] == ["lrkit", "verify"] and "--eval-every" in args and "--optimizer" in args
    assert main(args[1:] + ["--json", "--on", "val"]) in (0, 1)
    import json

    verified = json.loads(capsys.readouterr().out)
    trial = verified["trials"][0]
    stored = rec.best.first
    assert trial["optimizer"] == stored.optimizer and trial["optimizer_kwargs"] == stored.optimizer_kwargs
    assert trial["steps_to_target"] == stored.get("steps_to_target")  # the same run, bit for bit on CPU
    assert trial["curve"][0]["val_acc"] == stored.get("curve")[0]["val_acc"]


def test_a_second_study_on_a_known_task_first_verifies_what_the_storage_knows(tmp_path) -> None:
    path = tmp_path / "s.db"
    first = _recommend(path, FakeRunner(), study_name="first", n_trials=8)
    known = [m for m in first.ranked if m.role == "candidate" and m.reached_all][:3]
    assert known
    runner = FakeRunner()
    second = _recommend(path, runner, study_name="second", n_trials=2, target=0.92)
    looked_up = [m for m in second.ranked if m.lookup is not None]
    assert {m.spec for m in looked_up} == {m.spec for m in known}  # verified here, under this study's target
    assert all(m.lookup["study"] == "first" for m in looked_up)
    assert counted(_study_named(path, "second")) == 2  # the lookup comes on top of the sampled candidates
    table = format_methods(second.ranked)
    assert table.count("[lookup]") == len(looked_up)
    fresh = FakeRunner()
    _recommend(path, fresh, study_name="third", n_trials=2, lookup=False)
    assert not set(fresh.calls) & {m.spec for m in known} - {"FIX(k0=0.01)"}


def _study_named(path, name):
    return st.load_study(st.open_storage(f"sqlite:///{path}"), name)[0]


def test_a_study_judged_on_test_does_not_repeat_the_test_columns(tmp_path) -> None:
    on_test = _recommend(tmp_path / "t.db", FakeRunner(), n_trials=3, on="test")
    header, *_, note = format_methods(on_test.ranked, on="test").splitlines()
    assert header.split("  ")[0] == "rank" and header.count("test updates") == 1 and header.count("test acc") == 1
    assert "test columns are reported" not in note
    on_val = _recommend(tmp_path / "v.db", FakeRunner(), n_trials=3)
    header, *_, note = format_methods(on_val.ranked, on="val").splitlines()
    assert "val updates" in header and "test updates" in header and "test columns are reported, not ranked on" in note


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_of_two_candidates_sampled_for_the_last_place_the_later_is_surplus(tmp_path) -> None:
    import optuna

    from lrkit.lrbench.search.objective import Objective
    from lrkit.lrbench.study.queue import claimed
    from lrkit.lrbench.tasks.catalogue import get_task

    _recommend(tmp_path / "s.db", FakeRunner(), n_trials=2)
    # a seeded sampler: an unseeded one drew, about one run in twenty, a ralr candidate whose LR curve is its
    # base policy's, a duplicate of that trial, which rightly does not count (RandomSampler(seed=1) draws one)
    study, config = st.load_study(st.open_storage(f"sqlite:///{tmp_path / 's.db'}"), None,
                                  sampler=optuna.samplers.RandomSampler(seed=0))
    config = dataclasses.replace(config, n_trials=3)  # one place left; two workers sample for it at once
    first, second = study.ask(), study.ask()
    assert claimed(study) == 4  # what each worker counted: both running trials are candidates so far
    objective = Objective(get_task("digits-mlp"), config, runner=FakeRunner())
    with pytest.raises(optuna.TrialPruned, match="already has its 3 candidates"):
        objective(second)
    study.tell(second, state=TrialState.PRUNED)
    assert second.user_attrs[schema.ATTR_SURPLUS] and schema.ATTR_SPEC not in second.user_attrs  # nothing was sampled
    study.tell(first, objective(first))  # the earlier one trains
    assert counted(study) == 3 and claimed(study) == 3
    listed = {r.number: r for r in res.records(study)}
    assert listed[second.number].spec.startswith("(not trained") and listed[second.number].result is None
    assert second.number not in {r.number for m in res.rank(res.records(study)) for r in m.trials}


def test_a_table_fits_the_terminal_when_it_can_and_json_keeps_every_spec(tmp_path) -> None:
    rec = _recommend(tmp_path / "s.db", FakeRunner(), n_trials=4)

    def shown(width):  # the spec cells, and the longest line
        lines = format_methods(rec.ranked, width=width).splitlines()
        at = lines[0].index("spec")
        return [line[at:] for line in lines[1:len(rec.ranked) + 1]], max(map(len, lines))

    for width, room in ((220, None), (60, 60), (None, 60)):  # 60 columns cannot fit: cut at 60, as in a pipe
        cells, longest = shown(width)
        room = room or width - 1 - format_methods(rec.ranked).splitlines()[0].index("spec")
        for cell, method in zip(cells, rec.ranked):
            assert cell == method.spec if len(method.spec) <= room else cell == method.spec[:room - 3] + "..."
        if width == 220:
            assert longest <= 219 and room > 60  # wider than a pipe's table, and within the terminal
    assert {r["spec"] for r in json.loads(format_methods(rec.ranked, "json", width=60))} == {m.spec for m in rec.ranked}


def test_a_second_study_of_the_same_judging_reuses_the_yardsticks_and_pays_nothing_for_them(tmp_path):
    """Yardsticks are the same trainings in every study of a task, budget, target and seed: run once per storage."""
    from lrkit.lrbench import recommend
    from lrkit.lrbench.study.ranking import records
    from lrkit.lrbench.study.storage import load_study, open_storage

    url = f"sqlite:///{tmp_path / 'y.db'}"
    common = dict(target=0.9, budget=200, storage=url, lr_range=(0.05, 0.5), optimizers=("sgd",),
                  baselines=("adam",), repeats=0, eval_every=50, families=("fixed",), lookup=False)
    first = recommend("digits-mlp", n_trials=1, study_name="first", **common)
    second = recommend("digits-mlp", n_trials=1, study_name="second", seed=0, **common)
    yard = [r for r in records(load_study(open_storage(url), "second")[0]) if r.role != "candidate"]
    assert yard and all(r.reused_from is not None and r.reused_from["study"] == "first" for r in yard)
    assert second.cost.yardsticks == 0 and first.cost.yardsticks > 0 and second.cost.reused == len(yard)
    assert f"{len(yard)} yardstick trials reused from earlier studies" in second.summary()
    firsts = {(r.method_key(), r.seed): r.result for r in records(load_study(open_storage(url), "first")[0])}
    assert all(firsts[(r.method_key(), r.seed)] == r.result for r in yard)  # the same results, not retrained
    other = recommend("digits-mlp", n_trials=1, study_name="third", **{**common, "target": 0.85})
    assert other.cost.yardsticks > 0  # another target judges (and stops) differently: trained again


def test_only_yardsticks_that_can_still_rank_first_are_repeated() -> None:
    import optuna

    from lrkit.lrbench.search.yardsticks import settled_yardsticks
    from lrkit.lrbench.study.baselines import Method
    from lrkit.lrbench.study.queue import trial_key

    study = optuna.create_study()
    study.add_trial(finished_trial("candidate", "FIX(k0=0.003)", 0, 300))
    study.add_trial(finished_trial("baseline", "FIX(k0=0.002)", 0, 250, baseline="fast"))   # faster than the candidate
    study.add_trial(finished_trial("baseline", "FIX(k0=0.001)", 0, 600, baseline="slow"))   # slower: cannot rank first
    study.add_trial(finished_trial("default", "FIX(k0=0.0001)", 0, None))          # missed the target
    key = {spec: trial_key(Method("adam", {}, spec), 1000) for spec in ("FIX(k0=0.002)", "FIX(k0=0.001)", "FIX(k0=0.0001)")}
    assert settled_yardsticks(study) == {key["FIX(k0=0.001)"], key["FIX(k0=0.0001)"]}
    # the candidate's second seed is slower than the slow baseline's: that one contends again
    study.add_trial(finished_trial("candidate", "FIX(k0=0.003)", 1, 700))
    assert settled_yardsticks(study) == {key["FIX(k0=0.0001)"]}


class _MissesSecondSeed(FakeRunner):
    """FakeRunner whose candidates after the first one repeated stall on seed 1 (they never reach the target)."""

    def __init__(self) -> None:
        super().__init__(k=0.1, seeded=True)
        self.first_repeat: str | None = None

    def __call__(self, task, spec, *, seed, **kw):
        if seed == 1 and spec != "FIX(k0=0.01)":  # not the task's default
            self.first_repeat = self.first_repeat or spec
            self.k = 0.1 if spec == self.first_repeat else 1e-4
        else:
            self.k = 0.1
        return super().__call__(task, spec, seed=seed, **kw)


def test_a_repeat_that_can_no_longer_rank_first_stops_instead_of_running_the_whole_budget(tmp_path) -> None:
    runner = _MissesSecondSeed()
    rec = _recommend(tmp_path / "s.db", runner, repeats=1, families=("fixed",), n_trials=8)
    trials = _study(tmp_path / "s.db").get_trials()
    first = next(m for m in rec.ranked if m.spec == runner.first_repeat)
    assert first.reached_all and rec.best is first  # the first-ranked, confirmed on seed 1
    later = [t for t in trials if t.user_attrs.get("lrkit_repeat") and t.user_attrs["lrkit_spec"] != runner.first_repeat
             and t.user_attrs.get("lrkit_seed") == 1]
    assert later, "no other candidate came into contention: the test needs one"
    for t in later:  # each stalled on seed 1 and stopped where it could no longer rank first, not at the budget
        ran = t.user_attrs["lrkit_result"]["steps"]
        assert t.state.name == "PRUNED" and first.worst_steps <= ran < 1000
