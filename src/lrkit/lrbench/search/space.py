"""The candidates a recommendation searches: an optimizer, and a policy with bounds from that optimizer's LR range.

Optuna's sampler picks an ``optimizer`` (a categorical, when the study searches several), a ``family``
and then that family's parameters (define-by-run, each parameter named ``FAMILY.param`` so families
never share a distribution; a schedule-free or LR-free optimizer's own arguments are drawn beside them,
the knobs below). Every family is parameterised the same way, relative to the chosen
optimizer's LR range ``[low, high]`` (found by the range test or the FIX grid, or
:data:`lrkit.lrbench.tasks.optimizers.LR_FREE_RANGE` for an LR-free optimizer) and to the budget ``B``:

- ``peak = lo * (hi / lo) ** FAMILY.peak_pos``, ``peak_pos ~ U(0, 1)``: the largest LR the policy
  uses, log-uniform in the peak window ``[lo, hi]`` (:func:`peak_window`): ``[max(low, high / 8),
  2 high]`` for a range found by the range test or the grid (``[high / 2, 12 high]`` for a schedule-free
  optimizer), the range itself when given or LR-free.
  The range test's ``high`` is where accuracy stops rising on a short sweep with a rising LR; a policy
  that decays afterwards tolerates a higher peak, and the bottom of the range (where accuracy starts
  rising) is too slow a peak for a target to be reached early. A schedule-free optimizer's averaged
  weights tolerate far more: on fashion-mnist-mlp (benchmarks/RESULTS.md, "the limit") schedule-free
  AdamW's range test gave ``high`` = 0.0027, and every one of the nine fastest configurations of a
  118-configuration sweep used 1.2-12x that (0.003-0.03), none of them inside ``[high / 8, 2 high]``;
  at 36x it diverged. A window grows at an end where the best candidate so far (of that optimizer)
  has its peak (:func:`grown_window`), so a range test that read the window too low or too high is
  corrected by the search's own evidence. The sampler sees the position in the
  window, not the LR, so what it learns about a family (e.g. "near the top") carries over between
  optimizers whose ranges differ by orders of magnitude;
- ``floor = peak * ratio``, ``ratio ~ logU(1e-3, 0.3)``: where decaying and cyclic policies end;
- lengths are fractions of ``B`` (cycles end at the budget, where CLR says training should stop).

| family | policies | shape |
|---|---|---|
| fixed | FIX | ``k0 = peak`` |
| step | STEP, NSTEP | peak, x gamma at ``l`` / at two boundaries |
| exponential | EXP | peak -> floor at B |
| inverse | INV | peak -> floor at B, power p |
| polynomial | POLY | peak -> floor at B, power p |
| clr | TRI, TRI2, TRIEXP, DTRI, DTRI2, DTRIEXP | floor..peak, h half-cycles in B |
| sine | SIN, SIN2, SINEXP, DSIN, DSIN2, DSINEXP | floor..peak, h half-cycles in B |
| cosine_cycle | COS, COS2, COSEXP, UPCOS, UPCOS2, UPCOSEXP | floor..peak, h half-cycles in B |
| restart | RSW, SINRSW, COSRSW (+2, EXP) | peak -> floor, n restarts in B |
| onecycle | onecycle (PyTorch's OneCycleLR) | peak, rise fraction, div factors |
| cosine | cosine (CosineAnnealingLR) | peak -> floor at B |
| sgdr | cosine_restarts (SGDR, warm restarts) | peak, floor, 2-4 cycles filling B |
| wsd | wsd (warmup-stable-decay) | peak, floor, warm-up and decay fractions |
| ralr | RALR over the best policy found so far | amplification probability |

## The optimizers' own knobs

The peers that reach a target fastest untuned are schedule-free AdamW and Prodigy (benchmarks/RESULTS.md,
issues 8 and 18), and on every built-in Fashion task the search's best candidates train with them. Their
step size is the policy's business (an LR, or for an LR-free optimizer a multiplier of its own estimate:
:data:`lrkit.lrbench.tasks.optimizers.LR_FREE_RANGE`); what else they are built with is drawn here, a few
values each, so that the sampler can learn which help:

| optimizer | knob | drawn among |
|---|---|---|
| schedule-free AdamW, SGD, RAdam | ``weight_decay`` | as it is otherwise built, 0.001, 0.01, 0.1 |
| schedule-free AdamW, SGD | ``warmup_steps`` (its own warm-up) | as otherwise, 2 %, 5 %, 10 % of the budget |
| Prodigy | ``weight_decay`` | as otherwise, 0.001, 0.01, 0.1 |
| Prodigy | ``safeguard_warmup`` (its estimate's warm-up guard) | as otherwise, true |
| D-Adaptation (Adam, SGD, AdaGrad, Adan, Lion) | ``weight_decay`` | as otherwise, 0.001, 0.01, 0.1 |

"As it is otherwise built" is the value the optimizer gets without the knob: the task's argument that
carries over to it (fashion-mnist-lenet's ``weight_decay=5e-4``), else the optimizer's own default. Each
knob is an Optuna categorical named ``CLASS.ARG`` (``AdamWScheduleFree.weight_decay``) whose first choice,
``None``, stands for that value, so a draw of ``None`` trains exactly as without the knob (and the
portfolio's entries, :mod:`lrkit.lrbench.search.known`, and draws carried over from another task's study
that had no knobs are queued with ``None``: :func:`queued_params`). A drawn value that
equals it is left out of the arguments, so the same training is never stored under two names. An argument
the user gave (``--opt``) is never drawn: the user's word wins. ``knobs=False`` (``--no-knobs``) draws none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from lrkit.errors import LRKitError
from lrkit.lrbench.tasks.optimizers import accepted_kwargs, optimizer_class, signature_default


@dataclass(frozen=True)
class SearchContext:
    """What a candidate's bounds come from.

    Args:
        budget: the trial budget B in updates.
        low: the bottom of the peak window (:func:`peak_window`), > 0.
        high: the top of the peak window, > low.
        best_spec: the best finished candidate so far (the base RALR amplifies), or None.
        epoch_steps: updates per epoch (RALR draws once per epoch, as in the paper).
    """

    budget: int
    low: float
    high: float
    best_spec: str | None = None
    epoch_steps: int = 100


Builder = Callable[[Any, SearchContext], dict[str, Any]]


#: the peak window of a range-tested optimizer, as multiples of its range test's ``high`` (module docstring)
PLAIN_WINDOW = (1 / 8, 2.0)
#: ... and of a schedule-free one
SCHEDULE_FREE_WINDOW = (0.5, 12.0)


def peak_window(low: float, high: float, method: str, schedule_free: bool = False) -> tuple[float, float]:
    """The window candidates draw their peak LR from, for an LR range ``[low, high]`` found by ``method``.

    ``range-test``/``grid``: ``[max(low, high / 8), 2 * high]``, or for a ``schedule_free`` optimizer
    ``[high / 2, 12 * high]`` (:data:`SCHEDULE_FREE_WINDOW`; see the module docstring); ``given`` (the
    user's) and ``lr-free`` (a multiplier window): ``[low, high]`` as it is.

    Example:
        >>> peak_window(0.001, 0.1, "range-test"), peak_window(0.25, 2.0, "lr-free")
        ((0.0125, 0.2), (0.25, 2.0))
        >>> peak_window(0.0001, 0.002, "range-test", schedule_free=True)
        (0.001, 0.024)
    """
    if method in ("given", "lr-free"):
        return low, high
    if schedule_free:
        return SCHEDULE_FREE_WINDOW[0] * high, SCHEDULE_FREE_WINDOW[1] * high
    return max(low, PLAIN_WINDOW[0] * high), PLAIN_WINDOW[1] * high


#: a window grows when the best draw's peak sits in its top (or bottom) tenth, log-scale
EDGE = 0.1
#: ... by doubling that end, at most this many times (so at most 16x)
MAX_DOUBLINGS = 4


def grown_window(low: float, high: float, best_peak: float | None) -> tuple[float, float]:
    """The peak window ``[low, high]`` grown towards the best candidate's peak: while ``best_peak`` sits in the
    window's top :data:`EDGE` (log-scale), ``high`` doubles; while in its bottom one, ``low`` halves (at most
    :data:`MAX_DOUBLINGS` times each). A window that holds the best draw well inside is unchanged, so the
    window follows the evidence when the range test's reading was too cautious (or too bold).

    Example:
        >>> grown_window(0.001, 0.01, 0.0098), grown_window(0.001, 0.01, 0.003), grown_window(0.001, 0.01, None)
        ((0.001, 0.02), (0.001, 0.01), (0.001, 0.01))
    """
    if best_peak is None or not best_peak > 0:
        return low, high
    for _ in range(MAX_DOUBLINGS):
        if math.log(best_peak / low) < (1 - EDGE) * math.log(high / low):
            break
        high *= 2
    for _ in range(MAX_DOUBLINGS):
        if math.log(best_peak / low) > EDGE * math.log(high / low):
            break
        low /= 2
    return low, high


def in_range(ctx: SearchContext, position: float) -> float:
    """The LR at ``position`` in [0, 1] of the context's range, log-uniformly."""
    return ctx.low * (ctx.high / ctx.low) ** position


