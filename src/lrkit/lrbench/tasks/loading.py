"""``module:attribute`` references: the one loader for custom tasks, range-test set-ups and optimizers.

``load_reference("mypkg.mymod:make_task", what="task")`` imports ``mypkg.mymod`` and returns its
``make_task``. Like ``python -m``, modules in the current directory are found too (a console script
alone would not find them); the current directory is appended to ``sys.path``, so an installed
package of the same name still wins.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

from lrkit.errors import LRKitError


def is_reference(text: object) -> bool:
    """Whether ``text`` looks like ``module:attribute`` (rather than a built-in name)."""
    return isinstance(text, str) and ":" in text


def load_reference(path: str, what: str) -> Any:
    """The object ``path`` (``"module:attribute"``) names; ``what`` ("task", "optimizer") is for messages.

    Raises:
        LRKitError: ``path`` is not ``module:attribute``, the module cannot be imported, or it has no
            such attribute.
    """
    module_name, _, attr = str(path).strip().partition(":")
    if not module_name or not attr:
        raise LRKitError(f"a custom {what} is 'module:attribute', but got {path!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise LRKitError(f"cannot import module {module_name!r} for {what} {path!r}: {err} (the module must be "
                         "importable: installed, on PYTHONPATH, or in the current directory)") from None
    except Exception as err:  # noqa: BLE001 (the module's own code raised while it was imported)
        raise LRKitError(f"importing module {module_name!r} for {what} {path!r} failed: {type(err).__name__}: {err}"
                         f"{_where(err)} (fix the module; `lrkit --debug ...` shows the traceback)") from err
    try:
        value = module
        for part in attr.split("."):
            value = getattr(value, part)
    except AttributeError:
        raise LRKitError(f"module {module_name!r} has no attribute {attr!r} ({what} {path!r})") from None
    return value


def _where(err: BaseException) -> str:
    """`` (file, line N)``: where in the user's code ``err`` was raised (its last frame), if known."""
    import traceback

    if isinstance(err, SyntaxError) and err.filename:
        return f" ({err.filename}, line {err.lineno})"
    frames = traceback.extract_tb(err.__traceback__)
    return f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""


def call_with_data_dir(function: Any, data_dir: str | None, path: str = "") -> Any:
    """``function(data_dir=data_dir)`` when it accepts ``data_dir``, else ``function()``.

    Raises:
        LRKitError: ``function`` needs other arguments (``path`` names it in the message).
    """
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: it is called as it is
        return function()
    accepts = "data_dir" in signature.parameters
    try:
        signature.bind(**({"data_dir": data_dir} if accepts else {}))
    except TypeError as err:
        raise LRKitError(f"{path or getattr(function, '__name__', function)!r} must be callable with no arguments "
                         f"(or only data_dir=) to build a task, but {err}") from None
    return function(data_dir=data_dir) if accepts else function()


__all__ = ["call_with_data_dir", "is_reference", "load_reference"]
