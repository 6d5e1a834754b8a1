"""Graph matrices shared by the graph models."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def symmetric_normalized_adjacency(interactions: sp.spmatrix) -> sp.csr_matrix:
    r"""The normalised bipartite adjacency of LightGCN.

    .. math::
        A = \begin{pmatrix} 0 & R \\ R^\top & 0 \end{pmatrix}, \qquad
        \hat A = D^{-1/2} A D^{-1/2}

    with users first (rows ``0..M-1``) and items after them. Nodes without an edge keep a zero row
    (no division by zero).
    """
    R = sp.csr_matrix(interactions, dtype=np.float32)
    R.data[:] = 1.0
    n_users, n_items = R.shape
    A = sp.bmat([[None, R], [R.T, None]], format="csr", dtype=np.float32)
    degree = np.asarray(A.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    nonzero = degree > 0
    inv_sqrt[nonzero] = degree[nonzero] ** -0.5
    D = sp.diags(inv_sqrt)
    return (D @ A @ D).tocsr().astype(np.float32)


def to_torch_sparse(matrix: sp.spmatrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """A SciPy sparse matrix as a torch sparse COO tensor (coalesced), usable with ``torch.sparse.mm``."""
    coo = sp.coo_matrix(matrix)
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    return torch.sparse_coo_tensor(indices, values, coo.shape, device=device, check_invariants=False).coalesce()
