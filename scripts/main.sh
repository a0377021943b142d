#!/usr/bin/env bash
# The main job: LRBench recommends an LR policy for fashion-mnist-cnn3 (scripts/main_job.sh has the
# settings; override TARGET, BUDGET, TRIALS, EVAL_EVERY, REPEATS, WORKERS), writes the ranking to
# out/recommendation.txt and the HTML report to out/report.html, all results in out/lrkit.db (SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/main_job.sh
