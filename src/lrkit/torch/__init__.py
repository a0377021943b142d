"""lrkit's PyTorch adapters (this package imports torch; ``import lrkit`` does not).

>>> from lrkit.torch import PolicyLR  # doctest: +SKIP
>>> sched = PolicyLR(optimizer, "COS(k0=0, k1=0.1, l=5000)")  # doctest: +SKIP
"""

from __future__ import annotations

from lrkit.torch.scheduler import PolicyLR

__all__ = ["PolicyLR"]
