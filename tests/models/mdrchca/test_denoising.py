import torch

from mdrchca.models.mdrchca.denoising import SelfAttentionDenoiser


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


def test_denoiser_parameter_gradients_equal_the_explicit_projections() -> None:
    """The logits are formed as T (W_Q^T W_K) T^T, one weight product instead of a key projection: every
    parameter's gradient must be that of softmax(Q K^T / sqrt(d)) V with Q, K, V projected explicitly."""
    torch.manual_seed(2)
    layer = SelfAttentionDenoiser(6, alpha_init=-0.4).double()
    tokens = torch.randn(3, 5, 6, dtype=torch.float64)
    mask = torch.tensor([[True] * 5, [True, False, True, True, False], [True, False, False, False, False]])
    upstream = torch.randn(3, 5, 6, dtype=torch.float64)

    def gradients(output: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.autograd.grad((output * upstream).sum(), list(layer.parameters())))

    q, k, v = layer.query(tokens), layer.key(tokens), layer.value(tokens)
    logits = (q @ k.transpose(1, 2) / 6**0.5).masked_fill(~mask.unsqueeze(1), -torch.inf)
    a = torch.sigmoid(layer.alpha)
    explicit = (a * (torch.softmax(logits, -1) @ v) + (1 - a) * tokens) * mask.unsqueeze(-1)
    for folded, expected in zip(gradients(layer(tokens, mask)), gradients(explicit), strict=True):
        torch.testing.assert_close(folded, expected, rtol=1e-10, atol=1e-12)
