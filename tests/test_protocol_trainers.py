"""LRBench trials through Lightning and the Hugging Face Trainer (skipped where they are not installed).

For each adapter (:class:`lrkit.torch.LRBenchCallback`, :class:`lrkit.torch.LRBenchTrainerCallback`):
the LR of update ``t`` is exactly ``policy(t)``, every update is counted, the metrics are reported
every ``eval_every`` updates and at the budget, a stop lrkit decides (the target reached) stops the
trainer, and a schedule-free optimizer evaluates on its evaluation weights. The examples
``examples/lightning_fashion.py`` and ``examples/hf_fashion.py`` run at a small budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import lrkit  # noqa: E402
from lrkit.errors import LRKitError  # noqa: E402
from lrkit.lrbench import Task, run_trial, verify  # noqa: E402
from lrkit.lrbench.tasks.catalogue import get_task  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# only + - * / and floor: numpy's scalar and SIMD paths round these alike, so == is safe below
SPEC = "warmup(TRI(k0=0.001, k1=0.006, l=5), steps=3)"
POLICY = lrkit.parse(SPEC)
NAMES = {"val_acc", "val_loss", "test_acc", "test_loss"}


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(192, 4, generator=g)
    y = (x.sum(1) > 0).long()
    return (x[:128], y[:128]), (x[128:160], y[128:160]), (x[160:], y[160:])


def _trial(train, *, budget: int, target: float, eval_every: int = 10, optimizer: str = "sgd", policy=SPEC):
    task = Task.from_function(train, budget=budget, target=target, eval_every=eval_every)
    return run_trial(task, policy, optimizer=optimizer, on="val", early_stop=False)


def _fashion_or_skip() -> None:
    from lrkit.lrbench.tasks.datasets import DatasetMissing, fashion_mnist_dir

    try:
        fashion_mnist_dir()
    except DatasetMissing as err:
        pytest.skip(str(err))


# ---- Lightning ------------------------------------------------------------------------------------
def _lightning_train(pl, seen: dict, trainers: list, modes: list | None = None):
    from lrkit.torch import LRBenchCallback, lightning_trainer_kwargs

    (x, y), val, test = _data()

    class Tiny(pl.LightningModule):
        def __init__(self, run):
            super().__init__()
            self.run = run
            self.net = torch.nn.Linear(4, 2)

        def training_step(self, batch, batch_idx):
            seen[self.trainer.global_step] = self.optimizers().param_groups[0]["lr"]
            return torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1])

        def validation_step(self, batch, batch_idx, dataloader_idx=0):
            if modes is not None:
                modes.append(self.optimizers().optimizer.param_groups[0]["train_mode"])
            logits, split = self.net(batch[0]), ("val", "test")[dataloader_idx]
            self.log(f"{split}_loss", torch.nn.functional.cross_entropy(logits, batch[1]), add_dataloader_idx=False)
            self.log(f"{split}_acc", (logits.argmax(1) == batch[1]).float().mean(), add_dataloader_idx=False)

        def configure_optimizers(self):
            return self.run.optimizer(self)

    def train(run):
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8, shuffle=True,
                                             generator=run.generator)
        evaluation = [torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*s), batch_size=32)
                      for s in (val, test)]
        trainer = pl.Trainer(**lightning_trainer_kwargs(run), callbacks=[LRBenchCallback(run)])
        trainers.append(trainer)
        trainer.fit(Tiny(run), loader, evaluation)

    return train


def test_lightning_lr_is_the_policy_every_update_counted_reports_every_eval_every():
    pl = pytest.importorskip("lightning.pytorch")
    seen: dict[int, float] = {}
    trainers: list = []
    result = _trial(_lightning_train(pl, seen, trainers), budget=23, target=0.999)
    assert result.steps == 23 and trainers[0].global_step == 23 and result.status == "budget"
    assert seen == {t: POLICY(t) for t in range(23)}
    assert [p.step for p in result.curve] == [10, 20, 23]  # and at the budget, though not a multiple of 10
    assert all(set(p.metrics) == NAMES for p in result.curve)
    assert all(p.train_loss > 0 for p in result.curve)  # the losses reached run.step


def test_lightning_stops_when_lrkit_decides():
    pl = pytest.importorskip("lightning.pytorch")
    seen: dict[int, float] = {}
    trainers: list = []
    result = _trial(_lightning_train(pl, seen, trainers), budget=100, target=0.01)
    assert result.status == "pass" and result.steps_to_target == 10
    assert result.steps == 10 and trainers[0].global_step == 10 and sorted(seen) == list(range(10))


def test_lightning_evaluates_schedule_free_on_its_evaluation_weights():
    pl = pytest.importorskip("lightning.pytorch")
    pytest.importorskip("schedulefree")
    modes: list[bool] = []
    result = _trial(_lightning_train(pl, {}, [], modes), budget=20, target=0.999,
                    optimizer="schedulefree:AdamWScheduleFree")
    assert result.steps == 20 and len(result.curve) == 2  # the updates after an evaluation ran in train mode
    assert modes and not any(modes)


def test_lightning_trainer_kwargs():
    pytest.importorskip("lightning.pytorch")
    from types import SimpleNamespace

    from lrkit.torch import lightning_trainer_kwargs

    run = SimpleNamespace(budget=600, steps=0, eval_every=50, device="cuda:1")
    kwargs = lightning_trainer_kwargs(run, accumulate_grad_batches=4, logger=True)
    assert kwargs["max_steps"] == 600 and kwargs["val_check_interval"] == 200
    assert kwargs["check_val_every_n_epoch"] is None
    assert (kwargs["accelerator"], kwargs["devices"], kwargs["logger"]) == ("gpu", [1], True)


# ---- the Hugging Face Trainer -------------------------------------------------------------------------
def _hf_train(transformers, seen: dict, trainers: list, modes: list | None = None, names: bool = True, **args):
    from lrkit.torch import hf_trainer_kwargs, hf_training_args

    (x, y), val, test = _data()

    def rows(split):
        return [{"inputs": split[0][i], "labels": split[1][i]} for i in range(len(split[1]))]

    class Tiny(torch.nn.Module):
        def __init__(self, box):
            super().__init__()
            self.net, self.box = torch.nn.Linear(4, 2), box

        def forward(self, inputs, labels=None):
            group = self.box["opt"].param_groups[0]
            if self.training:
                seen[self.box["trainer"].state.global_step] = group["lr"]
            elif modes is not None:
                modes.append(group["train_mode"])
            logits = self.net(inputs)
            return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}

    def accuracy(prediction):
        return {"acc": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

    def train(run):
        box: dict = {}
        model = Tiny(box)
        settings = transformers.TrainingArguments(**hf_training_args(
            run, per_device_train_batch_size=8, per_device_eval_batch_size=32, remove_unused_columns=False, **args))
        kwargs = hf_trainer_kwargs(run, model, eval_dataset={"val": rows(val), "test": rows(test)})
        if not names:
            kwargs["callbacks"][0].datasets = None
        trainer = transformers.Trainer(model=model, args=settings, train_dataset=rows((x, y)), compute_metrics=accuracy,
                                       **kwargs)
        trainer.remove_callback(transformers.PrinterCallback)
        box.update(trainer=trainer, opt=kwargs["optimizers"][0])
        trainers.append(trainer)
        trainer.train()

    return train


def _hf():
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")  # transformers.Trainer needs it on PyTorch
    return transformers


def test_hf_lr_is_the_policy_every_update_counted_reports_every_eval_every():
    transformers = _hf()
    seen: dict[int, float] = {}
    trainers: list = []
    # warmup_steps: the Trainer's own scheduler would give update 0 an LR of 0; KeepLR keeps it out
    result = _trial(_hf_train(transformers, seen, trainers, warmup_steps=5), budget=23, target=0.999)
    assert result.steps == 23 and trainers[0].state.global_step == 23 and result.status == "budget"
    assert seen == {t: POLICY(t) for t in range(23)}
    assert [p.step for p in result.curve] == [10, 20, 23]
    assert all(set(p.metrics) == NAMES for p in result.curve)


def test_hf_stops_when_lrkit_decides():
    transformers = _hf()
    seen: dict[int, float] = {}
    trainers: list = []
    result = _trial(_hf_train(transformers, seen, trainers), budget=100, target=0.01)
    assert result.status == "pass" and result.steps_to_target == 10
    assert result.steps == 10 and trainers[0].state.global_step == 10 and sorted(seen) == list(range(10))


def test_hf_evaluates_schedule_free_on_its_evaluation_weights():
    transformers = _hf()
    pytest.importorskip("schedulefree")
    modes: list[bool] = []
    result = _trial(_hf_train(transformers, {}, [], modes), budget=20, target=0.999,
                    optimizer="schedulefree:AdamWScheduleFree")
    assert result.steps == 20 and len(result.curve) == 2
    assert modes and not any(modes)


def test_hf_several_evaluation_sets_need_their_names():
    transformers = _hf()
    with pytest.raises(LRKitError, match=r"must give `val_acc`, but gave \(val_val_acc, val_val_loss\).*datasets="):
        _trial(_hf_train(transformers, {}, [], names=False), budget=20, target=0.999)


# ---- the examples ---------------------------------------------------------------------------------------
def test_lightning_example_verifies_at_a_small_budget():
    pytest.importorskip("lightning.pytorch")
    _fashion_or_skip()
    task = get_task(f"{EXAMPLES / 'lightning_fashion.py'}:train")  # as `lrkit verify --task ...` loads it
    assert (task.budget, task.target, task.metric, task.eval_every) == (200, 0.8, "val_acc", 50)
    result = verify(task, "FIX(k0=0.003)", budget=40, eval_every=20, seeds=(0,), optimizer="adam", on="val",
                    early_stop=False)
    trial = result.trials[0]
    assert trial.steps == 40 and [p.step for p in trial.curve] == [20, 40]
    assert set(trial.curve[-1].metrics) == NAMES and trial.curve[-1].val_acc > 0.4  # chance: 0.1


def test_hf_example_trains_at_a_small_budget():
    _hf()
    _fashion_or_skip()
    task = get_task(f"{EXAMPLES / 'hf_fashion.py'}:train")
    assert (task.budget, task.target, task.metric, task.eval_every) == (200, 0.8, "val_acc", 50)
    trial = run_trial(task, "FIX(k0=0.003)", budget=40, eval_every=20, optimizer="adam", on="val", early_stop=False)
    assert trial.steps == 40 and [p.step for p in trial.curve] == [20, 40]
    assert set(trial.curve[-1].metrics) == NAMES and trial.curve[-1].val_acc > 0.4
