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
