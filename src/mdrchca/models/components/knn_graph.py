"""Item-item kNN graphs from modality features, and the per-modality graph convolution."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn


def _exact_search(unit: np.ndarray, k: int) -> np.ndarray:
    """Exact inner-product search of every row against all rows: faiss when installed, else torch in chunks."""
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None:
        index = faiss.IndexFlatIP(unit.shape[1])
        index.add(unit)
        return index.search(unit, k)[1]
    x = torch.from_numpy(unit)
    return torch.cat([(chunk @ x.T).topk(k, dim=1).indices for chunk in x.split(4096)]).numpy()


def knn_indices(vectors: np.ndarray, k: int) -> np.ndarray:
    """Indices ``[N, k]`` of each row's k most cosine-similar other rows (exact search).

    Rows with zero norm (an item without this modality) get ``-1`` everywhere: no edges.
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1)
    present = norms > 0
    out = np.full((len(x), k), -1, dtype=np.int64)
    rows = np.flatnonzero(present)
    k_eff = min(k, len(rows) - 1)
    if k_eff <= 0:
        return out
    unit = np.ascontiguousarray(x[rows] / norms[rows, None])
    found = _exact_search(unit, k_eff + 1)
    # drop each row's self match (normally first; with duplicate vectors it may be elsewhere)
    for r, neighbours in enumerate(found):
        keep = [rows[j] for j in neighbours if j != r and j >= 0][:k_eff]
        out[rows[r], : len(keep)] = keep
    return out


def knn_adjacency(vectors: np.ndarray, k: int = 10) -> sp.csr_matrix:
    r"""Normalised kNN graph :math:`\hat S = D^{-1/2} S D^{-1/2}` with :math:`S_{ij} = 1` when j is among the
    k nearest neighbours of i by cosine similarity (self excluded), D the row degrees of S."""
    n = len(vectors)
    neighbours = knn_indices(vectors, k)
    rows = np.repeat(np.arange(n), neighbours.shape[1])
    cols = neighbours.ravel()
    keep = cols >= 0
    S = sp.csr_matrix((np.ones(keep.sum(), dtype=np.float32), (rows[keep], cols[keep])), shape=(n, n))
    degree = np.asarray(S.sum(1)).ravel()
    inv = np.zeros_like(degree)
    inv[degree > 0] = degree[degree > 0] ** -0.5
    return (sp.diags(inv) @ S @ sp.diags(inv)).tocsr().astype(np.float32)


class ModalityGraphConv(nn.Module):
    r"""Graph convolution over an item kNN graph (the paper's *Multi-modal feature encoding and denoising*):

    .. math:: H^{(l+1)} = \mathrm{ReLU}\big(\hat S\, H^{(l)} W^{(l)}\big), \quad l = 0, \dots, L_m - 1

    ``adjacency`` is the normalised sparse :math:`\hat S`; with ``n_layers = 0`` the input is returned.
    """

    def __init__(self, dim: int, n_layers: int = 1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(n_layers))
        for layer in self.layers:
            nn.init.xavier_uniform_(layer.weight)

    def forward(self, adjacency: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            h = torch.relu(torch.sparse.mm(adjacency, layer(h)))
        return h

    def rows(
        self, adjacency: torch.Tensor, inputs: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor
    ) -> torch.Tensor:
        """``forward(adjacency, inputs(all rows))[rows]``, computed from the rows' :math:`L_m`-hop
        neighbourhood only: ``inputs(index)`` gives the input rows at ``index``. A training step that needs the
        graph's output for a few items then costs what their neighbourhoods cost, not the whole catalogue
        (on a CSR ``adjacency``; each output row is the same sum over the same neighbours in the same order)."""
        needed = [rows]
        for _ in self.layers:
            needed.append(torch.unique(_row_slice(adjacency, needed[-1])[0]))
        h = inputs(needed[-1])
        for depth, layer in enumerate(self.layers):
            targets, sources = needed[len(self.layers) - depth - 1], needed[len(self.layers) - depth]
            columns, values, crow = _row_slice(adjacency, targets)
            local = torch.searchsorted(sources, columns)
            block = torch.sparse_csr_tensor(
                crow, local, values, size=(len(targets), len(sources)), check_invariants=False
            )
            h = torch.relu(torch.sparse.mm(block, layer(h)))
        return h


def _row_slice(adjacency: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The column indices, values and row pointers of the CSR ``adjacency``'s ``rows`` (in that order)."""
    crow, col, values = adjacency.crow_indices(), adjacency.col_indices(), adjacency.values()
    starts, ends = crow[rows], crow[rows + 1]
    counts = ends - starts
    pointers = torch.zeros(len(rows) + 1, dtype=crow.dtype, device=crow.device)
    pointers[1:] = torch.cumsum(counts, 0)
    positions = torch.repeat_interleave(starts - pointers[:-1], counts) + torch.arange(
        int(pointers[-1]), device=crow.device
    )
    return col[positions], values[positions], pointers


def token_knn_adjacency(tokens: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    r"""Per-item kNN graphs among an item's own tokens (``graph_scope=token``), dense ``[B, L, L]``.

    :math:`S_{ab} = 1` when token b is among the k most cosine-similar other valid tokens of token a, then
    :math:`D^{-1/2} S D^{-1/2}` per item. Padding rows and columns are zero.
    """
    unit = nn.functional.normalize(tokens, dim=-1)
    sim = unit @ unit.transpose(1, 2)
    L = tokens.shape[1]
    invalid = ~(mask.unsqueeze(1) & mask.unsqueeze(2)) | torch.eye(L, dtype=torch.bool, device=tokens.device)
    sim = sim.masked_fill(invalid, -torch.inf)
    k_eff = max(1, min(k, L - 1))
    values, idx = sim.topk(k_eff, dim=-1)
    S = torch.zeros_like(sim).scatter(-1, idx, torch.isfinite(values).to(sim.dtype))
    S = S * mask.unsqueeze(2)
    degree = S.sum(-1)
    inv = torch.where(degree > 0, degree.clamp_min(1e-12).rsqrt(), torch.zeros_like(degree))
    return inv.unsqueeze(2) * S * inv.unsqueeze(1)


def cosine_topk(features: torch.Tensor, k: int, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Each row's k most cosine-similar rows, the row itself included (LATTICE's and MICRO's kNN):
    indices ``[N, k]`` and similarities ``[N, k]``, differentiable with respect to ``features``.

    .. math:: \mathcal N_k(i) = \operatorname{top-k}_j \frac{x_i^\top x_j}{\lVert x_i \rVert \lVert x_j \rVert}
    """
    unit = nn.functional.normalize(features, dim=-1)
    k = min(k, len(unit))
    found = [(rows @ unit.T).topk(k, dim=-1) for rows in unit.split(chunk)]
    return torch.cat([f.indices for f in found]), torch.cat([f.values for f in found])


def normalize_neighbour_weights(indices: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    r"""Symmetric normalisation of a graph in neighbour-list form (``indices``/``weights`` ``[N, K]``):
    :math:`\hat a_{ij} = d_i^{-1/2} a_{ij} d_j^{-1/2}` with :math:`d_i = \sum_j a_{ij}` (row sums)."""
    inv = weights.sum(1).clamp_min(1e-12).rsqrt()
    return inv.unsqueeze(1) * weights * inv[indices]


def neighbour_propagate(indices: torch.Tensor, weights: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    r""":math:`(A h)_i = \sum_k a_{ik}\, h_{j_{ik}}` for a graph in neighbour-list form."""
    return (weights.unsqueeze(-1) * h[indices]).sum(1)
