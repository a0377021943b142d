"""``module:attribute`` references: the one loader for custom tasks, range-test set-ups and optimizers.

``load_reference("mypkg.mymod:make_task", what="task")`` imports ``mypkg.mymod`` and returns its
``make_task``. Like ``python -m``, modules in the current directory are found too (a console script
alone would not find them); the current directory is appended to ``sys.path``, so an installed
package of the same name still wins.

A file works too: ``load_reference("path/to/mytask.py:make_task", ...)`` (relative to the current
directory, or absolute) loads that file as a module, as ``python path/to/mytask.py`` would run it:
its folder is appended to ``sys.path`` so that it can import its neighbours. A reference is a file
when the part before the last ``:`` ends in ``.py`` or holds a path separator.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from typing import Any

from lrkit.errors import LRKitError


def is_reference(text: object) -> bool:
    """Whether ``text`` looks like ``module:attribute`` (rather than a built-in name)."""
    return isinstance(text, str) and ":" in text


def load_reference(path: str, what: str) -> Any:
    """The object ``path`` (``"module:attribute"`` or ``"path/to/file.py:attribute"``) names; ``what``
    ("task", "optimizer") is for messages.

    Raises:
        LRKitError: ``path`` is neither, the module cannot be imported, the file does not exist or
            cannot be loaded, or it has no such attribute (each message names the path).
    """
    module_name, _, attr = str(path).strip().rpartition(":")
    if not module_name or not attr:
        raise LRKitError(f"a custom {what} is 'module:attribute' or 'path/to/file.py:attribute', but got {path!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    file = _is_file(module_name)
    if file and not os.path.isfile(module_name):
        raise LRKitError(f"{what} {path!r}: there is no file {module_name!r} (a relative path starts from the "
                         f"current directory, {os.getcwd()})")
    try:
        module = _load_file(module_name) if file else importlib.import_module(module_name)
    except ImportError as err:
        raise LRKitError(f"cannot import module {module_name!r} for {what} {path!r}: {err} (the module must be "
                         "importable: installed, on PYTHONPATH, or in the current directory)") from None
    except Exception as err:  # noqa: BLE001 (the module's own code raised while it was imported)
        raise LRKitError(f"{'loading file' if file else 'importing module'} {module_name!r} for {what} {path!r} "
                         f"failed: {type(err).__name__}: {err}"
                         f"{_where(err)} (fix the module; `lrkit --debug ...` shows the traceback)") from err
    try:
        value = module
        for part in attr.split("."):
            value = getattr(value, part)
    except AttributeError:
        raise LRKitError(f"{'file' if file else 'module'} {module_name!r} has no attribute {attr!r} ({what} "
                         f"{path!r})") from None
    return value


def _is_file(module: str) -> bool:
    """Whether the part before ``:`` names a file (``mytask.py``, ``path/to/mytask``) rather than a module."""
    return module.endswith(".py") or "/" in module or os.sep in module


def _load_file(filename: str) -> Any:
    """The module the file ``filename`` holds, loaded once (by its real path) and kept in ``sys.modules``."""
    where = os.path.realpath(filename)
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) and os.path.realpath(module.__file__) == where:
            return module
    name = os.path.splitext(os.path.basename(where))[0]
    if not name.isidentifier() or name in sys.modules:  # a name of its own, not a stranger's module
        name = "user_file_" + hashlib.sha1(where.encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, where)
    if spec is None or spec.loader is None:
        raise ImportError(f"{filename!r} cannot be loaded as Python source (name it .py)")
    module = importlib.util.module_from_spec(spec)
    if os.path.dirname(where) not in sys.path:
        sys.path.append(os.path.dirname(where))
    sys.modules[name] = module  # before it runs: dataclasses and pickle look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


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