def position_in(value: float, window: tuple[float, float]) -> float:
    """Where ``value`` sits in ``window`` (the same unit), log-uniformly: the inverse of :func:`in_range`, the
    ``peak_pos`` that draws it (to 4 digits).

    Example:
        >>> position_in(0.01, (0.001, 0.1))
        0.5
    """
    return round(math.log(value / window[0]) / math.log(window[1] / window[0]), 4)


def _peak(trial: Any, fam: str, ctx: SearchContext) -> float:
    return in_range(ctx, trial.suggest_float(f"{fam}.peak_pos", 0.0, 1.0))


def _floor(trial: Any, fam: str, peak: float) -> float:
    return peak * trial.suggest_float(f"{fam}.ratio", 1e-3, 0.3, log=True)


def _fixed(trial: Any, ctx: SearchContext) -> dict[str, Any]:
    return {"name": "FIX", "k0": _peak(trial, "fixed", ctx)}


def _step(trial: Any, ctx: SearchContext) -> dict[str, Any]:
    peak = _peak(trial, "step", ctx)
    gamma = trial.suggest_float("step.gamma", 0.1, 0.5)
    kind = trial.suggest_categorical("step.kind", ["STEP", "NSTEP"])
    if kind == "STEP":
        l = max(1, round(ctx.budget * trial.suggest_float("step.every", 0.2, 0.5)))
        return {"name": "STEP", "k0": peak, "gamma": gamma, "l": l}
    first = trial.suggest_float("step.first", 0.3, 0.7)
    second = first + (1 - first) * trial.suggest_float("step.second", 0.3, 0.8)
    bounds = sorted({max(1, round(ctx.budget * first)), max(2, round(ctx.budget * second))})
    return {"name": "NSTEP", "k0": peak, "gamma": gamma, "l": bounds}


