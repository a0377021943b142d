"""lrkit's policies give the LRs PyTorch's schedulers give, to 1e-9 relative, over 10,000 updates.

Each PyTorch scheduler drives a dummy SGD optimizer; the group's LR is recorded before each
update, which is the LR that update uses, so ``recorded[t]`` is compared with ``policy(t)``.
The optimizer steps once before the scheduler's first step (so PyTorch's order check is
satisfied); later optimizer steps would not change any LR and are skipped to save time.

Measured on the 2-core CPU sandbox, Python 3.11, torch 2.13.0+cpu, with
``.venv/bin/python tests/test_torch_equivalence.py`` (prints each case's largest relative
difference): the largest over 10,000 updates is 3.9e-13, for ``CosineAnnealingLR(eta_min=0)``
near the end of its half cycle. PyTorch's CosineAnnealingLR is *chainable*: it computes
``lr_t`` from ``lr_{t-1}`` by the ratio ``(1 + cos(pi t/T)) / (1 + cos(pi (t-1)/T))``, so
rounding compounds over the steps, and the ratio's terms lose relative accuracy as
``cos -> -1``. lrkit uses the closed form that PyTorch documents (and that its own
``_get_closed_form_lr`` uses); against that closed form lrkit agrees to 1e-15
(``test_cosine_against_pytorchs_documented_closed_form``). The drift grows with the horizon:
over T_max = 100,000 updates it reaches 1.6e-10 at t = 99,963 (``... --long``), still inside
1e-9. The other chainable schedulers (ExponentialLR, PolynomialLR, LinearLR) drift by at most
4e-14; CyclicLR and CosineAnnealingWarmRestarts (closed forms evaluated in another order) by at
most 1e-14; MultiStepLR (with a repeated milestone) by 1.3e-16; StepLR and OneCycleLR agree bit
for bit. No tolerance here is looser than 1e-9.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrkit

torch = pytest.importorskip("torch")
S = torch.optim.lr_scheduler

N = 10_000
RTOL = 1e-9


def pytorch_lrs(make_scheduler, lr: float, n: int = N) -> np.ndarray:
    """The LR each of ``n`` updates uses under a PyTorch scheduler."""
    torch.set_num_threads(1)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr)
    scheduler = make_scheduler(optimizer)
    optimizer.step()
    out = np.empty(n)
    for t in range(n):
        out[t] = optimizer.param_groups[0]["lr"]
        scheduler.step()
    return out


def assert_same(policy_spec: str, reference: np.ndarray) -> None:
    ours = lrkit.parse(policy_spec).values(np.arange(len(reference)))
    np.testing.assert_allclose(ours, reference, rtol=RTOL, atol=0, err_msg=policy_spec)


CASES = [
    ("StepLR", lambda o: S.StepLR(o, step_size=700, gamma=0.5), 0.1, ["STEP(k0=0.1, gamma=0.5, l=700)"]),
    ("MultiStepLR", lambda o: S.MultiStepLR(o, milestones=[1000, 2500, 2500, 7000], gamma=0.3), 0.1,
     ["NSTEP(k0=0.1, gamma=0.3, l=[1000, 2500, 2500, 7000])"]),
    ("ExponentialLR", lambda o: S.ExponentialLR(o, gamma=0.9995), 0.1, ["EXP(k0=0.1, gamma=0.9995)"]),
    ("PolynomialLR", lambda o: S.PolynomialLR(o, total_iters=8000, power=0.9), 0.1,
     ["POLY(k0=0, k1=0.1, p=0.9, l=8000)"]),
    ("LinearLR-up", lambda o: S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=6000), 0.2,
     ["linear(start_lr=0.02, end_lr=0.2, total_steps=6000)"]),
    ("LinearLR-down", lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=6000), 0.2,
     ["linear(start_lr=0.2, end_lr=0.01, total_steps=6000)"]),
    ("CosineAnnealingLR", lambda o: S.CosineAnnealingLR(o, T_max=N, eta_min=0.001), 0.1,
     ["cosine(max_lr=0.1, total_steps=10000, min_lr=0.001)"]),
    ("CosineAnnealingLR-eta0", lambda o: S.CosineAnnealingLR(o, T_max=N, eta_min=0.0), 0.1,
     ["cosine(max_lr=0.1, total_steps=10000)"]),
    ("CyclicLR-triangular", lambda o: S.CyclicLR(o, 0.001, 0.006, step_size_up=700, mode="triangular",
                                                 cycle_momentum=False), 0.1,
     ["triangular(base_lr=0.001, max_lr=0.006, step_size=700)", "TRI(k0=0.001, k1=0.006, l=700)"]),
    ("CyclicLR-triangular2", lambda o: S.CyclicLR(o, 0.001, 0.006, step_size_up=700, mode="triangular2",
                                                  cycle_momentum=False), 0.1,
     ["triangular2(base_lr=0.001, max_lr=0.006, step_size=700)", "TRI2(k0=0.001, k1=0.006, l=700)"]),
    ("CyclicLR-exp_range", lambda o: S.CyclicLR(o, 0.001, 0.006, step_size_up=700, mode="exp_range",
                                                gamma=0.9997, cycle_momentum=False), 0.1,
     ["exp_range(base_lr=0.001, max_lr=0.006, step_size=700, gamma=0.9997)",
      "TRIEXP(k0=0.001, k1=0.006, gamma=0.9997, l=700)"]),
    ("OneCycleLR-cos", lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=N, cycle_momentum=False), 0.1,
     ["onecycle(max_lr=0.1, total_steps=10000)"]),
    ("OneCycleLR-linear", lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=N, anneal_strategy="linear",
                                                 pct_start=0.25, cycle_momentum=False), 0.1,
     ["onecycle(max_lr=0.1, total_steps=10000, pct_start=0.25, anneal=linear)"]),
    ("OneCycleLR-three-phase", lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=N, three_phase=True,
                                                      div_factor=10.0, final_div_factor=1000.0,
                                                      cycle_momentum=False), 0.1,
     ["onecycle(max_lr=0.1, total_steps=10000, three_phase=true, div_factor=10, final_div_factor=1000)"]),
    ("CosineAnnealingWarmRestarts-1", lambda o: S.CosineAnnealingWarmRestarts(o, T_0=700, T_mult=1, eta_min=0.001),
     0.1, ["cosine_restarts(max_lr=0.1, first_cycle_steps=700, min_lr=0.001)"]),
    ("CosineAnnealingWarmRestarts-2", lambda o: S.CosineAnnealingWarmRestarts(o, T_0=300, T_mult=2, eta_min=0.001),
     0.1, ["cosine_restarts(max_lr=0.1, first_cycle_steps=300, cycle_mult=2, min_lr=0.001)"]),
]


@pytest.mark.parametrize("label, make, lr, specs", CASES, ids=[c[0] for c in CASES])
def test_policy_equals_pytorch_scheduler(label, make, lr, specs):
    reference = pytorch_lrs(make, lr)
    for spec in specs:
        assert_same(spec, reference)


def test_cyclic_lr_with_momentum_cycling_gives_the_same_lrs():
    """Our CLR never touches momentum; PyTorch's default cycles it, but its LRs are the same."""
    reference = pytorch_lrs(lambda o: S.CyclicLR(o, 0.001, 0.006, step_size_up=50, mode="triangular2"), 0.1,
                            n=1000)
    assert_same("triangular2(base_lr=0.001, max_lr=0.006, step_size=50)", reference)


