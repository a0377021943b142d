"""LEAP: learning-rate perturbation (Liu et al., CIKM 2022), as an optimizer wrapper.

Every scalar parameter gets its own LR, drawn anew at every update around the scheduled LR
``η_t`` of its param group (the paper's Algorithm 1; docs/plugins.md)::

    η̃ = η_t (1 + σ ξ)   (relative)     or     η̃ = η_t + σ ξ   (absolute),     ξ ~ N(0, 1)
    θ ← θ − η̃ ⊙ u,     u = the base optimizer's update direction

``u`` is the momentum buffer for SGD (its Nesterov form with ``nesterov=True``, coupled weight
decay included) and ``m̂ / (√v̂ + ε)`` for Adam; AdamW's decoupled decay stays on ``η_t``.

ξ for the parameter element with global index ``i`` (the position in the concatenation of all
params of all groups, in order) at LEAP step ``t`` is ``lrkit.rng.normal(seed, t, i)``,
computed on the parameter's device by :func:`lrkit.torch.rng.normal`: a resumed run
repeats the uninterrupted one, and data-parallel replicas draw the same noise without talking.
"""

from __future__ import annotations

import math
from collections import OrderedDict, defaultdict
from typing import Any, Callable

import torch
from torch.optim import Optimizer

from lrkit.errors import LRKitError, format_values
from lrkit.torch.rng import normal

def _require(condition: bool, rule: str, **values: Any) -> None:
    if not condition:
        raise LRKitError(f"LEAP: `{rule}` must hold, but got {format_values(**values)}.")


