"""LightGCN's propagation over the user-item graph, which the collaborative branch of most models shares."""

from __future__ import annotations

import torch

CPU_COLUMN_BLOCK = 32
"""Columns of the embeddings propagated together on the CPU. Each edge reads one row of the input, and at
Amazon Clothing's size (62k nodes) 64-column rows miss the cache far more often than 32-column ones: blocks of
32 made a two-layer propagation, forward and backward, 1.5x faster there, 1.1x at Baby's size and level on
ML-100K and the bundled catalogue (``benchmarks/bench_propagation.py``, docs/benchmarks.md). Each output
element is the same sum over the same edges in the same order either way."""


class SymmetricSparseProduct(torch.autograd.Function):
    r""":math:`Y = \hat A X` for a symmetric sparse :math:`\hat A` (CSR or COO) and a dense :math:`X`.

    The gradient with respect to :math:`X` is :math:`\hat A^\top G = \hat A G`: the forward's own product,
    where ``torch.sparse.mm``'s backward transposes the sparse tensor at every call (on ML-100K that
    transpose was two thirds of a propagation's forward and backward). Only for matrices that are symmetric
    by construction, such as :math:`D^{-1/2} A D^{-1/2}` of a bipartite graph; no gradient reaches
    :math:`\hat A`.
    """

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.adjacency = adjacency
        return torch.sparse.mm(adjacency, dense)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:  # type: ignore[override]
        return None, torch.sparse.mm(ctx.adjacency, grad)


def propagate(
    adjacency: torch.Tensor, embeddings: torch.Tensor, n_layers: int, symmetric: bool = False
) -> torch.Tensor:
    r"""Mean of :math:`E^{(0)}, \dots, E^{(L)}` with :math:`E^{(l+1)} = \hat A E^{(l)}`; on the CPU in blocks of
    :data:`CPU_COLUMN_BLOCK` columns, which gives the same numbers faster. ``symmetric=True`` (for
    :math:`D^{-1/2} A D^{-1/2}`, pruned or not, never for a row-normalised :math:`D^{-1}(A + I)`) back-propagates
    with :class:`SymmetricSparseProduct`."""
    if n_layers == 0:
        return embeddings
    blocks = (embeddings,)
    if embeddings.device.type == "cpu" and embeddings.shape[1] > CPU_COLUMN_BLOCK:
        blocks = embeddings.split(CPU_COLUMN_BLOCK, dim=1)
    product = SymmetricSparseProduct.apply if symmetric else torch.sparse.mm
    out = []
    for block in blocks:
        layers = [block]
        for _ in range(n_layers):
            layers.append(product(adjacency, layers[-1]))
        out.append(torch.stack(layers, dim=0).mean(dim=0))
    return out[0] if len(out) == 1 else torch.cat(out, dim=1)


def collaborative_embeddings(
    adjacency: torch.Tensor, users: torch.Tensor, items: torch.Tensor, n_layers: int, symmetric: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """LightGCN over :math:`E^{(0)} = [E_u; E_i]`, split back into users ``[M, d]`` and items ``[N, d]``;
    ``symmetric`` as in :func:`propagate` (True for the graph of ``Recommender.init_user_item_graph``)."""
    out = propagate(adjacency, torch.cat([users, items], dim=0), n_layers, symmetric)
    return out[: users.shape[0]], out[users.shape[0] :]
