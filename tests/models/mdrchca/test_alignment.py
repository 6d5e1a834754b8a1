import math

import pytest
import torch

from mdrchca.models.mdrchca import alignment
from mdrchca.models.mdrchca.alignment import (
    MASKED_TEXT_SIDE_UP_TO,
    AlignmentPlan,
    CandidateAggregate,
    CandidateProduct,
    CrossModalAttention,
    Positions,
    align,
    align_weights,
    candidate_mask,
    cosine_similarity_matrix,
    group_members,
    phrase_pool,
    phrase_region_similarity,
    region_candidates,
    row_softmax,
    text_side_candidates,
    token_candidates,
    tokens_inherit,
    topk_candidates,
)


def test_phrase_pool_by_hand() -> None:
    tokens = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [9.0, 9.0]]])
    ids = torch.tensor([[0, 0, 1, -1]])
    phrases, mask = phrase_pool(tokens, ids, 3)
    torch.testing.assert_close(phrases[0], torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 0.0]]))
    assert mask.tolist() == [[True, True, False]]


def test_cosine_similarity_matrix() -> None:
    a = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    b = torch.tensor([[[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]])
    s = cosine_similarity_matrix(a, b)
    r = 2**-0.5
    torch.testing.assert_close(s[0], torch.tensor([[1.0, 0.0, -1.0], [r, r, -r]]))


def _image_side_mask(similarity: torch.Tensor, phrase_mask: torch.Tensor, phrase_ids: torch.Tensor, k_p: int):
    """M^v2t ``[B, R, L]`` by its definition: each region's top-k_p phrases as a mask, inherited by their tokens
    (the reference the image side's candidates are held to)."""
    region_phrase_mask = candidate_mask(
        *topk_candidates(similarity.transpose(1, 2), phrase_mask, k_p), len(phrase_mask[0])
    )
    return tokens_inherit(region_phrase_mask.transpose(1, 2), phrase_ids).transpose(1, 2)


def test_topk_mask_by_hand_with_invalid_regions() -> None:
    s = torch.tensor([[[0.9, 0.1, 0.5, 0.7], [0.2, 0.3, 0.8, 0.1]]])
    valid = torch.tensor([[True, True, True, False]])  # region 3 is padding
    mask = candidate_mask(*topk_candidates(s, valid, 2), 4)  # M^t2v as a 0/1 matrix
    assert mask[0].int().tolist() == [[1, 0, 1, 0], [0, 1, 1, 0]]
    idx, ok = topk_candidates(s, valid, 2)
    assert idx[0].tolist() == [[0, 2], [2, 1]] and ok.all()


def test_topk_with_fewer_valid_than_k() -> None:
    s = torch.tensor([[[0.9, 0.1, 0.5]]])
    idx, ok = topk_candidates(s, torch.tensor([[True, False, False]]), 2)
    assert idx[0, 0, 0] == 0 and ok[0, 0].tolist() == [True, False]


def test_tokens_inherit_their_phrase_candidates() -> None:
    phrase_cands = torch.tensor([[[3, 1], [0, 2]]])  # phrase 0 -> regions 3,1; phrase 1 -> 0,2
    ok = torch.ones(1, 2, 2, dtype=torch.bool)
    ids = torch.tensor([[0, 1, 1, -1]])
    cand, cand_ok = token_candidates(phrase_cands, ok, ids)
    assert cand[0, :3].tolist() == [[3, 1], [0, 2], [0, 2]]
    assert cand_ok[0].tolist() == [[True, True], [True, True], [True, True], [False, False]]


def test_group_members() -> None:
    ids = torch.tensor([[1, 0, 1, -1, 0, 2]])
    members, ok = group_members(ids, 3)
    assert [sorted(members[0, g][ok[0, g]].tolist()) for g in range(3)] == [[1, 4], [0, 2], [5]]


def _random_item(B=3, L=7, R=9, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(B, L, d, generator=g)
    regions = torch.randn(B, R, d, generator=g)
    token_mask = torch.ones(B, L, dtype=torch.bool)
    token_mask[0, -2:] = False
    region_mask = torch.ones(B, R, dtype=torch.bool)
    region_mask[1, -3:] = False
    ids = torch.tensor([0, 0, 1, 1, 1, 2, 2][:L]).expand(B, L).clone()
    ids[~token_mask] = -1
    return tokens, token_mask, regions, region_mask, ids


def test_a_token_only_attends_to_its_phrase_top_kr_regions() -> None:
    tokens, token_mask, regions, region_mask, ids = _random_item()
    phrases, phrase_mask = phrase_pool(tokens, ids, 3)
    s = cosine_similarity_matrix(phrases, regions)
    allowed = candidate_mask(*topk_candidates(s, region_mask, 3), 9)  # [B, P, R]
    cands, cands_ok = topk_candidates(s, region_mask, 3)
    attention = CrossModalAttention(8, heads=2, k_s=2, residual=False)
    out = attention.grouped(tokens, token_mask, regions, region_mask, ids, cands, cands_ok & phrase_mask.unsqueeze(-1))
    for b in range(3):
        for w in range(7):
            if not token_mask[b, w]:
                assert torch.all(out.aligned[b, w] == 0)
                continue
            phrase = ids[b, w]
            used = out.candidates[b, w][out.weights[b, w] > 0]
            assert all(allowed[b, phrase, r] for r in used.tolist())
            assert allowed[b, phrase, out.best[b, w]]
            # the aggregation uses exactly the top-k_s of those weights
            top_w, top_i = out.weights[b, w].topk(2)
            expected = (top_w.unsqueeze(-1) * attention.value(regions[b])[out.candidates[b, w][top_i]]).sum(0)
            torch.testing.assert_close(out.aligned[b, w], expected)


def test_full_attention_equals_hierarchical_when_kr_and_ks_cover_all_regions() -> None:
    tokens, token_mask, regions, region_mask, ids = _random_item()
    R = regions.shape[1]
    phrases, phrase_mask = phrase_pool(tokens, ids, 3)
    s = cosine_similarity_matrix(phrases, regions)
    cands, cands_ok = topk_candidates(s, region_mask, R)  # k_r = n_p
    torch.manual_seed(0)
    attention = CrossModalAttention(8, heads=2, k_s=R)  # k_s = n_p
    sparse = attention.grouped(
        tokens, token_mask, regions, region_mask, ids, cands, cands_ok & phrase_mask.unsqueeze(-1)
    )
    dense = attention.dense(tokens, token_mask, regions, region_mask)
    torch.testing.assert_close(sparse.aligned, dense.aligned, atol=1e-6, rtol=1e-5)
    assert torch.equal(sparse.best[token_mask], dense.best[token_mask])


def test_topk_screening_keeps_exactly_ks_weights() -> None:
    tokens, token_mask, regions, region_mask, _ = _random_item()
    attention = CrossModalAttention(8, heads=2, k_s=3, residual=False)
    out = attention.dense(tokens, token_mask, regions, region_mask)
    # recompute: aggregation with the weights outside the top 3 zeroed
    for b, w in [(0, 0), (1, 4), (2, 6)]:
        weights = out.weights[b, w].clone()
        weights[weights < weights.topk(3).values[-1]] = 0
        expected = weights @ attention.value(regions[b])
        torch.testing.assert_close(out.aligned[b, w], expected)
    # padded regions of item 1 never get weight
    assert torch.all(out.weights[1][:, -3:] == 0)


def test_item_without_regions_gives_zero_attention() -> None:
    tokens, token_mask, regions, region_mask, _ = _random_item()
    region_mask[2] = False
    out = CrossModalAttention(8, heads=2, k_s=3, residual=False).dense(tokens, token_mask, regions, region_mask)
    assert torch.all(out.aligned[2] == 0) and torch.all(out.weights[2] == 0)
    assert torch.isfinite(out.aligned).all()


def test_gradient_reaches_alignment_parameters() -> None:
    tokens, token_mask, regions, region_mask, ids = _random_item()
    phrases, phrase_mask = phrase_pool(tokens, ids, 3)
    cands, ok = topk_candidates(cosine_similarity_matrix(phrases, regions), region_mask, 3)
    attention = CrossModalAttention(8, heads=2, k_s=2)
    attention.grouped(tokens, token_mask, regions, region_mask, ids, cands, ok).aligned.pow(2).sum().backward()
    for layer in (attention.query, attention.key, attention.value):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_attention_gradcheck() -> None:
    g = torch.Generator().manual_seed(1)
    tokens, regions = torch.randn(1, 4, 4, generator=g), torch.randn(1, 5, 4, generator=g)
    attention = CrossModalAttention(4, heads=2, k_s=2).double()
    ids = torch.tensor([[0, 0, 1, 1]])
    cands = torch.tensor([[[0, 2, 4], [1, 3, 4]]])
    ok = torch.ones_like(cands, dtype=torch.bool)
    mask = torch.ones(1, 4, dtype=torch.bool)
    rmask = torch.ones(1, 5, dtype=torch.bool)

    def f(t: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return attention.grouped(t, mask, r, rmask, ids, cands, ok).aligned

    assert torch.autograd.gradcheck(f, (tokens.double().requires_grad_(), regions.double().requires_grad_()))


def test_row_softmax_by_hand_both_forms() -> None:
    lowest = torch.finfo(torch.float32).min  # what the alignment gives a masked candidate
    scores = torch.tensor([[0.0, math.log(3.0), lowest], [lowest, lowest, lowest], [5.0, 5.0, 5.0]])
    expected = torch.tensor([[0.25, 0.75, 0.0], [1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3]])
    for written_out in (True, False):
        torch.testing.assert_close(row_softmax(scores, written_out), expected)


@pytest.mark.parametrize("length", [3, 10, 15, 16, 40])
def test_row_softmax_written_out_equals_the_kernel_with_its_gradient(length: int) -> None:
    """Both forms as the alignment uses them: masked to the lowest value by ``masked_fill``, whose backward
    zeroes the masked entries (a row with every candidate masked included)."""
    torch.manual_seed(0)
    raw = torch.randn(6, 4, length, dtype=torch.float64)
    valid = torch.rand_like(raw) > 0.3
    valid[0, 0] = False  # a row with every candidate masked
    weights = torch.randn_like(raw)
    results = []
    for written_out in (True, False):
        x = raw.clone().requires_grad_()
        out = row_softmax(x.masked_fill(~valid, torch.finfo(x.dtype).min), written_out)
        (out * weights).sum().backward()
        assert torch.isfinite(out).all() and torch.isfinite(x.grad).all() and (x.grad[0, 0] == 0).all()
        assert (out[~valid & valid.any(-1, keepdim=True)] == 0).all()
        results.append((out.detach(), x.grad))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])
    finite = torch.randn(3, length, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: row_softmax(x, True), (finite,))


@pytest.mark.parametrize("regions", [9, 20])  # candidate rows shorter and longer than SHORT_ROW
def test_a_query_without_candidates_gets_zero_weights_and_no_gradient(regions: int) -> None:
    tokens, token_mask, sources, source_mask, _ = _random_item(R=regions)
    tokens.requires_grad_()
    allowed = torch.ones(3, 7, regions, dtype=torch.bool)
    allowed[0, 1] = False  # token 1 of item 0 may attend to no region
    attention = CrossModalAttention(8, heads=2, k_s=3, residual=False)
    out = attention.dense(tokens, token_mask, sources, source_mask, allowed)
    assert torch.isfinite(out.weights).all() and torch.isfinite(out.aligned).all()
    assert (out.weights[0, 1] == 0).all() and (out.aligned[0, 1] == 0).all()
    assert torch.isinf(out.logits[0, 1]).all() and torch.isinf(out.cosine[0, 1]).all()
    out.aligned.sum().backward()
    assert torch.isfinite(tokens.grad).all() and (tokens.grad[0, 1] == 0).all() and tokens.grad.abs().sum() > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_masked_token_side_computes_what_the_grouped_one_does(seed: int) -> None:
    """The two ways of the token side (``AlignmentPlan.text_side``) give the same aligned features,
    weights (placed at their region), best regions, cosine reads and gradients, padding included."""
    tokens, token_mask, regions, region_mask, ids = _random_item(seed=seed)
    results = []
    for side in ("grouped", "masked"):
        torch.manual_seed(seed)
        attentions = CrossModalAttention(8, heads=2, k_s=2), CrossModalAttention(8, heads=2, k_s=2)
        t, r = tokens.clone().requires_grad_(), regions.clone().requires_grad_()
        plan = AlignmentPlan(k_r=4, k_p=2, text_side=side)
        out = align(*attentions, Positions(t, token_mask, ids, r, region_mask), plan)
        text = out.text
        at_region = torch.zeros(3, 7, 9).scatter_add(-1, text.candidates, text.weights)
        best_cosine = text.cosine.amax(-1)
        (text.aligned.square().sum() + torch.where(token_mask, best_cosine, 0).sum()).backward()
        results.append((text.aligned, at_region, text.best[token_mask], best_cosine, t.grad, r.grad))
    assert results[1][1].shape == (3, 7, 9)  # the masked side's candidates are every region
    for grouped, masked in zip(*results, strict=True):
        torch.testing.assert_close(grouped, masked)


def test_the_token_side_is_masked_up_to_its_region_bound_in_auto() -> None:
    bound = MASKED_TEXT_SIDE_UP_TO
    auto, grouped, masked = (AlignmentPlan(3, 2, text_side=side) for side in ("auto", "grouped", "masked"))
    assert auto.masked_text_side(bound) and not auto.masked_text_side(bound + 1)
    assert not grouped.masked_text_side(1) and masked.masked_text_side(4 * bound)


@pytest.mark.parametrize("hierarchical", [True, False])
def test_align_weights_gives_what_align_computes(hierarchical: bool) -> None:
    """The short route's alignment (``align_weights``) runs the same operations as ``align`` up to the screen:
    the same cosine and best source, bitwise, and its sparse weights aggregate the sources into ``align``'s
    cross term, padding and an item without regions included."""
    tokens, token_mask, regions, region_mask, ids = _random_item(seed=3)
    region_mask[1] = False  # an item without regions
    torch.manual_seed(0)
    attentions = CrossModalAttention(8, heads=2, k_s=2), CrossModalAttention(8, heads=2, k_s=2)
    positions = Positions(tokens, token_mask, ids, regions, region_mask)
    plan = AlignmentPlan(k_r=4, k_p=2, hierarchical=hierarchical, text_side="masked")
    with torch.no_grad():
        out = align(*attentions, positions, plan)
        text, region, similarity, phrase_mask = align_weights(*attentions, positions, plan)
    assert torch.equal(similarity, out.similarity) and torch.equal(phrase_mask, out.phrase_mask)
    for short, full, attention, sources in (
        (text, out.text, attentions[0], regions),
        (region, out.region, attentions[1], tokens),
    ):
        assert torch.equal(short.cosine, full.cosine)
        assert torch.equal(short.weights, full.weights)
        assert torch.equal(short.best(), full.best)
        assert torch.equal(short.sparse @ attention.value(sources), full.cross)
        assert (short.sparse > 0).sum(-1).max() <= 2  # top-k_s
    assert not text.sparse[1].any()  # nothing to attend to


def test_align_weights_refuses_a_plan_that_gathers() -> None:
    tokens, token_mask, regions, region_mask, ids = _random_item()
    attentions = CrossModalAttention(8, heads=2, k_s=2), CrossModalAttention(8, heads=2, k_s=2)
    positions = Positions(tokens, token_mask, ids, regions, region_mask)
    with pytest.raises(ValueError, match="use align"):
        align_weights(*attentions, positions, AlignmentPlan(k_r=4, k_p=2, gathered_image_side=True))


def test_the_grouped_token_side_projects_only_its_candidates_with_the_same_result() -> None:
    """With fewer candidate rows than sources (3 phrases x k_r = 4 against 40 regions) the grouped side projects
    the gathered candidates instead of every region: the same aligned features, weights and gradients as the
    masked side, which scores every region."""
    tokens, token_mask, regions, region_mask, ids = _random_item(R=40, seed=5)
    results = []
    for side in ("grouped", "masked"):
        torch.manual_seed(1)
        attentions = CrossModalAttention(8, heads=2, k_s=2), CrossModalAttention(8, heads=2, k_s=2)
        t, r = tokens.clone().requires_grad_(), regions.clone().requires_grad_()
        out = align(*attentions, Positions(t, token_mask, ids, r, region_mask), AlignmentPlan(4, 2, text_side=side))
        text = out.text
        at_region = torch.zeros(3, 7, 40).scatter_add(-1, text.candidates, text.weights)
        text.aligned.square().sum().backward()
        key_grad = attentions[0].key.weight.grad.clone()
        results.append((text.aligned, at_region, text.best[token_mask], t.grad, r.grad, key_grad))
    for grouped, masked in zip(*results, strict=True):
        torch.testing.assert_close(grouped, masked)


@pytest.mark.parametrize("k_s", [2, 3, 5])
def test_the_screen_over_given_candidates_equals_the_masked_screen_over_every_source(k_s: int) -> None:
    """The masked text side screens over each token's k_r candidate regions, gathered from the whole score
    product: the same weights (placed at their regions), sparse weights, cosine reads, best regions and
    gradients as the screen over every region with the mask M^tok (random scores, so no ties)."""
    tokens, token_mask, regions, region_mask, ids = _random_item(R=12)
    similarity = cosine_similarity_matrix(phrase_pool(tokens, ids, 3)[0], regions)
    phrase_mask = phrase_pool(tokens, ids, 3)[1]
    positions = Positions(tokens, token_mask, ids, regions, region_mask)
    candidates, valid = text_side_candidates(similarity, phrase_mask, positions, k_r=4)
    assert candidates.shape == (3, 7, 4)
    allowed = torch.zeros(3, 7, 12, dtype=torch.bool).scatter(-1, candidates, valid)
    assert torch.equal(candidate_mask(candidates, valid, 12), allowed)
    outputs = []
    for given in (
        {"allowed": allowed},
        {"candidates": candidates, "candidate_ok": valid},
        {"allowed": allowed, "candidates": candidates},
    ):
        attention = CrossModalAttention(8, heads=2, k_s=k_s, residual=False)
        torch.manual_seed(0)
        for layer in (attention.query, attention.key, attention.value):
            torch.nn.init.normal_(layer.weight)
        queries = tokens.clone().requires_grad_()
        out = attention.dense(queries, token_mask, regions, region_mask, **given)
        (out.aligned.sum() + torch.where(token_mask, out.cosine.amax(-1), 0).sum()).backward()
        at_region = torch.zeros(3, 7, 12).scatter_add(-1, out.candidates, out.weights)
        logits_at_region = torch.full((3, 7, 12), -torch.inf).scatter(-1, out.candidates, out.logits)
        cosine_best = torch.where(token_mask, out.cosine.amax(-1), 0)
        outputs.append((at_region, logits_at_region, out.aligned, cosine_best, out.best[token_mask], queries.grad))
    assert outputs[1][0].shape == (3, 7, 12)
    for plain, *read in zip(*outputs, strict=True):
        for other in read:
            torch.testing.assert_close(plain, other)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_image_side_over_its_candidate_tokens_equals_the_masked_image_side(seed: int) -> None:
    """Regions screen over the tokens of their top-k_p phrases (``region_candidates``, padded with invalid
    repeats of token 0) exactly as over every token with the mask M^v2t: the same aligned features, weights
    (placed at their tokens), confidence reads and gradients, an item without regions included."""
    tokens, token_mask, regions, region_mask, _ = _random_item(L=7, R=5, seed=seed)
    tokens = torch.randn(3, 16, 8, generator=torch.Generator().manual_seed(seed))  # distinct: no tied weights
    token_mask = torch.ones(3, 16, dtype=torch.bool)
    token_mask[0, -2:] = False
    region_mask[1] = False
    token_mask[2, -3:] = False
    ids = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4, 5, 5, 5, 5]).expand(3, 16).clone()  # phrases of 1-4
    ids[~token_mask] = -1
    similarity, phrase_mask = phrase_region_similarity(Positions(tokens, token_mask, ids, regions, region_mask))
    candidates, ok = region_candidates(similarity, phrase_mask, ids, k_p=2)
    assert candidates.shape[-1] < 16 and (~ok).any()  # fewer than every token, with padding
    allowed = _image_side_mask(similarity, phrase_mask, ids, 2)
    assert torch.equal(candidate_mask(candidates, ok, 16), allowed)  # the mask the model builds from them
    outputs = []
    for given in ({"allowed": allowed}, {"candidates": candidates, "candidate_ok": ok}):
        torch.manual_seed(seed)
        attention = CrossModalAttention(8, heads=2, k_s=3)
        r, t = regions.clone().requires_grad_(), tokens.clone().requires_grad_()
        out = attention.dense(r, region_mask, t, token_mask, **given)
        (out.aligned.square().sum() + torch.where(region_mask, out.cosine.amax(-1), 0).sum()).backward()
        at_token = torch.zeros(3, 5, 16).scatter_add(-1, out.candidates, out.weights)
        outputs.append((out.aligned, at_token, torch.where(region_mask, out.cosine.amax(-1), 0), r.grad, t.grad))
    for masked, over_candidates in zip(*outputs, strict=True):
        torch.testing.assert_close(masked, over_candidates)


