"""What ``recommend`` tells its reader (issue 18, items 6-7): the search's cost in full-budget trials, one
clear answer when a baseline wins on validation, one headline convention (the worst seed) in ``recommend``
and ``verify``, repeats by default, log lines that say what ran, labels that tell a candidate from a
baseline, and a worker's prefix on what the optimizer prints.

Hand-built studies (in-memory Optuna, trials of known lengths) pin the numbers; ``FakeRunner`` runs the
searches, so each takes a second.
"""

from __future__ import annotations

import io
import json

import optuna
import pytest
from fakes import FakeRunner
from optuna.trial import TrialState, create_trial

from lrkit.cli.main import main
from lrkit.lrbench.report.formats import format_methods
from lrkit.lrbench.run.result import TrialResult
from lrkit.lrbench.run.verify import VerifyResult
from lrkit.lrbench.search.cost import SearchCost, search_cost
from lrkit.lrbench.search.recommend import recommend, summarize, trials_text
from lrkit.lrbench.study import ranking as res
from lrkit.lrbench.study import schema
from lrkit.lrbench.study.config import StudyConfig
from lrkit.lrbench.study.progress import PrefixedStream, line_logger, prefixed_output

BUDGET = 1000


def _trial(number: int, role: str, steps: int, *, seed: int = 0, optimizer: str = "sgd", spec: str = "FIX(k0=0.1)",
           val_steps: int | None = None, test_steps: int | None = None, state: TrialState = TrialState.COMPLETE,
           repeat: bool = False, baseline: str | None = None, duplicate_of: int | None = None,
           result: bool = True) -> optuna.trial.FrozenTrial:
    attrs = {schema.ATTR_ROLE: role, schema.ATTR_SEED: seed, schema.ATTR_OPTIMIZER: optimizer,
             schema.ATTR_OPT_KWARGS: {}, schema.ATTR_SPEC: spec, schema.ATTR_FAMILY: "fixed",
             schema.ATTR_REPEAT: repeat}
    if baseline:
        attrs[schema.ATTR_BASELINE] = baseline
    if duplicate_of is not None:
        attrs[schema.ATTR_DUPLICATE_OF] = duplicate_of
    if result:
        attrs[schema.ATTR_RESULT] = {"steps": steps, "steps_to_target": val_steps, "test_steps_to_target": test_steps,
                                     "on": "val", "best_val_acc": 0.95 if val_steps else 0.5,
                                     "best_acc": 0.95 if test_steps else 0.5, "status": "pass" if val_steps else "budget",
                                     "spec": spec, "optimizer": optimizer, "seed": seed}
    return create_trial(state=state, value=None if state != TrialState.COMPLETE else float(steps), user_attrs=attrs,
                        intermediate_values={steps: 0.5} if state == TrialState.PRUNED else None)


def _study(trials: list, details: dict | None = None) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="hand")
    for t in trials:
        study.add_trial(t)
    if details is not None:
        study.set_user_attr(schema.ATTR_LR_RANGE_DETAILS, details)
    return study


