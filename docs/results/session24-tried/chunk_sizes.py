"""The pass over every item without gradients at several ``content_chunk`` sizes, alternated in one process.

Usage: python docs/results/session24-tried/chunk_sizes.py [DATA] [ROUNDS]   (default data/ml100k-64, 11)

One trainer, one thread, one training epoch; then each round times the pass (``MDRCHCA._fused_in_chunks``) once at
each chunk size. Prints the median seconds by chunk size (64 is the CPU's default).
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

CHUNKS = (32, 64, 96, 128, 192, 256)


def main() -> None:
    torch.set_num_threads(1)
    path = sys.argv[1] if len(sys.argv) > 1 else "data/ml100k-64"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 11
    trainer = cpu_trainer("mdrchca", load_dataset(path), "epochs=2")
    trainer.epoch = 1
    trainer.train_epoch()
    model = trainer.model
    items = torch.arange(model.n_items)
    seconds: dict[int, list[float]] = {chunk: [] for chunk in CHUNKS}
    for _ in range(rounds):
        for chunk in CHUNKS:
            model.config.content_chunk = chunk
            with torch.no_grad():
                start = time.perf_counter()
                model._fused_in_chunks(items, model._graph_context())
                seconds[chunk].append(time.perf_counter() - start)
    print(path, {chunk: round(statistics.median(v), 4) for chunk, v in seconds.items()})


if __name__ == "__main__":
    main()
