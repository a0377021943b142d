"""Placeholder: this module's commands are being written."""

from __future__ import annotations


def register(subparsers) -> None:  # noqa: ANN001
    """Add this module's subcommands (none yet)."""
