#!/usr/bin/env bash
# Is MDR-CHCA run-to-run reproducible on CUDA, with and without `deterministic=true`, and what does the
# option cost? Two runs of each (same seed, one after the other, alone on the GPU), EPOCHS epochs on
# DATA/ml100k; prints whether each pair's per-epoch losses and validation R@20 are identical, and the
# seconds per epoch of each setting with their ratio.
#   DATA=.devdata OUT=/tmp/det bash benchmarks/device_determinism.sh
set -uo pipefail
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
DATA=${DATA:-.devdata} OUT=${OUT:-runs/determinism} EPOCHS=${EPOCHS:-4} MODEL=${MODEL:-mdrchca}
mkdir -p "$OUT"
for setting in false true; do
  for rep in 1 2; do
    python3 -m mdrchca.cli.main -q train --model "$MODEL" --data "$DATA/ml100k" --set device="${DEVICE:-cuda}" \
      --set epochs="$EPOCHS" --set learning_rate=0.005 --set deterministic=$setting \
      --out "$OUT/det-$setting-$rep" --no-progress > "$OUT/det-$setting-$rep.json" 2> "$OUT/det-$setting-$rep.err" \
      || echo "deterministic=$setting run $rep failed (see $OUT/det-$setting-$rep.err)"
  done
done
python3 - "$OUT" <<'PY'
import csv, json, sys
from pathlib import Path
out = Path(sys.argv[1])
speed = {}
for setting in ("false", "true"):
    logs = [list(csv.DictReader(open(out / f"det-{setting}-{r}" / "log.csv"))) for r in (1, 2)]
    same_loss = [a["loss"] for a in logs[0]] == [b["loss"] for b in logs[1]]
    same_valid = [a["valid_recall@20"] for a in logs[0]] == [b["valid_recall@20"] for b in logs[1]]
    speed[setting] = [json.load(open(out / f"det-{setting}-{r}.json"))["seconds_per_epoch"] for r in (1, 2)]
    print(f"deterministic={setting}: identical losses {same_loss}, identical valid R@20 {same_valid}; "
          f"last losses {logs[0][-1]['loss']} / {logs[1][-1]['loss']}; s/epoch {speed[setting]}")
ratio = min(speed["true"]) / min(speed["false"])
print(f"s/epoch deterministic / default: {ratio:.2f}")
PY
