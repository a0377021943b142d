"""LRBench, the benchmark engine: judge LR policies and optimizers on a task, in sub-packages that follow the data.

- ``tasks/``: what is judged (a task's data, model, optimizer and default policy; the optimizers);
- ``run/``: one run of one (optimizer, policy), its result and state, the judging rules, an optimizer's LR
  range, ``verify`` (never imports Optuna);
- ``study/``: a study's configuration, stored schema, storage, queue, yardsticks, ranking and set-up;
- ``search/``: ``recommend``, its search space, pruning, lookup, objective and loop;
- ``composition/``: ``compose`` a policy stage by stage, forking runs;
- ``worker.py``: join any study from another process or machine;
- ``report/``: the HTML report and the text, JSON and CSV formats.

Each layer imports only from the layers before it (``tests/test_layout.py``). The entry points are here::

    from lrkit.lrbench import Task, get_task, run_trial, verify, recommend, compose, run_worker, write_report

Your own training runs through the protocol of :mod:`lrkit.lrbench.run.protocol`: a function
``train(run)`` (``Run`` is the handle it gets; ``task_defaults(...)`` gives it default budget, target and metric)
goes wherever a task does, ``--task mypkg.train:train`` on the command line.
"""

from __future__ import annotations

import sys
import types
from typing import Any

#: entry point -> its module, imported on first use (``import lrkit.lrbench`` stays free of torch and Optuna)
_ENTRY_POINTS = {
    "Task": "lrkit.lrbench.tasks.catalogue", "get_task": "lrkit.lrbench.tasks.catalogue",
    "task_defaults": "lrkit.lrbench.tasks.catalogue", "Run": "lrkit.lrbench.run.protocol",
    "run_trial": "lrkit.lrbench.run.runner", "verify": "lrkit.lrbench.run.verify",
    "recommend": "lrkit.lrbench.search.recommend", "compose": "lrkit.lrbench.composition.stagewise",
    "run_worker": "lrkit.lrbench.worker", "write_report": "lrkit.lrbench.report.page",
}


def __getattr__(name: str) -> Any:
    if name in _ENTRY_POINTS:
        import importlib

        return getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
    raise AttributeError(f"module 'lrkit.lrbench' has no attribute {name!r}")


class _Package(types.ModuleType):
    """``lrkit.lrbench`` itself: an entry point keeps its name when an old module path of the same name
    (``lrkit.lrbench.verify``, ``.recommend``, ``.compose``: :mod:`lrkit._moved`) is imported, which would
    otherwise set the package's attribute to that module (``from lrkit.lrbench import verify`` would then
    give a module)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _ENTRY_POINTS and isinstance(value, types.ModuleType):
            return  # the old module stays in sys.modules under its old name; the attribute stays the entry point
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = list(_ENTRY_POINTS)
