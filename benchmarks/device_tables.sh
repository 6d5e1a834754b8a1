#!/usr/bin/env bash
# Train LightGCN, MDR-CHCA and its variants A and B on prepared dataset folders on a CUDA machine, then
# print the results tables. Meant for a lent GPU machine that has torch but not this package installed:
#   DATA=.devdata OUT=/tmp/out bash benchmarks/device_tables.sh
# DATA holds ml100k/ (features reduced with `mdrchca data reduce`) and lastfm/ (an MMRec folder).
# RUNS lists the runs, each `model` or `model:key=value,key=value` (extra --set options, e.g.
# `mdrchca:learning_rate=0.005,max_seconds=60`); runs joined by `+` form a chain run one after the other.
# PARALLEL=1 trains the chains of a dataset at the same time (small models leave a large GPU mostly idle,
# so this costs each run far less than running them one after the other).
set -uo pipefail
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
DATA=${DATA:-.devdata}
OUT=${OUT:-runs/device}
MAX_EPOCHS=${MAX_EPOCHS:-300}
DEVICE=${DEVICE:-cuda}
DATASETS=${DATASETS:-ml100k lastfm}
RUNS=${RUNS:-lightgcn mdrchca mdrchca_a mdrchca_b}
mk() { python3 -m mdrchca.cli.main -q "$@"; }
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
[ "${BENCH:-1}" = 1 ] && python3 benchmarks/bench_alignment.py --device "$DEVICE" --items 64 --json "$OUT/alignment.json" 2>&1 | tee "$OUT/alignment.txt"
train_one() {  # dataset, run spec
  local ds=$1 spec=$2 model=${2%%:*} sets=() tag start
  tag=$(echo "$spec" | tr ':,=' '-_-')
  if [[ $spec == *:* ]]; then IFS=',' read -ra kv <<< "${spec#*:}"; for s in "${kv[@]}"; do sets+=(--set "$s"); done; fi
  start=$(date +%s)
  timeout "${RUN_TIMEOUT:-200}" python3 -m mdrchca.cli.main -q train --model "$model" --data "$DATA/$ds" \
    --set device="$DEVICE" --set epochs="$MAX_EPOCHS" --set max_seconds="${MAX_SECONDS:-100}" "${sets[@]}" \
    --out "$OUT/$ds-$tag" --no-progress > "$OUT/$ds-$tag.json" 2> "$OUT/$ds-$tag.err" \
    || echo "$ds $spec: exit $? (see $OUT/$ds-$tag.err)"
  echo "$ds $spec: $(( $(date +%s) - start )) s"
}
run_chain() {  # dataset, runs joined by +
  local spec; for spec in ${2//+/ }; do train_one "$1" "$spec"; done
}
for ds in $DATASETS; do
  [ -d "$DATA/$ds" ] || continue
  for chain in $RUNS; do
    if [ "${PARALLEL:-0}" = 1 ]; then run_chain "$ds" "$chain" & else run_chain "$ds" "$chain"; fi
  done
  wait
  runs=$(ls -d "$OUT/$ds"-*/ 2>/dev/null | while read -r d; do [ -f "$d/metrics.json" ] && echo "$d"; done)
  [ -n "$runs" ] && mk report $runs | tee "$OUT/$ds-table.md"
done
# one archive of the small result files (checkpoints left out), for machines that return few files
if [ -n "${ARCHIVE:-}" ]; then
  tar czf "$ARCHIVE" -C "$OUT" --exclude='*.pt' --exclude='split.inter' . && echo "archived to $ARCHIVE"
fi
