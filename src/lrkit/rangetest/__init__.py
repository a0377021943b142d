"""The LR range test (CLR, methods.md §2.2): one short run that tells you the LR bounds.

>>> result = lrkit.range_test(model, optimizer, loss_fn, train_loader, metric="accuracy")  # doctest: +SKIP
>>> result.suggest().lr, result.suggest().base_lr                                       # doctest: +SKIP
>>> result.policy("triangular2")                      # step_size: 4 epochs of updates  # doctest: +SKIP
>>> result.plot("range.png")                                                               # doctest: +SKIP
"""

from __future__ import annotations

from lrkit.rangetest.result import RangeTestResult, Suggestion
from lrkit.rangetest.runner import accuracy_metric, range_test
from lrkit.rangetest.suggest import METHODS, Pick, all_picks, ema, recommend, smooth
from lrkit.rangetest.sweep import make_sweep

__all__ = ["METHODS", "Pick", "RangeTestResult", "Suggestion", "accuracy_metric", "all_picks", "ema",
           "make_sweep", "range_test", "recommend", "smooth"]
