import numpy as np
import scipy.sparse as sp
import torch

from mdrchca.data.graph import symmetric_normalized_adjacency, to_torch_sparse


def test_normalized_adjacency_by_hand() -> None:
    # user 0 - items 0, 1; user 1 - item 1; item 2 isolated.
    R = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))
    A = symmetric_normalized_adjacency(R).toarray()
    # node order: u0, u1, i0, i1, i2; degrees 2, 1, 1, 2, 0
    expected = np.zeros((5, 5))
    expected[0, 2] = expected[2, 0] = 1 / np.sqrt(2 * 1)
    expected[0, 3] = expected[3, 0] = 1 / np.sqrt(2 * 2)
    expected[1, 3] = expected[3, 1] = 1 / np.sqrt(1 * 2)
    np.testing.assert_allclose(A, expected, rtol=1e-6)
    assert np.isfinite(A).all()


def test_torch_sparse_matches_scipy() -> None:
    R = sp.random(7, 5, density=0.4, random_state=0, format="csr")
    A = symmetric_normalized_adjacency(R)
    T = to_torch_sparse(A)
    x = torch.randn(12, 3)
    np.testing.assert_allclose(torch.sparse.mm(T, x).numpy(), A @ x.numpy(), rtol=1e-5, atol=1e-6)


def test_degree_sensitive_sample_favours_edges_of_rare_nodes() -> None:
    import numpy as np
    import torch

    from mdrchca.data.graph import degree_sensitive_sample

    users = np.array([0, 0, 0, 1])
    items = np.array([0, 1, 2, 3])
    generator = torch.Generator().manual_seed(0)
    draws = np.array([degree_sensitive_sample(users, items, 1, generator)[0] for _ in range(4000)])
    # weights 1/sqrt(d_u d_i): 1/sqrt(3) for user 0's edges, 1 for (1, 3) -> P = 1 / (1 + sqrt(3))
    assert abs((draws == 3).mean() - 1 / (1 + np.sqrt(3))) < 0.03
    both = degree_sensitive_sample(users, items, 4, generator)
    assert sorted(both.tolist()) == [0, 1, 2, 3]  # without replacement


def test_degree_sensitive_dropout_adjacency_is_the_normalised_graph_of_kept_training_edges() -> None:
    from mdrchca.data.graph import degree_sensitive_dropout_adjacency

    rng = np.random.default_rng(0)
    R = sp.random(6, 5, density=0.5, random_state=1, format="coo")
    edges = np.vstack([R.row, R.col]).astype(np.int64)
    torch.manual_seed(rng.integers(1000))
    pruned = degree_sensitive_dropout_adjacency(edges, 0.3, 6, 5).to_dense().numpy()
    kept_block = pruned[:6, 6:] != 0
    assert kept_block.sum() == int(edges.shape[1] * 0.7)
    assert not (kept_block & (R.toarray() == 0)).any()  # only training edges survive
    users, items = np.nonzero(kept_block)
    kept = sp.csr_matrix((np.ones(len(users)), (users, items)), shape=(6, 5))
    np.testing.assert_allclose(pruned, symmetric_normalized_adjacency(kept).toarray(), rtol=1e-6)


def test_normalised_graphs_are_exactly_symmetric() -> None:
    # propagation's backward uses A G for A^T G (models.components.propagation.SymmetricSparseProduct)
    from mdrchca.data.graph import pruned_adjacency

    R = sp.random(40, 30, density=0.2, random_state=5, format="csr")
    A = symmetric_normalized_adjacency(R)
    assert (A != A.T).nnz == 0
    rows, cols = R.nonzero()
    pruned = pruned_adjacency(rows[::2], cols[::2], 40, 30).to_dense()
    assert torch.equal(pruned, pruned.T)