# ---- (a) the cost ---------------------------------------------------------------------------------------------
def test_the_cost_counts_the_updates_each_part_actually_trained() -> None:
    study = _study([
        _trial(0, "default", 1000),                                            # a yardstick, the whole budget
        _trial(1, "baseline", 400, baseline="adam", optimizer="adam", spec="FIX(k0=0.001)", val_steps=400),
        _trial(2, "candidate", 300, spec="FIX(k0=0.2)", val_steps=300),        # stopped at the target
        _trial(3, "candidate", 200, spec="FIX(k0=0.01)", state=TrialState.PRUNED),  # pruned: what it ran
        _trial(4, "candidate", 300, spec="FIX(k0=0.2)", val_steps=300, duplicate_of=2),  # reused: 0
        _trial(5, "candidate", 0, result=False, state=TrialState.FAIL),        # raised: no result, 0
        _trial(6, "candidate", 350, seed=1, spec="FIX(k0=0.2)", val_steps=350, repeat=True),
        _trial(7, "default", 1000, seed=1),                                    # yardsticks on seed 1: repeats
        _trial(8, "baseline", 450, seed=1, baseline="adam", optimizer="adam", spec="FIX(k0=0.001)", val_steps=450),
    ], details={"sgd": {"suggestion": "accuracy", "updates": 200}, "adam": {"updates": 120}})
    cost = search_cost(study, BUDGET, seed=0)
    assert cost == SearchCost(budget=BUDGET, candidates=500, range_tests=320, yardsticks=1400, repeats=1800)
    assert cost.updates == 4020 and cost.trials() == pytest.approx(4.02)
    assert cost.text() == "4.0 full-budget trials (candidates 0.5, range tests 0.3, yardsticks 1.4, repeats 1.8)"
    assert cost.to_dict()["repeats_updates"] == 1800 and cost.to_dict()["full_budget_trials"] == pytest.approx(4.02)


def test_the_cost_of_a_search_is_every_update_the_runner_trained(tmp_path) -> None:
    runner = FakeRunner(speed={"adam": 3.0})
    rec = recommend("digits-mlp", target=0.9, budget=1000, n_trials=6, storage=f"sqlite:///{tmp_path / 's.db'}",
                    lr_range=(0.005, 0.2), runner=runner, optimizer="sgd", baselines=("adam",), repeats=1)
    cost = rec.cost
    assert cost is not None and cost.range_tests == 0  # a given range costs nothing
    assert cost.updates == runner.updates  # every update the runner trained, once (duplicates reuse, cost 0)
    assert cost.candidates and cost.yardsticks and cost.repeats
    on_seed_1 = sum(r.get("steps", 0) for r in res.records(_load(tmp_path / "s.db"))
                    if r.seed == 1 and r.duplicate_of is None)
    assert cost.repeats == on_seed_1
    line = next(x for x in rec.summary_lines() if x.startswith("cost: "))
    assert line == f"cost: {cost.text()}" and "full-budget trials (candidates " in line
    data = rec.to_dict()
    assert data["cost"]["updates"] == runner.updates and data["cost_text"] == cost.text()


def _load(path):
    import lrkit.lrbench.study.storage as st

    return st.load_study(st.open_storage(f"sqlite:///{path}"), None)[0]


# ---- (b) one clear answer when a baseline wins on validation --------------------------------------------------
def _baseline_wins_on_val() -> tuple:
    # the baseline reaches the target on val at 200 but on test only at 400; the candidate at 300 on both
    study = _study([
        _trial(0, "default", 1000, spec="FIX(k0=0.01)"),
        _trial(1, "baseline", 400, baseline="adam", optimizer="adam", spec="FIX(k0=0.001)", val_steps=200,
               test_steps=400),
        _trial(2, "candidate", 300, optimizer="adam", spec="FIX(k0=0.003)", val_steps=300, test_steps=300),
        _trial(3, "default", 1000, seed=1, spec="FIX(k0=0.01)"),
        _trial(4, "baseline", 400, seed=1, baseline="adam", optimizer="adam", spec="FIX(k0=0.001)", val_steps=200,
               test_steps=400),
        _trial(5, "candidate", 300, seed=1, optimizer="adam", spec="FIX(k0=0.003)", val_steps=300, test_steps=300,
               repeat=True),
    ], details={})
    config = StudyConfig(task="digits-mlp", target=0.9, budget=BUDGET, optimizer="sgd", default_spec="FIX(k0=0.01)",
                         optimizers=("adam",), baselines=("adam",), on="val", seeds=(0, 1))
    return study, config


