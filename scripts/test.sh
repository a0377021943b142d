#!/usr/bin/env bash
# Set up (scripts/setup.sh --test), then run the whole test suite. The suite starts the throwaway
# PostgreSQL server it needs itself (tests/pgserver.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
exec .venv/bin/python -m pytest -q "$@"
