"""lrkit: learning-rate policies as pure functions of the step, for PyTorch.

>>> import lrkit
>>> p = lrkit.parse("TRI(k0=0.001, k1=0.006, l=2000)")
>>> p(0), p(2000)
(0.001, 0.006)
"""

from __future__ import annotations

from typing import Any

from lrkit import _moved
from lrkit.errors import LRKitError, PolicyError, SpecError
from lrkit.policies import Policy, registry
from lrkit.spec import as_policy, from_dict, parse

__version__ = "0.1.0"
_moved.install()  # old module paths (lrkit.lrbench.trainer, ...) import for one release, with a warning


def policies() -> dict[str, type[Policy]]:
    """The registry: canonical spec name -> policy class (its docstring holds the formula)."""
    return registry()


_LAZY = {
    # name -> module that defines it; imported on first use so `import lrkit` stays torch-free
    "range_test": "lrkit.rangetest",
    "verify": "lrkit.lrbench.run.verify",
    "VerifyResult": "lrkit.lrbench.run.verify",
    "run_trial": "lrkit.lrbench.run.runner",
    "TrialResult": "lrkit.lrbench.run.runner",
    "Task": "lrkit.lrbench.tasks.catalogue",
    "get_task": "lrkit.lrbench.tasks.catalogue",
    "list_tasks": "lrkit.lrbench.tasks.catalogue",
    "recommend": "lrkit.lrbench.search.recommend",
}
#: what a lazy attribute needs beyond numpy, checked before it is imported (default: torch); a
#: module imported only when the function runs (optuna for recommend) would otherwise fail late
_NEEDS = {"recommend": ("torch", "optuna", "sqlalchemy")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        from lrkit.extras import missing_extra, require

        require(_NEEDS.get(name, ("torch",)), f"lrkit.{name}")
        try:
            module = importlib.import_module(_LAZY[name])
        except ModuleNotFoundError as err:
            raise (missing_extra(err, f"lrkit.{name}") or err) from None
        return getattr(module, name)
    raise AttributeError(f"module 'lrkit' has no attribute {name!r}")


__all__ = ["LRKitError", "Policy", "PolicyError", "SpecError", "as_policy", "from_dict", "parse", "policies",
           "__version__", *_LAZY]