def test_cosine_against_pytorchs_documented_closed_form():
    """``eta_min + (base_lr - eta_min) (1 + cos(pi t / T_max)) / 2``, evaluated by PyTorch itself."""
    torch.set_num_threads(1)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = S.CosineAnnealingLR(optimizer, T_max=N)
    policy = lrkit.parse("cosine(max_lr=0.1, total_steps=10000)")
    for t in [0, 1, 2500, 5000, 9000, 9900, 9990, 9999, N]:
        scheduler.last_epoch = t
        closed = scheduler._get_closed_form_lr()[0]
        assert policy(t) == pytest.approx(closed, rel=1e-15, abs=0)


def test_past_the_horizon_lrkit_holds_where_pytorch_does_not():
    """PyTorch's cosine swings back up after T_max and OneCycleLR raises after total_steps."""
    reference = pytorch_lrs(lambda o: S.CosineAnnealingLR(o, T_max=100), 0.1, n=201)
    policy = lrkit.parse("cosine(max_lr=0.1, total_steps=100)")
    assert reference[200] == pytest.approx(0.1) and policy(200) == 0.0
    onecycle = S.OneCycleLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), 0.1, total_steps=10,
                            cycle_momentum=False)
    with pytest.raises(ValueError):
        for _ in range(12):
            onecycle.optimizer.step()
            onecycle.step()
    assert math.isfinite(lrkit.parse("onecycle(max_lr=0.1, total_steps=10, pct_start=0.3)")(12))


if __name__ == "__main__":
    import sys

    if "--long" in sys.argv:
        T = 100_000
        reference = pytorch_lrs(lambda o: S.CosineAnnealingLR(o, T_max=T), 0.1, n=T + 1)
        ours = lrkit.parse(f"cosine(max_lr=0.1, total_steps={T})").values(np.arange(T + 1))
        rel = np.where(ours == reference, 0.0, np.abs(ours - reference) / np.where(reference == 0, 1.0, reference))
        print(f"CosineAnnealingLR T_max={T}: max rel diff {rel.max():.1e} at t={int(rel.argmax())}")
    for label, make, lr, specs in CASES:
        reference = pytorch_lrs(make, lr)
        for spec in specs:
            ours = lrkit.parse(spec).values(np.arange(N))
            scale = np.where(reference == 0, 1.0, np.abs(reference))
            rel = np.where(ours == reference, 0.0, np.abs(ours - reference) / scale)
            print(f"{label:32s} {spec:70s} max rel diff {rel.max():.1e} at t={int(rel.argmax())}")
