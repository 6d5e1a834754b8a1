"""LightGCN propagation over a user-item graph, forward and backward, with the adjacency as a sparse COO tensor
against the CSR tensor the models use (``data.graph.to_torch_sparse``): a ratio measured in one process, one
thread, both layouts alternating so that a busy machine slows both alike.

    python benchmarks/bench_propagation.py --data data/ml100k-64 --repeats 20
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mdrchca.data import load_dataset
from mdrchca.data.graph import symmetric_normalized_adjacency, to_torch_sparse
from mdrchca.models.components.propagation import propagate


def seconds(adjacency: torch.Tensor, embeddings: torch.Tensor, layers: int) -> float:
    start = time.perf_counter()
    propagate(adjacency, embeddings, layers).pow(2).sum().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = load_dataset(args.data)
    matrix = symmetric_normalized_adjacency(dataset.matrix("train"))
    csr = to_torch_sparse(matrix)
    coo = csr.to_sparse_coo().coalesce()
    embeddings = torch.randn(dataset.n_users + dataset.n_items, args.dim, requires_grad=True)
    times: dict[str, list[float]] = {"coo": [], "csr": []}
    for _ in range(args.repeats):
        for name, adjacency in (("coo", coo), ("csr", csr)):
            times[name].append(seconds(adjacency, embeddings, args.layers))
    coo_ms, csr_ms = (1000 * statistics.median(times[k]) for k in ("coo", "csr"))
    print(
        f"{dataset.name}: {dataset.n_users + dataset.n_items} nodes, {csr._nnz()} edges, d {args.dim}, "
        f"{args.layers} layers, forward + backward, median of {args.repeats}: "
        f"COO {coo_ms:.1f} ms, CSR {csr_ms:.1f} ms, CSR / COO {csr_ms / coo_ms:.2f}"
    )


if __name__ == "__main__":
    main()
