"""What a range test returns: the recorded curve, the suggestions read from it, and policies built from them."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lrkit.errors import LRKitError
from lrkit.policies.base import Policy, lookup, registry
from lrkit.rangetest import suggest as _suggest
from lrkit.rangetest.suggest import Pick
from lrkit.text import did_you_mean

#: a policy's default ``step_size`` in epochs (CLR recommends a half cycle of 2-10 epochs)
STEP_SIZE_EPOCHS = 4


def policy_class(name: str) -> type[Policy]:
    """The policy class :meth:`RangeTestResult.policy` builds for ``name`` (a name or an alias)."""
    cls = lookup(name)
    if cls is None:
        raise LRKitError(f"unknown policy {name!r} (see lrkit.policies()){did_you_mean(name, registry())}")
    return cls


def bound_fields(cls: type[Policy]) -> dict[str, str]:
    """The parameters :meth:`RangeTestResult.policy` fills from the suggested bounds, each mapped to
    the :class:`Suggestion` attribute it takes (``"base_lr"`` or ``"lr"``); empty when none fits."""
    names = [f.name for f in dataclasses.fields(cls)]
    if "base_lr" in names and "max_lr" in names:
        return {"base_lr": "base_lr", "max_lr": "lr"}
    if "k0" in names and "k1" in names:
        return {"k0": "base_lr", "k1": "lr"}
    single = next((n for n in ("max_lr", "k0", "lr", "base_lr") if n in names), None)
    return {} if single is None else {single: "lr"}


def still_needed(cls: type[Policy], given: Any = ()) -> list[str]:
    """The parameters of ``cls`` without a default that neither the bounds nor ``given`` fill."""
    filled = {*bound_fields(cls), *given}
    return [f.name for f in dataclasses.fields(cls) if f.name not in filled and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING]


def policies_from_bounds(given: Any = ("step_size",)) -> list[str]:
    """The registered policies that the bounds and ``given`` build with nothing else (default: the
    bounds and ``step_size``, which is what ``lrkit range-test --policy`` can pass)."""
    return [name for name, cls in registry().items() if bound_fields(cls) and not still_needed(cls, given)]


@dataclass(frozen=True)
class Suggestion:
    """The recommended bounds: ``lr`` (the max LR), ``base_lr``, the ``method`` that gave them, ``reason``,
    and ``all``, every method's :class:`~lrkit.rangetest.suggest.Pick` (``.lr is None`` where a method
    had nothing to say)."""

    lr: float
    base_lr: float
    method: str
    reason: str
    all: dict[str, Pick]

    def __str__(self) -> str:
        return "\n".join([f"recommended: lr={self.lr:.4g} base_lr={self.base_lr:.4g} ({self.method}): {self.reason}",
                          *pick_lines(self.all)])


def pick_lines(picks: dict[str, Pick]) -> list[str]:
    """One line per method: its bounds (``-`` when it has none) and its reason."""
    lines = []
    for pick in picks.values():
        shown = f"lr={pick.lr:.4g} base_lr={pick.base_lr:.4g}" if pick.available else "-"
        lines.append(f"  {pick.method:<9} {shown:<32} {pick.reason}")
    return lines


@dataclass
class RangeTestResult:
    """The curve of one range test.

    Attributes:
        lrs: the LR of each point (group 0's; other groups ran at ``lr * group_ratios[i]``).
        losses: the loss measured at each point, unsmoothed (training batch, or validation).
        smoothed_losses: their debiased EMA, as used online for the divergence stop.
        accuracies: the metric at each point when a metric was given, else None.
        train_losses: with validation data, the training batch losses too; else None.
        sweep: the sweep policy (``exp_sweep`` or ``linear``).
        stop_reason: why the sweep ended.
        iters_per_epoch: optimizer updates per pass over the training data (None for a loader
            without a length), for sizing a policy in epochs (:meth:`default_step_size`).
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    accuracies: np.ndarray | None
    train_losses: np.ndarray | None
    sweep: Policy
    mode: str
    steps: int
    stop_reason: str
    measured_on: str
    group_lrs: tuple[float, ...] = ()
    group_ratios: tuple[float, ...] = (1.0,)
    skipped_updates: int = 0
    iters_per_epoch: int | None = None
    _picks: dict[str, Pick] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def stopped_early(self) -> bool:
        return len(self.lrs) < self.steps

    @property
    def no_signal(self) -> str | None:
        """Why the curve carries no signal (:func:`lrkit.rangetest.suggest.no_signal`: the loss barely
        falls and the accuracy barely rises), or None when it does. With no signal, :meth:`suggest`
        recommends nothing; a ``method`` named explicitly still gives its pick, marked as a guess."""
        return _suggest.no_signal(self.lrs, self.losses, self.accuracies)

    # ---- suggestions --------------------------------------------------------------------------
    def picks(self) -> dict[str, Pick]:
        """Every method's pick (computed once; each a pure function of the recorded arrays)."""
        if self._picks is None:
            self._picks = _suggest.all_picks(self.lrs, self.losses, self.accuracies)
        return self._picks

    def suggest(self, method: str | None = None) -> Suggestion:
        """The recommended bounds, or those of one ``method`` (``accuracy``, ``valley``, ``steepest``, ``minimum``).

        Raises:
            LRKitError: no method could read the curve, or (``method=None``) it carries no signal
                (:attr:`no_signal`), or the named ``method`` has no pick.
        """
        picks = self.picks()
        flat = self.no_signal
        if method is None and flat:
            raise LRKitError(f"no bounds are suggested: the curve carries no signal ({len(self.lrs)} points, "
                             f"{self.stop_reason}): {flat}. Sweep to a higher end_lr (--end-lr) or for more steps "
                             "(--steps), or check that the model can learn the data; naming a method (--method) reads "
                             "its pick anyway")
        if method is None:
            pick, why = _suggest.preferred_pick(picks)
            if not pick.available:
                raise LRKitError(f"no suggestion can be read from this curve ({len(self.lrs)} points, "
                                 f"{self.stop_reason}): " + "; ".join(f"{p.method}: {p.reason}" for p in picks.values()))
            return Suggestion(pick.lr, pick.base_lr, pick.method, f"{pick.reason}. Why this method: {why}", picks)
        if method not in picks:
            raise LRKitError(f"`method` must be one of {', '.join(map(repr, picks))}, but got (method={method!r}).")
        pick = picks[method]
        if not pick.available:
            raise LRKitError(f"the {method!r} rule has no pick for this curve: {pick.reason}")
        reason = pick.reason + (f" (a guess: the curve carries no signal, {flat})" if flat else "")
        return Suggestion(pick.lr, pick.base_lr, method, reason, picks)

    def default_step_size(self) -> int | None:
        """:data:`STEP_SIZE_EPOCHS` epochs of updates (CLR: a half cycle of 2-10 epochs), or None
        when :attr:`iters_per_epoch` is unknown."""
        return None if self.iters_per_epoch is None else STEP_SIZE_EPOCHS * self.iters_per_epoch

    def policy(self, name: str = "triangular2", *, method: str | None = None, **params: Any) -> Policy:
        """A policy whose LR bounds come from :meth:`suggest`; ``params`` give (or override) the rest.

        ``base_lr``/``max_lr`` (CLR's names) or ``k0``/``k1`` (LRBench's) are filled with the
        suggested base and max; a policy with a single LR parameter (``max_lr``, ``k0``, ``lr``) gets
        the max. A policy that takes ``step_size`` (CLR's half cycle) and gets none in ``params``
        gets :meth:`default_step_size`, 4 epochs of updates, when :attr:`iters_per_epoch` is known
        (otherwise ``step_size`` must be given). Example: ``result.policy("triangular2")``, or
        ``result.policy("triangular2", step_size=2000)``.
        """
        cls = policy_class(name)
        names = [f.name for f in dataclasses.fields(cls)]
        fill = bound_fields(cls)
        if not fill:
            raise LRKitError(f"policy {name!r} has no LR bound to fill (it takes {', '.join(names)}); "
                             "build it from result.suggest() yourself")
        filled: dict[str, Any] = dict(params)
        if "step_size" in names and "step_size" not in filled and self.iters_per_epoch is not None:
            filled["step_size"] = self.default_step_size()
        missing = still_needed(cls, [*fill, *filled])  # the arguments' mistakes first, then the curve's
        if missing:
            raise LRKitError(f"policy {name!r} also needs {', '.join(missing)}, e.g. "
                             f"result.policy({name!r}, {missing[0]}=...)")
        unknown = [k for k in params if k not in names]
        if unknown:
            raise LRKitError(f"policy {name!r} has no parameter {unknown[0]!r} (it takes {', '.join(names)})")
        bounds = self.suggest(method)
        return cls(**{**{field: getattr(bounds, attr) for field, attr in fill.items()}, **filled})  # params win

    # ---- output -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: the curve (non-finite values as None), the sweep spec and every pick."""
        def arr(a: np.ndarray | None) -> list[float | None] | None:
            # NaN/inf become null so the output is strict JSON
            return None if a is None else [float(x) if np.isfinite(x) else None for x in a]

        picks = {m: dataclasses.asdict(p) for m, p in self.picks().items()}
        try:
            best = self.suggest()
            recommended = {"lr": best.lr, "base_lr": best.base_lr, "method": best.method, "reason": best.reason}
        except LRKitError as err:
            recommended = {"error": str(err)}
        return {"sweep": self.sweep.spec(), "mode": self.mode, "steps": self.steps, "points": len(self.lrs),
                "stop_reason": self.stop_reason, "measured_on": self.measured_on, "group_lrs": list(self.group_lrs),
                "group_ratios": list(self.group_ratios), "skipped_updates": self.skipped_updates, "iters_per_epoch": self.iters_per_epoch,
                "lrs": arr(self.lrs), "losses": arr(self.losses), "smoothed_losses": arr(self.smoothed_losses),
                "accuracies": arr(self.accuracies), "train_losses": arr(self.train_losses),
                "recommended": recommended, "no_signal": self.no_signal, "picks": picks}

    def plot(self, path: str | os.PathLike[str] | None = None, ax: Any = None, *, overwrite: bool = True) -> Any:
        """Loss (raw, EMA, centred smoothing) against LR, accuracy on a second axis, picks marked.

        Saves to ``path`` when given (its folder must exist; no suffix means PNG; an existing file
        is replaced unless ``overwrite=False``, as ``lrkit range-test`` passes without
        ``--force``); draws into ``ax`` when given. Returns the matplotlib figure.
        """
        from lrkit.rangetest.plot import plot_curve

        try:
            best = self.suggest()
            recommended, bounds = best.method, (best.base_lr, best.lr)
        except LRKitError:
            recommended, bounds = None, None
        return plot_curve(self.lrs, self.losses, self.smoothed_losses, accuracies=self.accuracies,
                          log_x=self.mode == "exp", measured_on=self.measured_on, picks=self.picks(),
                          recommended=recommended, bounds=bounds, title=f"LR range test: {self.sweep.spec()}",
                          path=path, ax=ax, overwrite=overwrite)

    def __repr__(self) -> str:
        return (f"RangeTestResult({len(self.lrs)}/{self.steps} points, sweep={self.sweep.spec()}, "
                f"measured on {self.measured_on}; {self.stop_reason})")
