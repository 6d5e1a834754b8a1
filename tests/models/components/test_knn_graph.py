import numpy as np
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
