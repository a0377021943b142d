"""``lrkit tasks`` and ``lrkit verify``: output and exit status (0 PASS, 1 FAIL, 2 usage error)."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import torch

from lrkit.cli.main import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tasks_lists_the_built_in_tasks(capsys) -> None:
    code, out, _ = run(capsys, "tasks")
    assert code == 0
    for name in ("fashion-mnist-cnn3", "fashion-mnist-lenet", "fashion-mnist-mlp", "digits-mlp"):
        assert name in out
    assert "default policy" in out and "FIX(k0=0.01)" in out
    code, out, _ = run(capsys, "tasks", "--json")
    rows = json.loads(out)
    assert code == 0 and {r["name"] for r in rows} >= {"digits-mlp"} and all("budget" in r for r in rows)


def test_verify_pass_exits_0(capsys) -> None:
    code, out, _ = run(capsys, "verify", "--task", "digits-mlp", "--policy", "FIX(k0=0.1)", "--target", "0.9",
                       "--budget", "1000", "--num-seeds", "2")
    assert code == 0 and out.startswith("PASS") and "seed 0" in out and "seed 1" in out


@pytest.mark.parametrize("text,seeds", [("0", [0]), ("3", [3]), ("0,1,2", [0, 1, 2]), ("2-4", [2, 3, 4]),
                                        ("0,5-7", [0, 5, 6, 7]), (" 4 , 1 ", [4, 1]), ("2,", [2]), ("3-3", [3])])
def test_seeds_is_a_list_of_seeds_and_ranges(text: str, seeds: list[int]) -> None:
    from lrkit.cli.lrbench_cmds import parse_seeds

    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("argv,seeds,note", [
    ([], [0], ""),
    (["--seeds", "0"], [0], ""),
    (["--seeds", "2-3"], [2, 3], ""),
    (["--num-seeds", "3"], [0, 1, 2], ""),
    # a lone N once meant N seeds: it runs seed N now, and says so
    (["--seeds", "3"], [3], "note: --seeds 3 runs seed 3 alone; --num-seeds 3 runs seeds 0..2\n"),
    (["--seeds", "1"], [1], "note: --seeds 1 runs seed 1 alone; --num-seeds 1 runs seed 0\n"),
])
def test_verify_runs_the_seeds_named_and_says_when_a_lone_number_changed_meaning(
        argv: list[str], seeds: list[int], note: str, capsys) -> None:
    code, out, err = run(capsys, "verify", "--task", "digits-mlp", "--policy", "FIX(k0=0.1)", "--target", "0.5",
                         "--budget", "50", "--no-progress", "--json", *argv)
    assert code == 0 and json.loads(out)["seeds"] == seeds and err == note


def test_verify_fail_exits_1_and_says_why(capsys) -> None:
    code, out, _ = run(capsys, "verify", "--task", "digits-mlp", "--policy", "FIX(k0=0.1)", "--target", "0.999",
                       "--budget", "100", "--no-early-stop")
    assert code == 1 and out.startswith("FAIL") and "budget of 100 updates ran out" in out


def test_verify_json(capsys) -> None:
    code, out, err = run(capsys, "verify", "--task", "digits-mlp", "--policy", "FIX(k0=10000)", "--budget", "100",
                         "--json", "--optimizer", "momentum", "--opt", "momentum=0.5")
    data = json.loads(out)
    assert code == 1 and data["verdict"] == "FAIL" and data["trials"][0]["status"] == "diverged"
    assert data["trials"][0]["optimizer_kwargs"] == {"momentum": 0.5}
    assert "seed 0 update" in err


@pytest.mark.parametrize("argv,message", [
    (["verify"], "--task"),
    (["verify", "--task", "digits-mlpp"], "did you mean 'digits-mlp'"),
    (["verify", "--task", "digits-mlp", "--seeds", "a,b"], "--seeds takes distinct seeds >= 0 as a list like 0,1,2 "
                                                            "or a range like 2-4, but got 'a,b'"),
    (["verify", "--task", "digits-mlp", "--seeds", "4-2"], "but got '4-2'"),
    (["verify", "--task", "digits-mlp", "--seeds", "1,1"], "but got '1,1'"),
    (["verify", "--task", "digits-mlp", "--seeds", "0-1,1"], "but got '0-1,1'"),
    (["verify", "--task", "digits-mlp", "--seeds", ","], "but got ','"),
    (["verify", "--task", "digits-mlp", "--num-seeds", "0"], "--num-seeds must be >= 1, but got 0"),
    (["verify", "--task", "digits-mlp", "--seeds", "1", "--num-seeds", "2"], "not allowed with argument"),
    # checked once, in the library: the message names the parameter, the rule and the value
    (["verify", "--task", "digits-mlp", "--target", "90"], "`0 < target <= 1 (an accuracy)` must hold, but got (target=90.0)"),
    (["verify", "--task", "digits-mlp", "--budget", "0"], "`budget >= 1` must hold, but got (budget=0)"),
    (["verify", "--task", "digits-mlp", "--eval-every", "0"], "`eval_every >= 1` must hold, but got (eval_every=0)"),
    (["verify", "--task", "digits-mlp", "--opt", "weight_decay=abc"], "`weight_decay` must be a number"),
    (["verify", "--task", "digits-mlp", "--optimizer", "torch.optim:Nope"], "has no attribute 'Nope'"),
    (["verify", "--task", "digits-mlp", "--optimizer", "torch.nn:Linear"], "must be a torch.optim.Optimizer subclass"),
    (["verify", "--task", "digits-mlp", "--policy", "FIXX(k0=0.1)"], "unknown policy"),
    (["verify", "--task", "digits-mlp", "--optimizer", "adamm"], "did you mean 'adam'"),
    (["verify", "--task", "digits-mlp", "--opt", "momentum"], "KEY=VALUE"),
    (["verify", "--task", "digits-mlp", "--device", "tpu"], "device"),
])
def test_usage_errors_exit_2(capsys, argv: list[str], message: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err


def test_missing_dataset_exits_2_with_install_advice(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "verify", "--task", "fashion-mnist-mlp", "--data-dir", str(tmp_path))
    assert code == 2 and "apt-get install -y dataset-fashion-mnist" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is missing")
def test_cuda_without_cuda_exits_2(capsys) -> None:
    code, _, err = run(capsys, "verify", "--task", "digits-mlp", "--device", "cuda")
    assert code == 2 and "CUDA is not available" in err


def test_custom_task_from_module_function(capsys, tmp_path, monkeypatch) -> None:
    (tmp_path / "h5_cli_task.py").write_text(textwrap.dedent("""
        from lrkit.lrbench.tasks.catalogue import get_task

        def make_task():
            return get_task("digits-mlp").replace(name="mine", budget=300, target=0.8)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, _ = run(capsys, "verify", "--task", "h5_cli_task:make_task", "--policy", "FIX(k0=0.1)")
    sys.modules.pop("h5_cli_task", None)
    assert code == 0 and "PASS: sgd with FIX(k0=0.1) on mine, test accuracy target 0.8 within 300 updates" in out