def test_a_baseline_that_wins_on_val_is_the_answer_and_the_summary_says_why() -> None:
    study, config = _baseline_wins_on_val()
    rec = summarize(study, config)
    assert rec.is_baseline and rec.spec == "FIX(k0=0.001)" and rec.candidate_faster_on_test
    lines = rec.summary_lines()
    assert lines[0].startswith("recommended: the baseline adam, ")
    assert "no candidate beat it on val accuracy, which the recommendation is chosen on" in lines[0]
    assert lines[1] == "  target 0.9 reached on 2/2 seeds (confirmed); worst of 2 seeds: 200 updates on val, 400 on test"
    faster = next(i for i, x in enumerate(lines) if x.startswith("the search's best candidate"))
    assert "against the baseline on test: 1.33x (fewer)" in lines[faster]
    assert lines[faster + 1] == ("  use the baseline adam: the recommendation is chosen on val accuracy, where no "
                                 "candidate beat it; the test comparison is reported, not chosen on")
    # in Python too: the candidate is named, never "ours", and the JSON says which to use
    assert rec.baseline_speedup_text == ("1.33x (fewer): the best baseline (adam) took 400 updates, the best "
                                         "candidate (adam, fixed) 300 (worst of 2 seeds)")
    assert "ours" not in rec.summary() and rec.to_dict()["choice"] == rec.choice
    assert rec.to_dict()["recommended_is_baseline"] == "adam" and rec.to_dict()["headline"] == "worst of 2 seeds"


def test_a_candidate_recommendation_is_named_the_recommendation_not_ours() -> None:
    study, config = _baseline_wins_on_val()
    study.add_trial(_trial(6, "candidate", 100, optimizer="adam", spec="FIX(k0=0.01)", val_steps=100, test_steps=100))
    study.add_trial(_trial(7, "candidate", 100, seed=1, optimizer="adam", spec="FIX(k0=0.01)", val_steps=100,
                           test_steps=100, repeat=True))
    rec = summarize(study, config)
    assert not rec.is_baseline and not rec.choice
    assert rec.baseline_speedup_text == ("4.00x (fewer): the best baseline (adam) took 400 updates, the "
                                         "recommendation 100 (worst of 2 seeds)")
    assert rec.summary_lines()[0].startswith("recommended: adam") and "baseline" not in rec.summary_lines()[0]


# ---- (c) one headline convention: the worst seed, named ---------------------------------------------------------
def _verify_trial(seed: int, steps: int) -> TrialResult:
    return TrialResult("pass", steps, 0.9, 0.9, 0.8, 0.1, 0.3, 0.4, 0.1, steps, 1.0, [], "FIX(k0=0.1)", "t", "sgd",
                       seed, "cpu", {}, "ok")


def test_verify_headlines_the_worst_seed_as_recommend_does() -> None:
    result = VerifyResult(True, "t", "FIX(k0=0.1)", 0.9, 1000, [_verify_trial(0, 350), _verify_trial(1, 300),
                                                                  _verify_trial(2, 500)])
    assert result.worst_steps_to_target == 500 and result.steps_to_target == 350  # the median stays a field
    assert result.reason == "reached 0.9 on 3/3 seeds; worst of 3 seeds: update 500 (per seed [350, 300, 500]; median 350)"
    text = result.summary().splitlines()
    assert text[1] == f"  {result.reason}" and sum(line.startswith("  seed ") for line in text) == 3  # per-seed lines kept
    assert result.to_dict()["worst_steps_to_target"] == 500
    one = VerifyResult(True, "t", "FIX(k0=0.1)", 0.9, 1000, [_verify_trial(0, 350)])
    assert one.reason == "reached 0.9 on 1/1 seeds (1 seed) at update 350" and one.worst_steps_to_target == 350
    assert res.worst_of(3) == "worst of 3 seeds"  # the phrase recommend's summary and speed-ups use


