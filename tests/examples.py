"""The one registry of example policies that feeds every cross-cutting test.

Every registered policy has at least one example here (a test checks it). Each entry is a spec
string; keep at least one example per policy, and add edge cases (long cycles, boundaries at
1, deep nesting) where a policy has them. Plugins (RALR, ...) add theirs in
``examples_plugins.py`` so that files stay apart.
"""

from __future__ import annotations

from examples_plugins import PLUGIN_EXAMPLES

CORE_EXAMPLES: list[str] = [
    "FIX(k0=0.01)",
    "TRI(k0=0.001, k1=0.006, l=2000)",
    "join([TRI(k0=0.001, k1=0.005, l=2000), TRI(k0=0.0001, k1=0.0005, l=1000)], boundaries=[16000])",
    "sequence([FIX(k0=0.1), TRI(k0=0.01, k1=0.05, l=100)], fractions=[0.3, 0.7], total_steps=1000)",
    "warmup(TRI(k0=0.001, k1=0.006, l=2000), steps=500, start_lr=0.0001)",
    "scale(TRI(k0=0.001, k1=0.006, l=2000), factor=10)",
    "clip(TRI(k0=0.001, k1=0.006, l=2000), min_lr=0.002, max_lr=0.005)",
]

EXAMPLES: list[str] = CORE_EXAMPLES + PLUGIN_EXAMPLES
