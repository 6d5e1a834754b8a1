import math

import torch

from mdrchca.models.mdrchca.confidence import (
    candidate_cosine,
    image_confidence,
    region_column_max,
    text_confidence,
)
from mdrchca.models.mdrchca.losses import Similarities, confidence_weighted_infonce, sample_other_items
from mdrchca.models.mdrchca.screen import (
    AdaptiveThresholds,
    candidate_pairs,
    hard_negative_mask,
    noisy_mask,
    noisy_pair_negatives,
    positive_mask,
)


def test_text_confidence_is_sigmoid_of_max_logit() -> None:
    logits = torch.tensor([[[0.5, 2.0, -torch.inf], [-torch.inf, -torch.inf, -torch.inf]]])
    mask = torch.tensor([[True, True]])
    conf = text_confidence(logits, mask)
    assert conf[0, 0].item() == torch.sigmoid(torch.tensor(2.0)).item()
    assert conf[0, 1].item() == 0.0  # no candidate region at all


def test_image_confidence_rescaled_softmax_by_hand() -> None:
    s = torch.tensor([[[0.9, 0.1, 0.4], [0.2, 0.5, 0.3]]])  # [B=1, P=2, R=3]
    phrase_mask = torch.tensor([[True, True]])
    region_mask = torch.tensor([[True, True, False]])
    fine = torch.tensor([[[1.0, 0.0], [0.0, -1.0], [0.0, 0.0]]])
    coarse = image_confidence(s, phrase_mask, region_mask, fine, tau=0.5, form="coarse")
    # max over phrases: [0.9, 0.5]; softmax / its max = exp((x - 0.9) / 0.5)
    torch.testing.assert_close(coarse[0], torch.tensor([1.0, math.exp(-0.8), 0.0]))
    product = image_confidence(s, phrase_mask, region_mask, fine, tau=0.5)
    expected = torch.tensor(
        [1.0 * torch.sigmoid(torch.tensor(1.0)), math.exp(-0.8) * torch.sigmoid(torch.tensor(0.0)), 0.0]
    )
    torch.testing.assert_close(product[0], expected)


def test_threshold_updates_move_in_the_right_direction() -> None:
    t = AdaptiveThresholds(theta_pos=0.5, theta_neg=0.3, eta_1=0.1, eta_2=0.1)
    t.update(torch.tensor([0.9, 0.9, 0.9, 0.9]))  # confident pairs: theta_pos rises; none below theta_neg
    assert math.isclose(t.theta_pos.item(), 0.5 + 0.1 * (0.9 - 0.5), rel_tol=1e-6)
    assert math.isclose(t.theta_neg.item(), 0.3 - 0.1 * (0.0 - 0.3), rel_tol=1e-6)  # rises towards 0
    t2 = AdaptiveThresholds(theta_pos=0.5, theta_neg=0.3, eta_1=0.1, eta_2=0.1)
    t2.update(torch.tensor([0.1, 0.1, 0.1, 0.9]))  # mostly noise: theta_pos falls, theta_neg falls
    assert t2.theta_pos.item() < 0.5 and t2.theta_neg.item() < 0.3
    assert math.isclose(t2.theta_neg.item(), 0.3 - 0.1 * (0.75 - 0.3), rel_tol=1e-6)
    assert "theta_pos" in t.state_dict() and "theta_neg" in t.state_dict()  # saved in checkpoints


def test_thresholds_stay_in_range() -> None:
    t = AdaptiveThresholds(theta_pos=0.6, theta_neg=0.05, eta_1=0.5, eta_2=0.9)
    for _ in range(50):
        t.update(torch.tensor([0.01, 0.02, 0.5]))  # first update: 2/3 below theta_neg pushes it under 0
        assert 0.0 <= t.theta_neg.item() <= t.theta_pos.item() <= 1.0


