#!/usr/bin/env bash
# The ML-100K tables of issues 4 and 5 in one GPU session (about 8 minutes): MDR-CHCA, its variants and
# LightGCN on the token / region features (DATA/ml100k, PCA-64), and every baseline on the item-level
# MiniLM / EfficientNet vectors (DATA/ml100k-item), all chains in parallel on one GPU. Each run has a
# time budget (max_seconds); selection is on validation. Results: a summary on stdout, and with
# ARCHIVE=FILE.tgz the small result files of every run.
#   DATA=.devdata OUT=/tmp/runs ARCHIVE=/tmp/ml100k.tgz bash benchmarks/device_ml100k.sh
set -uo pipefail
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" DATA=${DATA:-.devdata} OUT=${OUT:-runs/device} PARALLEL=1 BENCH=0 RUN_TIMEOUT=${RUN_TIMEOUT:-470}
MAIN=${MAIN_SECONDS:-400}
# ARCHIVE= below: the two tables run at once, so only this script writes the archive, once, at the end
DATASETS=ml100k MAX_SECONDS=$MAIN RUNS="mdrchca mdrchca:learning_rate=0.005 mdrchca_a mdrchca_b \
lightgcn:max_seconds=150+lightgcn:learning_rate=0.005,max_seconds=150" ARCHIVE= bash benchmarks/device_tables.sh &
DATASETS=ml100k-item RUNS="vbpr:max_seconds=90+freedom:max_seconds=90+bm3:max_seconds=90+cdgcl:max_seconds=110 \
mmgcn:max_seconds=120+mmgcn:learning_rate=0.001,max_seconds=120+grcn:max_seconds=140 \
lattice:max_seconds=125+lattice:learning_rate=0.001,max_seconds=125+micro:max_seconds=125 \
slmrec:max_seconds=125+slmrec:learning_rate=0.001,max_seconds=125+lightgcn:n_layers=1,max_seconds=100" \
  ARCHIVE= bash benchmarks/device_tables.sh &
wait
python3 -m mdrchca.cli.main -q report $(ls -d "$OUT"/*/ | while read -r d; do [ -f "$d/metrics.json" ] && echo "$d"; done)
if [ -n "${ARCHIVE:-}" ]; then
  tar czf "$ARCHIVE" -C "$OUT" --exclude='*.pt' --exclude='split.inter' . && echo "archived to $ARCHIVE"
fi
