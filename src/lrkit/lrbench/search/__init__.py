"""The search: ``recommend``, its search space, pruning, the lookup of what other studies found, the objective and the study loop."""

from lrkit.lrbench.search.recommend import Recommendation

__all__ = ["Recommendation"]
