"""MDR-CHCA's epoch with validation, ``torch.set_flush_denormal`` off and on, alternated in one process.

Usage: python docs/results/session24-tried/flush_denormal.py [DATA] [ROUNDS]   (default data/ml100k-64, 6)

One trainer, one thread, one warm-up epoch; then each round one epoch (training and validation) with denormals
kept, one with them flushed to zero. Prints each round's seconds and the median speed-up of flushing.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_epoch_cost import cpu_trainer  # noqa: E402
from mdrchca.data import load_dataset  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    data = load_dataset(sys.argv[1] if len(sys.argv) > 1 else "data/ml100k-64")
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    trainer = cpu_trainer("mdrchca", data, f"epochs={2 * rounds + 1}")
    trainer.epoch = 0

    def epoch() -> float:
        trainer.epoch += 1
        start = time.perf_counter()
        trainer.train_epoch()
        trainer.evaluator.evaluate(trainer.model, "valid")
        return time.perf_counter() - start

    epoch()
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for flush in (False, True):
            torch.set_flush_denormal(flush)
            seconds[flush].append(epoch())
    print({("flushed" if k else "kept"): [round(x, 3) for x in v] for k, v in seconds.items()})
    speedups = [kept / flushed for kept, flushed in zip(seconds[False], seconds[True], strict=True)]
    print(f"speed-up with denormals flushed: {statistics.median(speedups):.3f} (median by round)")


if __name__ == "__main__":
    main()
