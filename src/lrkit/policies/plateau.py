"""``plateau``: move on to the next policy when a monitored metric stalls (LRBench's ChangeLROnPlateau).

The metric is not a function of ``t``, so the switch points cannot be either. lrkit splits the
policy in two, both pure:

- :class:`Plateau` is a frozen dataclass whose field ``switched_at`` holds the switch points
  decided so far. As a function of ``t`` it *is* ``join(policies[:k + 1], boundaries=switched_at)``
  with ``k = len(switched_at)``: :meth:`Plateau.as_join` returns exactly that join, and both
  evaluate through the same code, so the join replays a run's LRs bit for bit. (The field is not
  called ``switches``: :meth:`Policy.switches` is the structural view ``lrkit show`` reads.)
- :meth:`Plateau.observe` is the decision rule: it takes a :class:`PlateauTracker` (the best value
  and the count of evaluations without improvement), a metric value and the step it was measured
  at, and returns the next plateau (with one more switch point, or the same one) and the next
  tracker. Nothing is mutated.

The functions below apply the rule to a plateau anywhere inside a policy (``warmup(plateau(...))``,
``join([f, plateau(...)], ...)``), using the clocks that :meth:`Policy.children` declares;
:class:`lrkit.torch.PolicyLR` feeds ``report(value)`` through :func:`observe_all`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterator, Mapping, NamedTuple

import numpy as np

from lrkit.errors import PolicyError, format_values
from lrkit.policies.base import Child, Policy, _is_finite_real, _is_real, check_choice, largest, register
from lrkit.policies.combinators import Join, _piecewise, _segments

#: what ``monitor`` may be: a metric to minimise (any loss) or to maximise (any accuracy)
MONITORS = ("val_loss", "val_acc")
THRESHOLD_MODES = ("rel", "abs")

Path = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class PlateauTracker:
    """What :meth:`Plateau.observe` remembers between evaluations (PyTorch's ``best``/``num_bad_epochs``).

    Attributes:
        best: the best value seen so far (None before the first observation).
        bad: evaluations since the last improvement.
        last_t: the step of the last observation, in the plateau's clock (None before the first).
    """

    best: float | None = None
    bad: int = 0
    last_t: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (floats, ints, None) that :meth:`from_dict` reads back exactly."""
        return {"best": self.best, "bad": self.bad, "last_t": self.last_t}

    @classmethod
    def from_dict(cls, data: Any) -> "PlateauTracker":
        """The inverse of :meth:`to_dict`; raises :class:`PolicyError` on anything else."""
        ok = (isinstance(data, dict) and set(data) == {"best", "bad", "last_t"}
              and (data["best"] is None or _is_real(data["best"]))
              and isinstance(data["bad"], int) and not isinstance(data["bad"], bool) and data["bad"] >= 0
              and (data["last_t"] is None or (_is_finite_real(data["last_t"]) and data["last_t"] >= 0)))
        if not ok:
            raise PolicyError("a plateau tracker must be {'best': number or None, 'bad': int >= 0, "
                              f"'last_t': number >= 0 or None}}, but got (tracker={data!r}).")
        best = None if data["best"] is None else float(data["best"])
        last_t = None if data["last_t"] is None else float(data["last_t"])
        return cls(best=best, bad=data["bad"], last_t=last_t)


@register
class Plateau(Policy):
    """The policies one after another, each running until the monitored metric stalls.

    As a function of ``t`` this is ``join(policies[:k+1], boundaries=switched_at)`` with ``k =
    len(switched_at)``: ``lr(t) = f_j(t - s_{j-1})`` for ``s_{j-1} <= t < s_j`` (``s_0 = 0``), each
    function restarting its clock at 0, and the last one decided so far running on.

    The switch points come from :meth:`observe`, called with the metric after each evaluation.
    With PyTorch's ReduceLROnPlateau rule, a value ``v`` *improves* on the best so far ``b`` when

    - ``monitor=val_loss`` (lower is better): ``v < b - threshold * |b|`` (``threshold_mode=rel``)
      or ``v < b - threshold`` (``abs``);
    - ``monitor=val_acc`` (higher is better): ``v > b + threshold * |b|`` or ``v > b + threshold``.

    The first value always improves (NaN never does). An improvement makes ``v`` the best and
    resets the count of bad evaluations to 0; any other value adds 1. When the count exceeds
    ``patience``, the next function starts at the step of that evaluation (the next update uses
    it), the count restarts at 0 and the best is kept, as in PyTorch. There is no switch past the
    last function, nor at the step where the current function started (the count then waits for
    the next evaluation). ``|b|`` where PyTorch has ``b``: the same for metrics >= 0, and still a
    threshold in the right direction for a negative loss.

    Args:
        policies: the functions, in the order they take over; at least one.
        patience: evaluations without improvement that are tolerated, >= 0; the switch comes at
            evaluation ``patience + 1`` without one.
        monitor: ``val_loss`` (minimise: any loss, error or perplexity) or ``val_acc`` (maximise:
            any accuracy or score). Only the direction is taken from it.
        threshold: how much better a value must be to count, >= 0 (PyTorch's default 1e-4).
        threshold_mode: ``rel`` (a fraction of the best) or ``abs`` (in the metric's units).
        switched_at: the switch points decided so far, ``0 < s_1 < s_2 < ...``, at most
            ``len(policies) - 1`` of them, in updates (default none: the first function runs).

    Example (evaluations every 100 updates; patience 2, threshold 1%):
        >>> import lrkit
        >>> p = lrkit.parse("plateau([FIX(k0=0.1), FIX(k0=0.01)], patience=2, monitor=val_loss, threshold=0.01)")
        >>> tracker = None
        >>> for t, loss in [(100, 1.0), (200, 0.95), (300, 0.945), (400, 0.943), (500, 0.944)]:
        ...     p, tracker = p.observe(tracker, loss, t)
        >>> p.switched_at, tracker
        ((500.0,), PlateauTracker(best=0.95, bad=0, last_t=500.0))
        >>> p(499), p(500)
        (0.1, 0.01)
        >>> p.as_join()
        join(policies=[FIX(k0=0.1), FIX(k0=0.01)], boundaries=[500])

        0.95 improves on 1.0 (it is below 1.0 - 1% of 1.0 = 0.99); 0.945, 0.943 and 0.944 are
        not below 0.95 - 1% of 0.95 = 0.9405, so after the third of them (count 3 > patience 2)
        the second function starts at update 500.
    """

    name = "plateau"
    formula = "join(policies[:k+1], boundaries=switched_at); s_k = step of the evaluation where the metric stalled"

    policies: tuple[Policy, ...]
    patience: int
    monitor: str
    threshold: float = 1e-4
    threshold_mode: str = "rel"
    switched_at: tuple[float, ...] = ()

    def validate(self) -> None:
        self._require(len(self.policies) >= 1, "len(policies) >= 1", "policies")
        self._require(self.patience >= 0, "patience >= 0", "patience")
        check_choice(self.name, "monitor", self.monitor, MONITORS)
        self._require(self.threshold >= 0, "threshold >= 0", "threshold")
        check_choice(self.name, "threshold_mode", self.threshold_mode, THRESHOLD_MODES)
        self._require(len(self.switched_at) <= len(self.policies) - 1, "len(switched_at) <= len(policies) - 1",
                      "policies", "switched_at")
        steps = (0.0, *self.switched_at)
        self._require(all(a < b for a, b in zip(steps, steps[1:])), "0 < s_1 < s_2 < ...", "switched_at")

    # ---- as a function of t: the join decided so far ---------------------------------------
    @property
    def current(self) -> int:
        """The index of the function in charge after the last switch point."""
        return len(self.switched_at)

    def as_join(self) -> Join:
        """The pure ``join`` that replays this plateau: its functions so far, its switch points as boundaries."""
        return Join(policies=self.policies[:self.current + 1], boundaries=self.switched_at)

    def lr_bound(self) -> float | None:
        return largest(*(p.lr_bound() for p in self.policies))  # those still waiting too: any may take over

    def _lr(self, t: np.ndarray) -> np.ndarray:
        return _piecewise(t, self.policies[:self.current + 1], np.asarray((0.0, *self.switched_at)))

    def children(self) -> tuple[Child, ...]:
        """The functions that have taken over so far, each on its own clock; those still waiting have none yet."""
        return _segments(self.policies[:self.current + 1], self.switched_at)

    def switches(self) -> tuple[tuple[float, str], ...]:
        """``(s_j, "segment j+1 starts (METRIC stalled)")`` per switch point, and at the start of the function
        in charge a note that the rest waits for the metric (so ``lrkit show`` says so)."""
        found = [(s, f"segment {j} starts ({self.monitor} stalled)") for j, s in enumerate(self.switched_at, start=2)]
        waiting = len(self.policies) - 1 - self.current
        if waiting:
            more = "1 more waits" if waiting == 1 else f"{waiting} more wait"
            if found:
                found[-1] = (found[-1][0], f"{found[-1][1]} and runs until it stalls again; {more}")
            else:
                found.append((0.0, f"segment 1 runs until {self.monitor} stalls (patience {self.patience}); {more}"))
        return tuple(found)

    # ---- the decision rule ------------------------------------------------------------------
    def improves(self, value: float, best: float | None) -> bool:
        """Whether ``value`` counts as better than ``best`` (see the class docstring); NaN never does."""
        if math.isnan(value):
            return False
        if best is None:
            return True
        margin = self.threshold * abs(best) if self.threshold_mode == "rel" else self.threshold
        return value < best - margin if self.monitor == "val_loss" else value > best + margin

    def observe(self, tracker: PlateauTracker | None, value: float, t: float) -> tuple["Plateau", PlateauTracker]:
        """Take the metric ``value`` measured after ``t`` updates (in this plateau's clock).

        Args:
            tracker: what the previous observations left (None for the first).
            value: the metric, a real number (NaN counts as no improvement).
            t: the number of updates applied when ``value`` was measured, >= the previous
                observation's and >= the last switch point; a switch decided here starts the next
                function at update ``t``.

        Returns:
            ``(plateau, tracker)``: this plateau with one more switch point at ``t``, or itself; and
            the updated tracker.
        """
        tracker = PlateauTracker() if tracker is None else tracker
        if not isinstance(tracker, PlateauTracker):
            raise PolicyError(f"plateau: `tracker` must be a PlateauTracker or None, but got (tracker={tracker!r}).")
        if not _is_real(value):
            raise PolicyError(f"plateau: the metric must be a real number, but got (value={value!r}).")
        if not _is_finite_real(t) or not t >= 0:
            raise PolicyError(f"plateau: `t >= 0` (a finite number of updates) must hold, but got (t={t!r}).")
        t, value = float(t), float(value)
        start = self.switched_at[-1] if self.switched_at else 0.0
        if tracker.last_t is not None and t < tracker.last_t:
            raise PolicyError("plateau: `t >= the previous observation's t` must hold, but got "
                              f"{format_values(t=t, previous=tracker.last_t)}.")
        if t < start:
            raise PolicyError(f"plateau: `t >= the last switch point` must hold, but got "
                              f"{format_values(t=t, switched_at=self.switched_at)}.")
        if self.improves(value, tracker.best):
            best, bad = value, 0
        else:
            best, bad = tracker.best, tracker.bad + 1
        plateau = self
        if bad > self.patience and self.current < len(self.policies) - 1 and t > start:
            plateau = dataclasses.replace(self, switched_at=(*self.switched_at, t))
            bad = 0
        return plateau, PlateauTracker(best=best, bad=bad, last_t=t)



# ---- plateaus anywhere inside a policy -------------------------------------------------------
class PlateauAt(NamedTuple):
    """A plateau found inside a policy: where it sits and on which clock it runs.

    ``path`` is the list of indices into :meth:`Policy.children` from the outer policy down to it
    (``()`` for the outer policy itself); its clock starts at ``start`` and it hands over at ``end``
    (None: it stays in charge), both in the outer policy's clock.
    """

    path: Path
    plateau: Plateau
    start: float
    end: float | None


def _nested(policy: Policy) -> Iterator[Policy]:
    """Every policy held in ``policy``'s fields (a list field item by item), waiting ones included."""
    for value in policy.params().values():
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, Policy):
                yield item


