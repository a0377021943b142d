"""The policy contract: a frozen dataclass that maps the update count ``t`` to a learning rate.

A policy subclass declares its parameters as dataclass fields, its formula in its docstring,
its rules in :meth:`Policy.validate`, an upper bound on its LR in :meth:`Policy.lr_bound`, and the
formula itself once, vectorised, in :meth:`Policy._lr`. Everything else — scalar and vectorised
evaluation, the spec string, the JSON-able dict, equality, hashing, pickling — comes from this base
class. A combinator's ``_lr`` evaluates each child once, on the whole array of steps it was given,
and derives all it needs from that one array (``warmup`` its ramp's ``f(0)``): evaluating a child
twice doubles the work at every level of nesting.

``t`` counts optimizer updates already applied, from 0; ``lr(t)`` is the LR used for update ``t``.

Numerics: what is exact and what is within a bound
---------------------------------------------------
A policy has two evaluation paths, ``policy(t)`` (numpy on a 0-d array: the scalar loops) and
``policy.values(ts)`` (numpy on arrays: its SIMD loops where the CPU has them). numpy does not
promise that the two round alike: on AVX-512 machines ``power``, ``exp``, ``sin`` and ``cos`` differ
in the last bit or so. So lrkit promises:

- **exact**: each path is deterministic. The same call with the same steps gives the same bits on
  the same machine, and ``PolicyLR`` always computes the LR of update ``t`` by the same call (an
  aligned block of steps, see :mod:`lrkit.torch.scheduler`), so resuming is bit-exact on any CPU.
  Piecewise combinators evaluate each child on the whole block (clamped to its local clock), so a
  ``join`` gives the same bits for a segment whatever follows it.
- **within a bound**: ``values(ts)`` and ``[policy(t) for t in ts]`` agree within
  :data:`VALUES_RTOL` of the policy's largest LR (:func:`same_lrs`), and so do results on
  different machines. In practice they differ by a few ulps.

The tests hold both paths to exactly this, and also run with the vector path nudged by an ulp
(``vector_path_nudged`` in ``tests/numerics.py``, used by ``tests/test_invariants.py``), so no claim
rests on the two paths agreeing bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import types
import typing
from typing import Any, ClassVar, NamedTuple

import numpy as np

from lrkit.errors import PolicyError

#: ``values(ts)`` and ``policy(t)`` agree within this times the policy's largest LR (see above)
VALUES_RTOL = 1e-12

#: bare words a spec reads as values (the parser in :mod:`lrkit.spec` and the formatter here share them)
SPEC_KEYWORDS: dict[str, Any] = {"true": True, "True": True, "false": False, "False": False,
                                 "none": None, "None": None, "null": None}
#: bare words a spec refuses as numbers; a string equal to one is written in quotes
NON_FINITE_WORDS = ("inf", "nan", "Infinity", "NaN")

_REGISTRY: dict[str, type["Policy"]] = {}
_ALIASES: dict[str, str] = {}


def register(cls: type["Policy"]) -> type["Policy"]:
    """Class decorator: make ``cls`` a frozen dataclass and enter it in the registry under ``cls.name``."""
    cls = dataclasses.dataclass(frozen=True, repr=False)(cls)
    for key in (cls.name, *cls.aliases):
        if key in _REGISTRY or key in _ALIASES:
            raise RuntimeError(f"policy name {key!r} is registered twice")
    _REGISTRY[cls.name] = cls
    for alias in cls.aliases:
        _ALIASES[alias] = cls.name
    return cls


def registry() -> dict[str, type["Policy"]]:
    """Every registered policy class by its canonical spec name (a copy)."""
    return dict(_REGISTRY)


def aliases() -> dict[str, str]:
    """Alias -> canonical name (a copy)."""
    return dict(_ALIASES)


def lookup(name: str) -> type["Policy"] | None:
    """The policy class registered under ``name`` or one of its aliases, else None."""
    return _REGISTRY.get(_ALIASES.get(name, name))


def largest(*bounds: float | None) -> float | None:
    """The largest of some :meth:`Policy.lr_bound` values; None when any of them is unknown."""
    return None if any(b is None for b in bounds) else float(max(bounds, default=0.0))  # type: ignore[type-var]


def same_lrs(a: Any, b: Any, rtol: float = VALUES_RTOL, scale: float | None = None) -> bool:
    """Whether two LR arrays agree within the numeric contract: ``|a_i - b_i| <= rtol * scale``.

    ``scale`` is the policy's largest LR over the steps in question (default: the largest
    magnitude in ``a`` and ``b``; pass the policy's peak when comparing a stretch where it is near
    0, e.g. a cosine's floor). Shapes must match; non-finite values must be equal.

    Example:
        >>> same_lrs([0.1, 0.001], [0.1, 0.0010000000000000002]), same_lrs([0.1], [0.1001])
        (True, False)
        >>> same_lrs([0.0], [5e-18]), same_lrs([0.0], [5e-18], scale=0.1)
        (False, True)
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        return False
    finite = np.isfinite(x) & np.isfinite(y)
    if not np.array_equal(np.isfinite(x), np.isfinite(y)) or not np.array_equal(x[~finite], y[~finite]):
        return False
    if not finite.any():
        return True
    if scale is None:
        scale = max(float(np.max(np.abs(x[finite]))), float(np.max(np.abs(y[finite]))))
    return bool(np.all(np.abs(x[finite] - y[finite]) <= rtol * scale))


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_finite_real(value: object) -> bool:
    """A real number (not a bool) that a float64 holds finitely; ints past 1e308 are not."""
    if not _is_real(value):
        return False
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except OverflowError:
        return False


