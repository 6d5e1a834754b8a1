#!/usr/bin/env bash
# A GPU check of a code change (about 5 minutes; sessions 21 and 22): the GPU test suite on this tree's code, then
# the epoch as trained of this tree's src against the code before (OLD_SRC, the parent commit's src, e.g.
# `git archive PARENT src | tar -x -C out/old-src`), on ML-100K tokens and the Clothing-sized synthetic
# catalogue, old and new in turn in separate processes (each process times LightGCN beside MDR-CHCA).
#   DATA=data/ml100k-64 OLD_SRC=out/old-src/src LOGS=$OUT bash benchmarks/device_masks_ab.sh
set -uo pipefail
export PYTHONUNBUFFERED=1
DATA=${DATA:-data/ml100k-64} OLD_SRC=${OLD_SRC:-out/old-src/src} LOGS=${LOGS:-.}
(nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv || true) > "$LOGS/gpu.txt" 2>&1
echo "== GPU tests"
PYTHONPATH="$PWD/src" timeout 150 python3 -m pytest -q -p no:cacheprovider tests/models/test_gpu.py \
  > "$LOGS/gpu-tests.log" 2>&1
echo "   exit $?"; tail -2 "$LOGS/gpu-tests.log"
bench() {  # bench CODE LIMIT ARGS...
  local code=$1 limit=$2; shift 2
  local src="$PWD/src"; [ "$code" = old ] && src="$PWD/$OLD_SRC"
  echo "== $code: $*"
  PYTHONPATH="$src:$PWD/benchmarks" timeout "$limit" python3 benchmarks/bench_gpu_epoch.py --device cuda \
    --compile off --out "$LOGS/ab-$code.jsonl" "$@" >> "$LOGS/ab-$code.log" 2>&1
  echo "   exit $?"; grep -E "epoch as trained|rror" "$LOGS/ab-$code.log" | tail -2
}
for round in 1 2; do
  for code in old new; do bench "$code" 60 --cases ml100k --data "$DATA" --epochs 5; done
done
for round in 1 2; do
  for code in old new; do bench "$code" 100 --cases clothing --epochs 3 --models mdrchca; done
done
