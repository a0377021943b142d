"""Spec strings and dicts: the stored, declarative form of a policy.

Grammar (whitespace is free between tokens)::

    policy := NAME "(" [arg ("," arg)* [","]] ")"
    arg    := [IDENT "="] value
    value  := number | string | true | false | none | list | policy | IDENT
    list   := "[" [value ("," value)* [","]] "]"

A bare identifier that is not followed by ``(`` is a string (``anneal=cos``). Numbers use
Python's float syntax (``1e-3``, ``-2``, ``.5``); ``inf`` and ``nan`` are refused. Nothing is
ever evaluated: any input either parses into a policy or raises :class:`lrkit.errors.SpecError`,
whose caret points at the argument that broke a rule (or at the policy's name when no argument did).

This module reads specs; writing them (:func:`format_spec`, :func:`to_dict`) is part of the policy
contract in :mod:`lrkit.policies.base` and re-exported here, so the dependency runs one way.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from lrkit.errors import LRKitError, SpecError
from lrkit.policies.base import (NON_FINITE_WORDS, SPEC_KEYWORDS, Policy, aliases, format_spec, lookup, registry,
                                 to_dict)
from lrkit.text import did_you_mean

# Numbers are ASCII only (``\d`` would take ``١.٥`` for 1.5), and no part of a token can be matched in
# two ways, so a failed match never backtracks through a long run of digits: what follows a number
# is checked by hand (_check_number_end), not by a lookahead the engine would retry at every split.
_TOKEN = re.compile(
    r"""(?:
        (?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
      | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<punct>[()\[\],=])
    )""",
    re.VERBOSE,
)
#: what may not follow a number directly (``1e5x``, ``1.5.3``, ``1e``, a unicode digit)
_NUMBER_TAIL = re.compile(r"[\w.]")
_RUN = re.compile(r"[\w.+-]*")  # the malformed number an error shows
_MAX_DEPTH = 64


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos == len(text):
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                hint = " (numbers are written with the digits 0-9)" if text[pos].isdigit() else ""
                raise SpecError(f"unexpected character {text[pos]!r}{hint}", text, pos)
            kind = m.lastgroup
            assert kind is not None
            if kind == "number" and _NUMBER_TAIL.match(text, m.end()):
                run = _RUN.match(text, pos).group()
                raise SpecError(f"{_abridged(run)!r} is not a number (e.g. 0.1, 1e-3, -2, .5)", text, pos)
            self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0

    # ---- token helpers ----
    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _where(self) -> int:
        tok = self._peek()
        return tok[2] if tok else len(self.text)

    def _fail(self, message: str, position: int | None = None) -> SpecError:
        return SpecError(message, self.text, self._where() if position is None else position)

    def _expect(self, punct: str) -> None:
        tok = self._peek()
        if tok is None or tok[0] != "punct" or tok[1] != punct:
            found = "the end of the spec" if tok is None else repr(tok[1])
            raise self._fail(f"expected {punct!r} but found {found}")
        self.i += 1

    def _at(self, punct: str) -> bool:
        tok = self._peek()
        return tok is not None and tok[0] == "punct" and tok[1] == punct

    # ---- grammar ----
    def parse(self) -> Policy:
        if not self.tokens:
            raise SpecError("the spec is empty; expected a policy such as 'COS(k0=0, k1=0.1, l=5000)'", self.text, 0)
        value = self._value(0)
        if self._peek() is not None:
            raise self._fail(f"unexpected {self._peek()[1]!r} after the end of the policy")  # type: ignore[index]
        if not isinstance(value, Policy):
            raise SpecError(f"expected a policy such as 'COS(k0=0, k1=0.1, l=5000)', but got {value!r}", self.text, 0)
        return value

    def _value(self, depth: int, arg: tuple[str, str, int] | None = None) -> Any:
        """One value; ``arg`` is ``(policy, parameter, where the argument starts)`` when it is a
        policy's argument (the parameter with ``[i]`` inside a list), so errors can name it."""
        if depth > _MAX_DEPTH:
            raise self._fail(f"the spec nests deeper than {_MAX_DEPTH} levels")
        tok = self._peek()
        if tok is None:
            raise self._fail("expected a value but found the end of the spec")
        kind, text, pos = tok
        if kind == "number":
            self.i += 1
            number = _number(text)
            if number is None:
                raise self._not_finite(text, pos, arg, f"number {_abridged(text)} is not finite")
            return number
        if kind == "string":
            self.i += 1
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "punct" and text == "[":
            self.i += 1
            items: list[Any] = []
            while not self._at("]"):
                item = None if arg is None else (arg[0], f"{arg[1]}[{len(items)}]", arg[2])
                items.append(self._value(depth + 1, item))
                if not self._at("]"):
                    self._expect(",")
            self._expect("]")
            return items
        if kind == "name":
            self.i += 1
            if self._at("("):
                return self._policy(text, pos, depth)
            if text in SPEC_KEYWORDS:
                return SPEC_KEYWORDS[text]
            if text in NON_FINITE_WORDS:
                raise self._not_finite(text, pos, arg, f"{text} is not a finite number")
            return text
        raise self._fail(f"expected a value but found {text!r}")

    def _not_finite(self, text: str, pos: int, arg: tuple[str, str, int] | None, bare: str) -> SpecError:
        """``inf``, ``nan`` or a number past float64: named as the policy's constructor names a bad
        number, with the caret under the argument (as for any argument that breaks a rule)."""
        if arg is None:
            return self._fail(bare, pos)
        policy, param, start = arg
        return SpecError(f"{policy}: `{param}` must be a finite number, but got ({param}={_abridged(text)}).",
                         self.text, start, fields=(param.split("[")[0],))

    def _policy(self, name: str, pos: int, depth: int) -> Policy:
        cls = lookup(name)
        if cls is None:
            raise SpecError(unknown_name_message(name), self.text, pos)
        self._expect("(")
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        positional: list[Any] = []
        keywords: dict[str, Any] = {}
        where: list[int] = []  # where each argument starts: positional ones first, then keywords
        while not self._at(")"):
            tok = self._peek()
            nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if tok and tok[0] == "name" and nxt and nxt[0] == "punct" and nxt[1] == "=":
                key, key_pos = tok[1], tok[2]
                self.i += 2
                if key in keywords:
                    raise SpecError(f"{cls.name}: parameter {key!r} is given twice", self.text, key_pos)
                keywords[key] = self._value(depth + 1, (cls.name, key, key_pos))
            else:
                if keywords:
                    raise self._fail(f"{cls.name}: a positional value cannot follow a keyword value")
                key_pos = self._where()
                param = names[len(positional)] if len(positional) < len(names) else f"value {len(positional) + 1}"
                positional.append(self._value(depth + 1, (cls.name, param, key_pos)))
            where.append(key_pos)
            if not self._at(")"):
                self._expect(",")
        self._expect(")")
        try:
            return build(cls, positional, keywords)
        except LRKitError as err:
            at = dict(zip(names[:len(positional)] + list(keywords), where))
            marks = [at[name] for name in getattr(err, "fields", ()) if name in at]
            raise SpecError(str(err), self.text, marks[0] if marks else pos, also=tuple(marks[1:])) from None


