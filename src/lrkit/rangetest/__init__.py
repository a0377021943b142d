"""The LR range test (Smith, WACV 2017, section 3.3; docs/rangetest.md): one short run that tells you the LR bounds.

>>> result = lrkit.range_test(model, optimizer, loss_fn, train_loader, metric="accuracy")  # doctest: +SKIP
>>> result.suggest().lr, result.suggest().base_lr                                       # doctest: +SKIP
>>> result.policy("triangular2")                      # step_size: 4 epochs of updates  # doctest: +SKIP
>>> result.plot("range.png")                                                               # doctest: +SKIP
"""

from __future__ import annotations

from lrkit.rangetest.result import RangeTestResult, Suggestion
from lrkit.rangetest.runner import accuracy_metric, range_test
from lrkit.rangetest.suggest import METHODS, Pick, all_picks, ema, preferred_pick, smooth
from lrkit.rangetest.sweep import make_sweep

__all__ = ["METHODS", "Pick", "RangeTestResult", "Suggestion", "accuracy_metric", "all_picks", "ema",
           "make_sweep", "preferred_pick", "range_test", "smooth"]


def __getattr__(name: str) -> object:
    if name == "recommend":  # its name until 0.1, beside lrkit.recommend (the LRBench search): one release more
        import warnings

        warnings.warn("lrkit.rangetest.recommend is now lrkit.rangetest.preferred_pick; the old name goes in the next "
                      "release", DeprecationWarning, stacklevel=2)
        return preferred_pick
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
