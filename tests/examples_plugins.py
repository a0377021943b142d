"""Example specs of the random plugins (RALR, ...); see examples.py."""

from __future__ import annotations

PLUGIN_EXAMPLES: list[str] = [
    "ralr(COS(k0=0.0005, k1=0.05, l=20000), iters_per_epoch=469, p=0.2, seed=0)",
    "ralr(FIX(k0=0.01), iters_per_epoch=1, p=0.5, max_lr=0.05, seed=3)",
    "ralr(join([FIX(k0=0.1), FIX(k0=0.01)], boundaries=[5000]), iters_per_epoch=100, p=0.3, draw=factor, min_factor=1.5,"
    " max_factor=3, total_steps=10000, final_fraction=0.2, seed=7)",
    "ralr(ralr(FIX(k0=0.01), iters_per_epoch=10, p=1, seed=1), iters_per_epoch=1, p=0, seed=2)",
]