def _exp(trial: Any, ctx: SearchContext) -> dict[str, Any]:
    peak = _peak(trial, "exponential", ctx)
    ratio = _floor(trial, "exponential", peak) / peak
    return {"name": "EXP", "k0": peak, "gamma": ratio ** (1 / ctx.budget)}


def _inv(trial: Any, ctx: SearchContext) -> dict[str, Any]:
    peak = _peak(trial, "inverse", ctx)
    ratio = _floor(trial, "inverse", peak) / peak
    p = trial.suggest_float("inverse.p", 0.5, 1.0)
    # (1 + gamma B)^-p = ratio  =>  gamma = (ratio^(-1/p) - 1) / B
    return {"name": "INV", "k0": peak, "gamma": (ratio ** (-1 / p) - 1) / ctx.budget, "p": p}


def _poly(trial: Any, ctx: SearchContext) -> dict[str, Any]:
    peak = _peak(trial, "polynomial", ctx)
    floor = _floor(trial, "polynomial", peak)
    p = trial.suggest_float("polynomial.p", 0.5, 3.0, log=True)
    return {"name": "POLY", "k0": floor, "k1": peak, "p": p, "l": ctx.budget}


# (functions that start at the bottom of a cycle, functions that start at its top): the number of
# half-cycles is even for the first and odd for the second, so every cycle ends low, at the budget.
_CYCLIC = {
    "clr": (("TRI", "TRI2", "TRIEXP"), ("DTRI", "DTRI2", "DTRIEXP")),
    "sine": (("SIN", "SIN2", "SINEXP"), ("DSIN", "DSIN2", "DSINEXP")),
    "cosine_cycle": (("UPCOS", "UPCOS2", "UPCOSEXP"), ("COS", "COS2", "COSEXP")),
}