def test_the_image_side_candidates_from_phrase_members_built_once_for_the_catalogue() -> None:
    """``region_candidates`` given the members of the whole catalogue's phrases (longer phrases and more of them
    than the batch has, as ``ContentBranch`` builds them once) names the same valid tokens as when it sorts the
    batch's own phrase ids, in the same order."""
    catalogue_ids = torch.tensor(
        [
            [0, 0, 1, 1, 1, 2, 2, -1],
            [0, 1, 1, 1, 1, 1, 2, 3],  # a longer phrase and more phrases than the batch below
            [0, 0, 0, 1, 2, 2, -1, -1],
        ]
    )
    batch = torch.tensor([0, 2])
    ids = catalogue_ids[batch]
    members = group_members(catalogue_ids, 4)
    g = torch.Generator().manual_seed(0)
    tokens, regions = torch.randn(2, 8, 4, generator=g), torch.randn(2, 5, 4, generator=g)
    positions = Positions(tokens, ids >= 0, ids, regions, torch.ones(2, 5, dtype=torch.bool))
    similarity, phrase_mask = phrase_region_similarity(positions)
    own, own_ok = region_candidates(similarity, phrase_mask, ids, k_p=2)
    given, given_ok = region_candidates(similarity, phrase_mask, ids, 2, (members[0][batch], members[1][batch]))
    assert given.shape[-1] > own.shape[-1]  # padded to the catalogue's longest phrase
    for b in range(2):
        for r in range(5):
            assert own[b, r][own_ok[b, r]].tolist() == given[b, r][given_ok[b, r]].tolist()


