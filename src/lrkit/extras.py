"""Optional dependencies: which ``pip install 'lrkit[EXTRA]'`` brings each one.

``pip install lrkit`` installs only numpy: policies, specs and ``lrkit policies|show|simulate``
work with it alone. Everything else needs an extra (see ``pyproject.toml``). When an import of
one of those fails, :func:`missing_extra` turns the ``ModuleNotFoundError`` into a
:class:`MissingExtraError` whose message says what to install; ``lrkit``'s lazy attributes
(``lrkit.recommend``, ``lrkit.range_test``, ...) and the command line (``error: ...``, exit 2)
both use it.

>>> err = missing_extra(ModuleNotFoundError("No module named 'optuna'", name="optuna"), "lrkit recommend")
>>> str(err)
"lrkit recommend needs optuna, which is not installed: pip install 'lrkit[bench]'"
>>> missing_extra(ModuleNotFoundError("No module named 'mypkg'", name="mypkg")) is None
True
"""

from __future__ import annotations

import importlib.util

from lrkit.errors import LRKitError

#: top-level module -> the extra that installs it (``[project.optional-dependencies]``); torch is
#: also part of ``bench``, but ``torch`` is the smallest extra that brings it
EXTRA_OF = {
    "torch": "torch",
    "matplotlib": "plot",
    "optuna": "bench",
    "sqlalchemy": "bench",
    "tqdm": "bench",
    "psycopg": "postgres",
    "lightning": "integrations",
    "transformers": "integrations",
}


class MissingExtraError(ModuleNotFoundError, LRKitError):
    """An optional dependency is not installed; the message names the extra that brings it.

    A ``ModuleNotFoundError`` (so ``except ImportError`` still catches it) and an
    :class:`~lrkit.errors.LRKitError` (so the command line prints it without a traceback).
    """


def missing_extra(err: ImportError, needed_for: str | None = None) -> MissingExtraError | None:
    """The :class:`MissingExtraError` for ``err`` when the missing module comes with an lrkit extra, else None.

    Args:
        err: the failed import (its ``name`` is the module that was not found).
        needed_for: what needed it, for the message (e.g. ``"lrkit recommend"``); default "this".
    """
    if isinstance(err, MissingExtraError):
        return err
    module = (getattr(err, "name", None) or "").partition(".")[0]
    if module not in EXTRA_OF:
        return None
    return MissingExtraError(f"{needed_for or 'this'} needs {module}, which is not installed: "
                             f"pip install 'lrkit[{EXTRA_OF[module]}]'", name=module)


def require(modules: tuple[str, ...], needed_for: str) -> None:
    """Raise :class:`MissingExtraError` for the first of ``modules`` that cannot be imported (nothing is imported)."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            err = missing_extra(ModuleNotFoundError(f"No module named {module!r}", name=module), needed_for)
            raise err if err is not None else ModuleNotFoundError(f"No module named {module!r}", name=module)


__all__ = ["EXTRA_OF", "MissingExtraError", "missing_extra", "require"]