#: :meth:`Policy.values` evaluates arrays longer than twice this in pieces of this many steps
_CHUNK = 1 << 18


class Policy:
    """Base class of every learning-rate policy. Subclasses are registered with :func:`register`."""

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    #: one line, plain text, shown by ``lrkit policies``
    formula: ClassVar[str] = ""

    # ---- construction -------------------------------------------------------------------
    def __post_init__(self) -> None:
        hints = _field_types(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            try:
                value = _coerce(type(self).name, field.name, hints[field.name], value)
            except PolicyError as err:
                err.fields = err.fields or (field.name,)
                raise
            object.__setattr__(self, field.name, value)
        self.validate()
        bound = self.lr_bound()
        if bound is not None and not math.isfinite(bound):  # a safety net: policies that multiply check first
            names = tuple(f.name for f in dataclasses.fields(self))
            self._require(False, "the largest LR is finite (below 1.8e308)", *names)

    def validate(self) -> None:
        """Raise :class:`lrkit.errors.PolicyError` if the parameters break a rule."""

    def lr_bound(self) -> float | None:
        """An upper bound on ``lr(t)`` over every ``t >= 0``, from the parameters alone; None when unknown.

        Every policy of the catalogue gives one (``k0`` for FIX, ``factor * f.lr_bound()`` for ``scale``,
        the largest of the children's for ``join``; a test holds each to its values). A combinator that
        multiplies LRs refuses parameters whose bound is past float64's range, as a negative LR is
        refused, so no accepted policy gives ``inf``; one whose child gives None is not checked (a plugin
        policy that does not override this).
        """
        return None

    def _require(self, condition: bool, rule: str, *names: str) -> None:
        """Raise ``"NAME: `rule` must hold, but got (a=.., b=..)"`` unless ``condition``; ``names`` are fields.

        The error carries ``names`` as :attr:`PolicyError.fields`, so a spec's caret can point at them.
        """
        if not condition:
            got = shown_values(**{n: getattr(self, n) for n in names})
            raise PolicyError(f"{self.name}: `{rule}` must hold, but got {got}.", fields=names)

    # ---- evaluation ---------------------------------------------------------------------
    def _lr(self, t: np.ndarray) -> np.ndarray:
        """The formula, on a float64 array of steps (any shape, values >= 0)."""
        raise NotImplementedError

    def __call__(self, t: int | float) -> float:
        """The learning rate for update ``t`` (a Python float)."""
        if not _is_finite_real(t) or not t >= 0:
            raise PolicyError(f"`t >= 0` (a finite number of updates) must hold, but got (t={t!r}).")
        return float(self._lr(np.asarray(t, dtype=np.float64)))

    def values(self, t: Any) -> np.ndarray:
        """The learning rates for an array of steps, as a float64 array of the same shape."""
        try:
            raw = np.asarray(t)
            numeric = raw.dtype.kind in "iuf" or (raw.dtype.kind == "O" and all(map(_is_real, raw.flat)))
            long_ints = raw.dtype.kind in "iu" and raw.size > 2 * _CHUNK  # converted piece by piece
            # no copy when already float64: policies never write into their input (the output check
            # below also copies an output that is not a fresh array of its own)
            steps = (raw if long_ints else raw.astype(np.float64, copy=False)) if numeric else None
        except (TypeError, ValueError, OverflowError):
            steps = None
        if steps is None:
            raise PolicyError(f"`t` must be finite numbers of updates (ints or floats), but got (t={t!r:.80}).")
        # min() is NaN when any step is NaN, so one comparison covers NaN, -inf and negatives (ints: finite).
        if steps.size and not (steps.min() >= 0 and (long_ints or np.isfinite(steps.max()))):
            bad = steps[~(np.isfinite(steps) & (steps >= 0))].flat[0]
            raise PolicyError(f"`t >= 0` (a finite number of updates) must hold, but got (t={float(bad)!r}).")
        if steps.size > 2 * _CHUNK:
            return self._chunked(steps)
        out = self._lr(steps)
        if (isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == steps.shape
                and out.flags.owndata and out is not steps):
            return out  # already a fresh array of its own: no copy needed
        return np.array(np.broadcast_to(np.asarray(out, dtype=np.float64), steps.shape), dtype=np.float64)

    def _chunked(self, steps: np.ndarray) -> np.ndarray:
        """``_lr`` over a long array in pieces of :data:`_CHUNK` steps (integer steps converted to float64
        piece by piece): every formula is elementwise, so the values are those of one call (to the numerics
        contract's tolerance), and a piece's temporaries stay in the cache instead of each taking fresh
        pages for the whole array."""
        out = np.empty(steps.shape, dtype=np.float64)
        flat_in, flat_out = steps.reshape(-1), out.reshape(-1)
        for start in range(0, flat_in.size, _CHUNK):
            piece = flat_in[start:start + _CHUNK].astype(np.float64, copy=False)  # ints: float64 here
            flat_out[start:start + piece.size] = self._lr(piece)
        return out

    @property
    def initial_lr(self) -> float:
        """``lr(0)``."""
        return self(0)

    # ---- description --------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """The parameters by name, in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def spec(self) -> str:
        """A string that :func:`lrkit.parse` maps back to an equal policy: ``NAME(param=value, ...)``."""
        return format_spec(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that :func:`lrkit.from_dict` maps back to an equal policy."""
        return to_dict(self)

    def __repr__(self) -> str:
        return self.spec()

    # ---- structure ----------------------------------------------------------------------
    def children(self) -> tuple["Child", ...]:
        """The policies this one is built from, each with the step at which its own clock starts.

        Default: every policy-valued field (and every policy in a list field), in declaration
        order, starting at 0 and in charge throughout. A combinator that runs a child on a
        clock of its own (``join``, ``sequence``, ``warmup``) overrides this. ``lrkit show``
        and :func:`lrkit.policies.summary.switch_points` read it, so a new combinator gets its
        boundaries shown without any change to them.
        """
        found: list[Child] = []
        for value in self.params().values():
            for item in (value if isinstance(value, tuple) else (value,)):
                if isinstance(item, Policy):
                    found.append(Child(item, 0))
        return tuple(found)

    def switches(self) -> tuple[tuple[float, str], ...]:
        """This policy's own notable switch points, ``(step, note)`` in its own clock; default none.

        ``join``/``sequence`` name where each segment starts and ``warmup`` where it ends; the
        switch points of children are not repeated here (see :meth:`children`).
        """
        return ()


class Child(NamedTuple):
    """One entry of :meth:`Policy.children`: a nested policy and where its clock runs.

    ``policy`` is evaluated at ``t - start`` from step ``start`` on; ``end`` is the step at which it
    hands over to another child (None: it stays in charge), all in the parent's clock.
    """

    policy: Policy
    start: float
    end: float | None = None


# ---- spec strings and dicts (the parser is lrkit.spec) ------------------------------------
def _format_value(value: Any) -> str:
    if isinstance(value, Policy):
        return format_spec(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if (re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", value) and value not in SPEC_KEYWORDS
                and value not in NON_FINITE_WORDS):
            return value
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    raise TypeError(f"cannot format {value!r} in a spec")


def shown_values(**values: Any) -> str:
    """``(a=1, b=[2, 5])``: values for an error message as a spec writes them, so a field stored as a
    float shows as the user wrote it (``l=-5``, not ``-5.0``), lists as ``[..]`` and policies as specs;
    strings keep their quotes, so a bad word stands out."""
    def one(value: Any) -> str:
        if isinstance(value, str):
            return repr(value)
        try:
            return _format_value(value)
        except TypeError:  # not a spec value (a wrong type given from Python): as Python shows it
            return repr(value)

    return "(" + ", ".join(f"{k}={one(v)}" for k, v in values.items()) + ")"


def format_spec(policy: Policy) -> str:
    """``NAME(param=value, ...)`` with every parameter spelled out; :func:`lrkit.parse` reads it back."""
    args = ", ".join(f"{k}={_format_value(v)}" for k, v in policy.params().items())
    return f"{policy.name}({args})"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Policy):
        return to_dict(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def to_dict(policy: Policy) -> dict[str, Any]:
    """``{"name": NAME, param: value, ...}``, nested policies as dicts, lists as lists."""
    return {"name": policy.name, **{k: _jsonable(v) for k, v in policy.params().items()}}


# ---- field coercion -----------------------------------------------------------------------
_HINTS: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _coerce(policy: str, param: str, hint: Any, value: Any) -> Any:
    """Check ``value`` against the field's declared type and normalise it (lists become tuples)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(policy, param, inner[0], value)
    if hint is float:
        if not _is_finite_real(value):
            raise PolicyError(f"{policy}: `{param}` must be a finite number, but got {shown_values(**{param: value})}.")
        return float(value)
    if hint is int:
        if not _is_finite_real(value) or int(value) != value:
            raise PolicyError(f"{policy}: `{param}` must be an integer (within float64's range), but got {shown_values(**{param: value})}.")
        return int(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise PolicyError(f"{policy}: `{param}` must be true or false, but got {shown_values(**{param: value})}.")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise PolicyError(f"{policy}: `{param}` must be a string, but got {shown_values(**{param: value})}.")
        return value
    if isinstance(hint, type) and issubclass(hint, Policy):
        if not isinstance(value, Policy):
            raise PolicyError(f"{policy}: `{param}` must be a policy, but got {shown_values(**{param: value})}.")
        return value
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise PolicyError(f"{policy}: `{param}` must be a list, but got {shown_values(**{param: value})}.")
        return tuple(_coerce(policy, f"{param}[{i}]", args[0], v) for i, v in enumerate(value))
    return value


def check_choice(policy: str, param: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise PolicyError(
            f"{policy}: `{param}` must be one of {', '.join(map(repr, choices))}, but got {shown_values(**{param: value})}.",
            fields=(param,))
