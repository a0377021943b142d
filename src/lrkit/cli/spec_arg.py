"""A policy on the command line: a spec (``"FIX(k0=0.1)"``) or ``@FILE``, a file holding one.

``verify --policy``, ``show``, ``plot`` and ``simulate`` take either. The file holds a spec string
(surrounding whitespace and line breaks are ignored) or, when it starts with ``{``, a JSON dict
spec (``{"name": "FIX", "k0": 0.1}``, :func:`lrkit.spec.from_dict`). A spec that fails to parse
and looks like a file name (a path separator, or a suffix of :data:`FILE_SUFFIXES`) gets the hint
to write ``@`` before it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lrkit.errors import LRKitError

FILE_SUFFIXES = (".txt", ".json", ".yaml", ".yml", ".spec", ".cfg", ".toml")


def policy_arg(text: str, what: str = "--policy") -> Any:
    """The :class:`lrkit.Policy` that ``text`` (a spec, or ``@FILE``) gives; ``what`` names the argument.

    Raises:
        LRKitError: a missing, unreadable or empty file (named), or a spec that does not parse (with
            the ``@`` hint when ``text`` looks like a file name).
    """
    from lrkit.spec import as_policy, parse

    if text.startswith("@"):
        spec, source = _read(text[1:], what), f"{what} {text}: "
    else:
        spec, source = text, ""
    try:
        if spec.startswith("{"):
            try:
                return as_policy(json.loads(spec))
            except json.JSONDecodeError as err:
                raise LRKitError(f"a spec starting with '{{' is a JSON dict, but {err}") from None
        return parse(spec)
    except LRKitError as err:
        hint = ""
        if not source and _looks_like_file(text):
            flag = f"{what} " if what.startswith("-") else ""
            hint = f"\n({what} takes a spec such as FIX(k0=0.1); to read a spec from a file, write {flag}@{text})"
        raise LRKitError(f"{source}{err}{hint}") from None


def _read(name: str, what: str) -> str:
    if not name:
        raise LRKitError(f"{what} @FILE needs a file name after '@'")
    path = Path(name)
    if not path.is_file():
        raise LRKitError(f"{what} @{name}: there is no file {name!r} (a relative path starts from the current "
                         f"directory, {os.getcwd()})")
    try:
        spec = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise LRKitError(f"{what} @{name}: cannot read {name!r}: {err}") from None
    if not spec:
        raise LRKitError(f"{what} @{name}: the file {name!r} is empty; it should hold a spec such as FIX(k0=0.1)")
    return spec


def _looks_like_file(text: str) -> bool:
    return ("/" in text or os.sep in text or text.lower().endswith(FILE_SUFFIXES)
            or ("(" not in text and os.path.isfile(text)))


__all__ = ["FILE_SUFFIXES", "policy_arg"]
