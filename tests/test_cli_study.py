"""``lrkit recommend / results / report / worker`` from the command line (in-process)."""

from __future__ import annotations

import csv
import io
import json
import shlex
from pathlib import Path

import pytest

from lrkit.cli.main import main


@pytest.fixture(scope="module")
def searched(tmp_path_factory):  # noqa: ANN201
    """One small real search on digits-mlp, shared by the tests that read it."""
    tmp = tmp_path_factory.mktemp("cli")
    url = f"sqlite:///{tmp / 'lrkit.db'}"
    argv = ["recommend", "--task", "digits-mlp", "--target", "0.9", "--budget", "200", "--trials", "3",
            "--storage", url, "--lr-range", "0.05:0.8", "--families", "fixed,cosine,clr", "--no-progress"]
    return tmp, url, argv


def test_recommend_prints_the_table_the_spec_and_the_verify_command(searched, capsys) -> None:  # noqa: ANN001
    tmp, url, argv = searched
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["rank", "number", "state"]
    assert "recommended: " in out and "speed-up over the default FIX(k0=0.01)" in out
    verify = next(line for line in out.splitlines() if line.startswith("re-run it: ")).removeprefix("re-run it: ")
    args = shlex.split(verify)
    assert args[:2] == ["lrkit", "verify"]
    assert main(args[1:] + ["--json"]) == 0  # the recommended spec re-runs and passes
    verified = json.loads(capsys.readouterr().out)
    assert verified["passed"] and verified["spec"] == args[-1]
    table = out.splitlines()[1].split()
    assert verified["steps_to_target"] == int(table[table.index("pass") + 1])  # same updates-to-target


def test_same_command_continues_the_study_without_new_trials(searched, capsys) -> None:  # noqa: ANN001
    tmp, url, argv = searched
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "continuing study 'digits-mlp-sgd-acc0.9-b200'" in err
    assert main(["results", "--storage", url, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and [r["rank"] for r in rows] == [1, 2, 3, 4]


def test_results_formats(searched, capsys) -> None:  # noqa: ANN001
    tmp, url, argv = searched
    main(argv)
    capsys.readouterr()
    assert main(["results", "--storage", url, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and {"rank", "steps_to_target", "best_acc", "spec"} <= set(rows[0])
    assert main(["results", "--storage", url, "--study", "digits-mlp-sgd-acc0.9-b200"]) == 0
    assert "spec" in capsys.readouterr().out


def test_report_writes_a_page(searched, capsys) -> None:  # noqa: ANN001
    tmp, url, argv = searched
    main(argv)
    out = tmp / "sub" / "report.html"
    assert main(["report", "--storage", url, "-o", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("argv, message", [
    (["recommend", "--task", "digits-mlp", "--trials", "0"], "--trials must be >= 1"),
    (["recommend", "--task", "digits-mlp", "--lr-range", "0.5:0.1"], "0 < LOW < HIGH"),
    (["recommend", "--task", "digits-mlp", "--lr-range", "wide"], "auto, grid, range-test or LOW:HIGH"),
    (["recommend", "--task", "digits-mlp", "--target", "1.5"], "--target is an accuracy in (0, 1]"),
    (["recommend", "--task", "no-such-task"], "unknown task 'no-such-task'"),
    (["recommend", "--task", "digits-mlp", "--families", "fixed,bogus", "--lr-range", "0.1:0.2"],
     "unknown policy families ['bogus']"),
])
def test_command_line_mistakes_exit_2_with_the_rule(argv, message, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main([*argv, "--storage", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert message in capsys.readouterr().err


def test_results_and_worker_on_a_missing_study_exit_2(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from lrkit.lrbench.storage import open_storage

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_storage(url)  # an lrkit database without that study
    assert main(["results", "--storage", url, "--study", "nope"]) == 2
    assert "'nope' does not exist" in capsys.readouterr().err
    assert main(["worker", "--storage", url, "--study", "nope", "--no-progress"]) == 2
    assert "Start it with `lrkit recommend` first" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["results"], ["worker", "--no-progress"], ["report", "-o", "r.html"]])
def test_reading_commands_do_not_create_a_missing_sqlite_file(command, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    path = tmp_path / "typo.db"
    assert main([*command, "--storage", f"sqlite:///{path}", "--study", "s"]) == 2
    assert f"no lrkit database at '{path}'" in capsys.readouterr().err
    assert not path.exists()


def test_rerun_command_names_the_task_as_given_and_the_exact_seed(capsys) -> None:  # noqa: ANN001
    from types import SimpleNamespace

    from lrkit.lrbench.tasks import get_task
    from lrkit.cli.lrbench_cmds import parse_seeds
    from lrkit.cli.study_cmds import verify_command

    task = get_task("digits-mlp")
    config = SimpleNamespace(task="mypkg.mod:make", target=0.9, budget=200, optimizer=task.optimizer,
                             optimizer_kwargs=dict(task.optimizer_kwargs), seed=2, eval_every=50)
    args = shlex.split(verify_command(task, SimpleNamespace(config=config, spec="FIX(k0=0.1)")))
    assert args[args.index("--task") + 1] == "mypkg.mod:make"
    assert parse_seeds(args[args.index("--seeds") + 1]) == [2]
