"""The policy catalogue. Importing this package fills the registry."""

from lrkit.policies import (clr, combinators, curves, lrbench, lrbench_cyclic, lrbench_restart,  # noqa: F401
                            plateau, ralr, sweeps)
from lrkit.policies.base import VALUES_RTOL, Child, Policy, aliases, lookup, register, registry, same_lrs

__all__ = ["VALUES_RTOL", "Child", "Policy", "aliases", "lookup", "register", "registry", "same_lrs"]
