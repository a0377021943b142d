"""A user's own task: its data is checked where it is loaded (named array, rule, value; exit 2), and
``--task path/to/file.py:function`` loads the file (issue 17)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from lrkit.cli.main import main
from lrkit.lrbench.tasks import ArrayDataset, DataError, Task, check_task, get_task

USER_TASK = textwrap.dedent('''
    import os
    import numpy as np
    import torch
    from lrkit.lrbench import Task
    from lrkit.lrbench.tasks import ArrayDataset

    def _data(mode):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(200, 1, 4, 4))              # float64, numpy's default
        y = (x[:, 0, 0, :2].sum(1) > 0).astype(np.int64) + 2 * (x[:, 0, 1, :2].sum(1) > 0)
        x = x if mode == "f64" else x.astype(np.float32)
        y = y.astype(np.int32) if mode == "i32" else y
        return ArrayDataset("mine", x[:160], y[:160], x[160:], y[160:])

    def make_task():
        mode = os.environ.get("H17_MODE", "ok")
        outputs = 3 if mode == "few" else 4
        return Task(name="mine", description="d", load_data=lambda: _data(mode), batch_size=16, eval_every=10,
                    make_model=lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, outputs)),
                    budget=20, target=0.5)
''')


def _task(**arrays: np.ndarray) -> Task:
    import torch

    rng = np.random.default_rng(0)
    data = dict(train_x=rng.normal(size=(64, 4)).astype(np.float32), train_y=rng.integers(0, 3, 64),
                test_x=rng.normal(size=(16, 4)).astype(np.float32), test_y=rng.integers(0, 3, 16))
    data.update(arrays)
    return Task("t", "d", lambda: torch.nn.Linear(4, 3), lambda: ArrayDataset("t", **data), batch_size=8,
                val_size=0)


@pytest.mark.parametrize("arrays, message", [
    (dict(train_x=np.zeros((64, 4)), test_x=np.zeros((16, 4))),
     "task 't': train x must be float32 (the dtype of the model's parameters), but got float64: convert with "
     "x.astype(numpy.float32)"),
    (dict(train_y=np.zeros(64, np.int32)), "task 't': train y must be int64 class indices, but got int32: convert "
                                           "with y.astype(numpy.int64)"),
    (dict(test_y=np.full(16, 0.5)), "test y must be int64 class indices, but got float64 (e.g. 0.5)"),
    (dict(test_y=np.full(16, 3)), "task 't': test y must be below 3 (the model's 3 outputs), but holds label 3: "
                                  "give the model one output per class (4 or more)"),
    (dict(train_y=np.eye(3, dtype=np.int64)[np.zeros(64, int)]), "train y must be 1-d (one class index per "
                                                                 "example), but got shape (64, 3): for one-hot"),
    (dict(train_y=np.full(64, -1)), "train y must be class indices >= 0, but got -1"),
    (dict(test_x=np.zeros((16, 4))), "test x must be float32 like train x, but got float64"),
    (dict(test_x=np.zeros((16, 5), np.float32)), "test x must hold examples of train x's shape (4,), but got (5,)"),
    (dict(train_x=np.full((64, 4), np.nan, np.float32)), "train x must be finite, but holds 256 NaN or inf values"),
    (dict(test_y=np.zeros(15, np.int64)), "test x and test y must hold the same number (> 0) of examples, but got "
                                          "16 and 15"),
    (dict(train_x=[[0.0] * 4] * 64), "train x must be a numpy array, but got list: convert with numpy.asarray(x)"),
])
def test_a_data_mistake_names_the_array_the_rule_and_the_value(arrays: dict, message: str) -> None:
    with pytest.raises(DataError) as err:
        check_task(_task(**arrays))
    assert message in str(err.value)


def test_the_array_rules_hold_wherever_the_data_is_loaded() -> None:
    task = _task(train_y=np.zeros(64, np.int32))
    with pytest.raises(DataError, match="train y must be int64"):
        task.split_data()  # what every trial, the range test and a study load through
    check_task(_task())  # a good task passes


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "h17_task.py").write_text(USER_TASK)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("mode, message", [
    ("f64", "train x must be float32 (the dtype of the model's parameters), but got float64"),
    ("i32", "train y must be int64 class indices, but got int32"),
    ("few", "train y must be below 3 (the model's 3 outputs), but holds label 3"),
])
def test_the_cli_exits_2_naming_the_array(user_dir: Path, mode: str, message: str, capsys,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("H17_MODE", mode)
    for argv in (["verify", "--task", "sub/h17_task.py:make_task", "--no-progress"],
                 ["range-test", "--task", "sub/h17_task.py:make_task", "--steps", "10", "-o", "r.png"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"error: task 'mine': {message}" in err and "Traceback" not in err
    assert not (user_dir / "r.png").exists()


def test_a_task_from_a_file_path_verifies(user_dir: Path, capsys) -> None:
    absolute = f"{user_dir / 'sub' / 'h17_task.py'}:make_task"
    assert get_task(absolute).name == "mine" and get_task("sub/h17_task.py:make_task").name == "mine"
    assert get_task("./sub/h17_task.py:make_task").load_data is not None
    code = main(["verify", "--task", absolute, "--policy", "FIX(k0=0.5)", "--no-progress"])
    assert code in (0, 1) and "with FIX(k0=0.5) on mine" in capsys.readouterr().out  # a verdict, not an error


@pytest.mark.parametrize("path, message", [
    ("sub/nothing.py:make_task", "task 'sub/nothing.py:make_task': there is no file 'sub/nothing.py' (a relative "
                                 "path starts from the current directory"),
    ("sub/h17_task.py:nope", "file 'sub/h17_task.py' has no attribute 'nope'"),
    ("sub/broken.py:f", "loading file 'sub/broken.py' for task 'sub/broken.py:f' failed: ZeroDivisionError"),
])
def test_a_file_path_mistake_names_the_path(user_dir: Path, path: str, message: str, capsys) -> None:
    (user_dir / "sub" / "broken.py").write_text("x = 1 / 0\n")
    assert main(["verify", "--task", path]) == 2
    assert message in capsys.readouterr().err


def test_an_optimizer_from_a_file_path(user_dir: Path) -> None:
    from lrkit.lrbench.tasks.optimizers import optimizer_class

    (user_dir / "sub" / "h17_opt.py").write_text("import torch\nclass MySGD(torch.optim.SGD):\n    pass\n")
    assert optimizer_class("sub/h17_opt.py:MySGD")[1].__name__ == "MySGD"


def test_range_test_metric_flag(user_dir: Path, capsys) -> None:
    (user_dir / "sub" / "h17_setup.py").write_text(textwrap.dedent('''
        import torch
        def make():
            torch.manual_seed(0)
            model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
            x = torch.randn(128, 4)
            y = (x.sum(1) > 0).long()
            return model, torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.functional.cross_entropy, (x, y)
    '''))
    base = ["range-test", "--task", "sub/h17_setup.py:make", "--steps", "40", "--end-lr", "10", "--force"]
    assert main([*base, "-o", "a.png"]) == 0
    out = capsys.readouterr().out
    assert "no accuracy was recorded (range_test(metric='accuracy'), or `lrkit range-test --metric accuracy`)" in out
    assert main([*base, "-o", "b.png", "--metric", "accuracy"]) == 0
    assert "(accuracy): accuracy starts to rise" in capsys.readouterr().out
