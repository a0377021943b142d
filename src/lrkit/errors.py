"""lrkit's user-facing errors.

Every mistake a user can make with a policy, a spec or a command raises a subclass of
:class:`LRKitError`, itself a :class:`ValueError`, with a message that names the parameter,
the rule and the value received.
"""

from __future__ import annotations


class LRKitError(ValueError):
    """Base class of every error lrkit raises for bad user input."""


class PolicyError(LRKitError):
    """A policy was built with parameters that break one of its rules.

    ``fields`` names the parameters the rule was checked on (empty when it concerns no
    parameter, e.g. a negative ``t``); the spec parser puts a caret under each of them.
    """

    def __init__(self, message: str, fields: tuple[str, ...] = ()):
        self.fields = tuple(fields)
        super().__init__(message)


class SpecError(LRKitError):
    """A spec string or dict could not be turned into a policy.

    ``position`` is the 0-based character offset of the problem in ``text`` (or None);
    ``positions`` holds it and any further offsets marked (a rule on two arguments marks both).
    ``fields`` names the parameters at fault, when known (an unknown or repeated keyword).
    """

    def __init__(self, message: str, text: str | None = None, position: int | None = None, *,
                 also: tuple[int, ...] = (), fields: tuple[str, ...] = ()):
        self.text = text
        self.position = position
        self.positions = tuple(sorted({position, *also})) if position is not None else ()
        self.fields = tuple(fields)
        if text is not None and self.positions:
            marks = "".join("^" if i in self.positions else " " for i in range(self.positions[-1] + 1))
            message = f"{message}\n  {text}\n  {marks}"
        super().__init__(message)


def format_values(**values: object) -> str:
    """``(a=1, b=2)``: the values a rule was checked on, for error messages."""
    return "(" + ", ".join(f"{k}={v!r}" for k, v in values.items()) + ")"


def require(condition: bool, rule: str, **values: object) -> None:
    """Raise :class:`PolicyError` ``"`rule` must hold, but got (values)"`` unless ``condition``."""
    if not condition:
        raise PolicyError(f"`{rule}` must hold, but got {format_values(**values)}.")