def _cyclic(fam: str) -> Builder:
    rising, falling = _CYCLIC[fam]

    def build(trial: Any, ctx: SearchContext) -> dict[str, Any]:
        fn = trial.suggest_categorical(f"{fam}.fn", list(rising + falling))
        peak = _peak(trial, fam, ctx)
        floor = _floor(trial, fam, peak)
        cycles = trial.suggest_int(f"{fam}.cycles", 1, 4)
        halves = 2 * cycles if fn in rising else 2 * cycles - 1
        spec: dict[str, Any] = {"name": fn, "k0": floor, "k1": peak, "l": ctx.budget / halves}
        if fn.endswith("EXP"):
            spec["gamma"] = trial.suggest_float(f"{fam}.decay", 0.01, 0.5, log=True) ** (1 / ctx.budget)
        return spec

    return build


_RESTARTS = ("RSW", "RSW2", "RSWEXP", "SINRSW", "SINRSW2", "SINRSWEXP", "COSRSW", "COSRSW2", "COSRSWEXP")


def _restart(trial: Any, ctx: SearchContext) -> dict[str, Any]:
    fn = trial.suggest_categorical("restart.fn", list(_RESTARTS))
    peak = _peak(trial, "restart", ctx)
    floor = _floor(trial, "restart", peak)
    restarts = trial.suggest_int("restart.periods", 1, 4)
    spec: dict[str, Any] = {"name": fn, "k0": floor, "k1": peak, "l": ctx.budget / restarts}
    if fn.endswith("EXP"):
        spec["gamma"] = trial.suggest_float("restart.decay", 0.01, 0.5, log=True) ** (1 / ctx.budget)
    return spec


def _onecycle(trial: Any, ctx: SearchContext) -> dict[str, Any]:
    peak = _peak(trial, "onecycle", ctx)
    return {"name": "onecycle", "max_lr": peak, "total_steps": ctx.budget,
            "pct_start": trial.suggest_float("onecycle.pct_start", 0.1, 0.5),
            "div_factor": trial.suggest_float("onecycle.div_factor", 5.0, 50.0, log=True),
            "final_div_factor": trial.suggest_float("onecycle.final_div_factor", 10.0, 1e4, log=True)}


def _cosine(trial: Any, ctx: SearchContext) -> dict[str, Any]:
    peak = _peak(trial, "cosine", ctx)
    floor = _floor(trial, "cosine", peak)
    return {"name": "cosine", "max_lr": peak, "min_lr": floor, "total_steps": ctx.budget}


def _sgdr(trial: Any, ctx: SearchContext) -> dict[str, Any]:
    peak = _peak(trial, "sgdr", ctx)
    floor = _floor(trial, "sgdr", peak)
    mult = trial.suggest_categorical("sgdr.cycle_mult", [1.0, 2.0])
    cycles = trial.suggest_int("sgdr.cycles", 2, 4)
    # first cycle such that `cycles` cycles (each cycle_mult times the last) fill the budget exactly
    first = ctx.budget / (cycles if mult == 1.0 else (mult ** cycles - 1) / (mult - 1))
    return {"name": "cosine_restarts", "max_lr": peak, "min_lr": floor, "first_cycle_steps": max(1, round(first)),
            "cycle_mult": mult}


