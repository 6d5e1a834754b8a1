"""Where the confidences act on the fused content: pooling weights, the screen, the item gate (by hand)."""

import torch

from mdrchca.models.mdrchca.content import masked_mean
from mdrchca.models.mdrchca.fusion import confidence_pooling, item_gate, pooled_through_weights, pooling_weights


def _case():
    features = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [9.0, 9.0]]])  # the third position is padding
    cross = torch.tensor([[[0.0, 4.0], [2.0, 0.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, False]])
    return features, cross, mask


def test_confidence_pooling_by_hand() -> None:
    features, cross, mask = _case()
    confidence = torch.tensor([[0.5, 1.0, 0.7]])  # padding's confidence is never read
    z = confidence_pooling(features, cross, confidence, mask)
    # (0.5 (x1 + 0.5 c1) + 1.0 (x2 + 1.0 c2)) / 1.5
    expected = (0.5 * (torch.tensor([1.0, 0.0]) + 0.5 * torch.tensor([0.0, 4.0])) + (torch.tensor([2.0, 2.0]))) / 1.5
    torch.testing.assert_close(z[0], expected)
    # without the residual only the weighted cross-modal terms are pooled
    z = confidence_pooling(features, cross, confidence, mask, residual=False)
    torch.testing.assert_close(z[0], (0.25 * torch.tensor([0.0, 4.0]) + torch.tensor([2.0, 0.0])) / 1.5)


def test_the_screen_drops_noisy_positions() -> None:
    features, cross, mask = _case()
    confidence = torch.tensor([[0.5, 1.0, 0.0]])
    z = confidence_pooling(features, cross, confidence, mask, screened=torch.tensor([[False, True, False]]))
    torch.testing.assert_close(z[0], torch.tensor([1.0, 0.0]) + 0.5 * torch.tensor([0.0, 4.0]))


def test_uniform_confidence_is_the_plain_mean_and_no_confidence_falls_back_to_it() -> None:
    features, cross, mask = _case()
    plain = masked_mean((features + cross) * mask.unsqueeze(-1), mask)
    ones = torch.ones(1, 3)
    torch.testing.assert_close(confidence_pooling(features, cross, ones, mask), plain)
    # an item whose confidences are all zero (no candidate in the other modality) weighs its positions alike
    zeros = torch.zeros(1, 3)
    torch.testing.assert_close(confidence_pooling(features, cross, zeros, mask), plain)


def test_pooling_gradient_reaches_the_confidences_when_they_are_not_detached() -> None:
    features, cross, mask = _case()
    confidence = torch.tensor([[0.5, 1.0, 0.3]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda c: confidence_pooling(features.double(), cross.double(), c, mask), (confidence,)
    )


def test_item_gate_by_hand() -> None:
    pair = torch.tensor([[0.2, 0.4, 0.0], [0.9, 0.9, 0.9], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, True, True], [True, False, False]])
    has_both = torch.tensor([True, True, False])
    gate = item_gate(pair, mask, has_both, torch.tensor(0.6))
    # mean 0.3 / 0.6 = 0.5; mean 0.9 / 0.6 clamped to 1; no image: 1
    torch.testing.assert_close(gate, torch.tensor([0.5, 1.0, 1.0]))


def test_pooling_through_the_weights_by_hand() -> None:
    """z = ((a^T A^s) V) W_V + b^T T, over D: one query with weight a = 2 on two sources, W_V the identity."""
    features = torch.tensor([[[1.0, 0.0]]])
    sources = torch.tensor([[[0.0, 4.0], [2.0, 0.0]]])
    sparse = torch.tensor([[[0.25, 0.75]]])
    value = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        value.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 3.0]]))  # W_V scales the second dim by 3
    a, b, denominator = torch.tensor([[2.0]]), torch.tensor([[0.5]]), torch.tensor([[4.0]])
    z = pooled_through_weights(features, sources, value, sparse, a, b, denominator)
    # cross = 0.25 (0, 12) + 0.75 (2, 0) = (1.5, 3); (2 cross + 0.5 (1, 0)) / 4
    torch.testing.assert_close(z[0], torch.tensor([(3.0 + 0.5) / 4, 6.0 / 4]))
    z = pooled_through_weights(features, sources, value, sparse, a, None, denominator)  # no residual
    torch.testing.assert_close(z[0], torch.tensor([3.0 / 4, 6.0 / 4]))


def test_pooling_through_the_weights_is_confidence_pooling() -> None:
    """With a = omega^2, b = omega and D = sum omega, the short route's pooling equals ``confidence_pooling``
    of the aggregated sources, screen and an all-zero item included; with a = b = the mask, the plain mean."""
    g = torch.Generator().manual_seed(0)
    features, sources = torch.randn(3, 5, 4, generator=g), torch.randn(3, 6, 4, generator=g)
    sparse = torch.rand(3, 5, 6, generator=g) * (torch.rand(3, 5, 6, generator=g) > 0.5)
    value = torch.nn.Linear(4, 4, bias=False)
    mask = torch.rand(3, 5, generator=g) > 0.2
    confidence = torch.rand(3, 5, generator=g) * mask
    confidence[2] = 0.0  # no confidence at all: uniform weights
    screened = torch.rand(3, 5, generator=g) > 0.7
    cross = sparse @ value(sources)
    with torch.no_grad():
        for residual in (True, False):
            expected = confidence_pooling(features, cross, confidence, mask, screened, residual)
            w = pooling_weights(confidence, mask, screened)
            z = pooled_through_weights(
                features, sources, value, sparse, w * w, w if residual else None, w.sum(1, keepdim=True)
            )
            torch.testing.assert_close(z, expected)
        m = mask.float()
        z = pooled_through_weights(features, sources, value, sparse, m, m, m.sum(1, keepdim=True).clamp_min(1.0))
        torch.testing.assert_close(z, masked_mean((cross + features) * mask.unsqueeze(-1), mask))