# ---- (d) repeats by default -----------------------------------------------------------------------------------
def test_a_default_recommend_confirms_its_recommendation_on_a_second_seed(tmp_path) -> None:
    runner = FakeRunner()
    rec = recommend("digits-mlp", target=0.9, budget=1000, n_trials=4, storage=f"sqlite:///{tmp_path / 's.db'}",
                    lr_range=(0.005, 0.2), runner=runner, optimizer="sgd", baselines=())
    assert rec.config.judging_seeds == (0, 1) and {s["seed"] for s in runner.seen} == {0, 1}
    assert rec.best is not None and rec.best.tier == "confirmed" and rec.best.seeds == [0, 1]
    from lrkit.cli.main import build_parser

    assert build_parser().parse_args(["recommend", "--task", "digits-mlp"]).repeats == 1


# ---- (e) log lines, labels, the worker's prefix ----------------------------------------------------------------
def test_the_log_says_how_many_trials_were_queued_and_ran_on_which_seeds(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    args = dict(target=0.9, budget=1000, n_trials=4, storage=url, lr_range=(0.005, 0.2), optimizer="sgd",
                baselines=("adam",))
    recommend("digits-mlp", runner=FakeRunner(), repeats=0, **args)
    lines: list[str] = []
    recommend("digits-mlp", runner=FakeRunner(), repeats=1, create_only=True, log=lines.append, **args)
    queued = [x for x in lines if x.startswith("repeats: queued ")]
    waiting = [t for t in _load(tmp_path / "s.db").get_trials(states=(TrialState.WAITING,))]
    assert waiting and queued == [f"repeats: queued {trials_text([1] * len(waiting))}"], lines  # not seed 0
    runner, lines = FakeRunner(), []
    recommend("digits-mlp", runner=runner, repeats=1, log=lines.append, **args)
    assert runner.calls and [x for x in lines if x.startswith("repeats: ")] == [
        f"repeats: ran {trials_text([1] * len(runner.calls))}"]
    lines = []
    recommend("digits-mlp", runner=FakeRunner(), repeats=1, log=lines.append, **args)
    assert [x for x in lines if x.startswith("repeats: ")] == [
        "repeats: nothing left to run (every method needed is on seeds 0, 1)"]


def test_a_candidate_and_a_baseline_of_one_optimizer_are_labelled_apart(tmp_path) -> None:
    study, _ = _baseline_wins_on_val()
    ranked = res.rank(res.records(study))
    labels = {m.role: m.label for m in ranked}
    assert labels == {"baseline": "adam", "candidate": "adam (candidate)", "default": "default (sgd)"}
    table = format_methods(ranked)
    assert "adam (candidate)" in table and json.loads(format_methods(ranked, "json"))[0]["method"] == "adam"


def test_what_a_workers_trial_prints_carries_the_worker_prefix(capsys) -> None:
    note = line_logger()  # taken before the block, as the worker's own log is: not prefixed twice
    with prefixed_output("[worker 7] "):
        print("Using decoupled weight decay")
        print("two", end="")
        print(" halves\nand a line")
        print("to stderr", file=__import__("sys").stderr)
        note("[worker 7] a log line")
    captured = capsys.readouterr()
    assert captured.out == "[worker 7] Using decoupled weight decay\n[worker 7] two halves\n[worker 7] and a line\n"
    assert captured.err == "[worker 7] to stderr\n[worker 7] a log line\n"
    stream = PrefixedStream(io.StringIO(), "> ")
    assert stream.write("a\nb") == 3 and stream.stream.getvalue() == "> a\n> b"


def test_a_worker_prints_prodigys_note_under_its_prefix(tmp_path, capsys) -> None:
    import os

    from lrkit.lrbench.worker import run_worker

    url = f"sqlite:///{tmp_path / 'w.db'}"
    recommend("digits-mlp", target=0.5, budget=100, n_trials=1, storage=url, study_name="w", baselines=(),
              optimizer="prodigyopt:Prodigy", optimizer_kwargs={"weight_decay": 0.01}, lookup=False,
              create_only=True, eval_every=50)
    capsys.readouterr()
    run_worker(url, "w", progress=False)
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    assert f"[worker {os.getpid()}] Using decoupled weight decay" in lines  # Prodigy's own print, labelled
    assert all(line.startswith(f"[worker {os.getpid()}] ") for line in lines), lines
