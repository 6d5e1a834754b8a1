#!/usr/bin/env bash
# Issue 4's ML-100K table in one GPU session (about 7 minutes on an H100): MDR-CHCA with both ways of
# propagating content to the users, a second seed of each main setting, variants A and B, and LightGCN,
# all on the token / region features (DATA/ml100k, PCA-64) and all at once on one GPU, each with a time
# budget; then the test breakdown by user activity and item popularity of every MDR-CHCA and LightGCN run.
# Selection is on validation (`mdrchca report` shows it). With ARCHIVE=FILE.tgz, the small result files.
# RUNS=... replaces the list of runs (format: benchmarks/device_tables.sh).
#   DATA=.devdata OUT=/tmp/runs ARCHIVE=/tmp/ml100k.tgz bash benchmarks/device_mdrchca_ml100k.sh
set -uo pipefail
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" DATA=${DATA:-.devdata} OUT=${OUT:-runs/device} PARALLEL=1 BENCH=0
export RUN_TIMEOUT=${RUN_TIMEOUT:-400} MAX_SECONDS=${MAIN_SECONDS:-330}
LR=${LR:-0.005}
DEFAULT_RUNS="mdrchca:learning_rate=$LR,content_propagation=view \
mdrchca:learning_rate=$LR,content_propagation=input \
mdrchca:learning_rate=$LR,content_propagation=view,seed=1 \
mdrchca:learning_rate=$LR,content_propagation=input,seed=1 \
mdrchca_a:learning_rate=$LR,content_propagation=view \
mdrchca_b:learning_rate=$LR,content_propagation=view \
lightgcn:learning_rate=$LR,max_seconds=150+lightgcn:learning_rate=$LR,seed=1,max_seconds=150"
# the archive is written once, below, with the breakdowns in it
DATASETS=ml100k RUNS=${RUNS:-$DEFAULT_RUNS} ARCHIVE= bash benchmarks/device_tables.sh
for run in "$OUT"/ml100k-{mdrchca,lightgcn}{,-*}; do  # MDR-CHCA and LightGCN runs, with or without settings
  [ -f "$run/metrics.json" ] || continue
  python3 -m mdrchca.cli.main -q evaluate --run "$run" --split test --breakdown > "$run.breakdown.md" 2>&1 &
done
wait
for f in "$OUT"/*.breakdown.md; do echo "== $f"; grep '^|' "$f"; done
if [ -n "${ARCHIVE:-}" ]; then
  tar czf "$ARCHIVE" -C "$OUT" --exclude='*.pt' --exclude='split.inter' . && echo "archived to $ARCHIVE"
fi