def _wsd(trial: Any, ctx: SearchContext) -> dict[str, Any]:
    peak = _peak(trial, "wsd", ctx)
    floor = _floor(trial, "wsd", peak)
    warm = round(trial.suggest_float("wsd.warmup", 0.0, 0.1) * ctx.budget)
    decay = max(1, round(trial.suggest_float("wsd.decay", 0.1, 0.4) * ctx.budget))
    return {"name": "wsd", "max_lr": peak, "min_lr": floor, "warmup_steps": warm,
            "stable_steps": max(0, ctx.budget - warm - decay), "decay_steps": decay,
            "decay": trial.suggest_categorical("wsd.shape", ["linear", "cosine", "sqrt"])}


def _ralr(trial: Any, ctx: SearchContext) -> dict[str, Any]:
    from lrkit.spec import parse, to_dict

    base = to_dict(parse(ctx.best_spec)) if ctx.best_spec else _fixed(trial, ctx)
    # the last fifth stays un-amplified so that the amplified run can still settle before the budget ends
    return {"name": "ralr", "policy": base, "iters_per_epoch": max(1, ctx.epoch_steps),
            "p": trial.suggest_float("ralr.p", 0.05, 0.5, log=True),
            "max_lr": in_range(ctx, trial.suggest_float("ralr.max_pos", 0.0, 1.0)),
            "total_steps": ctx.budget, "final_fraction": 0.2, "seed": 0}


#: family -> the builder that draws one candidate of it (the table in the module docstring)
FAMILIES: dict[str, Builder] = {
    "fixed": _fixed,
    "step": _step,
    "exponential": _exp,
    "inverse": _inv,
    "polynomial": _poly,
    "clr": _cyclic("clr"),
    "sine": _cyclic("sine"),
    "cosine_cycle": _cyclic("cosine_cycle"),
    "restart": _restart,
    "onecycle": _onecycle,
    "cosine": _cosine,
    "sgdr": _sgdr,
    "wsd": _wsd,
    "ralr": _ralr,
}


