"""How much MDR-CHCA's confidence screen swings, from finished runs' ``log.csv``.

Usage: python benchmarks/screen_swing.py RUN [RUN ...] [--after 5]

For each run folder: the largest change of each screen share (``pos_share``, ``noisy_share``,
``unused_share``) from one epoch to the next after epoch ``--after`` (issue 21's goal: at most 0.2), whether
every epoch kept three classes (an unused share above 0 and theta_neg below theta_pos), and L_conf at the
first, the best and the last epoch.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

SHARES = ("pos_share", "noisy_share", "unused_share")


def swing(run: Path, after: int) -> str:
    for name in ("log.csv", "metrics.json"):
        if not (run / name).is_file():
            raise SystemExit(f"error: {run / name}: missing; pass the folder of a finished MDR-CHCA run")
    rows = list(csv.DictReader((run / "log.csv").open()))
    best = json.loads((run / "metrics.json").read_text())["best_epoch"]
    parts = []
    for share in SHARES:
        values = [float(row[share]) for row in rows]
        largest = max((abs(values[i + 1] - values[i]) for i in range(after, len(values) - 1)), default=float("nan"))
        parts.append(f"{share.split('_')[0]} {largest:.3f}")
    three = all(float(r["unused_share"]) > 0 and float(r["theta_neg"]) < float(r["theta_pos"]) for r in rows)
    conf = [float(row["loss_conf"]) for row in rows]
    return (
        f"{run.name}: {' '.join(parts)}; three classes every epoch: {three}; "
        f"L_conf epoch 1 {conf[0]:.3f}, best epoch {best} {conf[best - 1]:.3f}, last {conf[-1]:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--after", type=int, default=5, help="first epoch whose change to the next counts")
    args = parser.parse_args()
    for run in args.runs:
        print(swing(run, args.after))


if __name__ == "__main__":
    main()
