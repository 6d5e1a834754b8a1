"""LightGCN propagation over a user-item graph, forward and backward, in the forms a model could use: ratios
measured in one process, one thread, the forms alternating so that a busy machine slows them alike.

- ``coo``: ``torch.sparse.mm`` on a coalesced COO tensor, one product over all columns (before session 10);
- ``csr``: ``torch.sparse.mm`` on the CSR tensor the models hold (``data.graph.to_torch_sparse``), whose
  backward transposes the CSR tensor at every call (sessions 10-13);
- ``symmetric``: :class:`~mdrchca.models.components.propagation.SymmetricSparseProduct` (the backward is the
  forward's own product), one product over all columns;
- ``blocked``: what the models run since session 14 (``propagate``): the symmetric product in blocks of
  ``CPU_COLUMN_BLOCK`` columns.

Every form is checked against ``csr``: the same outputs bit for bit, the gradients within 1e-6.

    python benchmarks/bench_propagation.py --data data/ml100k-64 --repeats 20
    python benchmarks/bench_propagation.py --size clothing
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from bench_epoch_cost import AMAZON_SIZES, synthetic
from mdrchca.data import load_dataset
from mdrchca.data.graph import symmetric_normalized_adjacency, to_torch_sparse
from mdrchca.models.components.propagation import SymmetricSparseProduct, propagate


def one_product(product: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable:
    def run(adjacency: torch.Tensor, embeddings: torch.Tensor, n_layers: int) -> torch.Tensor:
        layers = [embeddings]
        for _ in range(n_layers):
            layers.append(product(adjacency, layers[-1]))
        return torch.stack(layers, dim=0).mean(dim=0)

    return run


FORMS = {
    "coo": one_product(torch.sparse.mm),
    "csr": one_product(torch.sparse.mm),
    "symmetric": one_product(SymmetricSparseProduct.apply),
    "blocked": lambda adjacency, embeddings, n_layers: propagate(adjacency, embeddings, n_layers, symmetric=True),
}


def timed(form: Callable, adjacency: torch.Tensor, embeddings: torch.Tensor, layers: int) -> tuple[float, float]:
    """(forward, forward + backward) seconds of one propagation and the gradient of a weighted sum."""
    embeddings.grad = None
    start = time.perf_counter()
    out = form(adjacency, embeddings, layers)
    middle = time.perf_counter()
    out.pow(2).sum().backward()
    return middle - start, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="a dataset folder: its training graph")
    source.add_argument(
        "--size", choices=sorted(AMAZON_SIZES), help="a synthetic graph of this Amazon catalogue's size"
    )
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = load_dataset(args.data) if args.data else synthetic(*AMAZON_SIZES[args.size], 1, 1, 8)
    csr = to_torch_sparse(symmetric_normalized_adjacency(dataset.matrix("train")))
    graphs = {"coo": csr.to_sparse_coo().coalesce()}
    embeddings = torch.randn(dataset.n_users + dataset.n_items, args.dim, requires_grad=True)
    reference = FORMS["csr"](csr, embeddings, args.layers)
    reference.pow(2).sum().backward()
    reference_grad = embeddings.grad.clone()
    for name, form in FORMS.items():
        embeddings.grad = None
        out = form(graphs.get(name, csr), embeddings, args.layers)
        out.pow(2).sum().backward()
        if name != "coo" and not torch.equal(out, reference):
            raise SystemExit(f"{name}: the output differs from csr's")
        torch.testing.assert_close(embeddings.grad, reference_grad, rtol=1e-5, atol=1e-6)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in FORMS}
    for _ in range(args.repeats):
        for name, form in FORMS.items():
            times[name].append(timed(form, graphs.get(name, csr), embeddings, args.layers))
    label = args.data or f"{args.size}-sized synthetic"
    print(
        f"{label}: {dataset.n_users + dataset.n_items} nodes, {csr._nnz()} edges, d {args.dim}, "
        f"{args.layers} layers, median of {args.repeats}, one thread"
    )
    base = statistics.median(t[1] for t in times["csr"])
    for name, values in times.items():
        forward = 1000 * statistics.median(t[0] for t in values)
        both = statistics.median(t[1] for t in values)
        print(f"  {name:10s} forward {forward:7.1f} ms   forward + backward {1000 * both:7.1f} ms", end="")
        print(f"   csr / this {base / both:.2f}")


if __name__ == "__main__":
    main()
