"""MDR-CHCA's training step with the item graph context of the step's items only (session 14) against the
context of every item, indexed afterwards (before): one process, one thread, the two alternating step by step.

Usage: python benchmarks/bench_graph_context.py [--size baby|clothing] [--steps 16]

``graph_scope=item`` (the default) adds to each token and region of an item the output of a graph convolution
over the modality's item kNN graph, ReLU(Ŝ (P x) W). A step needs it for the few items whose content it
recomputes; ``ModalityGraphConv.rows`` computes it from those items' neighbourhoods, where the whole-graph form
projects and propagates every item of the catalogue, forward and backward, at every step. The whole-graph form is
restored here by wrapping ``graph_context`` (the same model, weights and batches); the two give the same context
rows (``tests/models/components/test_knn_graph.py``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from bench_epoch_cost import AMAZON_SIZES, synthetic
from mdrchca.config import Config
from mdrchca.data.sampler import BPRSampler
from mdrchca.models.base import Batch
from mdrchca.training.trainer import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(AMAZON_SIZES), default="clothing")
    parser.add_argument("--steps", type=int, default=16)
    args = parser.parse_args()

    torch.set_num_threads(1)
    data = synthetic(*AMAZON_SIZES[args.size], 64, 64, 64)
    model = build_model(Config.load("mdrchca"), data)
    model.train()
    model.on_epoch_start(1)
    branch = model.content_branch
    rows_only = branch.graph_context

    def whole_graph(items: torch.Tensor | None = None) -> tuple:
        text, region = rows_only(None)
        return (text, region) if items is None else (text[items], region[items])

    batches = BPRSampler(data.train, data.n_items, seed=0).epoch(2048)
    times: dict[str, list[float]] = {"whole graph": [], "rows only": []}
    for _ in range(args.steps):
        for name, context in (("whole graph", whole_graph), ("rows only", rows_only)):
            branch.graph_context = context
            users, pos, neg = (torch.as_tensor(np.asarray(t)) for t in next(batches))
            start = time.perf_counter()
            model.loss(Batch(users, pos, neg)).backward()
            model.zero_grad(set_to_none=True)
            times[name].append(time.perf_counter() - start)
    before, after = (statistics.median(times[k][2:]) for k in ("whole graph", "rows only"))
    print(
        f"{args.size}-sized synthetic ({data.n_items} items), loss forward + backward per step, median of "
        f"{args.steps - 2}: whole graph {1000 * before:.1f} ms, rows only {1000 * after:.1f} ms, "
        f"speed-up {before / after:.2f}x"
    )


if __name__ == "__main__":
    main()
