"""Old module paths that still import, for one release, with a ``DeprecationWarning`` naming the new one.

lrkit 0.1 kept LRBench in one flat folder and the LRBench policy catalogue in ``lrkit.policies.lrbench``;
both moved (see docs/lrbench.md, "Where things live"). ``import lrkit.lrbench.trainer`` now gives the
module ``lrkit.lrbench.run.runner`` under its old name too, so old imports, ``mock.patch`` targets and
pickles that name a class by its old module keep working.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Any

#: old module -> where it lives now
MOVED = {
    "lrkit.lrbench.datasets": "lrkit.lrbench.tasks.datasets",
    "lrkit.lrbench.models": "lrkit.lrbench.tasks.models",
    "lrkit.lrbench.optimizers": "lrkit.lrbench.tasks.optimizers",
    "lrkit.lrbench.loading": "lrkit.lrbench.tasks.loading",
    "lrkit.lrbench.trainer": "lrkit.lrbench.run.runner",
    "lrkit.lrbench.training": "lrkit.lrbench.run.steps",
    "lrkit.lrbench.trial": "lrkit.lrbench.run.result",
    "lrkit.lrbench.runstate": "lrkit.lrbench.run.state",
    "lrkit.lrbench.metrics": "lrkit.lrbench.run.judging",
    "lrkit.lrbench.lr_range": "lrkit.lrbench.run.lr_range",
    "lrkit.lrbench.verify": "lrkit.lrbench.run.verify",
    "lrkit.lrbench.storage": "lrkit.lrbench.study.storage",
    "lrkit.lrbench.counting": "lrkit.lrbench.study.queue",
    "lrkit.lrbench.study_run": "lrkit.lrbench.search.loop",
    "lrkit.lrbench.baselines": "lrkit.lrbench.study.baselines",
    "lrkit.lrbench.results": "lrkit.lrbench.study.ranking",
    "lrkit.lrbench.rerun": "lrkit.lrbench.study.rerun",
    "lrkit.lrbench.interrupts": "lrkit.lrbench.study.interrupts",
    "lrkit.lrbench.progress": "lrkit.lrbench.study.progress",
    "lrkit.lrbench.recommend": "lrkit.lrbench.search.recommend",
    "lrkit.lrbench.search_space": "lrkit.lrbench.search.space",
    "lrkit.lrbench.pruning": "lrkit.lrbench.search.pruning",
    "lrkit.lrbench.lookup": "lrkit.lrbench.search.known",
    "lrkit.lrbench.objective": "lrkit.lrbench.search.objective",
    "lrkit.lrbench.compose": "lrkit.lrbench.composition.stagewise",
    "lrkit.lrbench.segments": "lrkit.lrbench.composition.segments",
    "lrkit.lrbench.stage_trial": "lrkit.lrbench.composition.stage_trial",
    "lrkit.lrbench.forks": "lrkit.lrbench.composition.forks",
    "lrkit.lrbench.search.portfolio": "lrkit.lrbench.search.known",
    "lrkit.lrbench.svg": "lrkit.lrbench.report.line_chart",
    "lrkit.lrbench.tree": "lrkit.lrbench.report.tree_chart",
    # the LRBench policy catalogue, named apart from the lrbench/ engine
    "lrkit.policies.lrbench": "lrkit.policies.decaying",
    "lrkit.policies.lrbench_cyclic": "lrkit.policies.cyclic",
    "lrkit.policies.lrbench_restart": "lrkit.policies.restarts",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: Any) -> Any:
        warnings.warn(f"{spec.name} moved to {self.new}; the old path goes in the next release",
                      DeprecationWarning, stacklevel=4)
        return importlib.import_module(self.new)

    def exec_module(self, module: Any) -> None:  # the module is the new one, already executed
        pass


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    """Let the old module paths import (once per process)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())


__all__ = ["MOVED", "install"]
