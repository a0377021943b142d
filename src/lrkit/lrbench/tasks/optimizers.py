"""The optimizers LRBench trains with: built-in names, or ``module:Class`` of any torch optimizer.

Built-in names (the optimizers LRBench compares; Wu & Liu, ACM TIST 2022, its recommendation step):

| name | torch class | defaults lrkit adds |
|---|---|---|
| ``sgd`` | ``SGD`` | ``momentum=0`` |
| ``momentum`` | ``SGD`` | ``momentum=0.9`` |
| ``nesterov`` | ``SGD`` | ``momentum=0.9, nesterov=True`` |
| ``adam`` | ``Adam`` | |
| ``adamw`` | ``AdamW`` | (torch's ``weight_decay=0.01``) |
| ``rmsprop`` | ``RMSprop`` | |
| ``adagrad`` | ``Adagrad`` | |
| ``adadelta`` | ``Adadelta`` | |

Any other ``torch.optim.Optimizer`` subclass is named ``module:Class``: ``torch.optim:NAdam``,
``prodigyopt:Prodigy``, ``schedulefree:AdamWScheduleFree``, ``dadaptation:DAdaptAdam``,
``lion_pytorch:Lion``. Its keyword arguments are checked against its signature, and a value of
the wrong kind for a numeric or boolean default is refused before torch sees it.

The learning rate always comes from the policy: ``lr`` here is only the value the optimizer is
built with (``PolicyLR`` writes ``policy(t)`` before every update). Two kinds of optimizer get
special handling:

- **LR-free** (Prodigy, D-Adaptation: :func:`is_lr_free`): they estimate the step size themselves
  and their ``lr`` is a multiplier on that estimate (the authors recommend ``lr=1``). The policy's
  value is that multiplier, and a recommendation searches it in :data:`LR_FREE_RANGE`, around 1,
  instead of running a range test: the estimate grows from a tiny ``d0`` during the first updates,
  so a range test's sweep would mostly measure that warm-up, not the multiplier.
- **train/eval protocol** (schedule-free: :func:`has_train_eval`): ``optimizer.train()`` before
  training, ``optimizer.eval()`` before every evaluation and every saved state (the averaged
  weights are the model), as its authors require.
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
import sys
from typing import Any, Iterable

import torch

from lrkit.errors import LRKitError, format_values
from lrkit.lrbench.tasks.loading import is_reference, load_reference
from lrkit.text import did_you_mean


OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "adadelta")

_CLASSES: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, {"momentum": 0.0}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9}),
    "nesterov": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "adagrad": (torch.optim.Adagrad, {}),
    "adadelta": (torch.optim.Adadelta, {}),
}

#: class names whose ``lr`` multiplies a step size they estimate themselves
LR_FREE_CLASSES = ("Prodigy", "DAdaptAdam", "DAdaptSGD", "DAdaptAdaGrad", "DAdaptAdan", "DAdaptLion")
#: the multipliers searched for an LR-free optimizer: from a quarter to twice the recommended 1
LR_FREE_RANGE = (0.25, 2.0)


def optimizer_class(name: str) -> tuple[str, type[torch.optim.Optimizer], dict[str, Any]]:
    """``(canonical name, class, the defaults lrkit adds)`` for a built-in name or ``module:Class``.

    Raises:
        LRKitError: an unknown name (the closest built-in is suggested), a reference that cannot be
            imported, or one that is not a ``torch.optim.Optimizer`` subclass.
    """
    if is_reference(name):
        path = str(name).strip()
        cls = load_reference(path, "optimizer")
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
            raise LRKitError(f"optimizer {path!r} must be a torch.optim.Optimizer subclass, but is "
                             f"{cls!r} ({type(cls).__name__})")
        return path, cls, {}
    key = str(name).strip().lower()
    if key not in _CLASSES:
        raise LRKitError(f"unknown optimizer {name!r} (lrkit knows {', '.join(OPTIMIZERS)}, or name any torch "
                         f"optimizer as 'module:Class', e.g. 'torch.optim:NAdam', 'prodigyopt:Prodigy')"
                         f"{did_you_mean(key, OPTIMIZERS)}")
    cls, defaults = _CLASSES[key]
    return key, cls, dict(defaults)


def canonical(name: str) -> str:
    """The name lrkit stores for an optimizer (lower-case built-in, or ``module:Class`` as given)."""
    return optimizer_class(name)[0]


def optimizer_defaults(name: str) -> dict[str, Any]:
    """The keyword arguments ``make_optimizer(name, ...)`` passes unless told otherwise (a copy)."""
    return optimizer_class(name)[2]


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):  # pragma: no cover (a C extension class)
        return {}
    return {n: p for n, p in params.items() if n not in ("self", "params", "lr")
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)}


def accepted_kwargs(name: str) -> tuple[str, ...]:
    """The keyword arguments the optimizer ``name`` accepts (besides ``params`` and ``lr``)."""
    return tuple(_parameters(optimizer_class(name)[1]))


def signature_default(name: str, key: str) -> Any:
    """The default of the optimizer's argument ``key`` as its class declares it (None if it has none)."""
    param = _parameters(optimizer_class(name)[1]).get(key)
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return _check_kind(name, key, param.default, param.default) if isinstance(param.default, list) else param.default


