#!/usr/bin/env bash
# Train LightGCN, MDR-CHCA and its variants A and B on prepared dataset folders on a CUDA machine, then
# print the results tables. Meant for a lent GPU machine that has torch but not this package installed:
#   DATA=.devdata OUT=/tmp/out bash benchmarks/device_tables.sh
# DATA holds ml100k/ (features reduced with `mdrchca data reduce`) and lastfm/ (an MMRec folder).
set -uo pipefail
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
DATA=${DATA:-.devdata}
OUT=${OUT:-runs/device}
MAX_EPOCHS=${MAX_EPOCHS:-300}
DEVICE=${DEVICE:-cuda}
DATASETS=${DATASETS:-ml100k lastfm}
mk() { python3 -m mdrchca.cli.main -q "$@"; }
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
[ "${BENCH:-1}" = 1 ] && python3 benchmarks/bench_alignment.py --device "$DEVICE" --items 64 --json "$OUT/alignment.json" 2>&1 | tee "$OUT/alignment.txt"
for ds in $DATASETS; do
  [ -d "$DATA/$ds" ] || continue
  for model in lightgcn mdrchca mdrchca_a mdrchca_b; do
    start=$(date +%s)
    timeout "${RUN_TIMEOUT:-200}" python3 -m mdrchca.cli.main -q train --model "$model" --data "$DATA/$ds" \
      --set device="$DEVICE" --set epochs="$MAX_EPOCHS" --set max_seconds="${MAX_SECONDS:-100}" ${EXTRA_SETS:-} --out "$OUT/$ds-$model" --no-progress \
      > "$OUT/$ds-$model.json" 2> "$OUT/$ds-$model.err" || echo "$ds $model: exit $? (see $OUT/$ds-$model.err)"
    echo "$ds $model: $(( $(date +%s) - start )) s"
  done
  runs=$(ls -d "$OUT/$ds"-*/ 2>/dev/null | while read -r d; do [ -f "$d/metrics.json" ] && echo "$d"; done)
  [ -n "$runs" ] && mk report $runs | tee "$OUT/$ds-table.md"
done
# one archive of the small result files (checkpoints left out), for machines that return few files
if [ -n "${ARCHIVE:-}" ]; then
  tar czf "$ARCHIVE" -C "$OUT" --exclude='*.pt' --exclude='split.inter' . && echo "archived to $ARCHIVE"
fi
