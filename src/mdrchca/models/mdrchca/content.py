"""MDR-CHCA's content branch: frozen inputs, item graphs, denoising, hierarchical alignment and confidences
(the paper's *Multi-modal feature encoding and denoising* to *Modal Feature Fusion and Prediction*), with a typed
output. :class:`~mdrchca.models.mdrchca.model.MDRCHCA` keeps the
recommender (collaborative branch, propagation, losses) and calls this branch for the items it needs."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import torch
from torch import nn

from mdrchca.data.features import ModalityFeatures
from mdrchca.data.graph import to_torch_sparse
from mdrchca.models.components.knn_graph import ModalityGraphConv, knn_adjacency, token_knn_adjacency
from mdrchca.models.mdrchca.alignment import (
    AlignmentOutput,
    AlignmentPlan,
    CrossModalAttention,
    Positions,
    SourceWeights,
    align,
    align_weights,
    group_members,
)
from mdrchca.models.mdrchca.confidence import (
    candidate_cosine,
    image_confidence,
    region_column_max,
    text_confidence,
)
from mdrchca.models.mdrchca.config import MDRCHCAConfig
from mdrchca.models.mdrchca.denoising import SelfAttentionDenoiser
from mdrchca.models.mdrchca.fusion import confidence_pooling, item_gate, pooled_through_weights, pooling_weights
from mdrchca.models.mdrchca.screen import AdaptiveThresholds


@dataclass
class ContentOutput:
    """Everything the content branch computes for B items (L tokens, R regions, P phrases, C candidates)."""

    fused: torch.Tensor
    """f_i, the fused content ``[B, d]``: b_t z^t + b_v z^v (``fusion.py``), as a unit vector when the model
    gives it the collaborative scale (``content_scale``), times the item gate kappa_i."""
    gate: torch.Tensor
    """kappa_i ``[B]``, the item gate (1 with ``confidence_gate=none``)."""
    tokens: torch.Tensor
    """Denoised tokens T~ ``[B, L, d]``."""
    regions: torch.Tensor
    """Denoised regions V~ ``[B, R, d]``."""
    token_mask: torch.Tensor
    """``[B, L]``, True for a real token."""
    region_mask: torch.Tensor
    """``[B, R]``, True for a real region."""
    phrase_ids: torch.Tensor
    """``[B, L]``, phrase of each token, -1 on padding."""
    similarity: torch.Tensor
    """Phrase-region cosine s_kp ``[B, P, R]``."""
    phrase_mask: torch.Tensor
    """``[B, P]``, True for a phrase with a token."""
    text_aligned: torch.Tensor | None
    """t^_w ``[B, L, d]`` (None from :meth:`ContentBranch.short_output`, which forms no aligned feature)."""
    region_aligned: torch.Tensor | None
    """v^_p ``[B, R, d]`` (None likewise)."""
    text_weights: torch.Tensor
    """Head-averaged token-to-region attention weights over each token's candidates ``[B, L, C]``."""
    text_candidates: torch.Tensor
    """Region index of each token's candidates ``[B, L, C]``."""
    best_region: torch.Tensor
    """p*(w), each token's best region ``[B, L]``."""
    text_confidence: torch.Tensor
    """c^t_w ``[B, L]``."""
    region_confidence: torch.Tensor
    """c^v_p ``[B, R]``."""

    @classmethod
    def of_positions(cls, positions: Positions, **outputs: torch.Tensor | None) -> ContentOutput:
        """The output for a batch whose position fields (tokens, regions, their masks, phrase ids) are
        ``positions``' and whose other fields are ``outputs``."""
        return cls(
            tokens=positions.tokens,
            regions=positions.regions,
            token_mask=positions.token_mask,
            region_mask=positions.region_mask,
            phrase_ids=positions.phrase_ids,
            **outputs,
        )

    def select(self, rows: torch.Tensor) -> ContentOutput:
        """The same output for a subset of the items (rows of the batch)."""
        return ContentOutput(**{f.name: _rows(getattr(self, f.name), rows) for f in fields(self)})

    def one_item(self, row: int) -> ContentOutput:
        """Row ``row`` of the batch without the batch axis, on the CPU."""
        return ContentOutput(**{f.name: _row_on_cpu(getattr(self, f.name), row) for f in fields(self)})