def is_lr_free(name: str) -> bool:
    """Whether the optimizer estimates its own step size, so that its ``lr`` is a multiplier (see above)."""
    return optimizer_class(name)[1].__name__ in LR_FREE_CLASSES


def _check_kind(key: str, param: str, value: Any, default: Any) -> Any:
    """Refuse a value whose kind cannot be meant for a parameter with this default; lists become tuples."""
    def bad(kind: str) -> LRKitError:
        return LRKitError(f"optimizer {key!r}: `{param}` must be {kind} (its default is {default!r}), "
                          f"but got {format_values(**{param: value})}.")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
    elif isinstance(default, numbers.Real) and default is not None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise bad("a number")
    elif isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
            raise bad(f"a list of {len(default)} numbers")
        if len(value) != len(default):
            raise bad(f"a list of {len(default)} numbers")
        return tuple(value)
    return value


def check_kwargs(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` checked against the optimizer's signature (unknown names, wrong kinds); lists as tuples."""
    key, cls, _ = optimizer_class(name)
    params = _parameters(cls)
    out = {}
    for k, v in kwargs.items():
        if k not in params:
            raise LRKitError(f"optimizer {key!r} has no argument {k!r} (it takes {', '.join(params)})"
                             f"{did_you_mean(k, params)}")
        default = params[k].default
        out[k] = v if default is inspect.Parameter.empty else _check_kind(key, k, v, default)
    return out


def make_optimizer(name: str, params: Iterable[Any], lr: float, **kwargs: Any) -> torch.optim.Optimizer:
    """Build the optimizer ``name`` over ``params`` with initial learning rate ``lr``.

    Args:
        name: one of :data:`OPTIMIZERS` (case-insensitive) or ``module:Class``.
        params: model parameters or parameter groups, as for any torch optimizer.
        lr: the initial learning rate, >= 0 (the runner sets it again before every update).
        **kwargs: the optimizer's own arguments (``momentum``, ``weight_decay``, ``betas``, ...);
            they override the defaults in the table above.

    Example:
        >>> import torch
        >>> opt = make_optimizer("nesterov", [torch.zeros(2, requires_grad=True)], lr=0.1)
        >>> opt.param_groups[0]["momentum"], opt.param_groups[0]["nesterov"]
        (0.9, True)
    """
    key, cls, defaults = optimizer_class(name)
    if not (isinstance(lr, (int, float)) and lr >= 0):
        raise LRKitError(f"`lr >= 0` must hold, but got {format_values(lr=lr)}.")
    options = {**defaults, **check_kwargs(key, kwargs)}
    try:
        # some optimizers print on construction (Prodigy: "Using decoupled weight decay"); stdout must stay
        # the command's own (`--json` output), so such chatter goes to stderr
        with contextlib.redirect_stdout(sys.stderr):
            return cls(params, lr=float(lr), **options)
    except (ValueError, TypeError) as err:  # torch's own range checks, e.g. "Invalid momentum value"
        raise LRKitError(f"optimizer {key!r} rejected its arguments {format_values(**options)}: {err}") from None


def describe(name: str, kwargs: dict[str, Any] | None = None) -> str:
    """``momentum (weight_decay=0.004)``: an optimizer and its arguments as a reader would write them."""
    args = ", ".join(f"{k}={_short(v)}" for k, v in (kwargs or {}).items())
    return f"{name} ({args})" if args else str(name)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)
