"""lrkit's PyTorch adapters (this package imports torch; ``import lrkit`` does not).

- :class:`PolicyLR`: an LR scheduler that writes ``policy(t)`` into an optimizer's groups.
- :class:`LEAP`: the LEAP optimizer wrapper (per-element LR perturbation), from ``lrkit.torch.leap``.

>>> from lrkit.torch import PolicyLR  # doctest: +SKIP
>>> sched = PolicyLR(optimizer, "cosine(max_lr=0.1, total_steps=5000)")  # doctest: +SKIP
"""

from __future__ import annotations

from lrkit.torch.leap import LEAP
from lrkit.torch.scheduler import PolicyLR

__all__ = ["LEAP", "PolicyLR"]
