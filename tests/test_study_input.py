"""Mistakes in a study command's input are refused before anything runs or is stored, naming the
parameter, the rule and the value; reading commands never write into a file that is not an lrkit
database; an interrupted trial is reported in one line."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
import torch
from fakes import FakeRunner

from lrkit.cli.lrbench_cmds import parse_seeds
from lrkit.cli.main import main
from lrkit.errors import LRKitError
from lrkit.lrbench.search.recommend import recommend
from lrkit.lrbench.study.rerun import seeds_arg
from lrkit.lrbench.study.storage import load_study, open_storage

COMPOSE = ["compose", "--task", "digits-mlp", "--budget", "200", "--eval-every", "50", "--no-progress"]
RECOMMEND = ["recommend", "--task", "digits-mlp", "--budget", "200", "--no-progress", "--lr-range", "0.05:0.5"]


def _exit_code(argv: list[str]) -> int:
    """``main``'s exit status, whether it returns it or argparse exits with it (a malformed argument)."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code)


@pytest.mark.parametrize("argv, message", [
    ([*COMPOSE, "--opt", "nosuch=1"], "nosuch"),
    ([*COMPOSE, "--opt", "momentum=abc"], "momentum"),
    ([*COMPOSE, "--opt", "lr=0.1"], "the learning rate comes from the policy, so `lr` cannot be an optimizer argument"),
    ([*RECOMMEND, "--opt", "lr=0.1"], "the learning rate comes from the policy, so `lr` cannot be an optimizer argument"),
    ([*RECOMMEND, "--optimizer", "sgd", "--opt", "nosuch=1"], "nosuch"),
    ([*COMPOSE, "--boundaries", "100,50"], "`boundaries strictly increasing` must hold, but got (boundaries=[100, 50])"),
    ([*COMPOSE, "--stages", "5"], "`1 <= stages <= budget // eval_every (a stage ends at an evaluation)` must hold, "
                                  "but got (stages=5, budget=200, eval_every=50)"),
    ([*COMPOSE, "--state-dir", "no/such/folder"], "state_dir 'no/such/folder' is not a folder"),
    ([*RECOMMEND, "--optimizers="], "argument --optimizers: takes names separated by commas, none of them empty"),
    ([*RECOMMEND, "--families=fixed,,cosine"], "argument --families: takes names separated by commas, none of them "
                                               "empty, but got 'fixed,,cosine'"),
    ([*RECOMMEND, "--baselines="], "argument --baselines: takes names separated by commas"),
    ([*COMPOSE, "--families="], "argument --families: takes names separated by commas"),
    ([*RECOMMEND[:2], "json:loads", *RECOMMEND[3:]], "'json:loads' must be callable with no arguments (or only "
                                                     "data_dir=) to build a task, but missing a required argument: 's'"),
])
def test_a_mistake_exits_2_naming_it_and_stores_nothing(argv, message, tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "x.db"
    assert _exit_code([*argv, "--storage", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no database, no state folder


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has CUDA")
@pytest.mark.parametrize("argv", [RECOMMEND, COMPOSE, ["worker", "--study", "s", "--no-progress"]])
def test_cuda_without_cuda_is_refused_before_anything_runs(argv, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    db = tmp_path / "x.db"
    assert main([*argv, "--device", "cuda", "--storage", f"sqlite:///{db}"]) == 2
    assert "device 'cuda' asked for, but CUDA is not available" in capsys.readouterr().err
    assert not db.exists()


def test_verify_refuses_a_data_dir_that_is_not_a_folder(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    missing = tmp_path / "nope"
    assert main(["verify", "--task", "digits-mlp", "--data-dir", str(missing), "--budget", "50"]) == 2
    assert f"data_dir {str(missing)!r} is not a folder" in capsys.readouterr().err


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _foreign(path: Path) -> None:
    path.write_text("not a database\n")


def _other_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (text)")


@pytest.mark.parametrize("make, message", [
    (_empty, "is not an lrkit database: it holds no Optuna tables, and it was left as it is"),
    (_foreign, "is not an SQLite database"),
    (_other_sqlite, "is not an lrkit database: it holds no Optuna tables, and it was left as it is"),
])
@pytest.mark.parametrize("command", [["results"], ["worker", "--no-progress"], ["report", "-o", "r.html"]])
def test_reading_commands_leave_a_file_that_is_not_an_lrkit_database_as_it_is(make, message, command,  # noqa: ANN001
                                                                               tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mine.db"
    make(path)
    before = path.read_bytes()
    assert main([*command, "--storage", f"sqlite:///{path}"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.db"]


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_reading_commands_refuse_an_in_memory_database(url: str, capsys) -> None:  # noqa: ANN001
    assert main(["results", "--storage", url]) == 2
    assert "is an in-memory SQLite database, which holds no study" in capsys.readouterr().err


def test_without_study_the_storage_must_hold_exactly_one_and_the_message_lists_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url)
    with pytest.raises(LRKitError, match=r"^this storage holds no study yet; start one with `lrkit recommend` first$"):
        load_study(storage, None)
    for name in ("one", "two"):
        recommend("digits-mlp", target=0.9, budget=200, n_trials=1, storage=url, study_name=name, runner=FakeRunner(),
                  optimizer="sgd", baselines=(), lr_range=(0.01, 0.1))
    with pytest.raises(LRKitError, match=r"^this storage holds 2 studies \(one, two\); name one with --study$"):
        load_study(storage, None)
    with pytest.raises(LRKitError, match=r"studies there: one, two\. "):
        load_study(storage, "three")


@pytest.mark.parametrize("seeds", [[0], [2], [0, 1], [3, 5, 7], [0, 1, 2], [7, 2]])
def test_a_rerun_commands_seeds_parse_back_to_exactly_those_seeds(seeds: list[int]) -> None:
    text = seeds_arg(seeds)
    assert text == ",".join(map(str, seeds))  # the list itself: "0" for seed 0, "2" for seed 2
    assert parse_seeds(text) == seeds


def test_an_interrupted_trial_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    optuna_log = logging.getLogger("optuna")
    optuna_log.addHandler(handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            recommend("digits-mlp", target=0.9, budget=1000, n_trials=8, storage=f"sqlite:///{tmp_path / 's.db'}",
                      runner=FakeRunner(interrupt_at=3), optimizer="sgd", baselines=(), lr_range=(0.005, 0.2))
    finally:
        optuna_log.removeHandler(handler)
    failed = [r for r in records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in failed] == ["Trial 2 interrupted: marked FAIL"]
    assert failed[0].exc_info is None  # no traceback is printed with it
    study = load_study(open_storage(f"sqlite:///{tmp_path / 's.db'}"), None)[0]
    assert study.trials[2].state.name == "FAIL"
    # `results --all`: a trial with no result was judged on nothing (it said "test" in a val study)
    from lrkit.lrbench.report.formats import format_trials
    from lrkit.lrbench.study import ranking as res

    rows = {r["number"]: r for r in (rec.row() for rec in res.records(study))}
    assert rows[2]["on"] is None and rows[1]["on"] == "val"
    line = next(x for x in format_trials(res.records(study)).splitlines() if x.startswith("2 "))
    assert line.split()[1:3] == ["FAIL", "candidate"] and " - " in line and "val" not in line


@pytest.mark.parametrize("timing, name", [({"grace_period": 0}, "grace_period"),
                                          ({"heartbeat_interval": 0}, "heartbeat_interval"),
                                          ({"heartbeat_interval": 5, "grace_period": 5}, "grace_period")])
def test_a_timing_argument_means_the_same_in_recommend_compose_and_the_worker(timing, name, tmp_path: Path) -> None:  # noqa: ANN001
    # one set-up path: 0 was refused by recommend and silently ignored by compose (its copy dropped falsy values)
    from lrkit.lrbench.composition.stagewise import compose
    from lrkit.lrbench.worker import run_worker

    url = f"sqlite:///{tmp_path / 's.db'}"
    calls = {"recommend": lambda: recommend("digits-mlp", budget=50, n_trials=1, storage=url, lr_range=(0.01, 0.1),
                                            runner=FakeRunner(), **timing),
             "compose": lambda: compose("digits-mlp", budget=50, stages=1, storage=url, lr_range=(0.01, 0.1), **timing),
             "worker": lambda: run_worker(url, "s", progress=False, **timing)}
    for command, call in calls.items():
        with pytest.raises(LRKitError, match=name) as err:
            call()
        assert "must hold" in str(err.value), command
    assert not (tmp_path / "s.db").exists()  # refused before anything was stored
