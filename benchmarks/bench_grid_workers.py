"""Wall time of one grid run with 1 and with 2 worker processes (and 1 worker with 2 threads), same machine.

Usage: python benchmarks/bench_grid_workers.py [--data DATASET] [--model lightgcn] [--runs 4] [--epochs 30]

The grid is ``--runs`` seeds of ``--model`` with ``epochs`` fixed and early stopping off (``patience`` above
``epochs``), so every run does the same work. Each configuration starts from an empty output folder (no run
is reused) and is timed from the command's start to its end, worker start-up included. The reference is one
worker with one thread, measured in the same invocation; the speed-ups are ratios against it. Without
``--data`` a catalogue is generated (3,000 users, 1,000 items).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import mdrchca.models  # noqa: F401  (registers the models)
from mdrchca.data.synthetic import SyntheticSpec, generate
from mdrchca.experiments.grid import GridOptions, RunSpec, run_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="dataset folder or .inter file (default: generated)")
    parser.add_argument("--model", default="lightgcn")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or str(generate(Path(tmp) / "catalogue", SyntheticSpec(n_users=3000, n_items=1000, seed=1)))
        overrides = (f"epochs={args.epochs}", f"patience={args.epochs + 1}")
        specs = [RunSpec(args.model, data, seed, overrides) for seed in range(1, args.runs + 1)]
        cases = {"1 worker x 1 thread": (1, 1), "2 workers x 1 thread": (2, 1), "1 worker x 2 threads": (1, 2)}
        seconds = {}
        for name, (workers, threads) in cases.items():
            out = Path(tmp) / name.replace(" ", "_")
            start = time.perf_counter()
            result = run_grid(specs, out, GridOptions(workers=workers, threads=threads, progress=False))
            seconds[name] = time.perf_counter() - start
            assert len(result.frame) == len(specs) and not result.failed, result.failed
        reference = seconds["1 worker x 1 thread"]
        report = {
            "model": args.model,
            "runs": args.runs,
            "epochs": args.epochs,
            "data": args.data or "generated 3000 x 1000",
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "speed_up_vs_1x1": {k: round(reference / v, 2) for k, v in seconds.items()},
        }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