def _all_plateaus(policy: Policy) -> Iterator[Plateau]:
    if isinstance(policy, Plateau):
        yield policy
    for item in _nested(policy):
        yield from _all_plateaus(item)


def contains_plateau(policy: Policy) -> bool:
    """Whether ``policy`` is a plateau or holds one anywhere (in a function still waiting, too)."""
    return next(_all_plateaus(policy), None) is not None


def monitors(policy: Policy) -> set[str]:
    """The ``monitor`` of every plateau in ``policy`` (empty when there is none)."""
    return {p.monitor for p in _all_plateaus(policy)}


def check_unshared(policy: Policy) -> None:
    """Raise unless every plateau (and every policy holding one) sits in one place only.

    A plateau is replaced by its next instance where it sits; one object in two places (a Python
    list like ``[p, p]``) would make both places switch together. Specs never share objects.
    """
    seen: set[int] = set()

    def visit(node: Policy) -> None:
        for item in _nested(node):
            if contains_plateau(item):
                if id(item) in seen:
                    raise PolicyError(f"{node.name}: a plateau (or a policy holding one) must appear in one place "
                                      f"only, so that each keeps its own switch points, but got {item.spec()} twice; "
                                      "build each from its own spec.")
                seen.add(id(item))
                visit(item)

    visit(policy)


