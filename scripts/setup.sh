#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: system data and tools, the virtual environment, lrkit.
#   scripts/setup.sh          everything the main job needs
#   scripts/setup.sh --test   also what the test suite needs (Chromium, PostgreSQL)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

apt_install() {  # apt_install PACKAGE... : install the Debian packages that are missing
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${missing[@]}" >/dev/null; }
}

apt_install dataset-fashion-mnist
if [ $want_test -eq 1 ]; then
  apt_install chromium postgresql
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
py=.venv/bin/python
# torch first, pinned to the CPU build on local disk; otherwise pip resolves a newer torch
# with several GB of CUDA wheels.
if ! $py -c "import torch" >/dev/null 2>&1; then
  $py -m pip install -q --upgrade pip
  $py -m pip install -q "torch==2.13.0"
fi
extras="all"
# the tests also run PolicyLR under Lightning and the HF Trainer
[ $want_test -eq 1 ] && extras="all,integrations"
$py -m pip install -q -e ".[$extras]"
