"""Shared fixtures. The tests folder is on sys.path so test modules can import examples.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
