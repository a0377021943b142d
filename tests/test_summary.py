"""``lrkit.policies.summary`` and the structure policies declare (``children()``, ``switches()``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import lrkit
from lrkit.cli.main import main
from lrkit.policies import Child, Policy, summary

SEQ = "sequence([FIX(k0=0.1), TRI(k0=0.01, k1=0.05, l=100)], fractions=[0.3, 0.7], total_steps=1000)"


@dataclasses.dataclass(frozen=True, repr=False)
class Restart(Policy):
    """A combinator the library does not know: ``f(t mod period)``; not registered, so it stays in this test.

    Each period restarts ``policy``'s clock, so it declares one child per period up to ``cycles``
    and a switch at each restart.
    """

    name = "restart_demo"

    policy: Policy
    period: int
    cycles: int

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return self.policy._lr(np.mod(t, self.period))

    def children(self) -> tuple[Child, ...]:
        return tuple(Child(self.policy, k * self.period, (k + 1) * self.period) for k in range(self.cycles))

    def switches(self) -> tuple[tuple[float, str], ...]:
        return tuple((k * self.period, f"restart {k}") for k in range(1, self.cycles))


def test_combinators_declare_their_children_and_switches():
    join = lrkit.parse("join([FIX(k0=0.1), FIX(k0=0.01), FIX(k0=0.001)], boundaries=[100, 250])")
    assert [(c.policy.k0, c.start, c.end) for c in join.children()] == [(0.1, 0, 100), (0.01, 100, 250),
                                                                          (0.001, 250, None)]
    assert join.switches() == ((100, "segment 2 starts"), (250, "segment 3 starts"))
    seq = lrkit.parse(SEQ)
    assert [(c.start, c.end) for c in seq.children()] == [(0, 300), (300, None)]
    assert seq.switches() == ((300, "segment 2 starts"),)
    warm = lrkit.parse("warmup(FIX(k0=0.1), steps=50)")
    assert warm.children() == (Child(lrkit.parse("FIX(k0=0.1)"), 50),) and warm.switches() == ((50, "warm-up ends"),)


def test_default_children_are_every_nested_policy_at_0_and_no_switches():
    inner = lrkit.parse("TRI(k0=0.01, k1=0.05, l=100)")
    assert lrkit.parse(f"scale({inner.spec()}, factor=2)").children() == (Child(inner, 0),)
    assert lrkit.parse(f"clip({inner.spec()}, max_lr=0.03)").switches() == ()
    assert inner.children() == () and inner.switches() == ()
    ralr = lrkit.parse(f"ralr({inner.spec()}, iters_per_epoch=10, p=0.2, seed=0)")
    assert [c.policy for c in ralr.children()] == [inner]


def test_nested_switch_points_are_in_the_outer_clock():
    p = lrkit.parse(f"warmup({SEQ}, steps=50)")
    assert summary.switch_points(p) == [(50.0, "warm-up ends"), (350.0, "segment 2 starts")]
    assert summary.notable_steps(p, 1200) == [(0, "start"), (50, "warm-up ends"), (300, "1/4"),
                                              (350, "segment 2 starts"), (600, "1/2"), (900, "3/4"),
                                              (1199, "last")]


def test_a_switch_after_its_segment_ended_is_not_shown():
    # the warm-up would end at 500, but segment 2 takes over at 100: that switch never happens
    p = lrkit.parse("join([warmup(FIX(k0=0.1), steps=500), warmup(FIX(k0=0.01), steps=20)], boundaries=[100])")
    assert summary.switch_points(p) == [(100.0, "segment 2 starts"), (120.0, "warm-up ends")]


def test_a_new_combinator_gets_its_boundaries_without_touching_the_library_or_the_cli(capsys, monkeypatch):
    inner = lrkit.parse("warmup(FIX(k0=0.1), steps=10)")
    p = Restart(policy=inner, period=300, cycles=3)
    assert p(0) == 0.0 and p(10) == 0.1 and p(305) == pytest.approx(0.05)
    assert summary.switch_points(p) == [(300.0, "restart 1"), (600.0, "restart 2"), (10.0, "warm-up ends"),
                                        (310.0, "warm-up ends"), (610.0, "warm-up ends")]
    steps = [t for t, _ in summary.notable_steps(p, 1000)]
    assert steps == [0, 10, 250, 300, 310, 500, 600, 610, 750, 999]
    # `lrkit show` prints them too, once a spec can name the combinator (registered for this test only)
    from lrkit.policies import base

    monkeypatch.setitem(base._REGISTRY, Restart.name, Restart)
    assert main(["show", p.spec(), "--steps", "1000"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "restart_demo(policy=warmup(policy=FIX(k0=0.1), steps=10, start_lr=0), period=300, cycles=3)"
    assert [int(line.split()[0]) for line in out.splitlines()[2:-1]] == steps
    assert "restart 1" in out and "restart 2" in out and out.count("warm-up ends") == 3


def test_fractional_boundaries_are_shown_at_the_first_update_of_the_new_segment():
    p = lrkit.parse("join([FIX(k0=0.1), FIX(k0=0.01)], boundaries=[100.5])")
    rows = dict(summary.notable_steps(p, 400))
    assert rows[101] == "segment 2 starts" and p(100) == 0.1 and p(101) == 0.01


def test_extremes_exact_and_sampled(monkeypatch):
    monkeypatch.setattr(summary, "EXACT_LIMIT", 1000)
    monkeypatch.setattr(summary, "SAMPLES", 101)
    monkeypatch.setattr(summary, "CHUNK", 7)  # several chunks: the running min/max must carry over
    lo, hi, exact = summary.extremes(lrkit.parse("TRI(k0=0.001, k1=0.006, l=500)"), 10_001)
    assert not exact and lo == (0.001, 0) and hi == (0.006, 500)  # samples every 100 steps
    lo, hi, exact = summary.extremes(lrkit.parse("TRI(k0=0.001, k1=0.006, l=50)"), 1000)
    assert exact and lo == (0.001, 0) and hi == (0.006, 50)


def test_show_only_formats_the_library(capsys):
    p = lrkit.parse(f"warmup({SEQ}, steps=50)")
    assert main(["show", p.spec(), "--steps", "1200"]) == 0
    lines = capsys.readouterr().out.splitlines()
    shown = [(int(line.split()[0]), line.split(None, 2)[2]) for line in lines[2:-1]]
    assert shown == summary.notable_steps(p, 1200)
    (lo, lo_at), (hi, hi_at), _ = summary.extremes(p, 1200)
    assert lines[-1].startswith(f"min {lo:.6g} at step {lo_at}; max {hi:.6g} at step {hi_at}")
