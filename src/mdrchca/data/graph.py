"""Graph matrices shared by the graph models."""

from __future__ import annotations

import warnings

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


def mean_normalized_adjacency(interactions: sp.spmatrix, self_loops: bool = True) -> sp.csr_matrix:
    r"""The row-normalised bipartite adjacency of NGCF / LATTICE / MICRO (users first, then items):

    .. math:: \hat A = D^{-1} (A + I), \qquad D = \operatorname{diag}\big((A + I)\mathbf 1\big)

    (``self_loops=False`` drops the :math:`I`, giving MMGCN's mean aggregation over neighbours).
    """
    R = sp.csr_matrix(interactions, dtype=np.float32)
    R.data[:] = 1.0
    A = sp.bmat([[None, R], [R.T, None]], format="csr", dtype=np.float32)
    if self_loops:
        A = A + sp.eye(A.shape[0], dtype=np.float32, format="csr")
    degree = np.asarray(A.sum(axis=1)).ravel()
    inv = np.zeros_like(degree)
    inv[degree > 0] = 1.0 / degree[degree > 0]
    return (sp.diags(inv) @ A).tocsr().astype(np.float32)


def degree_sensitive_sample(
    edge_users: np.ndarray, edge_items: np.ndarray, keep: int, generator: torch.Generator | None = None
) -> np.ndarray:
    r"""Positions of ``keep`` edges drawn without replacement with probability proportional to
    :math:`1/\sqrt{d_u d_i}` (FREEDOM's degree-sensitive pruning keeps edges of rare nodes more often)."""
    degree_u = np.bincount(edge_users).astype(np.float64)
    degree_i = np.bincount(edge_items).astype(np.float64)
    weights = torch.from_numpy(1.0 / np.sqrt(degree_u[edge_users] * degree_i[edge_items]))
    return torch.multinomial(weights, keep, replacement=False, generator=generator).numpy()


def to_torch_sparse(matrix: sp.spmatrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """A SciPy sparse matrix as a torch sparse CSR tensor, usable with ``torch.sparse.mm`` (and its gradient with
    respect to the dense operand). CSR rather than COO: a propagation over a user-item graph, forward and backward,
    is faster (``benchmarks/bench_propagation.py``, docs/benchmarks.md)."""
    csr = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    csr.sum_duplicates()
    csr.sort_indices()
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state", at every tensor made
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(csr.data),
            size=csr.shape,
            device=device,
            check_invariants=False,  # built from a canonical SciPy CSR matrix
        )


def pruned_adjacency(
    edge_users: np.ndarray, edge_items: np.ndarray, n_users: int, n_items: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """:func:`symmetric_normalized_adjacency` of the graph made of the given (user, item) edges only, as a
    torch sparse tensor (the training graph of a model that prunes edges each epoch)."""
    kept = sp.csr_matrix(
        (np.ones(len(edge_users), dtype=np.float32), (edge_users, edge_items)), shape=(n_users, n_items)
    )
    return to_torch_sparse(symmetric_normalized_adjacency(kept), device)


def degree_sensitive_dropout_adjacency(
    edges: np.ndarray, share: float, n_users: int, n_items: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The training graph of one epoch under FREEDOM's degree-sensitive edge pruning: ``edges`` ``[2, E]``
    (user row, item row) with a ``share`` of them dropped by :func:`degree_sensitive_sample` (edges of rare
    users and items are kept more often), renormalised by :func:`pruned_adjacency`."""
    keep = int(edges.shape[1] * (1.0 - share))
    rows, cols = edges[:, degree_sensitive_sample(edges[0], edges[1], keep)]
    return pruned_adjacency(rows, cols, n_users, n_items, device)
