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
    """One small real search on digits-mlp (two optimizers, one baseline), shared by the tests that read it."""
    tmp = tmp_path_factory.mktemp("cli")
    url = f"sqlite:///{tmp / 'lrkit.db'}"
    argv = ["recommend", "--task", "digits-mlp", "--target", "0.9", "--budget", "200", "--trials", "3",
            "--storage", url, "--lr-range", "0.05:0.8", "--families", "fixed,cosine,clr", "--no-progress",
            "--optimizers", "sgd,adam", "--baselines", "adam", "--eval-every", "50"]
    return tmp, url, argv


def test_recommend_prints_the_table_the_pair_the_speedups_and_the_verify_command(searched, capsys) -> None:  # noqa: ANN001
    tmp, url, argv = searched
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["rank", "method", "family", "reached"]
    assert "recommended: " in out and "speed-up over the default FIX(k0=0.01)" in out
    assert "speed-up over the best baseline: " in out
    verify = next(line for line in out.splitlines() if line.startswith("re-run it: ")).removeprefix("re-run it: ")
    args = shlex.split(verify)
    assert args[:2] == ["lrkit", "verify"] and "--eval-every" in args and "--optimizer" in args
    assert main(args[1:] + ["--json", "--on", "val"]) == 0  # the recommended pair re-runs and passes on val
    verified = json.loads(capsys.readouterr().out)
    assert verified["passed"] and verified["spec"] == args[-1]
    assert main(["results", "--storage", url, "--format", "json"]) == 0
    best = next(r for r in json.loads(capsys.readouterr().out) if r["role"] == "candidate")
    assert best["spec"] == args[-1] and best["optimizer"] == args[args.index("--optimizer") + 1]
    # the same updates-to-target as the table: both the worst of the seeds, on val (verify's steps_to_target is
    # the median seed's, which equals it only when the seeds agree)
    assert verified["worst_steps_to_target"] == best["updates"]


def test_same_command_continues_the_study_without_new_trials(searched, capsys) -> None:  # noqa: ANN001
    tmp, url, argv = searched
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "continuing study 'digits-mlp-sgd+adam-acc0.9-b200'" in err and "started" not in err
    assert main(["results", "--storage", url, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    # 3 candidates (fewer if two coincide), the default and the adam baseline
    assert 3 <= len(rows) <= 5 and [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert {r["role"] for r in rows} == {"candidate", "default", "baseline"}


def test_results_formats_all_and_by_optimizer(searched, capsys) -> None:  # noqa: ANN001
    tmp, url, argv = searched
    main(argv)
    capsys.readouterr()
    assert main(["results", "--storage", url, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and {"rank", "seeds", "updates", "test_updates", "spec"} <= set(rows[0])
    assert main(["results", "--storage", url, "--all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["trial", "state", "role"] and len(lines) >= 6
    assert main(["results", "--storage", url, "--by", "optimizer"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[0] == "family" and "adam" in out.splitlines()[0]


def test_report_writes_a_page_and_refuses_to_overwrite(searched, capsys) -> None:  # noqa: ANN001
    tmp, url, argv = searched
    main(argv)
    out = tmp / "report.html"
    assert main(["report", "--storage", url, "-o", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    capsys.readouterr()
    assert main(["report", "--storage", url, "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["report", "--storage", url, "-o", str(out), "--force"]) == 0
    assert main(["report", "--storage", url, "-o", str(tmp / "no" / "dir" / "r.html")]) == 2


@pytest.mark.parametrize("argv, message", [
    (["recommend", "--task", "digits-mlp", "--trials", "0"], "`n_trials >= 1` must hold, but got (n_trials=0)"),
    (["recommend", "--task", "digits-mlp", "--lr-range", "0.5:0.1"], "0 < LOW < HIGH"),
    (["recommend", "--task", "digits-mlp", "--lr-range", "wide"], "auto, grid, range-test or LOW:HIGH"),
    (["recommend", "--task", "digits-mlp", "--target", "1.5"], "`0 < target <= 1 (an accuracy)` must hold"),
    (["recommend", "--task", "digits-mlp", "--optimizers", "sgd,prodigyopt:Nope"], "has no attribute 'Nope'"),
    (["recommend", "--task", "digits-mlp", "--baselines", "adam,sota"], "unknown baselines 'sota'; lrkit has adam, adamw-cosine, prodigy"),
    (["recommend", "--task", "no-such-task"], "unknown task 'no-such-task'"),
    (["recommend", "--task", "digits-mlp", "--families", "fixed,bogus", "--lr-range", "0.1:0.2"],
     "unknown policy families 'bogus'; lrkit knows fixed, "),
])
def test_command_line_mistakes_exit_2_with_the_rule(argv, message, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main([*argv, "--storage", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert message in capsys.readouterr().err


def test_results_and_worker_on_a_missing_study_exit_2(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from lrkit.lrbench.study.storage import open_storage

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


def test_rerun_command_names_the_task_as_given_every_setting_and_the_exact_seeds() -> None:
    from lrkit.cli.lrbench_cmds import parse_opt_args, parse_seeds
    from lrkit.lrbench.study.baselines import Method
    from lrkit.lrbench.study.rerun import rerun_command
    from lrkit.lrbench.study.config import StudyConfig
    from lrkit.lrbench.tasks.catalogue import get_task

    task = get_task("fashion-mnist-cnn3")  # momentum with weight_decay=0.004
    config = StudyConfig(task="mypkg.mod:make", target=0.9, budget=200, optimizer="momentum", seed=2, eval_every=50)
    # Adam without the task's weight decay (as a baseline runs it): the command must say weight_decay=0
    args = shlex.split(rerun_command(config, Method("adam", {}, "FIX(k0=0.001)"), task, seeds=[2]))
    assert args[args.index("--task") + 1] == "mypkg.mod:make" and args[args.index("--eval-every") + 1] == "50"
    assert parse_seeds(args[args.index("--seeds") + 1]) == [2]
    opts = parse_opt_args([args[i + 1] for i, a in enumerate(args) if a == "--opt"])
    assert args[args.index("--optimizer") + 1] == "adam" and opts == {"weight_decay": 0}
    onecycle = Method("momentum", {"momentum": 0.9, "weight_decay": 0.004}, "onecycle(max_lr=0.1, total_steps=200)",
                      "torch-onecycle")
    args = shlex.split(rerun_command(config, onecycle, task, seeds=[0, 1]))
    assert args[args.index("--lr-driver") + 1] == "torch-onecycle" and "--opt" not in args
    assert parse_seeds(args[args.index("--seeds") + 1]) == [0, 1]
