#!/usr/bin/env bash
# Issue 22's second GPU measurement (session 20, about 4 minutes): the epoch as trained with validation's pass
# over every item in larger chunks. content_chunk=64 is the CPU's choice (a chunk's score tensors stay in
# cache); on the H200 in session 19 the Clothing-sized validation took 1.47 s in 360 chunks of 64 items.
# Each bench_gpu_epoch.py call times LightGCN (the reference, same process) and MDR-CHCA at one chunk size.
#   DATA=data/ml100k-64 RESULTS=$OUT/gpu-chunks.jsonl LOGS=$OUT bash benchmarks/device_gpu_chunks.sh
set -uo pipefail
export PYTHONPATH="$PWD/src:$PWD/benchmarks:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
DATA=${DATA:-data/ml100k-64} RESULTS=${RESULTS:-gpu-chunks.jsonl} LOGS=${LOGS:-.} DEVICE=${DEVICE:-cuda}
(nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv || true) > "$LOGS/gpu.txt" 2>&1
run() {  # run NAME LIMIT ARGS...
  local name=$1 limit=$2; shift 2
  echo "== $name ($limit s): $*"
  timeout "$limit" python3 benchmarks/bench_gpu_epoch.py --device "$DEVICE" --out "$RESULTS" --compile off "$@" \
    >> "$LOGS/$name.log" 2>&1
  echo "   exit $?"; grep -E "epoch as trained|rror" "$LOGS/$name.log" | tail -3
}
run tiny 60 --cases tiny --epochs 1 --set mdrchca:content_chunk=256
for chunk in 64 256 1024 4096; do
  run clothing 90 --cases clothing --epochs 2 --set mdrchca:content_chunk=$chunk
done
for chunk in 64 256 2048; do
  run ml100k 60 --cases ml100k --data "$DATA" --epochs 3 --set mdrchca:content_chunk=$chunk
done
