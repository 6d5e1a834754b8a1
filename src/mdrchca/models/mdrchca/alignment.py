"""Hierarchical cross-modal alignment: phrase-region (coarse), then token-region (fine).

Shapes: B items, L tokens, P phrases, R regions, d dims, H heads, C candidates per query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from mdrchca.models.components.masking import fill_invalid_, mask_operand


def phrase_pool(tokens: torch.Tensor, phrase_ids: torch.Tensor, n_phrases: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Average-pool tokens into phrases (the paper's *Phrase-Image Region Alignment*):
    :math:`p_k = \frac{1}{|k|} \sum_{w \in k} \tilde t_w`.

    ``phrase_ids [B, L]`` holds 0..P-1 for real tokens and -1 for padding. Returns phrases ``[B, P, d]``
    and their mask ``[B, P]`` (False for phrases with no token).
    """
    B, L, d = tokens.shape
    valid = phrase_ids >= 0
    index = phrase_ids.clamp_min(0)
    sums = tokens.new_zeros(B, n_phrases, d).scatter_add_(
        1, index.unsqueeze(-1).expand(B, L, d), tokens * valid.unsqueeze(-1)
    )
    counts = tokens.new_zeros(B, n_phrases).scatter_add_(1, index, valid.to(tokens.dtype))
    return sums / counts.clamp_min(1).unsqueeze(-1), counts > 0


def cosine_similarity_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r""":math:`s_{kp} = \frac{a_k \cdot b_p}{\lVert a_k\rVert \lVert b_p\rVert}` for every pair, ``[B, K, P]``
    (one batched matrix product)."""
    return nn.functional.normalize(a, dim=-1) @ nn.functional.normalize(b, dim=-1).transpose(1, 2)


