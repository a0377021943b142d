"""lrkit's PyTorch adapters (this package imports torch; ``import lrkit`` does not).

- :class:`PolicyLR`: an LR scheduler that writes ``policy(t)`` into an optimizer's groups.
- :class:`LEAP`: the LEAP optimizer wrapper (per-element LR perturbation), from ``lrkit.torch.leap``.
- :class:`HFMetricReporter`, :class:`LightningMetricReporter`: callbacks that report an evaluation
  metric to a ``PolicyLR`` with a ``plateau`` policy.
- LRBench trials of a Lightning ``Trainer`` (:class:`LRBenchCallback`, :func:`lightning_trainer_kwargs`)
  and of a Hugging Face ``Trainer`` (:class:`LRBenchTrainerCallback`, :func:`hf_trainer_kwargs`,
  :func:`hf_training_args`, :class:`KeepLR`).

The callbacks and helpers import ``lightning`` and ``transformers`` on first use (``lrkit.torch.lightning``,
``lrkit.torch.hf``).

>>> from lrkit.torch import PolicyLR  # doctest: +SKIP
>>> sched = PolicyLR(optimizer, "cosine(max_lr=0.1, total_steps=5000)")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from lrkit.torch.leap import LEAP
from lrkit.torch.scheduler import PolicyLR

_LAZY = {
    **dict.fromkeys(["HFMetricReporter", "KeepLR", "LRBenchTrainerCallback", "hf_trainer_kwargs", "hf_training_args"],
                    "lrkit.torch.hf"),
    **dict.fromkeys(["LightningMetricReporter", "LRBenchCallback", "lightning_trainer_kwargs"],
                    "lrkit.torch.lightning"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        from lrkit.extras import missing_extra

        try:
            module = importlib.import_module(_LAZY[name])
        except ModuleNotFoundError as err:
            raise (missing_extra(err, f"lrkit.torch.{name}") or err) from None
        return getattr(module, name)
    raise AttributeError(f"module 'lrkit.torch' has no attribute {name!r}")


__all__ = ["LEAP", "PolicyLR", *_LAZY]