def test_the_candidate_product_in_chunks_equals_the_whole_product_gathered_with_its_gradients() -> None:
    """``CandidateProduct`` maps a chunk of queries' rows (``left``, recomputed in the backward), forms its product
    and scatters each chunk's gradient back: the values of ``(left(a) @ b).gather(-1, candidates)`` and, in
    float64, gradients that pass gradcheck; a source named twice among a query's candidates gets both gradients."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 7, 12, generator=g, dtype=torch.float64, requires_grad=True)  # 7 queries' rows
    b = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    candidates = torch.randint(0, 5, (2, 7, 3), generator=g)
    candidates[0, 0] = torch.tensor([1, 1, 4])

    def heads(rows: torch.Tensor) -> torch.Tensor:  # the rows' heads, normalised: a map that is not linear
        return torch.nn.functional.normalize(rows.view(2, -1, 3, 4), dim=-1).transpose(1, 2)

    whole = (heads(a) @ b).gather(-1, candidates.unsqueeze(1).expand(2, 3, 7, 3))
    for rows in (1, 3, 7):
        chunked = CandidateProduct.apply(a, b, candidates, rows, heads)
        torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-12)
        check = (lambda x, y, r=rows: CandidateProduct.apply(x, y, candidates, r, heads), (a, b))
        assert torch.autograd.gradcheck(*check)


def test_the_aggregate_over_candidates_in_chunks_equals_the_spread_weights_times_the_values() -> None:
    """``CandidateAggregate`` spreads each chunk of queries' weights to their sources and multiplies by the values:
    the values of ``spread(w, candidates, S) @ values``, gradients that pass gradcheck, a source named twice
    summed."""
    g = torch.Generator().manual_seed(1)
    weights = torch.rand(2, 7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    values = torch.randn(2, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    candidates = torch.randint(0, 5, (2, 7, 3), generator=g)
    candidates[1, 2] = torch.tensor([3, 0, 3])
    whole = torch.zeros(2, 7, 5, dtype=torch.float64).scatter_add(-1, candidates, weights) @ values
    for rows in (1, 4, 7):
        torch.testing.assert_close(CandidateAggregate.apply(weights, candidates, values, rows), whole)
        assert torch.autograd.gradcheck(
            lambda w, v, r=rows: CandidateAggregate.apply(w, candidates, v, r), (weights, values)
        )


def test_a_large_masked_side_screens_its_candidates_in_chunks_with_the_same_result(monkeypatch) -> None:
    """Above ``CPU_SCORE_ELEMENTS`` the image side's score products and its aggregation run in chunks of regions:
    the same aligned features, weights, cosine reads and gradients as the whole products."""
    g = torch.Generator().manual_seed(3)
    tokens, regions = torch.randn(2, 16, 8, generator=g), torch.randn(2, 20, 8, generator=g)
    token_mask, region_mask = torch.ones(2, 16, dtype=torch.bool), torch.ones(2, 20, dtype=torch.bool)
    token_mask[1, -4:] = False
    region_mask[0, -3:] = False
    ids = (torch.arange(16) // 3).expand(2, 16).clone()
    ids[~token_mask] = -1
    positions = Positions(tokens, token_mask, ids, regions, region_mask)
    similarity, phrase_mask = phrase_region_similarity(positions)
    candidates, ok = region_candidates(similarity, phrase_mask, ids, k_p=2)
    outputs = []
    for elements in (10**9, 2 * 2 * 16 * 3):  # whole; three regions a chunk (2 items x 2 heads x 16 tokens each)
        monkeypatch.setattr(alignment, "CPU_SCORE_ELEMENTS", elements)
        torch.manual_seed(0)
        attention = CrossModalAttention(8, heads=2, k_s=3)
        r, t = regions.clone().requires_grad_(), tokens.clone().requires_grad_()
        out = attention.dense(r, region_mask, t, token_mask, candidates=candidates, candidate_ok=ok)
        (out.aligned.square().sum() + torch.where(region_mask, out.cosine.amax(-1), 0).sum()).backward()
        grads = [p.grad for p in attention.parameters()]
        outputs.append((out.aligned, out.weights, out.logits, out.cosine, r.grad, t.grad, *grads))
    for whole, chunked in zip(*outputs, strict=True):
        torch.testing.assert_close(chunked, whole)
