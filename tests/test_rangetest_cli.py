"""``lrkit range-test`` on the bundled digits task and on a module:function set-up."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from lrkit.cli.main import main


def test_range_test_on_a_task_prints_bounds_and_a_policy(tmp_path, capsys) -> None:
    png, js = tmp_path / "range.png", tmp_path / "range.json"
    code = main(["range-test", "--task", "digits-mlp", "--steps", "60", "--start-lr", "1e-4", "--end-lr", "10",
                 "--train-limit", "640", "--step-size", "80", "-o", str(png), "--json", str(js)])
    out = capsys.readouterr().out
    assert code == 0
    assert "recommended: lr=" in out and "policy: triangular2(base_lr=" in out and "step_size=80" in out
    assert png.stat().st_size > 1000
    saved = json.loads(js.read_text())
    assert saved["points"] == 60 and saved["sweep"].startswith("exp_sweep(") and set(saved["picks"]) == {
        "accuracy", "valley", "steepest", "minimum"}
    assert saved["iters_per_epoch"] == 20  # 640 examples in batches of 32: the default step_size is 4 x 20


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
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["range-test", "--task", "my_setup:make", "--steps", "40", "--end-lr", "10", "--method", "valley",
                 "--policy", "cosine", "-o", str(tmp_path / "r.png")])
    out = capsys.readouterr().out
    assert code == 0
    assert "recommended: lr=" in out and "(valley)" in out
    assert "policy: not built (policy 'cosine' also needs total_steps" in out
    sys.modules.pop("my_setup", None)


@pytest.mark.parametrize("argv, message", [
    (["--task", "digits-mlp", "--steps", "1"], "--steps >= 2"),
    (["--task", "no-such-task"], "unknown task"),
    (["--task", "digits-mlp", "--start-lr", "1", "--end-lr", "0.1"], "end_lr > start_lr"),
])
def test_range_test_mistakes_exit_2(argv: list[str], message: str, capsys) -> None:
    assert main(["range-test", *argv]) == 2
    assert message in capsys.readouterr().err
