"""Full-ranking evaluation time against a bare ``scores = U @ I.T; topk`` of the same shape.

Usage: python benchmarks/bench_evaluation.py [DATASET_DIR] [--repeats N]
       python benchmarks/bench_evaluation.py --size clothing --block     # the CPU score block on and off

Default dataset: ../shared/datasets/amazon-baby when present, else the bundled catalogue. Both timings
use the same random user / item embeddings, the same user batches and the same K, in the same process.
The ratio (ours / bare) is the overhead of masking training items, tie-exact top-K, hit lookup and
metric computation.

``--block`` times the evaluation itself with the CPU's cap on the scores per batch
(``evaluator.CPU_SCORE_BLOCK``, since session 14) against the plain ``--batch-size`` batches, alternating, one
thread; ``--size`` uses a synthetic catalogue of an Amazon dataset's size (``bench_epoch_cost.synthetic``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from bench_epoch_cost import AMAZON_SIZES, synthetic
from mdrchca.data import load_dataset
from mdrchca.evaluation import Evaluator
from mdrchca.evaluation import evaluator as evaluator_module


class FixedEmbeddings(nn.Module):
    def __init__(self, users: torch.Tensor, items: torch.Tensor) -> None:
        super().__init__()
        self.users, self.items = nn.Parameter(users), nn.Parameter(items)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.users[users] @ self.items.T


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "amazon-baby"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(default) if default.exists() else None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument(
        "--size", choices=sorted(AMAZON_SIZES), help="a synthetic catalogue of this size instead of DATA"
    )
    parser.add_argument("--block", action="store_true", help="the CPU score block on against off")
    args = parser.parse_args()

    torch.set_num_threads(1)
    data = synthetic(*AMAZON_SIZES[args.size], 1, 1, 8) if args.size else load_dataset(args.data)
    torch.manual_seed(0)
    model = FixedEmbeddings(torch.randn(data.n_users, 64), torch.randn(data.n_items, 64)).requires_grad_(False)
    evaluator = Evaluator(data, (10, 20, 50), batch_size=args.batch_size)
    users = torch.as_tensor(data.eval_users("test"))
    k = 50

    def bare() -> None:
        with torch.no_grad():
            for start in range(0, len(users), args.batch_size):
                scores = model.users[users[start : start + args.batch_size]] @ model.items.T
                torch.topk(scores, k)

    def ours() -> None:
        evaluator.evaluate(model, "test")

    if args.block:
        capped = evaluator_module.CPU_SCORE_BLOCK
        times: dict[str, list[float]] = {"block": [], "plain": []}
        results = {}
        for _ in range(args.repeats):
            for name, block in (("block", capped), ("plain", 1 << 62)):
                evaluator_module.CPU_SCORE_BLOCK = block
                t0 = time.perf_counter()
                results[name] = evaluator.evaluate(model, "test")
                times[name].append(time.perf_counter() - t0)
        assert results["block"] == results["plain"], "the ranking depends on the batch"
        rows = max(1, min(args.batch_size, capped // data.n_items))
        plain, block = statistics.median(times["plain"]), statistics.median(times["block"])
        print(
            f"{args.size or data.name}: {len(users)} test users x {data.n_items} items, one thread, median of "
            f"{args.repeats}: batches of {args.batch_size} users {plain:.2f} s, of {rows} users (block of "
            f"{capped:,} scores) {block:.2f} s, speed-up {plain / block:.2f}x, the same metrics"
        )
        return

    timings: dict[str, list[float]] = {"bare": [], "ours": []}
    bare(), ours()  # warm-up
    for _ in range(args.repeats):
        for name, fn in (("bare", bare), ("ours", ours)):
            t0 = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(v) for name, v in timings.items()}
    print(
        f"dataset {data.name}: {len(users)} test users x {data.n_items} items, K={k}, "
        f"batch {args.batch_size}, {torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(f"bare U@I.T + topk : {med['bare'] * 1000:8.1f} ms")
    print(f"mdrchca evaluate  : {med['ours'] * 1000:8.1f} ms")
    print(f"ratio ours / bare : {med['ours'] / med['bare']:8.2f}")


if __name__ == "__main__":
    main()
