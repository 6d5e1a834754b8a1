#!/usr/bin/env bash
# Issue 22's GPU measurement in one device call (about 9 minutes at most): bench_gpu_epoch.py in stages, each
# under its own time limit so that a slow torch.compile cannot take the plain measurements with it.
#   1. a seconds-long check of the script on the device (the tiny case);
#   2. ML-100K tokens (DATA), LightGCN and MDR-CHCA, eager;     3. the Clothing-sized synthetic, eager;
#   4. ML-100K tokens with torch.compile (inductor);           5. Clothing-sized with torch.compile.
# Every measurement is one JSON line in $RESULTS; the log of each stage is $LOGS/stage-N.log.
#   DATA=data/ml100k-64 RESULTS=$OUT/gpu-epoch.jsonl LOGS=$OUT bash benchmarks/device_gpu_epoch.sh
set -uo pipefail
export PYTHONPATH="$PWD/src:$PWD/benchmarks:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
DATA=${DATA:-data/ml100k-64} RESULTS=${RESULTS:-gpu-epoch.jsonl} LOGS=${LOGS:-.}
DEVICE=${DEVICE:-cuda} EPOCHS=${EPOCHS:-3}
T1=${T1:-60} T2=${T2:-90} T3=${T3:-120} T4=${T4:-150} T5=${T5:-100}
(nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv || true) > "$LOGS/gpu.txt" 2>&1
stage() {  # stage N LIMIT ARGS...
  local n=$1 limit=$2; shift 2
  echo "== stage $n ($limit s): $*"
  timeout "$limit" python3 benchmarks/bench_gpu_epoch.py --device "$DEVICE" --out "$RESULTS" "$@" \
    > "$LOGS/stage-$n.log" 2>&1
  echo "   exit $?"; grep -E "epoch as trained|error|Error|MDR-CHCA / LightGCN|peers" "$LOGS/stage-$n.log" | tail -12
}
stage 1 "$T1" --cases tiny --epochs 1 --compile off
stage 2 "$T2" --cases ml100k --data "$DATA" --epochs "$EPOCHS" --compile off
stage 3 "$T3" --cases clothing --epochs 2 --compile off
stage 4 "$T4" --cases ml100k --data "$DATA" --epochs "$EPOCHS" --compile on
stage 5 "$T5" --cases clothing --epochs 2 --compile on --models mdrchca