def find_plateaus(policy: Policy) -> list[PlateauAt]:
    """Every plateau that has a clock in ``policy`` (through :meth:`Policy.children`), outer ones first.

    Plateaus inside a function that a plateau has not switched to yet have no clock and are not listed.
    """
    found: list[PlateauAt] = []

    def visit(node: Policy, path: Path, start: float, end: float | None) -> None:
        if isinstance(node, Plateau):
            found.append(PlateauAt(path, node, start, end))
        for i, child in enumerate(node.children()):
            begin = start + float(child.start)
            stop = None if child.end is None else start + float(child.end)
            if end is not None:
                stop = end if stop is None else min(stop, end)
            visit(child.policy, (*path, i), begin, stop)

    visit(policy, (), 0.0, None)
    return found


def _substitute(parent: Policy, old: Policy, new: Policy) -> Policy:
    """``parent`` with the one field item that *is* ``old`` replaced by ``new``."""
    changes: dict[str, Any] = {}
    count = 0
    for name, value in parent.params().items():
        if isinstance(value, tuple):
            hits = sum(item is old for item in value)
            if hits:
                changes[name] = tuple(new if item is old else item for item in value)
        else:
            hits = int(value is old)
            if hits:
                changes[name] = new
        count += hits
    if count != 1:
        raise PolicyError(f"{parent.name}: a plateau (or a policy holding one) must appear in one place only, but got "
                          f"{old.spec()} {count} times.")
    return dataclasses.replace(parent, **changes)


