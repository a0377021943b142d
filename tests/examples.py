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
    # ---- LRBench, decaying
    "STEP(k0=0.1, gamma=0.1, l=3000)",
    "NSTEP(k0=0.1, gamma=0.1, l=[15000, 25000, 35000])",
    "NSTEP(k0=0.1, gamma=0.5, l=[1])",  # a boundary at the first update
    "EXP(k0=0.1, gamma=0.9999)",
    "INV(k0=0.1, gamma=0.0001, p=0.75)",
    "POLY(k0=0.0001, k1=0.1, p=1.2, l=20000)",
    "SIG(k0=0.1, gamma=-0.001, l=10000)",
    "SIG(k0=0.1, gamma=0.01, l=0)",  # rising, centred at 0
    # ---- LRBench, cyclic
    "TRI2(k0=0.001, k1=0.006, l=2000)",
    "TRIEXP(k0=0.001, k1=0.006, gamma=0.99994, l=2000)",
    "DTRI(k0=0.001, k1=0.006, l=2000)",
    "DTRI2(k0=0.001, k1=0.006, l=2000)",
    "DTRIEXP(k0=0.001, k1=0.006, gamma=0.99994, l=2000)",
    "SIN(k0=0.001, k1=0.006, l=2000)",
    "SIN2(k0=0.001, k1=0.006, l=2000)",
    "SINEXP(k0=0.001, k1=0.006, gamma=0.99994, l=2000)",
    "DSIN(k0=0.001, k1=0.006, l=2000)",
    "DSIN2(k0=0.001, k1=0.006, l=2000)",
    "DSINEXP(k0=0.001, k1=0.006, gamma=0.99994, l=2000)",
    "COS(k0=0.001, k1=0.006, l=2000)",
    "COS2(k0=0.001, k1=0.006, l=2000)",
    "COSEXP(k0=0.001, k1=0.006, gamma=0.99994, l=2000)",
    "UPCOS(k0=0.001, k1=0.006, l=2000)",
    "UPCOS2(k0=0.001, k1=0.006, l=2000)",
    "UPCOSEXP(k0=0.001, k1=0.006, gamma=0.99994, l=2000)",
    "TRI(k0=0, k1=0.1, l=1)",  # the shortest cycle: 0, 0.1, 0, ...
    "COS2(k0=0.01, k1=0.01, l=0.5)",  # zero amplitude, a fractional half-cycle
    # ---- LRBench, restart (sawtooth)
    "RSW(k0=0.001, k1=0.1, l=1000)",
    "RSW2(k0=0.001, k1=0.1, l=1000)",
    "RSWEXP(k0=0.001, k1=0.1, gamma=0.9999, l=1000)",
    "SINRSW(k0=0.001, k1=0.1, l=1000)",
    "SINRSW2(k0=0.001, k1=0.1, l=1000)",
    "SINRSWEXP(k0=0.001, k1=0.1, gamma=0.9999, l=1000)",
    "COSRSW(k0=0.001, k1=0.1, l=1000)",
    "COSRSW2(k0=0.001, k1=0.1, l=1000)",
    "COSRSWEXP(k0=0.001, k1=0.1, gamma=0.9999, l=1000)",
    "RSW(k0=0.001, k1=0.1, l=1)",  # restarts every update: always k0
    # ---- CLR
    "triangular(base_lr=0.001, max_lr=0.006, step_size=2000)",
    "triangular2(base_lr=0.001, max_lr=0.006, step_size=2000)",
    "exp_range(base_lr=0.001, max_lr=0.006, step_size=2000, gamma=0.99994)",
    # ---- modern curves
    "constant(lr=0.1)",
    "linear(start_lr=0.1, end_lr=0.001, total_steps=20000)",
    "linear(start_lr=0, end_lr=0.1, total_steps=1)",  # a one-update ramp
    "cosine(max_lr=0.1, total_steps=20000, min_lr=0.0001)",
    "cosine(max_lr=0.1, total_steps=1)",
    "onecycle(max_lr=0.1, total_steps=20000)",
    "onecycle(max_lr=0.1, total_steps=4, pct_start=0.5, anneal=linear, div_factor=10, final_div_factor=100)",
    "onecycle(max_lr=0.1, total_steps=20000, pct_start=0.25, anneal=linear, three_phase=true)",
    "cosine_restarts(max_lr=0.1, first_cycle_steps=1000)",
    "cosine_restarts(max_lr=0.1, first_cycle_steps=500, cycle_mult=2, min_lr=0.0001)",
    "cosine_restarts(max_lr=0.1, first_cycle_steps=300, cycle_mult=1.5)",
    "wsd(max_lr=0.1, warmup_steps=1000, stable_steps=15000, decay_steps=4000)",
    "wsd(max_lr=0.1, warmup_steps=0, stable_steps=100, decay_steps=1000, min_lr=0.001, decay=cosine)",
    "wsd(max_lr=0.1, warmup_steps=500, stable_steps=0, decay_steps=0, decay=sqrt)",  # no decay phase
    "inverse_sqrt(max_lr=0.1, warmup_steps=4000)",
    "inverse_sqrt(max_lr=0.1, warmup_steps=0, timescale=100)",
    # ---- the range test's sweep (lrkit.policies.sweeps)
    "exp_sweep(start_lr=1e-07, end_lr=10, total_steps=100)",
    # ---- compositions of the catalogue
    "join([SINEXP(k0=0.001, k1=0.006, gamma=0.99994, l=2000), POLY(k0=0.0001, k1=0.002, p=1, l=5000)], "
    "boundaries=[12000])",
    "warmup(cosine(max_lr=0.1, total_steps=9000, min_lr=0.001), steps=1000)",
    # ---- plateau (lrkit.policies.plateau): before any switch, after some, inside another policy
    "plateau([TRI(k0=0.001, k1=0.006, l=2000), FIX(k0=0.001), FIX(k0=0.0001)], patience=3, monitor=val_loss)",
    "plateau([COS(k0=0.001, k1=0.1, l=1000), SINEXP(k0=0.001, k1=0.006, gamma=0.99994, l=500), "
    "cosine(max_lr=0.01, total_steps=5000)], patience=0, monitor=val_acc, threshold=0.01, threshold_mode=abs, "
    "switched_at=[3000, 7517])",
    "warmup(plateau([EXP(k0=0.1, gamma=0.9999), FIX(k0=0.001)], patience=2, monitor=val_loss, switched_at=[1]), "
    "steps=100)",  # a switch after the first update
]

EXAMPLES: list[str] = CORE_EXAMPLES + PLUGIN_EXAMPLES
