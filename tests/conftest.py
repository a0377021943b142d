"""Shared fixtures. The tests folder is on sys.path so test modules can import examples.py."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from numerics import vector_path_nudged  # noqa: E402


@pytest.fixture(params=["native", "nudged"])
def numerics(request):
    """Run the test on this machine's numpy, and again as on a CPU whose vector path rounds an ulp apart."""
    with (vector_path_nudged() if request.param == "nudged" else contextlib.nullcontext()):
        yield request.param
