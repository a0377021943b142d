"""Every LRBench command on a training function (``--task tests/protocol_train.py:train``), as a user runs it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from lrkit.cli.main import main

TASK = str(Path(__file__).with_name("protocol_train.py")) + ":train"


def test_verify_judges_the_function_on_its_metric(capsys):
    assert main(["verify", "--task", TASK, "--policy", "FIX(k0=0.01)", "--seeds", "0,1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS: adam with FIX(k0=0.01) on ") and "target val_acc >= 0.9" in out
    assert main(["verify", "--task", TASK, "--policy", "FIX(k0=0.01)", "--metric", "val_loss", "--mode", "min",
                 "--target", "0.3", "--json", "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    trial = result["trials"][0]
    assert trial["metric"] == "val_loss" and trial["mode"] == "min" and trial["target"] == -0.3
    assert -trial["best_val_acc"] <= 0.3 and trial["curve"][-1]["metrics"]["val_loss"] <= 0.3


def test_verify_without_a_target_says_what_the_run_reached(capsys):
    assert main(["verify", "--task", TASK, "--policy", "FIX(k0=0.01)", "--metric", "val_loss", "--mode", "min",
                 "--budget", "60", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("DONE: ") and "no target, judged by val_loss" in out and "by update" in out


def test_a_misnamed_metric_is_one_error_line(capsys):
    assert main(["verify", "--task", TASK, "--metric", "val_acc_top1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "'val_acc_top1' was never reported" in err and "test_acc, test_loss, val_acc, val_loss" in err
    assert "Traceback" not in err


def test_recommend_then_results_report_and_the_rerun(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 's.db'}"
    argv = ["recommend", "--task", TASK, "--trials", "3", "--storage", url, "--metric", "val_loss", "--mode", "min",
            "--target", "0.3", "--baselines", "adam,prodigy", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:7] == ["rank", "method", "family", "reached", "val", "updates", "spread"]
    assert "val_loss" in out.splitlines()[0] and "target val_loss <= 0.3 reached" in out
    rerun = next(line for line in out.splitlines() if line.startswith("re-run it: ")).removeprefix("re-run it: ")
    args = shlex.split(rerun)
    assert args[args.index("--metric") + 1] == "val_loss" and args[args.index("--mode") + 1] == "min"
    assert main(args[1:] + ["--no-progress"]) == 0  # the recommended pair passes again
    capsys.readouterr()
    assert main(["results", "--storage", url, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["acc"] > 0 and r["test_acc"] > 0 for r in rows)  # the loss itself, not its negated score
    assert main(["results", "--storage", url]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[7:11] == ["val_loss", "test", "updates", "test_loss"]
    report = tmp_path / "report.html"
    assert main(["report", "--storage", url, "-o", str(report)]) == 0 and report.stat().st_size > 1000


def test_two_workers_run_a_study_of_the_function(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert main(["recommend", "--task", TASK, "--trials", "4", "--storage", url, "--study", "own", "--baselines",
                 "adam", "--create-only", "--no-progress"]) == 0
    lrkit = [sys.executable, "-m", "lrkit.cli.main"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    workers = [subprocess.Popen([*lrkit, "worker", "--study", "own", "--storage", url, "--no-progress"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs
    import optuna

    from lrkit.lrbench.study.schema import ATTR_ROLE

    trials = optuna.load_study(study_name="own", storage=url).get_trials(deepcopy=False)
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)  # every trial finished, none twice
    roles = [t.user_attrs.get(ATTR_ROLE) for t in trials]
    assert roles.count("candidate") >= 4 and "default" in roles  # (the adam baseline is the default here: run once)


def test_compose_forks_the_function(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["compose", "--task", TASK, "--target", "0.95", "--stages", "2", "--candidates", "2", "--beam", "1",
                 "--storage", url, "--no-progress"]) in (0, 1)
    out = capsys.readouterr().out
    assert "composed: adam with " in out and "--metric val_acc" in out


def test_range_test_runs_the_function_as_a_sweep(tmp_path, capsys):
    plot, data = tmp_path / "range.png", tmp_path / "range.json"
    assert main(["range-test", "--task", TASK, "--steps", "100", "-o", str(plot), "--json", str(data)]) == 0
    curve = json.loads(data.read_text())
    assert plot.exists() and 10 < len(curve["lrs"]) <= 100 and len(curve["losses"]) == len(curve["lrs"])
    assert curve["lrs"][0] == pytest.approx(1e-6) and curve["lrs"] == sorted(curve["lrs"])
