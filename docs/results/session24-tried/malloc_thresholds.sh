#!/usr/bin/env bash
# The epoch as trained of both models, alternated in one process, with glibc's default malloc and with its mmap and
# trim thresholds raised to 1 GiB (large temporaries reused instead of mapped and unmapped on every allocation).
# Usage: bash docs/results/session24-tried/malloc_thresholds.sh [DATA]   (default data/ml100k-64)
set -euo pipefail
DATA=${1:-data/ml100k-64}
for env in "" "MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824"; do
  echo "== environment: ${env:-glibc defaults}"
  env $env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_epoch_cost.py --data "$DATA" --budgets "" --rounds 4 | tail -2
done
