import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mdrchca.models.components.masking import additive_mask, fill_invalid_, mask_operand

LOWEST = torch.finfo(torch.float32).min


def test_additive_mask_by_hand() -> None:
    valid = torch.tensor([[True, False, True], [False, False, True]])
    assert torch.equal(additive_mask(valid), torch.tensor([[0.0, LOWEST, 0.0], [LOWEST, LOWEST, 0.0]]))
    inf = -torch.inf
    assert torch.equal(additive_mask(valid, infinite=True), torch.tensor([[0.0, inf, 0.0], [inf, inf, 0.0]]))
    # the zeros are +0.0: adding them leaves a score's sign bit as it was
    assert not torch.signbit(additive_mask(valid)[valid]).any()


def test_additive_mask_takes_floats_without_changing_them() -> None:
    keep = torch.tensor([1.0, 0.0, 1.0])
    assert torch.equal(additive_mask(keep), additive_mask(keep.bool()))
    assert torch.equal(keep, torch.tensor([1.0, 0.0, 1.0]))  # built out of place


def test_additive_mask_in_half_precision_uses_that_dtype_s_lowest() -> None:
    bias = additive_mask(torch.tensor([True, False]), torch.bfloat16)
    assert bias.dtype == torch.bfloat16 and bias[1] == torch.finfo(torch.bfloat16).min and bias[0] == 0


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(1e-3, 1e4))
def test_adding_the_mask_is_masked_fill_bitwise(seed: int, scale: float) -> None:
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(3, 4, 7, generator=generator) * scale
    valid = torch.rand(3, 1, 7, generator=generator) > 0.4
    filled = scores.masked_fill(~valid, LOWEST)
    assert torch.equal(scores + additive_mask(valid), filled)
    assert torch.equal(scores + additive_mask(valid, infinite=True), scores.masked_fill(~valid, -torch.inf))
    # and so the softmax over the masked scores, rows with no valid entry included (uniform in both)
    assert torch.equal(torch.softmax(scores + additive_mask(valid), -1), torch.softmax(filled, -1))


def test_the_gradient_through_an_added_mask_is_the_masked_fill_s() -> None:
    scores = torch.randn(5, 6, dtype=torch.float64)
    valid = torch.tensor([True, False, True, True, False, True])
    upstream = torch.randn(5, 6, dtype=torch.float64)
    grads = []
    lowest = torch.finfo(torch.float64).min
    for masked in (lambda x: x.masked_fill(~valid, lowest), lambda x: x + additive_mask(valid, x.dtype)):
        x = scores.clone().requires_grad_(True)
        (torch.softmax(masked(x), -1) * upstream).sum().backward()
        grads.append(x.grad)
    # a masked score's weight is exactly 0, so the softmax passes it no gradient either way
    assert torch.equal(grads[0], grads[1])
    assert torch.equal(grads[0][:, ~valid], torch.zeros(5, 2, dtype=torch.float64))


def test_fill_invalid_sets_the_masked_entries_in_place_broadcast_over_a_dim() -> None:
    scores = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]])  # [1, heads 2, 3]
    valid = torch.tensor([[True, False, True]])  # [1, 3]: the heads' dim is 1
    out = fill_invalid_(scores, valid, dim=1)
    assert out is scores
    assert torch.equal(scores, torch.tensor([[[1.0, LOWEST, 3.0], [4.0, LOWEST, 6.0]]]))
    cosine = torch.tensor([[0.5, -0.5, 0.25]])
    fill_invalid_(cosine, valid, infinite=True)
    assert torch.equal(cosine, torch.tensor([[0.5, -torch.inf, 0.25]]))


def test_fill_invalid_takes_float_masks_on_the_cpu() -> None:
    scores = torch.randn(4, 5)
    valid = torch.rand(4, 5) > 0.5
    assert torch.equal(fill_invalid_(scores.clone(), valid.float()), scores.masked_fill(~valid, LOWEST))


def test_mask_operand_gives_cpu_floats_that_fill_as_the_booleans_do() -> None:
    scores = torch.randn(3, 2, 5)
    valid = torch.rand(3, 5) > 0.5
    keep = mask_operand(valid, scores)
    assert keep.dtype == scores.dtype and torch.equal(keep, valid.float())
    assert mask_operand(keep, scores) is keep  # already converted: passed through
    assert torch.equal(fill_invalid_(scores.clone(), keep, dim=1), fill_invalid_(scores.clone(), valid, dim=1))
