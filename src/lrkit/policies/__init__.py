"""The policy catalogue. Importing this package fills the registry."""

from lrkit.policies import (clr, combinators, curves, cyclic, decaying, plateau, ralr, restarts,  # noqa: F401
                            sweeps)
from lrkit.policies.base import VALUES_RTOL, Child, Policy, aliases, lookup, register, registry, same_lrs

__all__ = ["VALUES_RTOL", "Child", "Policy", "aliases", "lookup", "register", "registry", "same_lrs"]
