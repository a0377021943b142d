"""lrkit's PyTorch adapters (this package imports torch; ``import lrkit`` does not).

- :class:`PolicyLR`: an LR scheduler that writes ``policy(t)`` into an optimizer's groups.
- :class:`LEAP`: the LEAP optimizer wrapper (per-element LR perturbation), from ``lrkit.torch.leap``.

>>> from lrkit.torch import PolicyLR  # doctest: +SKIP
>>> sched = PolicyLR(optimizer, "cosine(max_lr=0.1, total_steps=5000)")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from lrkit.torch.scheduler import PolicyLR

_LAZY = {"LEAP": "lrkit.torch.leap"}  # imported on first use: a plugin's import never breaks PolicyLR


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lrkit.torch' has no attribute {name!r}")


__all__ = ["LEAP", "PolicyLR"]
