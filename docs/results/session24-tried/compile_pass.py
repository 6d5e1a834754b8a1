"""``torch.compile`` (inductor, dynamic shapes) of the short scoring pass on the CPU, one thread, ML-100K tokens.

Usage: python docs/results/session24-tried/compile_pass.py [DATA]   (default data/ml100k-64)

Trains one epoch, then times the pass over every film (``MDRCHCA._fused_in_chunks`` without gradients) eager, the
first compiled pass (compilation included), the compiled pass, and eager again (best of three each), and prints the
largest difference of the compiled content from the eager one.
"""

from __future__ import annotations

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
    trainer = cpu_trainer("mdrchca", load_dataset(sys.argv[1] if len(sys.argv) > 1 else "data/ml100k-64"), "epochs=2")
    trainer.epoch = 1
    trainer.train_epoch()
    model, branch = trainer.model, trainer.model.content_branch
    items = torch.arange(model.n_items)

    def run() -> torch.Tensor:
        with torch.no_grad():
            return model._fused_in_chunks(items, model._graph_context())

    def best_of_three() -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return min(times)

    eager = run()
    print(f"eager pass {best_of_three():.3f} s")
    plain = branch.fused_content
    branch.fused_content = torch.compile(plain, dynamic=True)
    start = time.perf_counter()
    compiled = run()
    print(f"first compiled pass (compilation included) {time.perf_counter() - start:.1f} s")
    print(f"largest difference from eager {(compiled - eager).abs().max().item():.2e}")
    print(f"compiled pass {best_of_three():.3f} s")
    branch.fused_content = plain
    print(f"eager pass again {best_of_three():.3f} s")


if __name__ == "__main__":
    main()
