#!/usr/bin/env bash
# The LRBench main job: recommend an LR policy for fashion-mnist-cnn3 and write the HTML report.
#
# One study in out/lrkit.db (SQLite), created once, then two workers (one per core, one torch thread each)
# run its trials, then the same `lrkit recommend` command reruns the best candidates with another seed
# and prints the ranking and the recommendation, and `lrkit report` writes out/report.html.
# Rerunning continues the same study; delete out/lrkit.db to start over.
# Override the search with TARGET, BUDGET, TRIALS, EVAL_EVERY, REPEATS, WORKERS.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
TARGET=${TARGET:-0.75}
BUDGET=${BUDGET:-500}
TRIALS=${TRIALS:-6}
EVAL_EVERY=${EVAL_EVERY:-100}
REPEATS=${REPEATS:-1}
WORKERS=${WORKERS:-2}
DB=sqlite:///out/lrkit.db
LRKIT=.venv/bin/lrkit
ARGS=(--task fashion-mnist-cnn3 --target "$TARGET" --budget "$BUDGET" --trials "$TRIALS" --storage "$DB"
      --study cnn3-main --lr-range auto --eval-every "$EVAL_EVERY")
start=$(date +%s)
"$LRKIT" recommend "${ARGS[@]}" --create-only
pids=()
for _ in $(seq "$WORKERS"); do
  "$LRKIT" worker --study cnn3-main --storage "$DB" --no-progress &
  pids+=($!)
done
# a Ctrl-C here stops the workers too; their finished trials stay in out/lrkit.db
trap 'kill "${pids[@]}" 2>/dev/null || true' INT TERM
for pid in "${pids[@]}"; do wait "$pid"; done
# the same command finds the study complete; --repeats reruns the best candidates with another seed and
# ranks each by its worst seed, so a policy that only worked for seed 0 is not recommended
"$LRKIT" recommend "${ARGS[@]}" --repeats "$REPEATS" --no-progress | tee out/recommendation.txt
"$LRKIT" report --storage "$DB" --study cnn3-main -o out/report.html
echo "main job took $(( $(date +%s) - start )) s (wall) with $WORKERS workers"
