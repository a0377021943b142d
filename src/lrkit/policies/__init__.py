"""The policy catalogue. Importing this package fills the registry."""

from lrkit.policies import combinators, lrbench  # noqa: F401  (registration side effect)
from lrkit.policies.base import Policy, aliases, lookup, register, registry

__all__ = ["Policy", "aliases", "lookup", "register", "registry"]
