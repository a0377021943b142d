"""Tasks (built in and custom) and optimizers by name."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

import lrkit
from lrkit.lrbench.tasks.optimizers import OPTIMIZERS, make_optimizer, optimizer_defaults
from lrkit.lrbench.tasks.catalogue import Task, get_task, list_tasks
from lrkit.lrbench.tasks.datasets import DatasetMissing
from lrkit.errors import LRKitError

BUILT_IN = ("fashion-mnist-cnn3", "fashion-mnist-lenet", "fashion-mnist-mlp", "digits-mlp")


def test_built_in_tasks_are_listed_with_parseable_defaults() -> None:
    tasks = {t.name: t for t in list_tasks()}
    assert set(tasks) == set(BUILT_IN)
    for task in tasks.values():
        lrkit.parse(task.default_policy)  # raises if the default is not a valid spec
        assert task.optimizer in OPTIMIZERS
        assert 0 < task.target <= 1 and task.budget >= task.eval_every >= 1
        assert task.description


@pytest.mark.parametrize("name,side", [("fashion-mnist-cnn3", 28), ("fashion-mnist-lenet", 28),
                                       ("fashion-mnist-mlp", 28), ("digits-mlp", 8)])
def test_models_map_images_to_ten_logits(name: str, side: int) -> None:
    model = get_task(name).make_model()
    assert model(torch.zeros(3, 1, side, side)).shape == (3, 10)


def test_digits_data_loads() -> None:
    data = get_task("digits-mlp").load_data()
    assert data.train_x.shape[1:] == (1, 8, 8) and data.num_classes == 10
    assert len(data.train_y) + len(data.test_y) == 1797


def test_unknown_task_suggests_the_closest_name() -> None:
    with pytest.raises(LRKitError, match="did you mean 'digits-mlp'"):
        get_task("digit-mlp")


def test_missing_dataset_says_how_to_install_it(tmp_path) -> None:
    task = get_task("fashion-mnist-mlp", data_dir=str(tmp_path))
    with pytest.raises(DatasetMissing) as err:
        task.load_data()
    message = str(err.value)
    assert str(tmp_path) in message and "apt-get install" in message and "LRKIT_DATA_DIR" in message


def test_task_rules_name_the_field() -> None:
    task = get_task("digits-mlp")
    with pytest.raises(LRKitError, match="batch_size >= 1"):
        task.replace(batch_size=0)
    with pytest.raises(LRKitError, match="unknown optimizer .lbfgs."):
        task.replace(optimizer="lbfgs")
    with pytest.raises(LRKitError, match="default_policy 'FIXX"):
        task.replace(default_policy="FIXX(k0=0.1)")
    assert task.replace(batch_size=16).batch_size == 16 and task.batch_size == 32
    assert dict(task.replace(optimizer_kwargs={"momentum": 0.5}).optimizer_kwargs) == {"momentum": 0.5}


def test_task_kwargs_are_read_only() -> None:
    task = get_task("fashion-mnist-lenet")
    with pytest.raises(TypeError):
        task.optimizer_kwargs["weight_decay"] = 1.0  # type: ignore[index]


@pytest.fixture
def custom_module(tmp_path, monkeypatch):
    (tmp_path / "h5_custom_tasks.py").write_text(textwrap.dedent("""
        from lrkit.lrbench.tasks.catalogue import get_task

        def make_task():
            return get_task("digits-mlp").replace(name="my-digits", batch_size=16)

        def make_with_dir(data_dir=None):
            return get_task("digits-mlp").replace(name="dir=" + str(data_dir))

        def not_a_task():
            return 42

        READY = get_task("digits-mlp").replace(name="ready")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "h5_custom_tasks"
    sys.modules.pop("h5_custom_tasks", None)


def test_custom_task_from_module_function(custom_module: str) -> None:
    task = get_task(f"{custom_module}:make_task")
    assert isinstance(task, Task) and task.name == "my-digits" and task.batch_size == 16
    assert get_task(f"{custom_module}:make_with_dir", data_dir="/x").name == "dir=/x"
    assert get_task(f"{custom_module}:READY").name == "ready"


def test_custom_task_module_in_the_current_directory(tmp_path, monkeypatch) -> None:
    (tmp_path / "h5_cwd_task.py").write_text("from lrkit.lrbench.tasks.catalogue import get_task\n"
                                             "def make():\n    return get_task('digits-mlp').replace(name='cwd')\n")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.chdir(tmp_path)
    try:
        assert get_task("h5_cwd_task:make").name == "cwd"
    finally:
        sys.modules.pop("h5_cwd_task", None)


@pytest.mark.parametrize("path,message", [
    ("h5_custom_tasks:not_a_task", "must return an lrkit.lrbench.Task"),
    ("h5_custom_tasks:nothing", "has no attribute 'nothing'"),
    ("h5_no_such_module:f", "cannot import module"),
    ("h5_custom_tasks:", "module:attribute"),
])
def test_custom_task_errors(custom_module: str, path: str, message: str) -> None:
    with pytest.raises(LRKitError, match=message):
        get_task(path)


# ---- optimizers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_constructs_and_steps(name: str) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    before = [p.detach().clone() for p in model.parameters()]
    opt = make_optimizer(name, model.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(8, 4)).square().sum().backward()
        opt.step()
    assert opt.param_groups[0]["lr"] == 0.1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_optimizer_defaults_and_overrides() -> None:
    params = [torch.zeros(2, requires_grad=True)]
    group = make_optimizer("nesterov", params, 0.1).param_groups[0]
    assert group["momentum"] == 0.9 and group["nesterov"] is True
    assert make_optimizer("momentum", params, 0.1, momentum=0.5).param_groups[0]["momentum"] == 0.5
    assert make_optimizer("SGD", params, 0.1).param_groups[0]["momentum"] == 0.0
    assert optimizer_defaults("sgd") == {"momentum": 0.0}


@pytest.mark.parametrize("call,message", [
    (lambda p: make_optimizer("adamm", p, 0.1), "did you mean 'adam'"),
    (lambda p: make_optimizer("adam", p, 0.1, momentum=0.9), "has no argument 'momentum'"),
    (lambda p: make_optimizer("momentum", p, 0.1, momentum=-1.0), "rejected its arguments"),
    (lambda p: make_optimizer("sgd", p, -0.1), "lr >= 0"),
])
def test_optimizer_mistakes_raise_lrkit_errors(call, message: str) -> None:
    with pytest.raises(LRKitError, match=message):
        call([torch.zeros(2, requires_grad=True)])
