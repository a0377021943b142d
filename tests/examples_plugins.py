"""Example specs of the random plugins (RALR, ...); see examples.py."""

from __future__ import annotations

PLUGIN_EXAMPLES: list[str] = []