def _number(text: str) -> int | float | None:
    """A number token's value: an int when written without ``.``/``e``, else a float; None when past
    float64's range. ``float`` reads any length in linear time; an integer is converted only once it is
    known to be finite (so at most 309 significant digits: ``int`` refuses strings past 4300 digits)."""
    value = float(text)
    if not math.isfinite(value):
        return None
    if any(c in text for c in ".eE"):
        return value
    sign, digits = ("-", text[1:]) if text[0] == "-" else ("", text.lstrip("+"))
    return int(sign + (digits.lstrip("0") or "0"))


def _abridged(text: str, width: int = 40) -> str:
    """``text``, or its ends around the number of characters left out when it is longer than ``width``."""
    if len(text) <= width:
        return text
    return f"{text[:width // 2]}...{text[-8:]} ({len(text)} characters)"


def unknown_name_message(name: str) -> str:
    hint = did_you_mean(name, list(registry()) + list(aliases()), otherwise="; `lrkit policies` lists them")
    return f"unknown policy {_abridged(name)!r}{hint}"


def build(cls: type[Policy], positional: list[Any], keywords: dict[str, Any]) -> Policy:
    """Construct ``cls`` from parsed arguments, turning signature mistakes into :class:`SpecError`."""
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f.name for f in fields]
    if len(positional) > len(fields):
        raise SpecError(f"{cls.name} takes at most {len(fields)} values ({', '.join(names)}), but got {len(positional)}")
    args = dict(zip(names, positional))
    for key, value in keywords.items():
        if key not in names:
            raise SpecError(f"{cls.name} has no parameter {_abridged(key)!r} (it takes {', '.join(names)})"
                            f"{did_you_mean(key, names)}",
                            fields=(key,))
        if key in args:
            raise SpecError(f"{cls.name}: parameter {key!r} is given twice", fields=(key,))
        args[key] = value
    missing = [f.name for f in fields if f.name not in args and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise SpecError(f"{cls.name} needs {', '.join(map(repr, missing))} (it takes {', '.join(names)})")
    return cls(**args)


def parse(text: str) -> Policy:
    """Parse a spec string such as ``"TRI(k0=0.001, k1=0.006, l=2000)"`` into a policy."""
    if not isinstance(text, str):
        raise SpecError(f"a spec must be a string, but got {type(text).__name__} {text!r}")
    return _Parser(text).parse()


# ---- dicts ------------------------------------------------------------------------------------
def _from_jsonable(value: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise SpecError(f"the policy dict nests deeper than {_MAX_DEPTH} levels")
    if isinstance(value, dict):
        return _from_dict(value, depth)
    if isinstance(value, list):
        return [_from_jsonable(v, depth + 1) for v in value]
    return value


def from_dict(data: dict[str, Any]) -> Policy:
    """The inverse of :meth:`Policy.to_dict`."""
    return _from_dict(data, 0)


def _from_dict(data: dict[str, Any], depth: int) -> Policy:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise SpecError(f"a policy dict needs a string 'name' key naming the policy, but got {data!r:.200}")
    cls = lookup(data["name"])
    if cls is None:
        raise SpecError(unknown_name_message(data["name"]))
    keywords = {k: _from_jsonable(v, depth + 1) for k, v in data.items() if k != "name"}
    return build(cls, [], keywords)


def as_policy(value: Policy | str | dict[str, Any]) -> Policy:
    """Accept a policy, a spec string or a policy dict."""
    if isinstance(value, Policy):
        return value
    if isinstance(value, str):
        return parse(value)
    if isinstance(value, dict):
        return from_dict(value)
    raise SpecError(f"expected a policy, a spec string or a dict, but got {type(value).__name__} {value!r}")


__all__ = ["as_policy", "build", "format_spec", "from_dict", "parse", "to_dict", "unknown_name_message"]