def topk_candidates(scores: torch.Tensor, valid: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The top-k columns of each row among valid ones (the paper's *Phrase-Image Region Alignment*, :math:`M^{t2v}`
    as indices).

    ``scores [B, Q, S]``, ``valid [B, S]`` -> indices ``[B, Q, min(k, S)]`` and their validity (False where
    a row has fewer than k valid columns); :func:`candidate_mask` makes them the 0/1 matrix :math:`M^{t2v}`.
    """
    masked = scores.masked_fill(~valid.unsqueeze(1), -torch.inf)
    values, indices = masked.topk(min(k, scores.shape[-1]), dim=-1)
    return indices, torch.isfinite(values)


def group_members(group_ids: torch.Tensor, n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each group (phrase), the indices of its members (tokens), padded: ``[B, G, M]`` and validity."""
    B, L = group_ids.shape
    valid = group_ids >= 0
    counts = torch.zeros(B, n_groups, dtype=torch.long, device=group_ids.device).scatter_add(
        1, group_ids.clamp_min(0), valid.long()
    )
    width = max(1, int(counts.max()) if counts.numel() else 1)
    # rank of each token inside its group, from a stable sort by group id
    key = torch.where(valid, group_ids, n_groups)
    order = key.argsort(dim=1, stable=True)
    sorted_key = key.gather(1, order)
    starts = torch.searchsorted(
        sorted_key, torch.arange(n_groups + 1, device=group_ids.device).expand(B, -1).contiguous()
    )
    positions = torch.arange(L, device=group_ids.device).expand(B, L)
    rank = positions - starts.gather(1, sorted_key.clamp_max(n_groups))
    members = torch.zeros(B, n_groups + 1, width, dtype=torch.long, device=group_ids.device)
    ok = torch.zeros(B, n_groups + 1, width, dtype=torch.bool, device=group_ids.device)
    b = torch.arange(B, device=group_ids.device).unsqueeze(1).expand(B, L)
    in_range = rank < width
    members[b[in_range], sorted_key[in_range], rank[in_range]] = order[in_range]
    ok[b[in_range], sorted_key[in_range], rank[in_range]] = True
    return members[:, :n_groups], ok[:, :n_groups]


@dataclass
class AttentionOutput:
    """Result of a cross attention, per query.

    ``aligned [B, Q, d]``: top-k_s aggregation of the sources' values; ``weights [B, Q, C]``: head-averaged
    softmax weights over the C candidates; ``logits [B, Q, C]``: head-averaged scaled scores
    :math:`q \\cdot k / \\sqrt{d_h}` (``-inf`` off the mask; None where the caller asked a masked product not
    to compute them); ``candidates [B, Q, C]``: source index of each
    candidate; ``best [B, Q]``: source index of the largest weight.
    """

    aligned: torch.Tensor
    weights: torch.Tensor
    logits: torch.Tensor | None
    candidates: torch.Tensor
    best: torch.Tensor
    cosine: torch.Tensor  # head-averaged cos(q, k) per candidate, -inf off the mask (for confidence)
    cross: torch.Tensor  # the aggregated sources alone, sum_p A^s_wp v_p W_V, without the residual [B, Q, d]


class SourceWeights(NamedTuple):
    """What the fused content needs of one direction of the attention (:meth:`CrossModalAttention.dense_weights`):
    ``sparse [B, Q, S]``, the head-averaged top-k_s weights :math:`A^s` over every source (0 off them);
    ``cosine [B, Q, C]``, the head-averaged query-key cosine (``-inf`` off the mask); ``weights [B, Q, C]``, the
    head-averaged weights before the top-k_s; ``candidates [B, Q, C]``, the source of each column of those two
    (every source in order when the screen ran over all of them)."""

    sparse: torch.Tensor
    cosine: torch.Tensor
    weights: torch.Tensor
    candidates: torch.Tensor

    def best(self) -> torch.Tensor:
        """Each query's best source ``[B, Q]``, as :class:`AttentionOutput`'s."""
        return best_sources(self.weights, self.candidates)


def best_sources(weights: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """The source of each query's largest weight: ``candidates [B, Q, C]`` at the argmax of ``weights [B, Q, C]``."""
    return candidates.gather(-1, weights.argmax(-1, keepdim=True)).squeeze(-1)


def spread(values: torch.Tensor, candidates: torch.Tensor, n_sources: int) -> torch.Tensor:
    """Values over each query's candidates ``[B, Q, C]`` placed at their sources, ``[B, Q, S]``, 0 elsewhere.
    Summed where a source repeats among a row's candidates, which holds only for invalid ones, whose values are
    0 (the image side pads short phrases with token 0): adding 0 leaves a value as it was, bit for bit."""
    return values.new_zeros(*values.shape[:-1], n_sources).scatter_add_(-1, candidates, values)


MASKED_TEXT_SIDE_UP_TO = 64
"""Most regions per item for which ``text_side=auto`` scores the token side as one masked product: the largest
size where that was measured faster than grouping (the content branch on ML-100K's 64 + 64 and the bundled
32 + 16 positions, ``bench_content_pass.py --compare text_side=grouped,auto``). Above it the product's cost grows
with L x R while the grouped side's does not (docs/benchmarks.md); the crossover between 64 and 256 regions is
not pinned down."""

SHORT_ROW = 16
"""Row length below which :func:`row_softmax` writes the softmax out on the CPU (measured crossover)."""


def row_softmax(scores: torch.Tensor, written_out: bool | None = None) -> torch.Tensor:
    r"""Softmax over the last dim of finite ``scores`` (the alignment gives masked candidates the dtype's lowest
    value, so a row with every candidate masked gives no NaN; the caller zeroes its weights).

    ``written_out`` computes it as :math:`e^{x - m} / \sum e^{x - m}` with the row maximum m held constant (the
    result does not depend on m, so its gradient is the softmax's). By default it does so on the CPU for rows
    shorter than :data:`SHORT_ROW`: PyTorch's CPU kernel vectorises along the row, and rows shorter than one
    AVX-512 register (the hierarchical path's k_r = 10 candidates of a phrase) take it longer than these four
    whole-tensor operations, while longer rows are faster in the kernel (``benchmarks/bench_softmax.py``)."""
    if written_out is None:
        written_out = scores.device.type == "cpu" and scores.shape[-1] < SHORT_ROW
    if not written_out:
        return torch.softmax(scores, dim=-1)
    exp = (scores - scores.detach().amax(dim=-1, keepdim=True)).exp()
    return exp / exp.sum(dim=-1, keepdim=True)


CPU_SCORE_ELEMENTS = 2**20
"""Most elements of a score tensor a masked side forms at once on the CPU when it screens over candidates
(:func:`candidate_product`): ML-100K's chunk of 64 items x 4 heads x 64 x 64 positions, whose product stays in
cache. Larger products (many regions: 32 items x 4 heads x 1,024 regions x 64 tokens is eight times that) run in
chunks of queries, each gathered at its candidates at once, so that no whole query x source tensor is formed or
back-propagated; the aggregation over the candidates (:func:`candidate_aggregate`) runs in the same chunks. On a
GPU the products are formed whole (memory is not what limits them there, kernel launches are)."""

RowMap = Callable[[torch.Tensor], torch.Tensor]
"""A map of a chunk of queries' rows ``[B, Q', ...]`` to the left operand of a product, ``[B, G, Q', e]``."""


def cpu_chunk_rows(device: torch.device, queries: int, elements_per_query: int) -> int | None:
    """Queries per chunk that keep a score tensor of ``elements_per_query`` elements per query within
    :data:`CPU_SCORE_ELEMENTS` on the CPU, or None when the whole tensor may be formed (it fits, or on a GPU)."""
    rows = max(1, CPU_SCORE_ELEMENTS // max(1, elements_per_query))
    return None if device.type != "cpu" or rows >= queries else rows


class CandidateProduct(torch.autograd.Function):
    r"""Batched products at each query's candidates alone: :math:`Y_{bgqc} = f(a)_{bgq} \cdot b_{bg\,:\,s}` with
    :math:`s` = ``candidates[b, q, c]``, for the queries' rows ``a [B, Q, ...]``, a map ``left`` of a chunk of them
    to ``[B, G, rows, e]`` (the heads' view, or head-normalised rows), ``b [B, G, e, S]`` -> ``[B, G, Q, C]``,
    computed ``rows`` queries at a time: each chunk's product ``[B, G, rows, S]`` is gathered at once, and the
    backward scatters each chunk's gradient into a chunk of the same size and recomputes ``left`` of the chunk, so
    that memory grows with the candidates and the chunk, not with Q x S, and no transformed copy of ``a`` is kept.
    The same values as ``(left(a) @ b).gather(-1, candidates)``; no gradient of the gradient."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, a: torch.Tensor, b: torch.Tensor, candidates: torch.Tensor, rows: int, left: RowMap
    ) -> torch.Tensor:
        B, G = b.shape[0], b.shape[1]
        Q, C = a.shape[1], candidates.shape[-1]
        out = b.new_empty(B, G, Q, C)
        for start in range(0, Q, rows):
            chunk = slice(start, start + rows)
            index = candidates[:, None, chunk].expand(B, G, -1, C)
            out[:, :, chunk] = torch.gather(left(a[:, chunk]) @ b, -1, index)
        ctx.save_for_backward(a, b, candidates)
        ctx.rows, ctx.left = rows, left
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None, None]:  # type: ignore[override]
        a, b, candidates = ctx.saved_tensors
        B, G, S = b.shape[0], b.shape[1], b.shape[-1]
        Q, C = a.shape[1], candidates.shape[-1]
        grad_a = torch.empty_like(a) if ctx.needs_input_grad[0] else None
        grad_b = torch.zeros_like(b) if ctx.needs_input_grad[1] else None
        for start in range(0, Q, ctx.rows):
            chunk = slice(start, start + ctx.rows)
            index = candidates[:, None, chunk].expand(B, G, -1, C)
            scores_grad = grad.new_zeros(B, G, index.shape[2], S).scatter_add_(-1, index, grad[:, :, chunk])
            with torch.enable_grad():
                rows_in = a[:, chunk].detach().requires_grad_(grad_a is not None)
                mapped = ctx.left(rows_in)
            if grad_b is not None:
                grad_b += mapped.detach().transpose(-1, -2) @ scores_grad
            if grad_a is not None:
                (grad_a[:, chunk],) = torch.autograd.grad(mapped, rows_in, scores_grad @ b.transpose(-1, -2))
        return grad_a, grad_b, None, None, None


def candidate_product(
    a: torch.Tensor, b: torch.Tensor, candidates: torch.Tensor, left: RowMap, scale: float = 1.0
) -> torch.Tensor:
    """``(scale left(a) @ b).gather(-1, candidates)`` for the queries' rows ``a [B, Q, ...]``, ``left`` mapping them
    to ``[B, G, Q, e]``, ``b [B, G, e, S]`` and ``candidates [B, Q, C]`` (broadcast over G): formed whole on a GPU
    and when it has at most :data:`CPU_SCORE_ELEMENTS` elements (``left(a)`` scaled and copied into the layout the
    product reads), else by :class:`CandidateProduct` in chunks of queries (``b`` scaled instead)."""
    B, G, S = b.shape[0], b.shape[1], b.shape[-1]
    Q, C = a.shape[1], candidates.shape[-1]
    rows = cpu_chunk_rows(a.device, Q, B * G * S)
    if rows is None:
        mapped = left(a) if scale == 1.0 else left(a).mul(scale).contiguous()
        return (mapped @ b).gather(-1, candidates.unsqueeze(1).expand(B, G, Q, C))
    return CandidateProduct.apply(a, b if scale == 1.0 else b * scale, candidates, rows, left)


class CandidateAggregate(torch.autograd.Function):
    r""":math:`Y_{bq} = \sum_c w_{bqc}\, v_{b,s}` with :math:`s` = ``candidates[b, q, c]``, for ``weights [B, Q, C]``
    and ``values [B, S, d]`` -> ``[B, Q, d]``: the weights spread to their sources and multiplied by the values
    ``rows`` queries at a time, so that no whole ``[B, Q, S]`` tensor of weights or of their gradient is formed
    (the backward reads each chunk's gradient against every source and gathers it at the candidates). The same
    values as ``spread(weights, candidates, S) @ values``; no gradient of the gradient."""

    @staticmethod
    def forward(ctx, weights: torch.Tensor, candidates: torch.Tensor, values: torch.Tensor, rows: int) -> torch.Tensor:  # type: ignore[override]
        B, Q, _ = weights.shape
        out = values.new_empty(B, Q, values.shape[-1])
        for start in range(0, Q, rows):
            chunk = slice(start, start + rows)
            out[:, chunk] = spread(weights[:, chunk], candidates[:, chunk], values.shape[1]) @ values
        ctx.save_for_backward(weights, candidates, values)
        ctx.rows = rows
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, torch.Tensor | None, None]:  # type: ignore[override]
        weights, candidates, values = ctx.saved_tensors
        Q, S = weights.shape[1], values.shape[1]
        grad_weights = torch.empty_like(weights) if ctx.needs_input_grad[0] else None
        grad_values = torch.zeros_like(values) if ctx.needs_input_grad[2] else None
        for start in range(0, Q, ctx.rows):
            chunk = slice(start, start + ctx.rows)
            if grad_weights is not None:
                grad_weights[:, chunk] = (grad[:, chunk] @ values.transpose(1, 2)).gather(-1, candidates[:, chunk])
            if grad_values is not None:
                placed = spread(weights[:, chunk], candidates[:, chunk], S)
                grad_values += placed.transpose(1, 2) @ grad[:, chunk]
        return grad_weights, None, grad_values, None


def candidate_aggregate(weights: torch.Tensor, candidates: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``spread(weights, candidates, S) @ values`` for ``weights [B, Q, C]`` over ``candidates [B, Q, C]`` and
    ``values [B, S, d]``: whole on a GPU and when ``[B, Q, S]`` has at most :data:`CPU_SCORE_ELEMENTS` elements,
    else by :class:`CandidateAggregate` in chunks of queries."""
    B, Q, _ = weights.shape
    S = values.shape[1]
    rows = cpu_chunk_rows(weights.device, Q, B * S)
    if rows is None:
        return spread(weights, candidates, S) @ values
    return CandidateAggregate.apply(weights, candidates, values, rows)


def _head_cosine(q: torch.Tensor, k: torch.Tensor, equation: str) -> torch.Tensor:
    """Head-averaged cosine of queries and keys (last dim = head dim), contracted by ``equation``."""
    return torch.einsum(equation, nn.functional.normalize(q, dim=-1), nn.functional.normalize(k, dim=-1))


def head_units(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Each head's slice of ``x [..., d]`` scaled to unit norm, the whole divided by sqrt(H): the dot product
    of two such vectors is the head-averaged cosine (1/H) sum_h cos(x^h, y^h). ``normalize``'s division with the
    sqrt(H) folded into its norms (one pass over ``x`` instead of two; the same eps)."""
    rows = x.unflatten(-1, (heads, -1))
    norms = torch.linalg.vector_norm(rows, dim=-1, keepdim=True).clamp_min(1e-12).mul(heads**0.5)
    return (rows / norms).flatten(-2)


class CrossModalAttention(nn.Module):
    r"""Masked multi-head attention from queries to source features, then top-:math:`k_s` screening
    (the paper's *Token-Image Region Alignment*):

    .. math::
        \mathrm{Attn}_{wp} = \frac{1}{H}\sum_h \mathrm{softmax}_{p \in \mathcal C(w)}
            \Big(\frac{q^h_w \cdot k^h_p}{\sqrt{d_h}}\Big), \qquad
        \hat t_w = \sum_{p \in \mathrm{Top}\text{-}k_s(\mathrm{Attn}_w)} \mathrm{Attn}_{wp}\, \tilde v_p W_V

    Three ways to compute it:

    * :meth:`grouped`: queries come in groups (tokens of a phrase) that share one candidate set (the phrase's
      top-:math:`k_r` regions). Keys and values are *gathered* per group, :math:`O(P k_r d)`, and each query
      attends over its group's :math:`k_r` candidates, :math:`O(n_t k_r d)`; no score outside the candidates is
      ever computed (the hierarchical token side above ``MASKED_TEXT_SIDE_UP_TO`` regions).
    * :meth:`gathered`: each query over its own candidates, their keys and values gathered per query (the
      image side with ``image_side=gathered``).
    * :meth:`dense`: scores against every source, :math:`O(Q S d)`, restricted to an ``allowed`` mask (both
      hierarchical sides at the default sizes) or not (variant A's full cross-attention).

    With ``residual`` the query's own feature is added, :math:`\hat t_w \mathrel{+}= \tilde t_w`.
    """

    def __init__(
        self, dim: int, heads: int = 4, k_s: int = 5, residual: bool = True, renormalize: bool = False
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"embedding size {dim} is not divisible by {heads} heads")
        self.heads, self.k_s, self.residual, self.renormalize = heads, k_s, residual, renormalize
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        for layer in (self.query, self.key, self.value):
            nn.init.xavier_uniform_(layer.weight)

    def query_key_units(self, queries: torch.Tensor, sources: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Queries and keys as :func:`head_units`: their dot products are the head-averaged query-key cosines
        this attention reports as ``cosine`` (what the default confidences read)."""
        return head_units(self.query(queries), self.heads), head_units(self.key(sources), self.heads)

    def _screen(
        self,
        logits: torch.Tensor,
        valid: torch.Tensor,
        heads_dim: int,
        mean_logits: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Softmax over candidates per head (last dim), head average, top-k_s zeroing.

        ``logits`` holds the scaled scores with the heads at ``heads_dim`` (overwritten), ``valid`` the candidates'
        mask without that dim (booleans, or already as :func:`~mdrchca.models.components.masking.mask_operand`
        gives) -> weights, sparse weights and mean logits (``-inf`` off the mask; None without
        ``mean_logits``), shaped as ``valid``.
        """
        heads = logits.shape[heads_dim]
        # masked scores at the lowest finite value: exp(lowest - max) = 0 beside any real candidate, and a row
        # with none gives uniform weights that the mask then zeroes (on [..., C], after the head average).
        # In place: the scores are the product's fresh output, which its backward does not read; so are the
        # head sum and its quotient (neither's backward reads its output). ``keep``: the mask as the fill and the
        # product below read it (floats on the CPU; a no-op when the caller passes it converted already)
        keep = mask_operand(valid, logits)
        # sums over the heads divided afterwards (= mean), so that the backward divides [..., C], not [..., H, C]
        mean = fill_invalid_(logits.sum(dim=heads_dim) / heads, keep, infinite=True) if mean_logits else None
        filled = fill_invalid_(logits, keep, dim=heads_dim)
        weights = row_softmax(filled).sum(dim=heads_dim).div_(heads).mul_(keep)
        # exactly k_s survive; among weights tied at the k-th, the ones topk returns
        k_s = min(self.k_s, weights.shape[-1])
        if k_s < weights.shape[-1]:
            top = weights.topk(k_s, dim=-1)
            sparse = torch.zeros_like(weights).scatter(-1, top.indices, top.values)
        else:
            sparse = weights
        if self.renormalize:
            sparse = sparse / sparse.sum(-1, keepdim=True).clamp_min(1e-12)
        return weights, sparse, mean

    def dense(
        self,
        queries: torch.Tensor,
        query_mask: torch.Tensor,
        sources: torch.Tensor,
        source_mask: torch.Tensor,
        allowed: torch.Tensor | None = None,
        candidates: torch.Tensor | None = None,
        mean_logits: bool = True,
        candidate_ok: torch.Tensor | None = None,
    ) -> AttentionOutput:
        """Every query against every source as one product, restricted by ``allowed [B, Q, S]`` or to each query's
        ``candidates [B, Q, C]`` (source indices, valid where ``candidate_ok``, else where ``allowed`` holds at
        them): then the screen runs over the C candidates alone and ``weights``, ``logits`` and ``cosine`` are
        ``[B, Q, C]`` beside those ``candidates``; without them they are over every source. ``mean_logits=False``
        leaves ``logits`` None (only ``confidence_source=logits`` reads them)."""
        given = candidates is not None
        weights, sparse, logits, cosine, candidates = self._dense_screen(
            queries, query_mask, sources, source_mask, allowed, mean_logits, candidates, candidate_ok
        )
        values = self.value(sources)
        aligned = candidate_aggregate(sparse, candidates, values) if given else sparse @ values
        return self._finish(aligned, queries, query_mask, weights, logits, candidates, cosine)

    def dense_weights(
        self,
        queries: torch.Tensor,
        query_mask: torch.Tensor,
        sources: torch.Tensor,
        source_mask: torch.Tensor,
        allowed: torch.Tensor | None = None,
        candidates: torch.Tensor | None = None,
        candidate_ok: torch.Tensor | None = None,
    ) -> SourceWeights:
        """What the fused content needs of :meth:`dense`, and no more: the sparse weights over every source
        (:meth:`dense`'s, spread from the candidates), the weights before the top-k_s and the cosine (over the
        candidates when given), without the aggregation :math:`A^s V W_V`, which
        :func:`~mdrchca.models.mdrchca.fusion.pooled_through_weights` takes after pooling instead, and without
        the mean logits."""
        given = candidates is not None
        weights, sparse, _, cosine, candidates = self._dense_screen(
            queries, query_mask, sources, source_mask, allowed, False, candidates, candidate_ok
        )
        if given:
            sparse = spread(sparse, candidates, sources.shape[1])
        return SourceWeights(sparse, cosine, weights, candidates)

    def _dense_screen(
        self,
        queries: torch.Tensor,
        query_mask: torch.Tensor,
        sources: torch.Tensor,
        source_mask: torch.Tensor,
        allowed: torch.Tensor | None,
        mean_logits: bool = True,
        candidates: torch.Tensor | None = None,
        candidate_ok: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Scores of every query against every source, masked and screened: weights, sparse weights, mean logits
        (None without ``mean_logits``), the head-averaged cosine, and the candidates ``[B, Q, C]`` all of them are
        over (every source in order unless ``candidates`` are given; see :meth:`dense`)."""
        B, Q, d = queries.shape
        S = sources.shape[1]
        H, dh = self.heads, d // self.heads
        q_all, k_all = self.query(queries), self.key(sources)

        def heads(rows: torch.Tensor) -> torch.Tensor:  # [B, Q', d] -> [B, H, Q', dh], a view
            return rows.view(B, -1, H, dh).transpose(1, 2)

        def units(rows: torch.Tensor) -> torch.Tensor:  # [B, Q', d] -> [B, 1, Q', d], head-normalised
            return head_units(rows, H).unsqueeze(1)

        # heads first, as the product leaves them, and the scale on q: no pass over [B, H, Q, S] for either.
        # Both operands copied into the layout the batched product reads (q [B, H, Q, dh], k [B, H, dh, S]):
        # the strided views cost the product more than the copies (1.27 against 0.80 ms a chunk, the same bits);
        # in chunks (``candidate_product``) the scale goes on k and q is read where it lies
        k = k_all.view(B, S, H, dh).permute(0, 2, 3, 1).contiguous()
        # the head-averaged cosine as one product of head-normalised rows (no permuted copies of q and k)
        k_units = head_units(k_all, H).transpose(1, 2)
        if candidates is None:
            logits = heads(q_all).mul(dh**-0.5).contiguous() @ k  # [B, H, Q, S]
            cosine = head_units(q_all, H) @ k_units  # [B, Q, S]
            valid = source_mask.unsqueeze(1) & query_mask.unsqueeze(-1)
            if allowed is not None:
                valid = valid & allowed
            valid = valid.expand(B, Q, S)
        else:
            # the screen's elementwise work (fill, softmax, head sum, top-k) over the C candidates instead of
            # the S sources; each product runs over every source, as the matrix kernels run that fastest, and is
            # gathered at the candidates (a chunk of queries at a time when large: ``candidate_product``)
            C = candidates.shape[-1]
            if candidate_ok is None:
                every = torch.ones_like(candidates, dtype=torch.bool)
                candidate_ok = allowed.gather(-1, candidates) if allowed is not None else every
            at_sources = source_mask.gather(1, candidates.view(B, Q * C)).view(B, Q, C)
            valid = candidate_ok & query_mask.unsqueeze(-1) & at_sources
            logits = candidate_product(q_all, k, candidates, heads, dh**-0.5)  # [B, H, Q, C]
            cosine = candidate_product(q_all, k_units.unsqueeze(1), candidates, units).squeeze(1)
        keep = mask_operand(valid, logits)  # converted once for the screen and the cosine
        weights, sparse, mean = self._screen(logits, keep, 1, mean_logits)
        cosine = fill_invalid_(cosine, keep, infinite=True)
        if candidates is None:
            return weights, sparse, mean, cosine, torch.arange(S, device=sources.device).expand(B, Q, S)
        return weights, sparse, mean, cosine, candidates

    def gathered(
        self,
        queries: torch.Tensor,
        query_mask: torch.Tensor,
        sources: torch.Tensor,
        source_mask: torch.Tensor,
        candidates: torch.Tensor,
        candidate_ok: torch.Tensor,
    ) -> AttentionOutput:
        """Each query attends only to its own ``candidates [B, Q, C]`` (source indices, valid where
        ``candidate_ok``): keys and values are gathered, :math:`O(Q C d)`, never scored against every source."""
        B, Q, d = queries.shape
        C = candidates.shape[-1]
        H, dh = self.heads, d // self.heads
        flat = candidates.reshape(B, Q * C, 1).expand(-1, -1, d)
        q = self.query(queries).view(B, Q, H, dh)
        k_g = self.key(sources).gather(1, flat).view(B, Q, C, H, dh)
        v_g = self.value(sources).gather(1, flat).view(B, Q, C, d)
        logits = torch.einsum("bqhe,bqche->bqhc", q * dh**-0.5, k_g)  # [B, Q, H, C]
        valid = candidate_ok & query_mask.unsqueeze(-1) & source_mask.gather(1, candidates.view(B, -1)).view(B, Q, C)
        weights, sparse, mean_logits = self._screen(logits, valid, heads_dim=-2)
        aligned = torch.einsum("bqc,bqcd->bqd", sparse, v_g)
        cosine = _head_cosine(q, k_g, "bqhe,bqche->bqc") / H
        return self._finish(
            aligned, queries, query_mask, weights, mean_logits, candidates, cosine.masked_fill(~valid, -torch.inf)
        )

    def grouped(
        self,
        queries: torch.Tensor,
        query_mask: torch.Tensor,
        sources: torch.Tensor,
        source_mask: torch.Tensor,
        group_ids: torch.Tensor,
        group_candidates: torch.Tensor,
        group_valid: torch.Tensor,
    ) -> AttentionOutput:
        """Queries (tokens) grouped by ``group_ids [B, Q]`` (phrase, -1 = padding) attend only to their
        group's candidates ``group_candidates [B, G, C]`` (valid where ``group_valid``)."""
        B, Q, d = queries.shape
        G, C = group_candidates.shape[1:]
        H, dh = self.heads, d // self.heads
        members, member_ok = group_members(group_ids, G)  # [B, G, M]
        M = members.shape[-1]
        member_ok = member_ok & query_mask.gather(1, members.view(B, -1)).view(B, G, M)
        q = self.query(queries)
        q_g = q.gather(1, members.view(B, G * M, 1).expand(-1, -1, d)).view(B, G, M, H, dh)
        flat = group_candidates.reshape(B, G * C, 1).expand(-1, -1, d)
        if sources.shape[1] > G * C:
            # the candidates' rows first, then the projections: G C rows instead of every source (80 against
            # 1,024 regions with 8 phrases and k_r = 10); the bias-free projections commute with the gather
            candidate_sources = sources.gather(1, flat)
            k_g, v_g = self.key(candidate_sources), self.value(candidate_sources)
        else:
            k_g, v_g = self.key(sources).gather(1, flat), self.value(sources).gather(1, flat)
        k_g, v_g = k_g.view(B, G, C, H, dh), v_g.view(B, G, C, d)
        logits = torch.einsum("bgmhe,bgche->bgmhc", q_g * dh**-0.5, k_g)  # [B, G, M, H, C]
        cosine_g = _head_cosine(q_g, k_g, "bgmhe,bgche->bgmc") / H
        cand_ok = group_valid & source_mask.gather(1, group_candidates.view(B, -1)).view(B, G, C)
        valid = member_ok.unsqueeze(-1) & cand_ok.unsqueeze(2)  # [B, G, M, C]
        weights_g, sparse_g, logits_g = self._screen(logits, valid, heads_dim=-2)
        aligned_g = sparse_g @ v_g  # [B, G, M, d]
        # scatter the per-group results back to query positions
        aligned = queries.new_zeros(B, Q, d)
        weights = queries.new_zeros(B, Q, C)
        mean_logits = queries.new_full((B, Q, C), -torch.inf)
        b_idx = torch.arange(B, device=queries.device).view(B, 1, 1).expand(B, G, M)[member_ok]
        q_idx = members[member_ok]
        aligned = aligned.index_put((b_idx, q_idx), aligned_g[member_ok])
        weights = weights.index_put((b_idx, q_idx), weights_g[member_ok])
        mean_logits = mean_logits.index_put((b_idx, q_idx), logits_g[member_ok])
        cosine = queries.new_full((B, Q, C), -torch.inf).index_put(
            (b_idx, q_idx), cosine_g.masked_fill(~valid, -torch.inf)[member_ok]
        )
        candidates, _ = token_candidates(group_candidates, group_valid, group_ids)
        return self._finish(aligned, queries, query_mask, weights, mean_logits, candidates, cosine)

    def _finish(
        self,
        aligned: torch.Tensor,
        queries: torch.Tensor,
        query_mask: torch.Tensor,
        weights: torch.Tensor,
        mean_logits: torch.Tensor | None,
        candidates: torch.Tensor,
        cosine: torch.Tensor,
    ) -> AttentionOutput:
        # every path leaves a padding query's aggregation at zero (its candidates are all invalid)
        cross = aligned
        if self.residual:
            aligned = (aligned + queries) * query_mask.unsqueeze(-1)
        best = best_sources(weights, candidates)
        return AttentionOutput(aligned, weights, mean_logits, candidates, best, cosine, cross)


def phrase_rows(phrase_values: torch.Tensor, phrase_ids: torch.Tensor) -> torch.Tensor:
    """Each token's row of a per-phrase tensor ``[B, P, X]``: ``[B, L, X]`` (a padding token gets phrase 0's)."""
    index = phrase_ids.clamp_min(0).unsqueeze(-1).expand(-1, -1, phrase_values.shape[-1])
    return phrase_values.gather(1, index)


def tokens_inherit(phrase_mask: torch.Tensor, phrase_ids: torch.Tensor) -> torch.Tensor:
    """A per-phrase mask ``[B, P, X]`` given to each token of the phrase: ``[B, L, X]``, False on padding."""
    return phrase_rows(phrase_mask, phrase_ids) & (phrase_ids >= 0).unsqueeze(-1)


def token_candidates(
    phrase_candidates: torch.Tensor, phrase_valid: torch.Tensor, phrase_ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Token-level mask inherited from the phrase (the paper's *Token-Image Region Alignment*):
    :math:`M^{tok}_{wp} = M^{t2v}_{k(w)p}`, as candidate indices ``[B, L, k_r]`` (padding tokens get phrase 0's
    row, marked invalid)."""
    return phrase_rows(phrase_candidates, phrase_ids), tokens_inherit(phrase_valid, phrase_ids)


def region_candidates(
    similarity: torch.Tensor,
    phrase_mask: torch.Tensor,
    phrase_ids: torch.Tensor,
    k_p: int,
    phrase_members: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The image side's candidates (the paper's *Phrase-Image Region Alignment* and *Token-Image Region Alignment*,
    :math:`M^{v2t}`): for each region the tokens of its top-k_p
    phrases by :math:`s_{kp}`, as token indices ``[B, R, k_p M]`` (M = the longest phrase) and their validity.
    Built from the phrase x region similarity and the phrase members alone: no token x region tensor.
    ``phrase_members``: :func:`group_members` of ``phrase_ids`` computed beforehand (for P or more phrases), else
    computed here."""
    B, P, R = similarity.shape
    phrases, phrases_ok = topk_candidates(similarity.transpose(1, 2), phrase_mask, k_p)  # [B, R, k]
    if phrase_members is None:
        members, members_ok = group_members(phrase_ids, P)  # [B, P, M]
    else:
        members, members_ok = phrase_members[0][:, :P], phrase_members[1][:, :P]
    k, M = phrases.shape[-1], members.shape[-1]
    flat = phrases.reshape(B, R * k, 1).expand(-1, -1, M)
    tokens = members.gather(1, flat).view(B, R, k * M)
    ok = (members_ok.gather(1, flat).view(B, R, k, M) & phrases_ok.unsqueeze(-1)).view(B, R, k * M)
    return tokens, ok


@dataclass
class AlignmentOutput:
    """Both directions of the cross-modal alignment of a batch of items, with the coarse similarity."""

    text: AttentionOutput  # tokens attending to regions
    region: AttentionOutput  # regions attending to tokens
    similarity: torch.Tensor  # s_kp [B, P, R]
    phrase_mask: torch.Tensor  # [B, P]


class Positions(NamedTuple):
    """A batch of items' positions: ``tokens [B, L, d]`` with ``token_mask [B, L]`` and ``phrase_ids [B, L]``
    (the phrase of each token, -1 for padding), ``regions [B, R, d]`` with ``region_mask [B, R]``; and, when the
    caller has them, ``phrase_members``: :func:`group_members` of ``phrase_ids`` (each phrase's tokens ``[B, P', M]``
    and their validity, for at least the batch's phrases), which depend on the items alone and so can be computed
    once per catalogue instead of in every batch."""

    tokens: torch.Tensor
    token_mask: torch.Tensor
    phrase_ids: torch.Tensor
    regions: torch.Tensor
    region_mask: torch.Tensor
    phrase_members: tuple[torch.Tensor, torch.Tensor] | None = None


@dataclass(frozen=True)
class AlignmentPlan:
    """How :func:`align` aligns: the paper's hierarchy (``hierarchical``: top-``k_r`` regions per phrase, then
    each region over the tokens of its top-``k_p`` phrases) or variant A's dense attention; whether the
    image side gathers its candidates (``gathered_image_side``) or masks one region x token score tensor, and
    whether the token side (``text_side``) masks one token x region score tensor (``masked``), groups each
    phrase's tokens over its gathered candidates (``grouped``), or masks up to :data:`MASKED_TEXT_SIDE_UP_TO`
    regions per item and groups above (``auto``)."""

    k_r: int
    k_p: int
    hierarchical: bool = True
    gathered_image_side: bool = False
    text_side: str = "auto"
    mean_logits: bool = True
    """Whether the masked products report their head-averaged logits (read only by ``confidence_source=logits``)."""

    def masked_text_side(self, n_regions: int) -> bool:
        """Whether the token side is one masked product for items of ``n_regions`` region slots."""
        return self.text_side == "masked" or (self.text_side == "auto" and n_regions <= MASKED_TEXT_SIDE_UP_TO)

    def both_sides_dense(self, n_regions: int) -> bool:
        """Whether both directions score every source as one masked product (:func:`align_weights` applies)."""
        return not self.hierarchical or (self.masked_text_side(n_regions) and not self.gathered_image_side)


def align(
    text_attention: CrossModalAttention,
    region_attention: CrossModalAttention,
    positions: Positions,
    plan: AlignmentPlan,
) -> AlignmentOutput:
    """Phrase-region then token-region alignment (``plan.hierarchical``), or variant A's dense cross-attention.

    Hierarchical: phrases p_k pooled from the tokens, s_kp = cos(p_k, v_p), M^t2v = top-k_r regions per
    phrase, tokens attend over their phrase's gathered candidates (with a masked ``text_side``: scored against
    every region as one product and masked to those candidates, one [L, R] score tensor per head); regions
    attend over the tokens of their top-k_p phrases (M^v2t): with ``gathered_image_side`` their keys and values
    are gathered per region (no token x region tensor on either side, O(P R + L k_r + R k_p M) scores, but
    k_p M d-dimensional keys copied per region), otherwise scored against every token as one matrix product
    and masked (one [R, L] score tensor per head, the faster on the CPU at these sizes: docs/benchmarks.md).
    Either masked side screens over its candidates' columns of the product alone when they are few
    (:data:`CANDIDATE_SCREEN_SHARE`), and then reports its weights and reads over the candidates.
    Dense (variant A): every token against every region and back.
    """
    tokens, token_mask, phrase_ids, regions, region_mask = positions[:5]
    k_r, k_p = plan.k_r, plan.k_p
    similarity, phrase_mask = phrase_region_similarity(positions)
    if plan.hierarchical:
        if plan.masked_text_side(regions.shape[1]):
            text_out = text_attention.dense(
                tokens,
                token_mask,
                regions,
                region_mask,
                mean_logits=plan.mean_logits,
                **text_side_sources(similarity, phrase_mask, positions, k_r),
            )
        else:
            phrase_regions, phrase_regions_ok = topk_candidates(similarity, region_mask, k_r)
            text_out = text_attention.grouped(
                tokens,
                token_mask,
                regions,
                region_mask,
                phrase_ids,
                phrase_regions,
                phrase_regions_ok & phrase_mask.unsqueeze(-1),
            )
        if plan.gathered_image_side:
            region_tokens, region_ok = region_candidates(
                similarity, phrase_mask, phrase_ids, k_p, positions.phrase_members
            )
            region_out = region_attention.gathered(regions, region_mask, tokens, token_mask, region_tokens, region_ok)
        else:
            region_out = region_attention.dense(
                regions,
                region_mask,
                tokens,
                token_mask,
                mean_logits=plan.mean_logits,
                **image_side_sources(similarity, phrase_mask, positions, k_p),
            )
    else:
        text_out = text_attention.dense(tokens, token_mask, regions, region_mask, mean_logits=plan.mean_logits)
        region_out = region_attention.dense(regions, region_mask, tokens, token_mask, mean_logits=plan.mean_logits)
    return AlignmentOutput(text_out, region_out, similarity, phrase_mask)


def align_weights(
    text_attention: CrossModalAttention,
    region_attention: CrossModalAttention,
    positions: Positions,
    plan: AlignmentPlan,
) -> tuple[SourceWeights, SourceWeights, torch.Tensor, torch.Tensor]:
    """:func:`align` reduced to what the fused content needs, for a plan whose two sides are masked products
    (:meth:`AlignmentPlan.both_sides_dense`): each side's :class:`SourceWeights`, equal to :func:`align`'s,
    then s_kp and the phrase mask."""
    tokens, token_mask, _, regions, region_mask = positions[:5]
    if not plan.both_sides_dense(regions.shape[1]):
        raise ValueError("align_weights: this plan gathers one side's candidates; use align")
    similarity, phrase_mask = phrase_region_similarity(positions)
    text_sources: dict[str, torch.Tensor] = {}
    region_sources: dict[str, torch.Tensor] = {}
    if plan.hierarchical:
        text_sources = text_side_sources(similarity, phrase_mask, positions, plan.k_r)
        region_sources = image_side_sources(similarity, phrase_mask, positions, plan.k_p)
    text_side = text_attention.dense_weights(tokens, token_mask, regions, region_mask, **text_sources)
    region_side = region_attention.dense_weights(regions, region_mask, tokens, token_mask, **region_sources)
    return text_side, region_side, similarity, phrase_mask


def phrase_region_similarity(positions: Positions) -> tuple[torch.Tensor, torch.Tensor]:
    """Phrases pooled from the tokens and their cosine to the regions: s_kp ``[B, P, R]`` and the phrase mask."""
    phrase_ids = positions.phrase_ids
    n_phrases = max(1, int(phrase_ids.max().item()) + 1) if phrase_ids.numel() else 1
    phrases, phrase_mask = phrase_pool(positions.tokens, phrase_ids, n_phrases)
    return cosine_similarity_matrix(phrases, positions.regions), phrase_mask


CANDIDATE_SCREEN_SHARE = 0.5
"""Largest share of the sources a query's candidates may be for the masked products to screen over the candidates
(gathered from the whole score product) instead of over every source with a mask: ML-100K's 10 of 64 regions
(token side) and 27 of 64 tokens (image side, k_p = 3 phrases of up to 9 tokens) screen over candidates."""


def _screens_over_candidates(candidates: torch.Tensor, n_sources: int) -> bool:
    """Whether ``candidates [B, Q, C]`` are few enough of ``n_sources`` (:data:`CANDIDATE_SCREEN_SHARE`) to screen
    over them alone."""
    return candidates.shape[-1] <= CANDIDATE_SCREEN_SHARE * n_sources


def text_side_candidates(
    similarity: torch.Tensor, phrase_mask: torch.Tensor, positions: Positions, k_r: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each token's candidate regions, its phrase's top-k_r, as indices ``[B, L, k_r]`` and their validity (a
    padding token gets phrase 0's, marked invalid)."""
    phrase_regions, ok = topk_candidates(similarity, positions.region_mask, k_r)  # [B, P, k_r]
    return token_candidates(phrase_regions, ok & phrase_mask.unsqueeze(-1), positions.phrase_ids)


def text_side_sources(
    similarity: torch.Tensor, phrase_mask: torch.Tensor, positions: Positions, k_r: int
) -> dict[str, torch.Tensor]:
    """M^tok for :meth:`CrossModalAttention.dense`: the candidates of :func:`text_side_candidates`, or as the mask
    ``[B, L, R]`` when k_r is more than :data:`CANDIDATE_SCREEN_SHARE` of the regions."""
    candidates, valid = text_side_candidates(similarity, phrase_mask, positions, k_r)
    R = similarity.shape[-1]
    if _screens_over_candidates(candidates, R):
        return {"candidates": candidates, "candidate_ok": valid}
    return {"allowed": candidate_mask(candidates, valid, R)}


def image_side_sources(
    similarity: torch.Tensor, phrase_mask: torch.Tensor, positions: Positions, k_p: int
) -> dict[str, torch.Tensor]:
    """M^v2t for :meth:`CrossModalAttention.dense`: the tokens of each region's top-k_p phrases as indices
    (:func:`region_candidates`) when they are at most :data:`CANDIDATE_SCREEN_SHARE` of the tokens, else as the
    mask ``[B, R, L]`` they make (:func:`candidate_mask`)."""
    tokens, ok = region_candidates(similarity, phrase_mask, positions.phrase_ids, k_p, positions.phrase_members)
    L = positions.tokens.shape[1]
    if _screens_over_candidates(tokens, L):
        return {"candidates": tokens, "candidate_ok": ok}
    return {"allowed": candidate_mask(tokens, ok, L)}


def candidate_mask(candidates: torch.Tensor, valid: torch.Tensor, n_sources: int) -> torch.Tensor:
    """The sources that ``candidates [B, Q, C]`` name where ``valid``, as a mask ``[B, Q, S]``. A source named more
    than once (the image side pads short phrases with invalid repeats of token 0) is allowed when any of its
    names is valid."""
    return spread(valid.to(torch.float32), candidates, n_sources) > 0
