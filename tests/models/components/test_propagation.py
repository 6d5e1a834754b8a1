import scipy.sparse as sp
import torch

from mdrchca.data.graph import symmetric_normalized_adjacency, to_torch_sparse
from mdrchca.models.components.propagation import CPU_COLUMN_BLOCK, SymmetricSparseProduct, propagate


def _graph(seed: int = 0, users: int = 9, items: int = 7) -> torch.Tensor:
    R = sp.random(users, items, density=0.35, random_state=seed, format="csr")
    return to_torch_sparse(symmetric_normalized_adjacency(R))


def test_symmetric_product_passes_a_gradient_check_in_float64() -> None:
    adjacency = _graph().to(torch.float64)
    dense = torch.randn(16, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: SymmetricSparseProduct.apply(adjacency, x), (dense,))


def test_symmetric_product_gradient_is_the_transpose_product() -> None:
    # a hand-made symmetric 3 x 3 graph: the gradient of sum(W * (A X)) is A^T W = A W
    A = torch.tensor([[0.0, 0.5, 0.0], [0.5, 0.0, 0.25], [0.0, 0.25, 0.0]])
    X = torch.randn(3, 2, requires_grad=True)
    W = torch.tensor([[1.0, 0.0], [2.0, -1.0], [0.0, 3.0]])
    (SymmetricSparseProduct.apply(A.to_sparse_csr(), X) * W).sum().backward()
    torch.testing.assert_close(X.grad, A.T @ W)


def test_blocked_propagation_gives_the_same_numbers_as_one_product_over_all_columns() -> None:
    adjacency = _graph(seed=3)
    width = 2 * CPU_COLUMN_BLOCK + 5  # two full blocks and a short one
    embeddings = torch.randn(16, width, requires_grad=True)
    weights = torch.randn(16, width)
    (propagate(adjacency, embeddings, 2, symmetric=True) * weights).sum().backward()
    dense = adjacency.to_dense()
    expected = (embeddings + dense @ embeddings + dense @ dense @ embeddings) / 3
    reference = embeddings.detach().clone().requires_grad_(True)
    (((reference + dense @ reference + dense @ dense @ reference) / 3) * weights).sum().backward()
    layers = [embeddings.detach()]
    for _ in range(2):
        layers.append(torch.sparse.mm(adjacency, layers[-1]))
    assert torch.equal(
        propagate(adjacency, embeddings, 2, symmetric=True), torch.stack(layers).mean(0)
    )  # same sums, same order
    torch.testing.assert_close(propagate(adjacency, embeddings, 2, symmetric=True), expected)
    torch.testing.assert_close(embeddings.grad, reference.grad)


def test_zero_layers_return_the_embeddings() -> None:
    embeddings = torch.randn(16, 4)
    assert torch.equal(propagate(_graph(), embeddings, 0), embeddings)


def test_a_row_normalised_graph_keeps_the_transposed_gradient() -> None:
    # LATTICE's D^{-1}(A + I) is not symmetric: without symmetric=True the gradient is A^T G, not A G
    import numpy as np

    from mdrchca.data.graph import mean_normalized_adjacency

    matrix = mean_normalized_adjacency(sp.random(9, 7, density=0.35, random_state=1, format="csr"))
    assert abs(matrix - matrix.T).max() > 0.05
    adjacency = to_torch_sparse(matrix)
    embeddings = torch.randn(16, 2 * CPU_COLUMN_BLOCK, requires_grad=True)
    weights = torch.randn(16, 2 * CPU_COLUMN_BLOCK)
    (propagate(adjacency, embeddings, 1) * weights).sum().backward()
    dense = torch.from_numpy(np.asarray(matrix.todense()))
    torch.testing.assert_close(embeddings.grad, (weights + dense.T @ weights) / 2)