class LEAP(Optimizer):
    """Per-element Gaussian perturbation of the scheduled LR, around any ``torch.optim`` optimizer.

    ``η̃ = η_t (1 + σ ξ)`` (``relative=True``) or ``η_t + σ ξ``; optionally ``max(η̃, 0)``;
    ``θ ← θ − η̃ ⊙ u`` with ``u`` the base optimizer's update direction.

    LEAP shares the base optimizer's ``param_groups`` and ``state`` (the same objects), so any
    scheduler — :class:`lrkit.torch.PolicyLR` or PyTorch's — writing ``group["lr"]`` sets the
    ``η_t`` that LEAP perturbs at the next :meth:`step`. Its state dict is the base optimizer's
    plus ``"leap": {"step": t, ...}``.

    Paths: SGD, Adam and AdamW (plain tensors; not fused, capturable or differentiable) take a
    fast path that computes ``u`` from the optimizer state and keeps no copy of the parameters.
    Any other optimizer takes the generic path: it runs the base step at ``η_t`` on a saved
    copy and rescales the whole parameter change ``Δ`` per element, ``θ ← θ_old + (η̃/η_t) Δ``
    (exact up to the base step's own rounding; AdamW's decay is then perturbed too). With
    ``sigma=0`` both paths run the base step as is, bit for bit.

    Defaults: σ=0.1 relative, no clamp. In a 5-seed Fashion-MNIST run
    (benchmarks/RESULTS.md) it was the only tested setting with no loss in its point
    estimate (+0.04 ± 0.04 pp; relative 0.3 and absolute 0.01 were slightly worse), and no
    setting gained beyond noise. At σ=0.1 a negative element LR needs ξ < −10.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer``).
        sigma: the noise scale σ >= 0 (a fraction of η_t when relative, an LR when absolute).
        relative: ``η_t (1 + σ ξ)`` if true, else ``η_t + σ ξ``.
        clamp: clamp the element LRs at 0 (no element takes an ascent step).
        seed: the noise seed, an integer in [0, 2**64).
        fast: None picks the fast path when it applies; True requires it; False forces the
            generic path.

    Example:
        >>> import torch
        >>> from lrkit.torch.leap import LEAP
        >>> w = torch.nn.Parameter(torch.ones(4))
        >>> opt = LEAP(torch.optim.SGD([w], lr=0.1), sigma=0.5, seed=0)
        >>> w.grad = torch.ones(4); opt.step()
        >>> [round(x, 4) for x in w.tolist()]
        [0.9146, 0.8562, 0.8596, 0.912]
        >>> {k: round(v, 4) for k, v in opt.stats().items()}
        {'step': 0, 'n': 4, 'mean': 0.1144, 'std': 0.0277, 'frac_below_zero': 0.0}
    """

    def __init__(self, optimizer: Optimizer, sigma: float = 0.1, relative: bool = True, clamp: bool = False,
                 seed: int = 0, fast: bool | None = None):
        _require(isinstance(optimizer, Optimizer) and not isinstance(optimizer, LEAP),
                 "optimizer is a torch.optim.Optimizer (not a LEAP)", optimizer=type(optimizer).__name__)
        _require(isinstance(sigma, (int, float)) and not isinstance(sigma, bool) and math.isfinite(sigma)
                 and sigma >= 0, "sigma >= 0", sigma=sigma)
        for name, flag in (("relative", relative), ("clamp", clamp)):
            _require(isinstance(flag, bool), f"{name} is true or false", **{name: flag})
        _require(isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**64, "0 <= seed < 2**64", seed=seed)
        _require(fast in (None, True, False), "fast is none, true or false", fast=fast)
        self.optimizer = optimizer
        self.sigma, self.relative, self.clamp, self.seed, self.fast = float(sigma), relative, clamp, seed, fast
        self.t = 0
        self._stats: list[tuple[Any, Any, Any, int]] = []  # per draw: sum, sum of squares, count < 0, n
        for hooks in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks", "_optimizer_state_dict_pre_hooks",
                      "_optimizer_state_dict_post_hooks", "_optimizer_load_state_dict_pre_hooks",
                      "_optimizer_load_state_dict_post_hooks"):
            setattr(self, hooks, OrderedDict())
        self._patch_step_function()
        if fast:
            _require(self.fast_path() is not None, "fast=True needs SGD, Adam or AdamW without fused, capturable "
                     "or differentiable", optimizer=type(optimizer).__name__)

    # ---- the base optimizer's containers, shared -------------------------------------------
    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        self.optimizer.param_groups = value

    @property
    def state(self) -> defaultdict:  # type: ignore[override]
        return self.optimizer.state

    @state.setter
    def state(self, value: defaultdict) -> None:
        self.optimizer.state = value

    @property
    def defaults(self) -> dict[str, Any]:  # type: ignore[override]
        return self.optimizer.defaults

    @defaults.setter
    def defaults(self, value: dict[str, Any]) -> None:
        self.optimizer.defaults = value

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        self.optimizer.add_param_group(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._patch_step_function()

    def __repr__(self) -> str:
        return (f"LEAP(sigma={self.sigma}, relative={self.relative}, clamp={self.clamp}, seed={self.seed}, "
                f"t={self.t}, optimizer={self.optimizer!r})")

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state dict plus ``"leap": {"step": t, "sigma", "relative", "clamp", "seed"}``."""
        out = self.optimizer.state_dict()
        out["leap"] = {"step": self.t, "sigma": self.sigma, "relative": self.relative, "clamp": self.clamp,
                       "seed": self.seed}
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load the base optimizer's state and LEAP's step; a plain base state dict leaves ``t`` as it is."""
        state_dict = dict(state_dict)
        leap = state_dict.pop("leap", None)
        if leap is not None:
            mine = {"sigma": self.sigma, "relative": self.relative, "clamp": self.clamp, "seed": self.seed}
            theirs = {k: leap.get(k) for k in mine}
            _require(mine == theirs, "the checkpoint's LEAP arguments equal this LEAP's (or load the base "
                     "optimizer's state alone)", checkpoint=theirs, this=mine)
            _require(isinstance(leap.get("step"), int) and leap["step"] >= 0, "step is an integer >= 0",
                     step=leap.get("step"))
        self.optimizer.load_state_dict(state_dict)
        if leap is not None:
            self.t = leap["step"]

    # ---- the step ---------------------------------------------------------------------------
    def fast_path(self) -> str | None:
        """``"sgd"`` or ``"adam"`` when the fast path applies to the base optimizer now, else None."""
        kind = {torch.optim.SGD: "sgd", torch.optim.Adam: "adam", torch.optim.AdamW: "adam"}.get(type(self.optimizer))
        if kind is None or self.fast is False:
            return None
        for group in self.param_groups:
            if any(group.get(flag) for flag in ("fused", "capturable", "differentiable")):
                return None
            if any(p.is_complex() or (p.grad is not None and p.grad.is_sparse) for p in group["params"]):
                return None
        return kind

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> Any:  # type: ignore[override]
        """One update of every parameter with a gradient, each at its own perturbed LR."""
        kind = self.fast_path()
        if self.fast and kind is None:
            raise LRKitError("LEAP: `fast=True` needs SGD, Adam or AdamW without fused, capturable, differentiable, "
                             "complex or sparse tensors, but got (optimizer=%s)." % type(self.optimizer).__name__)
        if self.sigma == 0:
            loss = self.optimizer.step(closure)
            self._record_nominal()
        elif kind is not None:
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            self._stats, offsets = [], self._offsets()
            for group in self.param_groups:
                (_sgd_group if kind == "sgd" else _adam_group)(self, group, offsets)
        else:
            loss = self._generic_step(closure)
        self.t += 1
        return loss

    def _offsets(self) -> dict[int, int]:
        offsets, position = {}, 0
        for group in self.param_groups:
            for p in group["params"]:
                offsets[id(p)] = position
                position += p.numel()
        return offsets

    def element_lrs(self, lr: float, params: list[torch.Tensor],
                    offsets: dict[int, int] | None = None) -> list[torch.Tensor]:
        """The perturbed LRs η̃ around ``lr`` for ``params`` at step ``t``, one tensor shaped like each param.

        Also records them for :meth:`stats`. ``offsets`` (param id -> global index of its first
        element) defaults to the params' positions in ``param_groups``.
        """
        offsets = self._offsets() if offsets is None else offsets
        out: list[torch.Tensor | None] = [None] * len(params)
        buckets: dict[tuple, list[int]] = defaultdict(list)
        for i, p in enumerate(params):
            buckets[(p.device, p.dtype)].append(i)
        for (device, dtype), members in buckets.items():
            members.sort(key=lambda i: offsets[id(params[i])])
            noise_dtype = torch.float64 if dtype == torch.float64 else torch.float32
            runs: list[list[int]] = []  # params that sit next to each other share one draw
            for i in members:
                if runs and offsets[id(params[runs[-1][-1]])] + params[runs[-1][-1]].numel() == offsets[id(params[i])]:
                    runs[-1].append(i)
                else:
                    runs.append([i])
            for run in runs:
                sizes = [params[i].numel() for i in run]
                eta = normal(self.seed, self.t, offsets[id(params[run[0]])], sum(sizes), device, noise_dtype)
                eta = eta.mul_(self.sigma * lr).add_(lr) if self.relative else eta.mul_(self.sigma).add_(lr)
                below = torch.count_nonzero(eta < 0)  # much cheaper than a bool sum on CPU
                if self.clamp:
                    eta.clamp_(min=0.0)
                # float32 sums (cascaded, accurate enough for a log); a float64 cast costs more than the draw
                self._stats.append((eta.sum(), torch.dot(eta, eta), below, eta.numel()))
                for i, piece in zip(run, torch.split(eta, sizes)):
                    out[i] = piece.view(params[i].shape).to(dtype)
        return out  # type: ignore[return-value]

    def _generic_step(self, closure: Callable[[], float] | None) -> Any:
        offsets = self._offsets()
        saved = [[p.detach().clone() for p in g["params"]] for g in self.param_groups]
        nominal = [float(g["lr"]) for g in self.param_groups]
        # absolute noise at η_t = 0 still moves θ by σξu: run the base step at η = 1 to see u
        used = [lr if lr != 0 else 1.0 for lr in nominal]
        for group, lr, run_at in zip(self.param_groups, nominal, used):
            if run_at != lr:
                _set_lr(group, run_at)
        try:
            loss = self.optimizer.step(closure)
        finally:
            for group, lr, run_at in zip(self.param_groups, nominal, used):
                if run_at != lr:
                    _set_lr(group, lr)
        self._stats = []
        for group, old, lr, run_at in zip(self.param_groups, saved, nominal, used):
            moved = [(p, q) for p, q in zip(group["params"], old) if p.grad is not None]
            if not moved:
                continue
            etas = self.element_lrs(lr, [p for p, _ in moved], offsets)
            for (p, q), eta in zip(moved, etas):
                delta = p.sub(q)
                p.copy_(q.addcmul_(delta, eta, value=1.0 / run_at))
        return loss

    # ---- what was applied --------------------------------------------------------------------
    def _record_nominal(self) -> None:
        self._stats = []
        for group in self.param_groups:
            n = sum(p.numel() for p in group["params"] if p.grad is not None)
            lr = float(group["lr"])
            self._stats.append((n * lr, n * lr * lr, n * (lr < 0), n))

    def stats(self) -> dict[str, float]:
        """The element LRs of the last step: ``step``, ``n``, ``mean``, ``std``, ``frac_below_zero``.

        ``frac_below_zero`` counts the drawn LRs below 0 (set to 0 when ``clamp``; otherwise
        those elements took an ascent step). Calling this synchronises with the device.
        """
        n = sum(part[3] for part in self._stats)
        if n == 0:
            return {"step": self.t - 1, "n": 0, "mean": math.nan, "std": math.nan, "frac_below_zero": math.nan}
        total, squares, below = (sum(float(part[k]) for part in self._stats) for k in range(3))
        mean = total / n
        return {"step": self.t - 1, "n": n, "mean": mean, "std": math.sqrt(max(squares / n - mean * mean, 0.0)),
                "frac_below_zero": below / n}


def _set_lr(group: dict[str, Any], lr: float) -> None:
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(lr)
    else:
        group["lr"] = lr


def _grads(group: dict[str, Any]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    params = [p for p in group["params"] if p.grad is not None]
    grads = [p.grad for p in params]
    if group.get("maximize"):
        grads = torch._foreach_neg(grads)
    return params, grads


def _sgd_group(leap: LEAP, group: dict[str, Any], offsets: dict[int, int]) -> None:
    """torch.optim.SGD's update with ``lr`` replaced by the element LRs."""
    params, grads = _grads(group)
    if not params:
        return
    wd, momentum, dampening = group["weight_decay"], group["momentum"], group["dampening"]
    if wd != 0:
        grads = torch._foreach_add(grads, params, alpha=wd)
    direction = grads
    if momentum != 0:
        bufs, fresh = [], []
        for p, g in zip(params, grads):
            buf = leap.state[p].get("momentum_buffer")
            if buf is None:
                buf = leap.state[p]["momentum_buffer"] = torch.clone(g).detach()
                fresh.append(True)
            else:
                fresh.append(False)
            bufs.append(buf)
        old = [i for i, f in enumerate(fresh) if not f]
        if old:
            torch._foreach_mul_([bufs[i] for i in old], momentum)
            torch._foreach_add_([bufs[i] for i in old], [grads[i] for i in old], alpha=1 - dampening)
        direction = torch._foreach_add(grads, bufs, alpha=momentum) if group["nesterov"] else bufs
    etas = leap.element_lrs(float(group["lr"]), params, offsets)
    torch._foreach_addcmul_(params, direction, etas, value=-1.0)


def _adam_group(leap: LEAP, group: dict[str, Any], offsets: dict[int, int]) -> None:
    """torch.optim.Adam / AdamW's update with ``lr`` replaced by the element LRs (decay stays nominal)."""
    params, grads = _grads(group)
    if not params:
        return
    beta1, beta2 = (float(b) for b in group["betas"])
    lr, eps, wd, amsgrad = float(group["lr"]), group["eps"], group["weight_decay"], group["amsgrad"]
    decoupled = group.get("decoupled_weight_decay", isinstance(leap.optimizer, torch.optim.AdamW))
    scalar_dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    for p in params:
        state = leap.state[p]
        if len(state) == 0:
            state["step"] = torch.tensor(0.0, dtype=scalar_dtype)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if amsgrad:
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    states = [leap.state[p] for p in params]
    steps = [s["step"] for s in states]
    exp_avgs, exp_avg_sqs = [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states]
    torch._foreach_add_(steps, 1)
    if wd != 0:
        if decoupled:
            torch._foreach_mul_(params, 1 - lr * wd)
        else:
            grads = torch._foreach_add(grads, params, alpha=wd)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
    if amsgrad:
        maxes = [s["max_exp_avg_sq"] for s in states]
        torch._foreach_maximum_(maxes, exp_avg_sqs)
        second = maxes
    else:
        second = exp_avg_sqs
    counts = [float(s) for s in steps]
    denom = torch._foreach_sqrt(second)
    torch._foreach_div_(denom, [math.sqrt(1 - beta2**c) for c in counts])
    torch._foreach_add_(denom, eps)
    direction = torch._foreach_div(exp_avgs, denom)
    etas = leap.element_lrs(lr, params, offsets)
    torch._foreach_mul_(direction, etas)
    torch._foreach_mul_(direction, [-1.0 / (1 - beta1**c) for c in counts])
    torch._foreach_add_(params, direction)
