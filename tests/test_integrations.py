"""PolicyLR inside Lightning and the Hugging Face Trainer (skipped where they are not installed).

Each test trains a tiny model for a few optimizer updates and checks that the LR seen in
update ``t`` is exactly ``policy(t)``; the Lightning test also resumes from a checkpoint.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import lrkit  # noqa: E402
from lrkit.torch import PolicyLR  # noqa: E402

# only + - * / and floor: numpy's scalar and SIMD paths round these alike, so == is safe below
SPEC = "warmup(TRI(k0=0.001, k1=0.006, l=5), steps=3)"
POLICY = lrkit.parse(SPEC)


def _data(n: int = 64):
    torch.manual_seed(0)
    x = torch.randn(n, 4)
    return x, (x.sum(1, keepdim=True) > 0).float()


def test_lightning_interval_step_and_resume(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    torch.set_num_threads(1)
    x, y = _data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    seen: dict[int, float] = {}

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            seen[self.trainer.global_step] = self.optimizers().param_groups[0]["lr"]
            xb, yb = batch
            return torch.nn.functional.binary_cross_entropy_with_logits(self.net(xb), yb)

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": PolicyLR(opt, SPEC), "interval": "step"}}

    def trainer(steps: int):
        return pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                          enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)

    first = trainer(10)
    first.fit(Tiny(), loader)
    assert [seen[t] for t in range(10)] == [POLICY(t) for t in range(10)]
    ckpt = tmp_path / "ten.ckpt"
    first.save_checkpoint(ckpt)

    seen.clear()
    trainer(20).fit(Tiny(), loader, ckpt_path=str(ckpt))
    assert sorted(seen) == list(range(10, 20))  # the horizon and the step carry over
    assert [seen[t] for t in range(10, 20)] == [POLICY(t) for t in range(10, 20)]


def test_hf_trainer_optimizers_tuple(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")  # transformers.Trainer needs it on PyTorch
    torch.set_num_threads(1)
    x, y = _data()
    seen: list[float] = []

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def forward(self, inputs, labels=None):
            if self.training:
                seen.append(opt.param_groups[0]["lr"])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(self.net(inputs), labels)
            return {"loss": loss}

    model = Tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = PolicyLR(opt, SPEC)
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=12, per_device_train_batch_size=4,
                                          report_to=[], save_strategy="no", use_cpu=True,
                                          remove_unused_columns=False, logging_strategy="no")
    rows = [{"inputs": x[i], "labels": y[i]} for i in range(len(x))]
    transformers.Trainer(model=model, args=args, train_dataset=rows, optimizers=(opt, sched)).train()
    assert seen == [POLICY(t) for t in range(12)]
    assert sched.t == 12


# ---- plateau policies: the metric comes from the framework's evaluations --------------------------
PLATEAU = "plateau([TRI(k0=0.001, k1=0.006, l=5), FIX(k0=0.002), FIX(k0=0.0005)], patience=1, monitor=val_loss)"
# val_loss after each epoch of 8 updates: better, better, stalled, stalled (switch at 32), better, better,
# stalled, stalled (switch at 64), ...; the sanity check's value (at 0) would move the switches if it counted
LOSS_AT = {0: 0.1, 8: 2.0, 16: 1.5, 24: 1.5, 32: 1.5, 40: 1.4, 48: 1.2, 56: 1.3, 64: 1.3, 72: 1.3, 80: 1.3}
REPLAY = lrkit.parse("join([TRI(k0=0.001, k1=0.006, l=5), FIX(k0=0.002), FIX(k0=0.0005)], boundaries=[32, 64])")


def _lightning_plateau_module(pl, seen: dict, route: str):
    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            seen[self.trainer.global_step] = self.optimizers().param_groups[0]["lr"]
            xb, yb = batch
            return torch.nn.functional.binary_cross_entropy_with_logits(self.net(xb), yb)

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", LOSS_AT[self.trainer.global_step])

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            self.sched = PolicyLR(opt, PLATEAU)
            per_update = {"scheduler": self.sched, "interval": "step"}
            if route == "callback":
                return {"optimizer": opt, "lr_scheduler": per_update}
            # Lightning steps a config with "reduce_on_plateau" as scheduler.step(metric) after validation
            on_metric = {"scheduler": self.sched, "interval": "epoch", "monitor": "val_loss", "reduce_on_plateau": True}
            return [opt], [per_update, on_metric]

    return Tiny


@pytest.mark.parametrize("route", ["scheduler_config", "callback"])
def test_lightning_plateau_switches_on_val_loss_and_resumes(tmp_path, route):
    pl = pytest.importorskip("lightning.pytorch")
    from lrkit.torch import LightningMetricReporter

    torch.set_num_threads(1)
    x, y = _data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    seen: dict[int, float] = {}
    Tiny = _lightning_plateau_module(pl, seen, route)

    def trainer(steps: int, checkpoints=None):
        callbacks = [LightningMetricReporter()] if route == "callback" else []
        if checkpoints is not None:
            callbacks.append(pl.callbacks.ModelCheckpoint(dirpath=checkpoints, every_n_epochs=1, save_top_k=-1))
        return pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, callbacks=callbacks,
                          enable_checkpointing=checkpoints is not None, enable_progress_bar=False,
                          enable_model_summary=False, default_root_dir=tmp_path)

    whole = Tiny()
    trainer(80, checkpoints=tmp_path / "every-epoch").fit(whole, loader, loader)
    assert whole.sched.policies[0].switched_at == (32.0, 64.0)
    assert whole.sched.replay_policy() == REPLAY
    assert [seen[t] for t in range(80)] == [REPLAY(t) for t in range(80)]  # the LR changes per update
    full = dict(seen)

    # stop after epoch 4 (update 40), save, resume: the same switches and LRs
    seen.clear()
    first = trainer(40)
    first.fit(Tiny(), loader, loader)
    first.save_checkpoint(tmp_path / "forty.ckpt")
    seen.clear()
    resumed = Tiny()
    trainer(80).fit(resumed, loader, loader, ckpt_path=str(tmp_path / "forty.ckpt"))
    assert sorted(seen) == list(range(40, 80)) and all(seen[t] == full[t] for t in seen)
    assert resumed.sched.policies[0].switched_at == (32.0, 64.0)

    if route == "callback":
        # the callback reports before ModelCheckpoint saves, so the checkpoint written at the validation of
        # update 56 already holds its report, and a run resumed from it switches at 64 as the whole run did
        seen.clear()
        resumed = Tiny()
        trainer(80).fit(resumed, loader, loader, ckpt_path=str(tmp_path / "every-epoch" / "epoch=6-step=56.ckpt"))
        assert sorted(seen) == list(range(56, 80)) and all(seen[t] == full[t] for t in seen)
        assert resumed.sched.policies[0].switched_at == (32.0, 64.0)


def test_hf_trainer_plateau_switches_on_eval_loss_and_resumes(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from lrkit.torch import HFMetricReporter

    torch.set_num_threads(1)
    x, y = _data()
    seen: dict[int, float] = {}
    rows = [{"inputs": x[i], "labels": y[i]} for i in range(len(x))]

    class Tiny(torch.nn.Module):
        def __init__(self, opt_box):
            super().__init__()
            self.net = torch.nn.Linear(4, 1)
            self.opt_box = opt_box

        def forward(self, inputs, labels=None):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(self.net(inputs), labels)
            if not self.training:  # an evaluation loss that never improves after the first
                return {"loss": loss * 0 + 1.0}
            trainer = self.opt_box["trainer"]
            seen[trainer.state.global_step] = self.opt_box["opt"].param_groups[0]["lr"]
            return {"loss": loss}

    def build(output_dir):
        box: dict = {}
        model = Tiny(box)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = PolicyLR(opt, PLATEAU)
        args = transformers.TrainingArguments(
            output_dir=str(output_dir), max_steps=24, per_device_train_batch_size=4, per_device_eval_batch_size=16,
            eval_strategy="steps", eval_steps=4, save_strategy="steps", save_steps=8, report_to=[], use_cpu=True,
            remove_unused_columns=False, logging_strategy="no")
        trainer = transformers.Trainer(model=model, args=args, train_dataset=rows, eval_dataset=rows[:16],
                                       optimizers=(opt, sched), callbacks=[HFMetricReporter()])
        box.update(trainer=trainer, opt=opt)
        return trainer, sched

    trainer, sched = build(tmp_path / "run")
    trainer.train()
    # eval loss 1.0 at 4 (best), 8 (bad 1), 12 (bad 2 > patience: switch), 16, 20 (switch)
    assert sched.policies[0].switched_at == (12.0, 20.0) and sched.t == 24
    expected = lrkit.parse("join([TRI(k0=0.001, k1=0.006, l=5), FIX(k0=0.002), FIX(k0=0.0005)], boundaries=[12, 20])")
    assert sched.replay_policy() == expected
    assert [seen[t] for t in range(24)] == [expected(t) for t in range(24)]
    full = dict(seen)

    seen.clear()
    trainer, sched = build(tmp_path / "run")  # the same output folder: resume from its checkpoint at 16
    trainer.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-16"))
    assert sorted(seen) == list(range(16, 24)) and all(seen[t] == full[t] for t in seen)
    assert sched.policies[0].switched_at == (12.0, 20.0)


def test_the_callbacks_import_their_framework_only_when_asked(tmp_path):
    import subprocess
    import sys

    code = ("import sys\nimport lrkit.torch\nprint(sorted(m for m in ('lightning', 'transformers') if m in sys.modules))\n"
            "sys.modules['transformers'] = None\n"
            "try:\n    lrkit.torch.HFMetricReporter\nexcept ImportError as err:\n    print(type(err).__name__, err)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.splitlines() == [
        "[]", "MissingExtraError lrkit.torch.HFMetricReporter needs transformers, which is not installed: "
              "pip install 'lrkit[integrations]'"]
