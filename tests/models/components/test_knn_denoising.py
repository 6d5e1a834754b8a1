import numpy as np
import torch

from mdrchca.models.components.denoising import SelfAttentionDenoiser
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


def test_denoiser_residual_coefficient_and_padding() -> None:
    torch.manual_seed(0)
    layer = SelfAttentionDenoiser(4, alpha_init=-50.0)  # a = sigmoid(-50) ~ 0: output = input
    tokens = torch.randn(2, 3, 4)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out = layer(tokens, mask)
    torch.testing.assert_close(out[0, :2], tokens[0, :2])
    assert torch.all(out[0, 2] == 0) and torch.all(out[1] == 0)  # padding and an empty item stay zero
    layer.alpha.data.fill_(50.0)  # a ~ 1: pure self-attention
    q, k, v = layer.query(tokens[0, :2]), layer.key(tokens[0, :2]), layer.value(tokens[0, :2])
    expected = torch.softmax(q @ k.T / 2.0, -1) @ v
    torch.testing.assert_close(layer(tokens, mask)[0, :2], expected)
    out.sum().backward()
    assert layer.alpha.grad is not None


def test_denoiser_gradient_check_and_an_empty_item_has_finite_gradients() -> None:
    torch.manual_seed(1)
    layer = SelfAttentionDenoiser(6, alpha_init=0.3).double()
    tokens = torch.randn(3, 5, 6, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False], [False] * 5])
    q, k, v = layer.query(tokens), layer.key(tokens), layer.value(tokens)
    logits = (q @ k.transpose(1, 2) / 6**0.5).masked_fill(~mask.unsqueeze(1), -torch.inf)
    weights = torch.softmax(logits, -1).nan_to_num(0.0)
    a = torch.sigmoid(layer.alpha)
    expected = (a * (weights @ v) + (1 - a) * tokens) * mask.unsqueeze(-1)
    torch.testing.assert_close(layer(tokens, mask), expected)
    assert torch.autograd.gradcheck(lambda t: layer(t, mask), (tokens,))
    layer(tokens, mask).sum().backward()
    assert torch.isfinite(tokens.grad).all() and torch.all(tokens.grad[2] == 0)  # the empty item: no NaN