def test_positive_and_hard_negative_selection() -> None:
    c_t = torch.tensor([0.9, 0.9, 0.4])
    c_v = torch.tensor([0.8, 0.3, 0.9])
    assert positive_mask(c_t, c_v, torch.tensor(0.5)).tolist() == [True, False, False]
    image_conf = torch.tensor([[0.9, 0.1, 0.2, 0.05]])
    region_mask = torch.tensor([[True, True, True, False]])
    hard = hard_negative_mask(image_conf, region_mask, torch.tensor([0, 0]), torch.tensor([0, 1]), torch.tensor(0.3))
    # low-confidence valid regions other than the anchor's own: anchor 0 -> {1, 2}; anchor 1 -> {2}
    assert hard.tolist() == [[False, True, True, False], [False, False, True, False]]


def test_weighted_infonce_by_hand() -> None:
    tau = 0.5
    s_pos, c_pos = torch.tensor([0.8]), torch.tensor([0.5])
    s_hard, c_hard = torch.tensor([[0.6, 0.9]]), torch.tensor([[0.4, 1.0]])
    hard_mask = torch.tensor([[True, False]])
    s_rand, rand_mask = torch.tensor([[0.1, -0.2]]), torch.tensor([[True, True]])
    loss = confidence_weighted_infonce(
        Similarities(s_pos, c_pos), Similarities(s_rand, mask=rand_mask), tau, Similarities(s_hard, c_hard, hard_mask)
    )
    pos = math.exp(0.5 * 0.8 / tau)
    denom = pos + math.exp(0.4 * 0.6 / tau) + math.exp(0.1 / tau) + math.exp(-0.2 / tau)
    assert math.isclose(loss.item(), -math.log(pos / denom), rel_tol=1e-6)