def _rows(value: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor | None:
    # index_select: its backward is an index_add, 2x faster on the CPU than indexing's accumulating index_put
    return None if value is None else value.index_select(0, rows)


def _row_on_cpu(value: torch.Tensor | None, row: int) -> torch.Tensor | None:
    return None if value is None else value[row].cpu()


class ModalityInput(nn.Module):
    """Frozen token features of one modality as buffers, with a learned projection to d.

    Features are divided by their mean token norm (one scalar per modality, fixed at load), so that every
    modality enters the projection at unit scale whatever its encoder (CNN grids have norms in the tens,
    sentence encoders about one).

    A batch is computed over the slots up to its items' last real position (``reach``), not over every slot of
    the catalogue: past it every item of the batch has padding, which every later step masks, so the trimmed
    slots change nothing but the work (the bundled catalogue's texts fill 24-27 of their 64 slots).
    """

    def __init__(self, features: ModalityFeatures, dim: int, phrases: bool) -> None:
        super().__init__()
        self.register_buffer("values", features.values, persistent=False)
        self.register_buffer("mask", features.mask, persistent=False)
        if phrases:
            ids = features.phrase_ids
            if ids is None:  # no phrase structure: every token its own phrase
                ids = torch.where(features.mask, torch.arange(features.max_length).expand_as(features.mask), -1)
            self.register_buffer("phrase_ids", ids.long(), persistent=False)
            # each phrase's tokens, for the image side's candidates: a property of the items, built once here
            # rather than sorted out of the phrase ids in every batch
            n_phrases = max(1, int(ids.max()) + 1) if ids.numel() else 1
            members, members_ok = group_members(self.phrase_ids, n_phrases)
            self.register_buffer("phrase_members", members, persistent=False)
            self.register_buffer("phrase_member_ok", members_ok, persistent=False)
        self.register_buffer("reach", last_real_position(features.mask), persistent=False)
        real = features.values[features.mask]
        sample = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:100_000]]
        norm = float(sample.float().norm(dim=-1).mean()) if len(sample) else 1.0
        self.scale = 1.0 / norm if norm > 0 else 1.0
        self.register_buffer("summary", features.item_vectors.float() * self.scale, persistent=False)
        self.projection = nn.Linear(features.dim, dim)
        nn.init.xavier_uniform_(self.projection.weight)
        nn.init.zeros_(self.projection.bias)

    def tokens(self, items: torch.Tensor, trim: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """The projected positions of ``items`` ``[B, S, d]`` and their mask ``[B, S]``: S = :meth:`slots` of the
        batch with ``trim``, every slot without."""
        slots = self.slots(items) if trim else self.mask.shape[1]
        # rows by index_select (3-5x faster than advanced indexing on the CPU, the same values)
        mask = self.mask[:, :slots].index_select(0, items)
        values = self.values[:, :slots].index_select(0, items).float()
        # the scale on the weight (d x d) rather than on the batch's positions: one pass over them fewer
        weight, bias = self.projection.weight * self.scale, self.projection.bias
        return nn.functional.linear(values, weight, bias) * mask.unsqueeze(-1), mask

    def slots(self, items: torch.Tensor) -> int:
        """Slots that hold a real position of at least one of ``items``: the largest ``reach`` among them (at
        least one, so that an item without positions keeps one masked slot). A host sync on a GPU: one per batch."""
        return max(1, int(self.reach[items].max())) if len(items) else 1


def last_real_position(mask: torch.Tensor) -> torch.Tensor:
    """Each row's last True position plus one, ``[N]`` (0 for a row without one): ``mask [N, S]``."""
    if mask.shape[1] == 0:
        return torch.zeros(mask.shape[0], dtype=torch.long)
    from_end = mask.flip(1).to(torch.uint8).argmax(1)
    return torch.where(mask.any(1), mask.shape[1] - from_end, 0)


class ContentBranch(nn.Module):
    r"""The content branch of MDR-CHCA for any batch of items.

    Per modality m: tokens projected to d; item kNN graph :math:`\hat S^m` and
    :math:`H^{(l+1)} = \mathrm{ReLU}(\hat S^m H^{(l)} W^{(l)})` on the item summaries, added to every token
    (``graph_scope=item``) or run over each item's token graph (``graph_scope=token``); denoising
    :math:`\tilde T = a\,\mathrm{SA}(T) + (1-a) T`; the hierarchical (or variant A's dense) alignment; the
    confidences :math:`c^t_w = \sigma(\max_{p \in C(w)} r_{wp})` and :math:`c^v_p = g_p\, \sigma(\max_{w \in C(p)}
    r_{pw})`; and the fusion :math:`f_i = b_t\, \mathrm{mean}_w \hat t_w + b_v\, \mathrm{mean}_p \hat v_p`,
    :math:`(b_t, b_v) = \mathrm{softmax}` of two learned scalars.
    """

    def __init__(
        self,
        text: ModalityFeatures,
        regions: ModalityFeatures,
        config: MDRCHCAConfig,
        item_graphs: bool,
        inputs: tuple[ModalityInput, ModalityInput] | None = None,
    ) -> None:
        """``inputs``: the two :class:`ModalityInput` modules when the caller built them already (MDR-CHCA does,
        before its ID embeddings, so that a seed initialises every parameter as it did before this module
        existed)."""
        super().__init__()
        self.config = config
        d = config.embedding_size
        if inputs is None:
            inputs = (ModalityInput(text, d, phrases=True), ModalityInput(regions, d, phrases=False))
        self.text, self.region = inputs
        self.max_phrases = self.text.phrase_members.shape[1]
        self.positions_per_item = text.max_length + regions.max_length
        """Token plus region slots of one item (L + R), what a forward pass's cost grows with."""
        self.position_grid = text.max_length * regions.max_length
        """Token times region slots of one item (L·R), what the alignment's score tensors grow with."""
        if item_graphs:
            for name, source in (("text", text), ("region", regions)):
                adjacency = knn_adjacency(source.item_vectors.numpy(), config.knn_k)
                self.register_buffer(f"{name}_knn", to_torch_sparse(adjacency), persistent=False)
        self.text_graph = ModalityGraphConv(d, config.modality_layers)
        self.region_graph = ModalityGraphConv(d, config.modality_layers)
        self.text_denoiser = SelfAttentionDenoiser(d, config.alpha_init)
        self.region_denoiser = SelfAttentionDenoiser(d, config.alpha_init)
        self.text_to_region = CrossModalAttention(
            d, config.heads, config.k_s, config.aligned_residual, config.renormalize_topk
        )
        self.region_to_text = CrossModalAttention(
            d, config.heads, config.k_s, config.aligned_residual, config.renormalize_topk
        )
        self.fusion_logits = nn.Parameter(torch.zeros(2))
        if config.context_projection == "own":
            self.text_context_projection = nn.Linear(text.dim, d)
            self.region_context_projection = nn.Linear(regions.dim, d)
            for layer in (self.text_context_projection, self.region_context_projection):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def slot_order(self, items: torch.Tensor) -> torch.Tensor:
        """Positions in ``items`` sorted by the slots their texts, then their images, fill (stable): consecutive
        items of this order, batched together, span few slots (:meth:`ModalityInput.slots`)."""
        key = self.text.reach[items] * (self.region.mask.shape[1] + 1) + self.region.reach[items]
        return key.argsort(stable=True)

    def graph_context(self, items: torch.Tensor | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Every item's graph context (text, image), or only ``items``' rows, computed from their kNN
        neighbourhoods alone (what a training step needs); (None, None) without item graphs."""
        if self.config.graph_scope != "item":
            return None, None
        if self.config.context_projection == "own":
            text_in, region_in = self.text_context_projection, self.region_context_projection
        else:
            text_in, region_in = self.text.projection, self.region.projection
        if items is None:
            text_h = self.text_graph(self.text_knn, text_in(self.text.summary))
            region_h = self.region_graph(self.region_knn, region_in(self.region.summary))
            return text_h, region_h
        text_h = self.text_graph.rows(self.text_knn, lambda rows: text_in(self.text.summary[rows]), items)
        region_h = self.region_graph.rows(self.region_knn, lambda rows: region_in(self.region.summary[rows]), items)
        return text_h, region_h

    def _contextualise(
        self, tokens: torch.Tensor, mask: torch.Tensor, context: torch.Tensor | None, graph: ModalityGraphConv
    ) -> torch.Tensor:
        if context is not None:
            return tokens + context.unsqueeze(1) * mask.unsqueeze(-1)
        h = tokens
        adjacency = token_knn_adjacency(tokens, mask, self.config.knn_k)
        for layer in graph.layers:
            h = torch.relu(adjacency @ layer(h))
        return h * mask.unsqueeze(-1)

    def forward(
        self,
        items: torch.Tensor,
        context: tuple | None = None,
        thresholds: AdaptiveThresholds | None = None,
        trim: bool = True,
    ) -> ContentOutput:
        """Everything the content branch computes for ``items``; ``context`` is :meth:`graph_context`'s output,
        computed once when many batches of items are processed; ``thresholds`` are the screen's (the initial
        ones of the config when None), read by ``confidence_fusion=screen`` and ``confidence_gate``. The
        position fields span the batch's slots (:meth:`ModalityInput.slots`), or every slot without ``trim``."""
        inputs = self._denoised_inputs(items, context, trim)
        positions = inputs.positions
        aligned = align(self.text_to_region, self.region_to_text, positions, self._plan())
        c_text, c_region = self._confidences(positions, aligned)
        z_text, z_region = self._pooled(inputs, aligned, c_text, c_region, thresholds)
        fused, gate = self._fused(positions, aligned.text.best, z_text, z_region, c_text, c_region, thresholds)
        return ContentOutput.of_positions(
            positions,
            fused=fused,
            gate=gate,
            similarity=aligned.similarity,
            phrase_mask=aligned.phrase_mask,
            text_aligned=aligned.text.aligned,
            region_aligned=aligned.region.aligned,
            text_weights=aligned.text.weights,
            text_candidates=aligned.text.candidates,
            best_region=aligned.text.best,
            text_confidence=c_text,
            region_confidence=c_region,
        )

    def fused_content(
        self, items: torch.Tensor, context: tuple | None = None, thresholds: AdaptiveThresholds | None = None
    ) -> torch.Tensor:
        """f_i ``[B, d]`` of ``items`` alone: :meth:`forward`'s ``fused`` by a shorter route, equal to it up to
        rounding. What the pass over every item without gradients needs (validation, scoring, the cache
        refresh): the attention's weights and cosines without its mean logits, and each side pooled through
        its weights (:func:`~mdrchca.models.mdrchca.fusion.pooled_through_weights`) instead of forming
        every aligned feature. Settings this route does not cover (a side that gathers its candidates,
        confidences that read another quantity than the cosine, ``image_fine=token``) take :meth:`forward`."""
        return self.short_output(items, context, thresholds).fused

    def short_covers(self) -> bool:
        """Whether :meth:`short_output` takes the short route with these settings."""
        cfg = self.config
        covered = cfg.confidence_source == "cosine" and cfg.image_fine == "region"
        return covered and self._plan().both_sides_dense(self.region.mask.shape[1])

    def short_output(
        self, items: torch.Tensor, context: tuple | None = None, thresholds: AdaptiveThresholds | None = None
    ) -> ContentOutput:
        """:meth:`forward`'s output by the route of :meth:`fused_content`, equal to it up to rounding, gradients
        included, except the aligned features ``text_aligned`` and ``region_aligned``, which it never forms
        (None); ``text_weights`` and ``text_candidates`` are over the candidates the alignment screened. What a
        training step needs when L_conf does not compare aligned features (``training_pass=short``); settings
        the route does not cover take :meth:`forward`, with every output."""
        if not self.short_covers():
            return self(items, context, thresholds)
        inputs = self._denoised_inputs(items, context)
        positions = inputs.positions
        text_side, region_side, similarity, phrase_mask = align_weights(
            self.text_to_region, self.region_to_text, positions, self._plan()
        )
        c_text, c_region = self._confidence_values(
            positions, text_side.cosine, region_side.cosine, similarity, phrase_mask
        )
        best_region = text_side.best()  # p*(w)
        z_text, z_region = self._pooled_through_weights(
            inputs, text_side, region_side, best_region, c_text, c_region, thresholds
        )
        fused, gate = self._fused(positions, best_region, z_text, z_region, c_text, c_region, thresholds)
        return ContentOutput.of_positions(
            positions,
            fused=fused,
            gate=gate,
            similarity=similarity,
            phrase_mask=phrase_mask,
            text_aligned=None,
            region_aligned=None,
            text_weights=text_side.weights,
            text_candidates=text_side.candidates,
            best_region=best_region,
            text_confidence=c_text,
            region_confidence=c_region,
        )

    def _plan(self) -> AlignmentPlan:
        cfg = self.config
        return AlignmentPlan(
            cfg.k_r,
            cfg.k_p,
            cfg.alignment == "hierarchical",
            gathered_image_side=cfg.image_side == "gathered",
            text_side=cfg.text_side,
            mean_logits=cfg.confidence_source == "logits",
        )

    def _denoised_inputs(self, items: torch.Tensor, context: tuple | None, trim: bool = True) -> _DenoisedInputs:
        """T~ and V~ of ``items`` (the paper's *Multi-modal feature encoding and denoising*), with their masks,
        phrase ids and the items' graph context (None without item graphs)."""
        cfg = self.config
        if context is None:  # only these items' rows, from their neighbourhoods
            text_ctx, region_ctx = self.graph_context(items)
        else:
            text_ctx, region_ctx = context
            if text_ctx is not None:
                text_ctx, region_ctx = text_ctx[items], region_ctx[items]
        tokens, token_mask = self.text.tokens(items, trim)
        regions, region_mask = self.region.tokens(items, trim)
        phrase_ids = self.text.phrase_ids[:, : tokens.shape[1]].index_select(0, items)
        if cfg.graph_context == "tokens" or text_ctx is None:  # item context on every position, or token graphs
            tokens = self._contextualise(tokens, token_mask, text_ctx, self.text_graph)
            regions = self._contextualise(regions, region_mask, region_ctx, self.region_graph)
        tokens = self.text_denoiser(tokens, token_mask)  # T~
        regions = self.region_denoiser(regions, region_mask)  # V~
        members = self.text.phrase_members.index_select(0, items), self.text.phrase_member_ok.index_select(0, items)
        positions = Positions(tokens, token_mask, phrase_ids, regions, region_mask, members)
        return _DenoisedInputs(positions, text_ctx, region_ctx)

    def _confidences(self, positions: Positions, aligned: AlignmentOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """c^t ``[B, L]`` and c^v ``[B, R]`` from what ``confidence_source`` reads of the alignment."""
        cfg = self.config
        text_out, region_out = aligned.text, aligned.region
        read = cfg.confidence_source
        if read == "denoised":  # cos(t~_w, v~_p) over the attention's candidates
            tokens, regions = positions.tokens, positions.regions
            text_read = candidate_cosine(tokens, regions, text_out.candidates, torch.isfinite(text_out.cosine))
            region_read = candidate_cosine(regions, tokens, region_out.candidates, torch.isfinite(region_out.cosine))
        else:  # the attention's cosine, logits or weights
            text_read, region_read = getattr(text_out, read), getattr(region_out, read)
        if cfg.image_fine == "token":  # the region's column of the token-region attention
            region_read = region_column_max(text_read, text_out.candidates, positions.regions.shape[1])
        return self._confidence_values(positions, text_read, region_read, aligned.similarity, aligned.phrase_mask)

    def _confidence_values(
        self,
        positions: Positions,
        text_read: torch.Tensor,
        region_read: torch.Tensor,
        similarity: torch.Tensor,
        phrase_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """c^t and c^v from each side's read of the attention (``-inf`` off its candidates) and s_kp."""
        cfg = self.config
        scale = cfg.tau if cfg.confidence_source in ("cosine", "denoised") else 1.0
        c_text = text_confidence(text_read, positions.token_mask, scale)
        c_region = image_confidence(
            similarity, phrase_mask, positions.region_mask, region_read, cfg.tau, cfg.image_confidence, scale
        )
        return c_text, c_region

    def _pooled(
        self,
        inputs: _DenoisedInputs,
        aligned: AlignmentOutput,
        c_text: torch.Tensor,
        c_region: torch.Tensor,
        thresholds: AdaptiveThresholds | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """z^t and z^v ``[B, d]``: each side pooled over its positions, weighed by its confidences unless
        ``confidence_fusion=none``, then the graph context added when it enters at the item level."""
        cfg = self.config
        text_out, region_out = aligned.text, aligned.region
        positions = inputs.positions
        token_mask, region_mask = positions.token_mask, positions.region_mask
        if cfg.confidence_fusion == "none":
            z_text = masked_mean(text_out.aligned, token_mask)
            z_region = masked_mean(region_out.aligned, region_mask)
        else:
            w_text, w_region = self._pooling_confidences(c_text, c_region)
            text_noisy, region_noisy = self._screened(c_text, c_region, text_out.best, thresholds)
            residual = cfg.aligned_residual
            z_text = confidence_pooling(positions.tokens, text_out.cross, w_text, token_mask, text_noisy, residual)
            z_region = confidence_pooling(
                positions.regions, region_out.cross, w_region, region_mask, region_noisy, residual
            )
        return self._with_graph_context(inputs, z_text, z_region)

    def _pooled_through_weights(
        self,
        inputs: _DenoisedInputs,
        text_side: SourceWeights,
        region_side: SourceWeights,
        best_region: torch.Tensor,
        c_text: torch.Tensor,
        c_region: torch.Tensor,
        thresholds: AdaptiveThresholds | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_pooled` for :meth:`fused_content`: the same z^t and z^v, each side's aggregated sources
        taken through the pooling weights (:func:`~mdrchca.models.mdrchca.fusion.pooled_through_weights`)."""
        cfg = self.config
        tokens, token_mask, _, regions, region_mask = inputs.positions[:5]
        if cfg.confidence_fusion == "none":  # the plain mean of the aligned features
            w_text, w_region = token_mask.to(tokens.dtype), region_mask.to(regions.dtype)
            a_text, a_region = w_text, w_region
            d_text, d_region = (w.sum(1, keepdim=True).clamp_min(1.0) for w in (w_text, w_region))
        else:
            w_text, w_region = self._pooling_confidences(c_text, c_region)
            text_noisy, region_noisy = self._screened(c_text, c_region, best_region, thresholds)
            w_text = pooling_weights(w_text, token_mask, text_noisy)
            w_region = pooling_weights(w_region, region_mask, region_noisy)
            a_text, a_region = w_text * w_text, w_region * w_region
            d_text, d_region = (w.sum(1, keepdim=True).clamp_min(1e-12) for w in (w_text, w_region))
        if not cfg.aligned_residual:
            w_text = w_region = None
        z_text = pooled_through_weights(
            tokens, regions, self.text_to_region.value, text_side.sparse, a_text, w_text, d_text
        )
        z_region = pooled_through_weights(
            regions, tokens, self.region_to_text.value, region_side.sparse, a_region, w_region, d_region
        )
        return self._with_graph_context(inputs, z_text, z_region)

    def _pooling_confidences(self, c_text: torch.Tensor, c_region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.confidence_detach:
            return c_text.detach(), c_region.detach()
        return c_text, c_region

    def _screened(
        self,
        c_text: torch.Tensor,
        c_region: torch.Tensor,
        best_region: torch.Tensor,
        thresholds: AdaptiveThresholds | None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The positions ``confidence_fusion=screen`` drops (pair or region confidence below theta_neg), or
        (None, None) for the other fusions."""
        cfg = self.config
        if cfg.confidence_fusion != "screen":
            return None, None
        theta_neg = thresholds.theta_neg if thresholds is not None else cfg.theta_neg
        text_noisy = torch.minimum(c_text, c_region.gather(1, best_region)) < theta_neg
        return text_noisy, c_region < theta_neg

    def _with_graph_context(
        self, inputs: _DenoisedInputs, z_text: torch.Tensor, z_region: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """z^t and z^v plus the items' graph context when it enters at the item level (``graph_context=fused``)."""
        if self.config.graph_context == "fused" and inputs.text_ctx is not None:
            positions = inputs.positions
            z_text = z_text + inputs.text_ctx * positions.token_mask.any(1, keepdim=True)
            z_region = z_region + inputs.region_ctx * positions.region_mask.any(1, keepdim=True)
        return z_text, z_region

    def _fused(
        self,
        positions: Positions,
        best_region: torch.Tensor,
        z_text: torch.Tensor,
        z_region: torch.Tensor,
        c_text: torch.Tensor,
        c_region: torch.Tensor,
        thresholds: AdaptiveThresholds | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """f_i = b_t z^t + b_v kappa_i z^v (``confidence_gate=image``; the gate on all of f with ``item``), and
        kappa_i ``[B]`` from the pair confidences m_w the screen tests (``best_region [B, L]``: p*(w))."""
        cfg = self.config
        token_mask, region_mask = positions.token_mask, positions.region_mask
        has_both = token_mask.any(1) & region_mask.any(1)
        gate = torch.ones_like(z_text[:, 0])
        if cfg.confidence_gate != "none":
            theta_pos = thresholds.theta_pos if thresholds is not None else cfg.theta_pos
            pair_confidence = torch.minimum(c_text, c_region.gather(1, best_region))  # m_w
            if cfg.confidence_detach:
                pair_confidence = pair_confidence.detach()
            gate = item_gate(pair_confidence, token_mask, has_both, theta_pos)
        b = torch.softmax(self.fusion_logits, dim=0)
        image_share = b[1] * gate.unsqueeze(1) if cfg.confidence_gate == "image" else b[1]
        fused = b[0] * z_text + image_share * z_region
        if cfg.content_scale != "none":  # the model gives it the collaborative scale
            fused = fused / fused.norm(dim=1, keepdim=True).clamp_min(1e-12)
        if cfg.confidence_gate == "item":
            fused = fused * gate.unsqueeze(1)
        return fused, gate


class _DenoisedInputs(NamedTuple):
    """The denoised positions of a batch of items and the items' graph context, which travels with them."""

    positions: Positions
    text_ctx: torch.Tensor | None
    region_ctx: torch.Tensor | None


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real positions of ``values [B, L, d]`` (``mask [B, L]``), zero for an empty item."""
    m = mask.unsqueeze(-1).to(values.dtype)
    return (values * m).sum(1) / m.sum(1).clamp_min(1.0)
