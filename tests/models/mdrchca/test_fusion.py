"""Where the confidences act on the fused content: pooling weights, the screen, the item gate (by hand)."""

import torch

from mdrchca.models.mdrchca.content import masked_mean
from mdrchca.models.mdrchca.fusion import confidence_pooling, item_gate


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
