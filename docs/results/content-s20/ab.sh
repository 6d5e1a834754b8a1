#!/usr/bin/env bash
# old (/work/bg) vs new (/work/main) content pass, alternated processes, one thread each
cd /work/main
for r in 1 2 3; do
  for side in old new; do
    if [ $side = old ]; then P=/work/bg/src:/work/bg/benchmarks; B=/work/bg/benchmarks; else P=/work/main/src:/work/main/benchmarks; B=/work/main/benchmarks; fi
    echo -n "$side "; OMP_NUM_THREADS=1 PYTHONPATH=$P .venv/bin/python $B/bench_content_pass.py --data ${DATA:-data/ml100k-64} --scoring-pass --rounds ${ROUNDS:-5} 2>/dev/null | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); print(r['short_median_s'], r['short_gflop'], r['short_limit_s'], r['short_distance'], r['full_median_s'], r['full_distance'], r['largest_difference'])"
  done
done