def check_families(requested: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The families to search, in catalogue order: all (``None``), or ``requested`` (an unknown name, or
    none at all, raises)."""
    if requested is None:
        return tuple(FAMILIES)
    if not requested:
        raise LRKitError(f"`families` names at least one family when given, but got none; lrkit knows "
                         f"{', '.join(FAMILIES)}")
    unknown = [f for f in requested if f not in FAMILIES]
    if unknown:
        raise LRKitError(f"unknown policy families {', '.join(map(repr, unknown))}; lrkit knows {', '.join(FAMILIES)}")
    return tuple(f for f in FAMILIES if f in requested)


def suggest_policy(trial: Any, ctx: SearchContext, families: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """Let the trial's sampler choose a family and its parameters; returns ``(family, policy dict)``."""
    if not families:
        raise LRKitError("no policy family is available to search (see `lrkit recommend --families`)")
    family = trial.suggest_categorical("family", list(families))
    return family, _rounded(FAMILIES[family](trial, ctx))


def suggest_optimizer(trial: Any, optimizers: tuple[str, ...]) -> str:
    """The trial's optimizer: the only one, or the sampler's choice among several."""
    if len(optimizers) == 1:
        return optimizers[0]
    return trial.suggest_categorical("optimizer", list(optimizers))


def _rounded(value: Any, key: str = "") -> Any:
    """Floats to 4 significant digits: specs stay readable, and no candidate depends on the 5th digit.

    Lengths (``l``) stay exact: a cycle must end exactly at the budget.
    """
    if key == "l":
        return value
    if isinstance(value, float):
        if key == "gamma" and 0.9 < value < 1:  # a per-update decay factor: its distance to 1 carries it
            return 1 - float(f"{1 - value:.4g}")
        return float(f"{value:.4g}") if value else value
    if isinstance(value, dict):
        return {k: _rounded(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


_FAMILY_OF_NAME = {"FIX": "fixed", "constant": "fixed", "STEP": "step", "NSTEP": "step", "EXP": "exponential",
                   "INV": "inverse", "POLY": "polynomial", "onecycle": "onecycle", "cosine": "cosine",
                   "cosine_restarts": "sgdr", "wsd": "wsd", "ralr": "ralr",
                   **{n: fam for fam, (rise, fall) in _CYCLIC.items() for n in rise + fall},
                   **{n: "restart" for n in _RESTARTS}}


def family_of(spec: str) -> str:
    """The search family a spec belongs to (by its outermost policy), or that policy's name if none."""
    name = spec.split("(", 1)[0].strip()
    return _FAMILY_OF_NAME.get(name, name)


# ---- the optimizers' own knobs (the module docstring's last section) ----------------------------------------------

_DECAYS = (0.001, 0.01, 0.1)
_WARMUPS = (0.02, 0.05, 0.1)


@dataclass(frozen=True)
class Knob:
    """One optimizer argument the sampler draws: ``arg``, the values it draws besides "as otherwise"
    (``choices``), and whether they are fractions of the budget (converted to a number of updates)."""

    arg: str
    choices: tuple[Any, ...]
    per_budget: bool = False


_WD = Knob("weight_decay", _DECAYS)
_SF_WARMUP = Knob("warmup_steps", _WARMUPS, per_budget=True)

#: the optimizer's class name -> its knobs (the table in the module docstring)
KNOBS: dict[str, tuple[Knob, ...]] = {
    "AdamWScheduleFree": (_WD, _SF_WARMUP),
    "SGDScheduleFree": (_WD, _SF_WARMUP),
    "RAdamScheduleFree": (_WD,),
    "Prodigy": (_WD, Knob("safeguard_warmup", (True,))),
    **{name: (_WD,) for name in ("DAdaptAdam", "DAdaptSGD", "DAdaptAdaGrad", "DAdaptAdan", "DAdaptLion")},
}


def knobs_of(optimizer: str, user_kwargs: dict[str, Any] | None = None) -> tuple[Knob, ...]:
    """The knobs drawn for ``optimizer``: those of its class that it accepts and the user did not set."""
    cls = optimizer_class(optimizer)[1].__name__
    accepted = accepted_kwargs(optimizer)
    return tuple(k for k in KNOBS.get(cls, ()) if k.arg in accepted and k.arg not in (user_kwargs or {}))


def param_name(optimizer: str, knob: Knob) -> str:
    """The Optuna parameter that draws ``knob``: ``CLASS.ARG``."""
    return f"{optimizer_class(optimizer)[1].__name__}.{knob.arg}"


def default_params(optimizer: str) -> dict[str, None]:
    """Every knob of ``optimizer`` at "as otherwise" (``None``)."""
    return {param_name(optimizer, k): None for k in knobs_of(optimizer)}


def queued_params(optimizer: str, params: dict[str, Any]) -> dict[str, Any]:
    """The Optuna parameters to queue a draw of ``optimizer`` with (``enqueue_trial``): ``params``, and every
    knob they leave out at "as otherwise", so that the sampler does not draw it at random for a
    configuration placed on purpose (a portfolio entry, a draw carried over from a study made without knobs)."""
    return {**default_params(optimizer), **params}


def suggest_knobs(trial: Any, optimizer: str, kwargs: dict[str, Any], user_kwargs: dict[str, Any],
                  budget: int) -> dict[str, Any]:
    """``kwargs`` (the optimizer's arguments as otherwise built) with the trial's draw of each knob; a draw
    of ``None``, or of the value the argument has anyway, leaves it as it was."""
    out = dict(kwargs)
    for knob in knobs_of(optimizer, user_kwargs):
        drawn = trial.suggest_categorical(param_name(optimizer, knob), [None, *knob.choices])
        if drawn is None:
            continue
        value = max(1, round(drawn * budget)) if knob.per_budget else drawn
        if value != out.get(knob.arg, signature_default(optimizer, knob.arg)):
            out[knob.arg] = value
    return out