def test_weighted_infonce_reduces_to_plain_infonce_and_has_gradient() -> None:
    s_pos = torch.tensor([0.3, 0.7], dtype=torch.float64, requires_grad=True)
    s_rand = torch.tensor([[0.1, 0.2], [0.0, -0.1]], dtype=torch.float64, requires_grad=True)
    ones = torch.ones(2, dtype=torch.float64)
    no_hard = Similarities(ones.unsqueeze(1), ones.unsqueeze(1), torch.zeros(2, 1, dtype=torch.bool))
    plain = -(torch.log_softmax(torch.cat([s_pos.unsqueeze(1), s_rand], 1) / 0.2, 1)[:, 0]).mean()
    torch.testing.assert_close(confidence_weighted_infonce(Similarities(s_pos), Similarities(s_rand), 0.2), plain)
    every_hard_masked = confidence_weighted_infonce(Similarities(s_pos, ones), Similarities(s_rand), 0.2, no_hard)
    torch.testing.assert_close(every_hard_masked, plain)

    def f(p: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return confidence_weighted_infonce(Similarities(p, ones), Similarities(r), 0.2, no_hard)

    assert torch.autograd.gradcheck(f, (s_pos, s_rand))


def test_random_negatives_never_come_from_the_anchor_item() -> None:
    anchors = torch.tensor([0, 1, 2, 2, 4] * 20)
    others, ok = sample_other_items(anchors, 5, 8, torch.Generator().manual_seed(0))
    assert ok.all() and not (others == anchors.unsqueeze(1)).any()
    assert others.min() >= 0 and others.max() <= 4


def test_loss_weighted_infonce_by_hand() -> None:
    tau = 0.5
    s_pos, c_pos = torch.tensor([0.8, 0.2]), torch.tensor([0.5, 0.25])
    s_hard, c_hard = torch.tensor([[0.6], [0.3]]), torch.tensor([[0.4], [0.9]])
    hard_mask = torch.tensor([[True], [False]])
    s_rand, rand_mask = torch.tensor([[0.1], [-0.2]]), torch.tensor([[True], [True]])
    loss = confidence_weighted_infonce(
        Similarities(s_pos, c_pos),
        Similarities(s_rand, mask=rand_mask),
        tau,
        Similarities(s_hard, c_hard, hard_mask),
        weighting="loss",
    )
    # confidences weight the terms; the logits are the plain similarities
    first = -math.log(math.exp(0.8 / tau) / (math.exp(0.8 / tau) + math.exp(0.6 / tau) + math.exp(0.1 / tau)))
    second = -math.log(math.exp(0.2 / tau) / (math.exp(0.2 / tau) + math.exp(-0.2 / tau)))
    assert math.isclose(loss.item(), (0.5 * first + 0.25 * second) / 0.75, rel_tol=1e-6)


def test_logit_weighting_prefers_the_collapsed_solution_and_loss_weighting_does_not() -> None:
    """With c < 1 the literal form scores 'every cosine -1' below real alignment (what training found)."""
    c = torch.tensor([0.1])
    no_hard = Similarities(torch.zeros(1, 1), torch.ones(1, 1), torch.zeros(1, 1, dtype=torch.bool))
    aligned = (torch.tensor([1.0]), torch.zeros(1, 16))  # positive at 1, negatives orthogonal
    collapsed = (torch.tensor([-1.0]), torch.full((1, 16), -1.0))  # everything anti-aligned

    def loss(pair: tuple[torch.Tensor, torch.Tensor], weighting: str) -> float:
        return confidence_weighted_infonce(
            Similarities(pair[0], c), Similarities(pair[1]), 0.5, no_hard, weighting=weighting
        ).item()

    assert loss(collapsed, "logit") < loss(aligned, "logit")
    assert loss(aligned, "loss") < loss(collapsed, "loss")


def test_candidate_cosine_and_region_column_max_by_hand() -> None:
    queries = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # [B=1, Q=2, d=2]
    sources = torch.tensor([[[3.0, 0.0], [1.0, 1.0], [0.0, -1.0]]])  # 3 sources
    candidates = torch.tensor([[[0, 1], [1, 2]]])
    valid = torch.tensor([[[True, True], [True, False]]])
    cos = candidate_cosine(queries, sources, candidates, valid)
    r = 1 / math.sqrt(2)
    torch.testing.assert_close(cos, torch.tensor([[[1.0, r], [r, -math.inf]]]))
    # per source: the largest value among the queries that have it as a candidate
    column = region_column_max(cos, candidates, 3)
    torch.testing.assert_close(column.squeeze(-1), torch.tensor([[1.0, r, -math.inf]]))


def test_best_regions_of_other_items_by_hand() -> None:
    from mdrchca.models.mdrchca.losses import best_regions_of_other_items

    # 2 items, 3 regions each (item 1's last region is padding), d = 2, unit vectors
    regions = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], [[-1.0, 0.0], [0.8, 0.6], [1.0, 0.0]]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    s, ok = best_regions_of_other_items(anchors, regions, mask, torch.tensor([0, 1]))
    # anchor 0 (item 0) vs item 1: max(-1, 0.8) = 0.8 (the padded region's 1.0 is not a region)
    # anchor 1 (item 1) vs item 0: max(0, 1, 0.8) = 1
    assert ok.tolist() == [[False, True], [True, False]]
    torch.testing.assert_close(s[ok], torch.tensor([0.8, 1.0]))


