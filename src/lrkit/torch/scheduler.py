"""``PolicyLR``: a PyTorch LR scheduler whose whole state is the update count ``t``.

The adapter only *writes* ``policy(t) * ratio_i`` into each param group; it never reads the
current LR back to compute the next one (PyTorch's chainable forms do, which is why their
resume and composition bugs exist). Tensor LRs are filled in place, never replaced.

A ``plateau`` policy adds the one piece of state a metric can decide: its switch points. They
come in through :meth:`PolicyLR.report` and stay in the (frozen) policy objects the adapter
drives; the decision rule is the policy core's (:mod:`lrkit.policies.plateau`).
"""

from __future__ import annotations

import numbers
import warnings
import weakref
from typing import Any, Literal, Sequence, Union

import numpy as np
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrkit.errors import LRKitError
from lrkit.policies import plateau as plateaus
from lrkit.policies.base import Policy
from lrkit.spec import as_policy

PolicyLike = Union[Policy, str, dict]
_COUNTS = ("calls", "updates")
_BLOCK = 256  # updates evaluated per Policy.values call; amortises numpy's per-call overhead


class PolicyLR(LRScheduler):
    """Set every param group's LR from a policy of the update count: ``lr_i = policy(t) * ratio_i``.

    ``t`` counts **optimizer updates** (iterations), not epochs: call :meth:`step` once after
    each ``optimizer.step()``. After construction the groups hold ``policy(0)``; after ``n``
    calls to :meth:`step`, ``policy(n)``. A policy whose horizon is given in epochs must be
    converted to updates first (``epochs * batches_per_epoch``).

    Group 0 follows the policy exactly (``ratio_0 = 1``). Every other group keeps the ratio of
    its initial LR to group 0's, ``ratio_i = initial_lr_i / initial_lr_0``, read from PyTorch's
    ``initial_lr`` group key, so a 10x head LR stays 10x and the ratios survive
    ``optimizer.load_state_dict``. With a list of policies, group ``i`` follows ``policies[i]``
    and no ratios apply.

    Args:
        optimizer: any ``torch.optim`` optimizer; float or tensor LRs.
        policy: a :class:`lrkit.Policy`, a spec string, a policy dict, or a list of those with
            one entry per param group.
        count: ``"calls"`` (default): each :meth:`step` call advances ``t`` by one; if
            ``optimizer.step()`` ran several times since the previous call (per-epoch
            stepping), a warning says so, once.
            ``"updates"``: ``t`` counts optimizer updates that actually ran (seen through
            ``optimizer.register_step_post_hook``), so a step that a ``GradScaler`` skipped
            because of inf/NaN gradients does not advance the schedule; :meth:`step` then
            advances ``t`` by the number of updates since its previous call.

    The state (:meth:`state_dict`) is the step, plus the policy spec for reference; the policy
    itself always comes from the constructor. Resuming (build optimizer and scheduler, load
    both state dicts) continues bit-for-bit where the checkpoint left off, on any CPU. The LRs
    written equal ``policy(t) * ratio_i`` within :data:`lrkit.policies.VALUES_RTOL` (bit for bit
    where numpy's vector and scalar loops round alike).

    Plateau policies (``plateau([f1, f2, ...], patience=..., monitor=...)``, at the top or inside
    another policy, per group too) switch on a metric: call :meth:`report` after each
    evaluation (or ``step(metrics)``, as Lightning does for a scheduler config with
    ``"reduce_on_plateau": True``). A switch replaces the policy in :attr:`policies` by its next
    frozen instance and takes effect from the next update; the switch points and the plateau's
    tracker are part of :meth:`state_dict`, so a resumed run makes the same switches and writes the
    same LRs as the uninterrupted one. :meth:`replay_policy` gives the pure policy (the joins) that
    replays the run.

    Example:
        >>> import torch
        >>> from lrkit.torch import PolicyLR
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = PolicyLR(opt, "warmup(FIX(k0=0.1), steps=10)")
        >>> opt.param_groups[0]["lr"]
        0.0
        >>> for _ in range(5):
        ...     opt.step()
        ...     sched.step()
        >>> sched.t, opt.param_groups[0]["lr"]
        (5, 0.05)
    """

    def __init__(self, optimizer: Optimizer, policy: PolicyLike | Sequence[PolicyLike], *,
                 count: Literal["calls", "updates"] = "calls") -> None:
        if not isinstance(optimizer, Optimizer):
            raise LRKitError(f"`optimizer` must be a torch.optim.Optimizer, but got (optimizer={optimizer!r}).")
        if count not in _COUNTS:
            raise LRKitError(f"`count` must be one of 'calls', 'updates', but got (count={count!r}).")
        groups = optimizer.param_groups
        if isinstance(policy, (list, tuple)):
            if len(policy) != len(groups):
                raise LRKitError(f"`len(policies) == len(optimizer.param_groups)` must hold, but got "
                                 f"(len(policies)={len(policy)}, len(param_groups)={len(groups)}).")
            self.policies: tuple[Policy, ...] = tuple(as_policy(p) for p in policy)
            self.per_group = True
        else:
            self.policies = (as_policy(policy),)
            self.per_group = False
        for p in self.policies:
            plateaus.check_unshared(p)
        self._initial_policies = self.policies  # load_state_dict restores switch points onto these
        self._has_plateau = tuple(plateaus.contains_plateau(p) for p in self.policies)
        self._trackers: list[dict[tuple[int, ...], plateaus.PlateauTracker]] = [{} for _ in self.policies]
        self._warned_report_only = False
        self.count = count
        self._pending_updates = 0
        self._warned_per_epoch = False
        self._ratio_groups: tuple[list, list] | None = None
        self._ratio_values: list[float] = []
        self._blocks: list[tuple[int, list[float]]] = [(-1, [])] * len(self.policies)
        # counts the optimizer updates that ran: they advance t with count="updates", and with
        # count="calls" several of them between two step() calls reveal per-epoch stepping
        self._hook = optimizer.register_step_post_hook(_count_update(self))
        try:
            super().__init__(optimizer, last_epoch=-1)  # calls self.step() once: t = 0
        except BaseException:
            self._hook.remove()  # leave the optimizer as it was
            raise

    # ---- the schedule ---------------------------------------------------------------------
    @property
    def t(self) -> int:
        """The update count whose LRs the groups hold now."""
        return self.last_epoch

    def _ratios(self) -> list[float]:
        """``initial_lr_i / initial_lr_0`` per group (all 1 with per-group policies).

        Read from the groups' ``initial_lr`` whenever the optimizer's group list changes
        (``optimizer.load_state_dict`` replaces it, ``add_param_group`` extends it).
        """
        groups = self.optimizer.param_groups
        seen = self._ratio_groups
        if seen is not None and seen[0] is groups and len(groups) == len(seen[1]) and groups[0] is seen[1][0]:
            return self._ratio_values
        for g in groups:  # a group added after construction starts at its own LR
            g.setdefault("initial_lr", g["lr"].clone() if isinstance(g["lr"], torch.Tensor) else g["lr"])
        if self.per_group:
            if len(groups) != len(self.policies):
                raise LRKitError("with one policy per group, `len(policies) == len(optimizer.param_groups)` must hold, "
                                 f"but got (len(policies)={len(self.policies)}, len(param_groups)={len(groups)}).")
            ratios = [1.0] * len(groups)
        else:
            initial = [_as_float(g["initial_lr"]) for g in groups]
            if initial[0] == 0:
                if any(x != 0 for x in initial[1:]):
                    raise LRKitError(
                        "PolicyLR keeps each group's LR ratio to group 0, so `initial_lr of group 0 != 0` must hold "
                        f"when other groups are nonzero, but got (initial_lrs={initial}). Give group 0 a nonzero "
                        "LR or pass one policy per group.")
                ratios = [1.0] * len(groups)
            else:
                ratios = [1.0] + [x / initial[0] for x in initial[1:]]
        self._ratio_groups = (groups, list(groups))
        self._ratio_values = ratios
        return ratios

    def group_ratios(self) -> list[float]:
        """Each group's LR as a multiple of the policy's value (``[1.0, ...]`` with per-group policies)."""
        return list(self._ratios())

    def _block(self, index: int, start: int) -> tuple[int, list[float]]:
        """``policies[index]`` at updates ``start .. start + _BLOCK - 1``, evaluated in one call.

        Blocks start at multiples of ``_BLOCK`` and always hold ``_BLOCK`` steps, so the LR of
        update ``t`` is always computed by the same call, whatever step a run started or resumed
        at: resume is bit-exact on any CPU. ``Policy.values`` agrees with ``Policy.__call__``
        within :data:`lrkit.policies.VALUES_RTOL` (numpy's SIMD and scalar loops may round a
        last bit apart; :mod:`lrkit.policies.base` says what is exact), so the adapter writes
        ``policy(t)`` at a fraction of the cost of a numpy call per update.
        """
        steps = np.arange(start, start + _BLOCK, dtype=np.float64)
        block = self._blocks[index] = (start, self.policies[index].values(steps).tolist())
        return block

    def _lrs(self, t: int) -> list[float]:
        ratios = self._ratios()
        start = t - t % _BLOCK
        if self.per_group:
            values = []
            for i, block in enumerate(self._blocks):
                if block[0] != start:
                    block = self._block(i, start)
                values.append(block[1][t - start])
            return values
        block = self._blocks[0]
        if block[0] != start:
            block = self._block(0, start)
        value = block[1][t - start]
        return [value] if len(ratios) == 1 else [value * r for r in ratios]

    def lrs_at(self, t: int) -> list[float]:
        """The LR of each group at update ``t`` (a pure function of ``t``; nothing is written)."""
        if not isinstance(t, numbers.Integral) or isinstance(t, bool) or t < 0:
            raise LRKitError(f"`t >= 0` (an integer number of updates) must hold, but got (t={t!r}).")
        return self._lrs(int(t))

    def get_lr(self) -> list[float]:
        """The LRs for the current ``t``; closed form, so safe to call anywhere (no warning)."""
        return self._lrs(max(self.last_epoch, 0))

    _get_closed_form_lr = get_lr

    def step(self, metrics: Any = None, epoch: int | None = None) -> None:
        """Advance ``t`` (by one, or by the updates seen with ``count="updates"``) and write the LRs.

        ``step(metrics)`` (a float or a one-element float tensor) does not advance ``t``: it is
        :meth:`report`, in the form Lightning calls for a scheduler config with
        ``"reduce_on_plateau": True``. An int is refused, as an epoch would be.
        """
        if metrics is not None or epoch is not None:  # (the per-update call takes neither: keep it cheap)
            self._step_with(metrics, epoch)
            return
        if self.last_epoch < 0:  # the call from LRScheduler.__init__
            advance = 1
        elif self.count == "updates":
            advance, self._pending_updates = self._pending_updates, 0
        else:
            advance = 1
            if self._step_count == 1 and not getattr(self.optimizer, "_opt_called", False):
                warnings.warn("PolicyLR.step() was called before optimizer.step(): call it after, or the first "
                              "update uses policy(1) instead of policy(0).", UserWarning, stacklevel=2)
            if self._pending_updates > 1 and not self._warned_per_epoch:
                self._warned_per_epoch = True
                warnings.warn(f"optimizer.step() ran {self._pending_updates} times since the last PolicyLR.step(), "
                              "but t counts optimizer updates: call PolicyLR.step() after every optimizer.step() "
                              "(per iteration, not per epoch; in Lightning use \"interval\": \"step\"), and give "
                              "the policy its horizon in updates.", UserWarning, stacklevel=2)
            self._pending_updates = 0
        self._step_count += 1
        self.last_epoch += advance
        self._write(self._lrs(self.last_epoch))

    def _step_with(self, metrics: Any, epoch: int | None) -> None:
        """``step(metrics)``: a report; ``step(epoch)`` or an int metric: refused."""
        if epoch is not None or isinstance(metrics, numbers.Integral) or (
                isinstance(metrics, torch.Tensor) and not metrics.is_floating_point()):
            given = f"epoch={epoch!r}" if epoch is not None else f"metrics={metrics!r}"
            raise LRKitError("PolicyLR.step() takes no epoch: `t` counts optimizer updates and advances by itself; "
                             "use load_state_dict to resume (a metric for a plateau policy is a float), "
                             f"but got ({given}).")
        if self._pending_updates > 1 and not self._warned_report_only:
            self._warned_report_only = True
            warnings.warn(f"PolicyLR.step(metrics) reports the metric and does not advance t, but optimizer.step() "
                          f"ran {self._pending_updates} times since the last PolicyLR.step(): call step() after "
                          "every optimizer.step() too (in Lightning, a second scheduler config for the same "
                          "PolicyLR with \"interval\": \"step\").", UserWarning, stacklevel=2)
        self.report(metrics)

    def _write(self, values: list[float]) -> None:
        groups = self.optimizer.param_groups
        tensors = False
        for group, value in zip(groups, values):
            lr = group["lr"]
            if type(lr) is not float and isinstance(lr, torch.Tensor):  # type() first: Tensor's isinstance is slow
                lr.fill_(value)  # in place: the optimizer (and a compiled graph) may hold this tensor
                tensors = True
            else:
                group["lr"] = value
        # like PyTorch, get_last_lr() returns copies that never alias a tensor LR
        self._last_lr = [g["lr"].clone() if isinstance(g["lr"], torch.Tensor) else g["lr"]
                         for g in groups] if tensors else values

    # ---- plateau policies -------------------------------------------------------------------
    def _next_update(self) -> int:
        """The index of the next optimizer update: ``t``, or past it when updates ran since :meth:`step`."""
        if self.count == "updates":
            return self.last_epoch + self._pending_updates
        return self.last_epoch + (1 if self._pending_updates else 0)

    def report(self, value: Any, monitor: str | None = None) -> bool:
        """Feed a metric, measured now, to every plateau policy this scheduler drives; True if one switched.

        Call it after each evaluation (after ``step()``; if ``optimizer.step()`` ran since, the
        switch point moves past that update). Each plateau in charge at the next update observes
        ``value`` on its own clock (:func:`lrkit.policies.plateau.observe_all`); one that switches
        is replaced in :attr:`policies` by its next instance, and the groups get the new LRs at
        once, so the next update uses the next function. A policy without a plateau ignores it.

        Args:
            value: the metric: a real number, or a one-element tensor (read with ``.item()``).
            monitor: ``val_loss`` or ``val_acc``: feed only plateaus monitoring that; needed
                when the plateaus here monitor different metrics.

        Raises:
            LRKitError: no policy here is or holds a plateau (nothing could use the metric), or the
                value is not a number.
        """
        if not any(self._has_plateau):
            raise LRKitError("PolicyLR.report(): no policy here is or holds a plateau, so nothing can use the metric, "
                             f"but got (value={value!r}, policy={self.specs()!r}).")
        metric = _as_metric(value)
        kinds = self.monitors()
        if monitor is None and len(kinds) > 1:
            raise LRKitError(f"PolicyLR.report(): the plateaus here monitor different metrics "
                             f"({', '.join(sorted(kinds))}), so `monitor` must say which one the value is, but got "
                             "(monitor=None).")
        if monitor is not None and monitor not in kinds:
            raise LRKitError(f"PolicyLR.report(): `monitor` must be one the plateaus here monitor "
                             f"({', '.join(sorted(kinds))}), but got (monitor={monitor!r}).")
        t = self._next_update()
        new_policies, new_trackers = list(self.policies), list(self._trackers)
        for i, policy in enumerate(self.policies):
            if self._has_plateau[i]:
                new_policies[i], new_trackers[i] = plateaus.observe_all(policy, self._trackers[i], metric, t, monitor)
        switched = [i for i, (old, new) in enumerate(zip(self.policies, new_policies)) if new is not old]
        self.policies, self._trackers = tuple(new_policies), new_trackers
        for i in switched:
            self._blocks[i] = (-1, [])
        if switched:
            self._write(self._lrs(self.last_epoch))
        return bool(switched)

    def monitors(self) -> set[str]:
        """The ``monitor`` of every plateau policy this scheduler drives (empty: :meth:`report` has no use)."""
        return set().union(*(plateaus.monitors(p) for p in self.policies))

    def replay_policy(self) -> Policy | list[Policy]:
        """The pure policy (per group: the list) with every plateau written out as the join it decided.

        It gives the LRs of this run so far bit for bit (``join`` evaluates each segment on the
        whole block), and it is what a config or a report should store after the run.
        """
        pure = [plateaus.replay(p) for p in self.policies]
        return pure if self.per_group else pure[0]

    def _plateau_state(self) -> list[dict[str, Any]]:
        entries = []
        for group, policy in enumerate(self.policies):
            for found in plateaus.find_plateaus(policy) if self._has_plateau[group] else ():
                tracker = self._trackers[group].get(found.path)
                entries.append({"group": group, "path": list(found.path),
                                "switched_at": list(found.plateau.switched_at),
                                "tracker": None if tracker is None else tracker.to_dict()})
        return entries

    def _restore_plateaus(self, entries: Any) -> tuple[tuple[Policy, ...], list[dict]]:
        """The constructor's policies with the checkpoint's switch points, and the trackers; nothing is assigned."""
        policies, trackers = list(self._initial_policies), [{} for _ in self._initial_policies]
        if entries is None:
            return tuple(policies), trackers
        shape = {"group", "path", "switched_at", "tracker"}
        if not isinstance(entries, list) or not all(isinstance(e, dict) and set(e) == shape for e in entries):
            raise LRKitError("a PolicyLR state dict's `plateaus` must be a list of {'group', 'path', 'switched_at', "
                             f"'tracker'}} dicts, but got (plateaus={entries!r}).")
        for entry in sorted(entries, key=lambda e: len(e["path"]) if isinstance(e["path"], list) else 0):
            group, path = entry["group"], entry["path"]
            if (not isinstance(group, int) or not 0 <= group < len(policies) or not isinstance(path, list)
                    or not all(isinstance(i, int) for i in path)):
                raise LRKitError(f"a PolicyLR state dict's plateau entry needs a group below {len(policies)} and a "
                                 f"path of ints, but got (group={group!r}, path={path!r}).")
            try:
                policies[group] = plateaus.with_switches(policies[group], tuple(path), entry["switched_at"])
                if entry["tracker"] is not None:
                    trackers[group][tuple(path)] = plateaus.PlateauTracker.from_dict(entry["tracker"])
            except LRKitError as err:
                raise LRKitError(f"PolicyLR.load_state_dict: the checkpoint's plateau state does not fit the "
                                 f"constructor's policy: {err}") from None
        return tuple(policies), trackers

    # ---- checkpointing --------------------------------------------------------------------
    def specs(self) -> str | list[str]:
        """The policy's spec, or the list of per-group specs (with the switch points decided so far)."""
        return [p.spec() for p in self.policies] if self.per_group else self.policies[0].spec()

    def state_dict(self) -> dict[str, Any]:
        """Plain data: ``{"step": t, "pending_updates": n, "count": ..., "policy": spec(s)}``.

        With plateau policies also ``"plateaus"``: per plateau its group, its path (see
        :func:`lrkit.policies.plateau.find_plateaus`), its switch points and its tracker.
        """
        state = {"step": int(self.last_epoch), "pending_updates": int(self._pending_updates),
                 "count": self.count, "policy": self.specs()}
        if any(self._has_plateau):
            state["plateaus"] = self._plateau_state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``t`` (and plateaus' switch points and trackers) and rewrite the groups' LRs.

        Plateau state is put onto the constructor's policies; a dict without ``"plateaus"`` leaves
        them as the constructor gave them. Warns if the checkpoint's spec differs from the result.
        """
        if not isinstance(state_dict, dict) or not isinstance(state_dict.get("step"), int) or state_dict["step"] < 0:
            raise LRKitError("a PolicyLR state dict needs an integer `step >= 0`, but got "
                             f"(state_dict={state_dict!r}); was it saved by another scheduler?")
        self.policies, self._trackers = self._restore_plateaus(state_dict.get("plateaus"))
        self._blocks = [(-1, [])] * len(self.policies)
        saved = state_dict.get("policy")
        if saved is not None and saved != self.specs():
            warnings.warn(f"PolicyLR: the checkpoint's policy differs from the constructor's; continuing with the "
                          f"constructor's at t={state_dict['step']}.\n  checkpoint:  {saved}\n  constructor: "
                          f"{self.specs()}", UserWarning, stacklevel=2)
        self.last_epoch = state_dict["step"]
        self._pending_updates = int(state_dict.get("pending_updates", 0))
        self._step_count = max(self._step_count, 2)  # a resumed run is past the call-order check
        self._write(self.get_lr())

    def __repr__(self) -> str:
        return f"PolicyLR(t={self.last_epoch}, policy={self.specs()!r}, count={self.count!r})"


def _as_metric(value: Any) -> float:
    """A metric as a float: a real number, or a one-element tensor or array."""
    if (isinstance(value, torch.Tensor) and value.numel() == 1) or (isinstance(value, np.ndarray) and value.size == 1):
        return float(value.item())
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise LRKitError(f"a metric must be a real number or a one-element tensor, but got (value={value!r}).")


def _as_float(value: float | torch.Tensor) -> float:
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


def _count_update(scheduler: PolicyLR):  # noqa: ANN202
    """An optimizer step post-hook that counts applied updates; a weak reference avoids a cycle."""
    ref = weakref.ref(scheduler)

    def hook(optimizer: Optimizer, args: Any, kwargs: Any) -> None:
        sched = ref()
        if sched is not None:
            sched._pending_updates += 1

    return hook


__all__ = ["PolicyLR"]