def _at(policy: Policy, path: Path) -> Policy:
    node = policy
    for i in path:
        children = node.children()
        if not 0 <= i < len(children):
            raise PolicyError(f"no policy at path {list(path)} in {policy.spec()}.")
        node = children[i].policy
    return node


def replace_at(policy: Policy, path: Path, new: Policy) -> Policy:
    """``policy`` with the policy at ``path`` (indices into :meth:`Policy.children`) replaced by ``new``."""
    if not path:
        return new
    child = _at(policy, path[:1])
    return _substitute(policy, child, replace_at(child, path[1:], new))


def with_switches(policy: Policy, path: Path, switched_at: Any) -> Policy:
    """``policy`` with the plateau at ``path`` given the switch points ``switched_at`` (restoring a checkpoint)."""
    node = _at(policy, path)
    if not isinstance(node, Plateau):
        raise PolicyError(f"no plateau at path {list(path)} in {policy.spec()}, but got {node.spec()}.")
    return replace_at(policy, path, dataclasses.replace(node, switched_at=switched_at))


def observe_all(policy: Policy, trackers: Mapping[Path, PlateauTracker], value: float, t: float,
                monitor: str | None = None) -> tuple[Policy, dict[Path, PlateauTracker]]:
    """Let every plateau in charge at ``t`` inside ``policy`` observe ``value``, each on its own clock.

    A plateau is in charge at ``t`` when ``start <= t < end`` (see :func:`find_plateaus`): the
    value goes to the policy that runs update ``t``. Outer plateaus observe first; a switch at ``t``
    hands update ``t`` to the next function, so the plateaus inside the function that stopped get no
    more values, and those inside the one that starts get this one at their clock's 0.

    Args:
        policy: any policy (one without plateaus comes back unchanged).
        trackers: each plateau's tracker by its path (missing: a fresh one).
        value: the metric.
        t: updates applied when it was measured, in ``policy``'s clock.
        monitor: feed only plateaus with this ``monitor``; None feeds all, which must then agree.

    Returns:
        ``(policy, trackers)``: the policy with the plateaus' new switch points, and all trackers
        (those given, updated).
    """
    check_unshared(policy)
    kinds = monitors(policy)
    if monitor is None and len(kinds) > 1:
        raise PolicyError(f"the plateaus in this policy monitor different metrics ({', '.join(sorted(kinds))}), so "
                          "`monitor` must say which one a value is, but got (monitor=None).")
    if monitor is not None:
        check_choice("plateau", "monitor", monitor, MONITORS)
    out = dict(trackers)

    def visit(node: Policy, path: Path, start: float, end: float | None) -> Policy:
        if t < start or (end is not None and t >= end):
            return node
        if isinstance(node, Plateau) and monitor in (None, node.monitor):
            node, out[path] = node.observe(trackers.get(path), value, t - start)
        for i, child in enumerate(node.children()):
            begin = start + float(child.start)
            stop = None if child.end is None else start + float(child.end)
            if end is not None:
                stop = end if stop is None else min(stop, end)
            new = visit(child.policy, (*path, i), begin, stop)
            if new is not child.policy:
                node = _substitute(node, child.policy, new)
        return node

    return visit(policy, (), 0.0, None), out


def replay(policy: Policy) -> Policy:
    """The same function of ``t`` with every plateau replaced by its :meth:`~Plateau.as_join`, at any depth.

    What a run decided, written out as a pure policy: it gives the run's LRs bit for bit.
    """
    if isinstance(policy, Plateau):
        return replay(policy.as_join())
    if not contains_plateau(policy):
        return policy
    changes: dict[str, Any] = {}
    for name, value in policy.params().items():
        if isinstance(value, Policy):
            changes[name] = replay(value)
        elif isinstance(value, tuple) and any(isinstance(v, Policy) for v in value):
            changes[name] = tuple(replay(v) if isinstance(v, Policy) else v for v in value)
    return dataclasses.replace(policy, **changes)


__all__ = ["MONITORS", "THRESHOLD_MODES", "Plateau", "PlateauAt", "PlateauTracker", "check_unshared",
           "contains_plateau", "find_plateaus", "monitors", "observe_all", "replace_at", "replay", "with_switches"]