def test_best_regions_of_other_items_has_the_gradients_of_the_whole_differentiated_max() -> None:
    from mdrchca.models.mdrchca.losses import best_regions_of_other_items

    generator = torch.Generator().manual_seed(3)
    B, R, d, N = 4, 5, 6, 7
    regions = torch.nn.functional.normalize(torch.randn(B, R, d, generator=generator, dtype=torch.float64), dim=-1)
    anchors = torch.nn.functional.normalize(torch.randn(N, d, generator=generator, dtype=torch.float64), dim=-1)
    mask = torch.rand(B, R, generator=generator) > 0.3
    mask[2] = False  # an item without regions
    item = torch.randint(0, B, (N,), generator=generator)
    weights = torch.randn(N, B, generator=generator, dtype=torch.float64)

    def reference(a: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sims = (a @ r.reshape(B * R, d).T).view(N, B, R).masked_fill(~mask.unsqueeze(0), -torch.inf).amax(-1)
        valid = torch.isfinite(sims)
        valid[torch.arange(N), item] = False
        return sims.masked_fill(~valid, 0.0), valid

    grads = []
    for function in (reference, lambda a, r: best_regions_of_other_items(a, r, mask, item)):
        a, r = anchors.clone().requires_grad_(), regions.clone().requires_grad_()
        sims, valid = function(a, r)
        (sims * weights).sum().backward()
        grads.append((sims.detach(), valid, a.grad, r.grad))
    (s0, v0, ga0, gr0), (s1, v1, ga1, gr1) = grads
    assert torch.equal(v0, v1) and not v1[:, 2].any()
    torch.testing.assert_close(s1, s0)
    torch.testing.assert_close(ga1, ga0)
    torch.testing.assert_close(gr1, gr0)
    assert torch.count_nonzero(gr1) > 0


def test_noisy_pair_negatives_by_hand() -> None:
    # two items, three tokens each, two regions; unit vectors in 2-d
    text = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], [[1.0, 0.0], [0.8, 0.6], [0.0, 0.0]]])
    regions = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.6, 0.8]]])
    token_mask = torch.tensor([[True, True, True], [True, True, False]])
    best = torch.tensor([[0, 0, 1], [1, 0, 0]])
    c_t = torch.tensor([[0.9, 0.2, 0.3], [0.9, 0.1, 0.0]])
    c_v = torch.tensor([[0.8, 0.5], [0.4, 0.9]])
    pairs, pc_t, pc_v = candidate_pairs(token_mask, best, c_t, c_v)
    noisy = noisy_mask(pc_t, pc_v, torch.tensor(0.35))  # (0, 1), (0, 2) and (1, 1) are noisy
    assert noisy.tolist() == [False, True, True, False, True]
    anchors = torch.tensor([0, 1, 0])  # batch rows of three anchors
    sim, conf, mask = noisy_pair_negatives(pairs, noisy, text, regions, anchors)
    # item 0: token 1 . region 0 = 0; token 2 . region 1 = 0.8; item 1: token 1 . region 0 = 0.8 * 0 + 0.6 * 1
    torch.testing.assert_close(sim, torch.tensor([[0.0, 0.0, 0.8], [0.0, 0.6, 0.0], [0.0, 0.0, 0.8]]))
    assert mask.tolist() == [[False, True, True], [False, True, False], [False, True, True]]
    torch.testing.assert_close(conf[mask], torch.tensor([0.2 * 0.8, 0.3 * 0.5, 0.1 * 0.4, 0.2 * 0.8, 0.3 * 0.5]))


def test_noisy_pair_negatives_push_the_noisy_pairs_apart() -> None:
    text = torch.nn.functional.normalize(torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    regions = torch.nn.functional.normalize(torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(1)), dim=-1)
    text.requires_grad_(True)
    token_mask = torch.ones(2, 4, dtype=torch.bool)
    best = torch.tensor([[0, 1, 2, 0], [2, 2, 1, 0]])
    c = torch.tensor([[0.9, 0.1, 0.8, 0.2], [0.9, 0.9, 0.1, 0.9]])
    pairs, c_t, c_v = candidate_pairs(token_mask, best, c, torch.ones(2, 3))
    noisy = noisy_mask(c_t, c_v, torch.tensor(0.5))
    anchors = torch.nonzero(positive_mask(c_t, c_v, torch.tensor(0.5))).squeeze(1)
    item, token, region = pairs.item[anchors], pairs.token[anchors], pairs.region[anchors]
    s_pos = (text[item, token] * regions[item, region]).sum(-1)
    s_hard, c_hard, hard_ok = noisy_pair_negatives(pairs, noisy, text, regions, item)
    loss = confidence_weighted_infonce(
        Similarities(s_pos), Similarities(torch.zeros(len(anchors), 1)), 0.5, Similarities(s_hard, c_hard, hard_ok)
    )
    loss.backward()
    # the loss grows with each noisy pair's similarity: the gradient of its token along its region is positive
    for b, w in ((0, 1), (0, 3), (1, 2)):
        assert (text.grad[b, w] @ regions[b, best[b, w]]).item() > 0
    assert text.grad[0, 0].abs().sum() > 0 and text.grad[1, 0].abs().sum() > 0  # anchors
