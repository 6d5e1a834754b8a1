import numpy as np
import pytest
import torch

from mdrchca.models.components.knn_graph import ModalityGraphConv, knn_adjacency, knn_indices, token_knn_adjacency


def test_knn_indices_by_hand() -> None:
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.0, 0.0]])
    idx = knn_indices(x, 1)
    assert idx[:4, 0].tolist() == [1, 0, 3, 2]
    assert idx[4, 0] == -1  # an item without this modality gets no edge


def test_knn_adjacency_is_symmetric_normalised() -> None:
    x = np.random.default_rng(0).normal(size=(30, 5))
    A = knn_adjacency(x, 4).toarray()
    S = (A > 0).astype(float)
    assert (S.sum(1) == 4).all() and np.all(np.diag(S) == 0)
    d = S.sum(1)
    np.testing.assert_allclose(A, S / np.sqrt(np.outer(d, d)), rtol=1e-6)


def test_graph_conv_by_hand() -> None:
    conv = ModalityGraphConv(2, n_layers=1)
    with torch.no_grad():
        conv.layers[0].weight.copy_(torch.eye(2))
    A = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).to_sparse()
    h = torch.tensor([[1.0, -2.0], [3.0, 4.0]])
    torch.testing.assert_close(conv(A, h), torch.tensor([[3.0, 4.0], [1.0, 0.0]]))


def test_token_knn_adjacency_respects_padding() -> None:
    tokens = torch.randn(2, 5, 3)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    A = token_knn_adjacency(tokens, mask, 2)
    assert torch.all(A[0, 3:] == 0) and torch.all(A[0, :, 3:] == 0)
    assert torch.all(torch.diagonal(A, dim1=1, dim2=2) == 0)
    assert ((A[1] > 0).sum(-1) == 2).all()


@pytest.mark.parametrize("n_layers", [0, 1, 2])
def test_graph_conv_rows_equal_the_whole_graphs_rows_with_their_gradients(n_layers: int) -> None:
    import scipy.sparse as sp

    from mdrchca.data.graph import to_torch_sparse

    torch.manual_seed(0)
    adjacency = to_torch_sparse(sp.random(30, 30, density=0.1, random_state=4, format="csr"))
    conv = ModalityGraphConv(6, n_layers)
    inputs = torch.randn(30, 6, requires_grad=True)
    rows = torch.tensor([7, 2, 29, 2])  # any order, repeats allowed
    weights = torch.randn(len(rows), 6)
    whole = conv(adjacency, inputs)[rows]
    (whole * weights).sum().backward()
    expected_grads = [inputs.grad.clone(), *(p.grad.clone() for p in conv.parameters())]
    inputs.grad = None
    conv.zero_grad()
    part = conv.rows(adjacency, lambda index: inputs[index], rows)
    (part * weights).sum().backward()
    torch.testing.assert_close(part, whole)
    for got, expected in zip([inputs.grad, *(p.grad for p in conv.parameters())], expected_grads, strict=True):
        torch.testing.assert_close(got, expected)
