"""``lrkit range-test`` on the bundled digits task and on a module:function set-up."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from lrkit.cli.main import main


def test_range_test_on_a_task_prints_bounds_and_a_policy(tmp_path, capsys, monkeypatch) -> None:
    from lrkit import progress

    monkeypatch.setattr(progress, "INTERVAL", 0.0)  # a progress line per point (stderr is not a terminal)
    png, js = tmp_path / "range.png", tmp_path / "range.json"
    code = main(["range-test", "--task", "digits-mlp", "--steps", "60", "--start-lr", "1e-4", "--end-lr", "10",
                 "--train-limit", "640", "-o", str(png), "--json", str(js)])
    out, err = capsys.readouterr()
    assert code == 0
    assert "recommended: lr=" in out and "policy: triangular2(base_lr=" in out
    # 640 examples in batches of 32: 20 updates an epoch, and RangeTestResult.policy's default is 4 epochs
    assert "step_size=80)  (step_size = 80: 4 epochs of 20 updates)" in out
    assert png.stat().st_size > 1000 and f"plot: {png}" in out
    saved = json.loads(js.read_text())
    assert saved["points"] == 60 and saved["sweep"].startswith("exp_sweep(") and set(saved["picks"]) == {
        "accuracy", "valley", "steepest", "minimum"}
    assert saved["iters_per_epoch"] == 20
    assert err.startswith("range test: 1/60 points after ") and err.count("range test: ") == 61


def test_range_test_keeps_existing_files_and_checks_paths_before_the_sweep(tmp_path, capsys) -> None:
    png, js = tmp_path / "range.png", tmp_path / "range.json"
    png.write_bytes(b"an earlier plot")
    js.write_text("{}")
    base = ["range-test", "--task", "digits-mlp", "--steps", "20", "--train-limit", "320"]
    assert main([*base, "-o", str(png)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "already exists" in err and "--force" in err  # refused before any work
    assert main([*base, "-o", str(tmp_path / "new.png"), "--json", str(js)]) == 2
    assert "already exists" in capsys.readouterr().err and not (tmp_path / "new.png").exists()
    assert main([*base, "-o", str(tmp_path / "no" / "range.png")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "no").exists()
    assert main([*base, "-o", str(tmp_path / "range.jpgx")]) == 2
    assert "`-o` must end in one of" in capsys.readouterr().err
    assert png.read_bytes() == b"an earlier plot" and js.read_text() == "{}"
    # 20 points carry no signal (exit 1, no bounds), but the plot and the JSON are written all the same
    assert main([*base, "-o", str(png), "--json", str(js), "--force"]) == 1
    assert png.read_bytes()[:4] == b"\x89PNG" and json.loads(js.read_text())["points"] == 20
    assert json.loads(js.read_text())["no_signal"].startswith("the smoothed loss never falls more than 10%")
    assert main([*base, "-o", str(tmp_path / "bare"), "--json", str(tmp_path / "bare")]) == 1
    out = capsys.readouterr().out
    assert f"plot: {tmp_path / 'bare.png'}" in out and f"json: {tmp_path / 'bare.json'}" in out


def test_range_test_accepts_module_function(tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "my_setup.py").write_text(textwrap.dedent("""
        import torch
        def make():
            torch.manual_seed(0)
            model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
            x = torch.randn(128, 4)
            y = (x.sum(1) > 0).long()
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            return model, opt, torch.nn.functional.cross_entropy, (x, y)
        def make_unsized():  # batches from a generator: no epoch length to size step_size by
            model, opt, loss_fn, (x, y) = make()
            return model, opt, loss_fn, ((x[i:i + 32], y[i:i + 32]) for _ in range(100) for i in range(0, 128, 32))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["range-test", "--task", "my_setup:make", "--steps", "40", "--end-lr", "10", "--method", "valley",
                 "--policy", "FIX", "-o", str(tmp_path / "r.png")])
    out = capsys.readouterr().out
    assert code == 0
    assert "recommended: lr=" in out and "(valley)" in out and "policy: FIX(k0=" in out
    code = main(["range-test", "--task", "my_setup:make_unsized", "--steps", "40", "--end-lr", "10",
                 "-o", str(tmp_path / "r.png"), "--force"])
    out = capsys.readouterr().out
    assert code == 0 and "policy: not built (the training data has no length, so step_size cannot default to " \
                         "4 epochs; give --step-size)" in out
    code = main(["range-test", "--task", "my_setup:make", "--steps", "40", "--end-lr", "10", "--policy", "triangular",
                 "--step-size", "7", "-o", str(tmp_path / "r.png"), "--force"])
    out = capsys.readouterr().out
    assert code == 0 and "policy: triangular(" in out and "step_size=7)\n" in out  # given: no default note
    sys.modules.pop("my_setup", None)


@pytest.mark.parametrize("argv, message", [
    (["--task", "digits-mlp", "--steps", "1"], "--steps >= 2"),
    (["--task", "no-such-task"], "unknown task"),
    (["--task", "digits-mlp", "--start-lr", "1", "--end-lr", "0.1"], "end_lr > start_lr"),
    (["--task", "digits-mlp", "--step-size", "0"], "--step-size >= 1"),
])
def test_range_test_mistakes_exit_2(argv: list[str], message: str, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default -o range.png is checked first: no stray file may answer instead
    assert main(["range-test", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--policy", "NOPE"], "`--policy` must be one of constant, FIX, triangular, triangular2 (the policies the "
                           "suggested bounds and --step-size build), but got (--policy='NOPE'); "),
    (["--policy", "cosine"], "(--policy='cosine'); cosine also needs total_steps (from Python: "
                             "result.policy('cosine', total_steps=...))."),
    (["--policy", "FIX(k0=1)"], "(--policy='FIX(k0=1)'); give a policy's name, not a spec"),
    (["--policy", "join"], "(--policy='join'); join has no LR bound to fill."),
    (["--policy", "triangular3"], "(--policy='triangular3'); did you mean 'triangular'?\n"),
    (["--policy", "FIX", "--step-size", "5"], "`--step-size` needs a --policy with a step_size (triangular, "
                                              "triangular2), but got (--policy='FIX', --step-size=5)."),
    (["--start-lr", "-1"], "`--start-lr > 0` must hold, but got (start_lr=-1)."),
    (["--start-lr", "nan"], "`--start-lr > 0` must hold, but got (start_lr=nan)."),
])
def test_range_test_refuses_a_bad_policy_or_start_lr_before_any_training(argv: list[str], message: str, capsys,
                                                                         tmp_path, monkeypatch) -> None:
    from lrkit.lrbench.run import lr_range

    def never(*args, **kwargs):
        raise AssertionError("the range test ran")

    monkeypatch.setattr(lr_range, "task_range_test", never)
    png = tmp_path / "a.png"
    assert main(["range-test", "--task", "digits-mlp", "-o", str(png), *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "usage: lrkit range-test" in err and message in err and "Traceback" not in err
    assert err.split("lrkit range-test: error: ")[1].count("\n") == 1 and not png.exists()  # one line
