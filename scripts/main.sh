#!/usr/bin/env bash
# The main job. Until LRBench lands it plots a gallery of the catalogue.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
.venv/bin/lrkit plot "TRI2(k0=0.001, k1=0.006, l=2000)" "COS(k0=0, k1=0.1, l=5000)" \
  "onecycle(max_lr=0.1, total_steps=20000)" --steps 20000 -o out/gallery.png
echo "wrote out/gallery.png"
