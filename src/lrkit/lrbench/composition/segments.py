"""The next-stage candidates of a composition (LRBench's dynamic tuning, Wu & Liu, ACM TIST 2022; docs/compose.md).

A composition's policy so far is a :class:`PathSoFar`: segments, each a policy on its own clock from
the update where it started (``join`` semantics: LRBench's composite policies, docs/policies.md). At a stage boundary ``b``, with
``lr`` the LR of update ``b - 1``, the remaining budget ``R = B - b`` and the optimizer's LR range
``[low, high]``, :func:`next_segments` offers, in this order (the first ``n``):

1. ``continue``: no new segment; the current one runs on.
2. ``decay``: to the floor: ``cosine(max_lr=lr, total_steps=R, min_lr=min(lr, low) / 10)``.
3. ``shrink`` (homogeneous, CLR's Table 2): the current segment's function from its start, its range
   shrunk 10x (``scale(f, factor=0.1)``).
4. ``switch`` (heterogeneous): another family (:mod:`lrkit.lrbench.search.space`), drawn over the
   remaining budget with its peak in ``[lr / 4, min(2 lr, high)]``: around the current LR.
5. ``plateau``: ``plateau([FIX(lr), FIX(lr/10), FIX(lr/100)], patience=1, monitor=val_loss)``:
   LRBench's ChangeLROnPlateau, the switches decided by the validation loss as the stage trains.
6. more ``switch``es, each another draw.

Draws are seeded by ``(seed, stage, parent position, index)``, so the same study draws the same ones again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lrkit.policies.base import Policy
from lrkit.spec import from_dict, parse

KINDS = ("continue", "decay", "shrink", "switch", "plateau")


@dataclass(frozen=True)
class PathSoFar:
    """The segments of a composed policy: ``(start update, policy)`` each, the first starting at 0."""

    segments: tuple[tuple[int, str], ...]

    @classmethod
    def of(cls, spec: str) -> "PathSoFar":
        """A path from a policy spec: a ``join`` is split into its segments, a ``join`` inside one of them
        (a plateau written out) flattened into the path; anything else is one segment."""
        return cls(tuple(_flatten(parse(spec), 0)))

    def policy(self) -> Policy:
        if len(self.segments) == 1:
            return parse(self.segments[0][1])
        return parse(f"join([{', '.join(s for _, s in self.segments)}], "
                     f"boundaries=[{', '.join(str(b) for b, _ in self.segments[1:])}])")

    def spec(self) -> str:
        return self.policy().spec()

    def then(self, start: int, spec: str) -> "PathSoFar":
        return PathSoFar((*self.segments, (start, spec)))


def _flatten(policy: Policy, offset: int) -> list[tuple[int, str]]:
    if policy.name != "join":
        return [(offset, policy.spec())]
    starts = (0, *(int(b) for b in policy.boundaries))  # type: ignore[attr-defined]
    out: list[tuple[int, str]] = []
    for start, child in zip(starts, policy.policies):  # type: ignore[attr-defined]
        out += _flatten(child, offset + start)
    return out


def _lr(value: float) -> float:
    return float(f"{value:.4g}")


def _switch(ctx_args: dict[str, Any], current: str, seed: int) -> str:
    import optuna

    from lrkit.lrbench.search.space import FAMILIES, SearchContext, family_of, suggest_policy

    families = tuple(f for f in FAMILIES if f not in ("ralr", family_of(current)))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    _, policy = suggest_policy(study.ask(), SearchContext(**ctx_args), families)
    return from_dict(policy).spec()


def _shrunk(spec: str) -> str:
    """``scale(spec, factor=0.1)``; a segment already scaled gets its factor shrunk instead of a second
    ``scale`` around it (``scale(f, factor=0.01)``, not ``scale(scale(f, factor=0.1), factor=0.1)``)."""
    from lrkit.policies.combinators import Scale

    policy = parse(spec)
    if isinstance(policy, Scale):
        return f"scale({policy.policy.spec()}, factor={policy.factor * 0.1:.6g})"
    return f"scale({spec}, factor=0.1)"


def next_segments(path: PathSoFar, boundary: int, budget: int, low: float, high: float, n: int,
                  seed: int) -> list[tuple[str, PathSoFar]]:
    """The first ``n`` candidates ``(kind, path)`` at ``boundary`` (see the module docstring)."""
    lr = float(path.policy()(boundary - 1))
    remaining = budget - boundary
    start, current = path.segments[-1]
    out: list[tuple[str, PathSoFar]] = [("continue", path)]
    if lr > 0:
        floor = min(lr, low) / 10
        out.append(("decay", path.then(boundary, f"cosine(max_lr={_lr(lr)}, total_steps={remaining}, "
                                                 f"min_lr={_lr(floor)})")))
    out.append(("shrink", path.then(boundary, _shrunk(current))))
    window = dict(budget=remaining, low=_lr(max(lr, 1e-12) / 4), high=_lr(max(min(2 * lr, high), lr / 2)))
    out.append(("switch", path.then(boundary, _switch(window, current, seed * 1009 + 1))))
    if lr > 0:
        out.append(("plateau", path.then(boundary, f"plateau([FIX(k0={_lr(lr)}), FIX(k0={_lr(lr / 10)}), "
                                                   f"FIX(k0={_lr(lr / 100)})], patience=1, monitor=val_loss)")))
    i = 2
    while len(out) < n:
        out.append(("switch", path.then(boundary, _switch(window, current, seed * 1009 + i))))
        i += 1
    return out[:n]


__all__ = ["KINDS", "PathSoFar", "next_segments"]
