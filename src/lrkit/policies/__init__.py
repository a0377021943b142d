"""The policy catalogue. Importing this package fills the registry."""

from lrkit.policies import clr, combinators, curves, lrbench, ralr, sweeps  # noqa: F401  (registration)
from lrkit.policies.base import Policy, aliases, lookup, register, registry

__all__ = ["Policy", "aliases", "lookup", "register", "registry"]
