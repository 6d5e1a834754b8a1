"""MDR-CHCA's hyperparameters: one documented, range-checked option per ambiguous point of the paper."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from mdrchca.config import (
    AT_LEAST_ONE,
    NON_NEGATIVE,
    POSITIVE,
    SHARE,
    UNIT,
    ModelConfig,
)
from mdrchca.errors import ConfigError


@dataclass
class MDRCHCAConfig(ModelConfig):
    """Hyperparameters of MDR-CHCA; the ambiguous points of the paper are options (see docs/model.md)."""

    n_layers: Annotated[int, NON_NEGATIVE] = 2
    """LightGCN layers of the collaborative branch."""
    reg_weight: Annotated[float, NON_NEGATIVE] = 1e-4
    """L2 penalty on the batch's layer-0 user / item embeddings."""
    knn_k: Annotated[int, AT_LEAST_ONE] = 10
    """Neighbours per item in each modality's item kNN graph."""
    modality_layers: Annotated[int, NON_NEGATIVE] = 1
    """Graph convolution layers L_m per modality."""
    graph_scope: Literal["item", "token"] = "item"
    """``item``: the item graph's output is added to every token / region of the item (default reading);
    ``token``: a kNN graph among the tokens (regions) inside each item."""
    graph_context: Literal["tokens", "fused"] = "fused"
    """Where the item graph's output (``graph_scope=item``) enters: ``tokens``, added to every token and region
    before the denoising and the alignment (the default reading of the paper's *Multi-modal feature encoding and
    denoising*); ``fused``, added to the item's pooled
    text and image features after the alignment, z^m_i += H^m_i. Both give the item the same neighbourhood
    content; ``tokens`` makes every position of an item share one large vector, which leaves the alignment and
    the confidences nothing within an item to tell apart (measured in docs/model.md)."""
    context_projection: Literal["shared", "own"] = "shared"
    """The projection of the item summaries that the item graphs convolve: ``shared`` with the tokens (regions);
    ``own``, a projection of their own, so that what shapes the token features (L_conf, when its gradient
    reaches them) does not reshape the neighbourhood content too."""
    heads: Annotated[int, AT_LEAST_ONE] = 4
    """Heads of the token-region attention."""
    k_r: Annotated[int, AT_LEAST_ONE] = 10
    """Regions kept per phrase by the coarse phrase-region alignment."""
    k_s: Annotated[int, AT_LEAST_ONE] = 5
    """Attention weights kept per token (region) by the fine alignment."""
    k_p: Annotated[int, AT_LEAST_ONE] = 3
    """Phrases kept per region for the image side (M^v2t)."""
    image_side: Literal["masked", "gathered"] = "masked"
    """How regions attend to the tokens of their top-k_p phrases in the hierarchical path: ``gathered`` copies
    those tokens' keys and values per region (no tensor with both a token and a region axis, the paper's cost
    claim taken literally); ``masked`` scores each region against every token in one matrix product and masks
    the rest (an [R, L] score tensor per head). ``gathered`` moves d times more memory than the product and was
    the slower one on the CPU (docs/benchmarks.md)."""
    text_side: Literal["auto", "grouped", "masked"] = "auto"
    """How tokens attend to their phrase's top-k_r regions in the hierarchical path (the same weights either
    way): ``grouped`` gathers each phrase's k_r regions' keys and values and scores the phrase's tokens against
    those alone (O(L k_r d), padded to the longest phrase); ``masked`` scores every token against every region
    in one product and masks the rest, as the image side does (O(L R d)); ``auto`` masks up to
    ``alignment.MASKED_TEXT_SIDE_UP_TO`` = 64 regions per item, where that was measured faster on the CPU (content
    branch 1.07-1.21x on ML-100K and bundled features), and groups above it, where the product grows with the
    regions (docs/benchmarks.md)."""
    tau: Annotated[float, POSITIVE] = 0.5
    """Temperature of the image confidence softmax and of the InfoNCE."""
    alignment: Literal["hierarchical", "full"] = "hierarchical"
    """``hierarchical`` (phrase-region top-k_r, then token attention over those) or ``full`` (variant A:
    dense cross-attention between all tokens and all regions)."""
    contrastive: Literal["confidence", "standard"] = "confidence"
    """``confidence`` (confidence-weighted InfoNCE with adaptive thresholds) or ``standard`` (variant B:
    plain InfoNCE, every token-to-best-region pair positive, in-batch negatives, uniform weights)."""
    confidence_weighting: Literal["logit", "loss"] = "loss"
    """Where the confidences enter the InfoNCE: ``logit`` (c s / tau inside the exponentials, the literal
    reading) or ``loss`` (each positive pair's term weighted by its c; the logits unweighted)."""
    conf_weight: Annotated[float, NON_NEGATIVE] = 0.1
    """Weight lambda_c of the contrastive loss."""
    theta_pos: Annotated[float, UNIT] = 0.6
    """Initial positive threshold."""
    theta_neg: Annotated[float, UNIT] = 0.4
    """Initial negative threshold."""
    eta_1: Annotated[float, UNIT] = 0.5
    """Update rate of theta_pos, per step. Fast, so that theta_pos follows the mean pair confidence of the last
    few steps; slower, it lags behind confidences that move quickly while L_conf trains, and the screen's shares
    swing (docs/model.md)."""
    eta_2: Annotated[float, UNIT] = 0.05
    """Update rate of theta_neg, per step. Slow: its fixed point (the share of pairs below theta_neg equals
    theta_neg) is unstable under fast updates when the confidences are concentrated."""
    confidence_source: Literal["cosine", "logits", "weights", "denoised"] = "cosine"
    """What the confidences read over the fine attention's candidates: ``cosine`` (head-averaged cos(q, k) /
    tau of the attention, bounded and comparable across items), ``logits`` (q.k / sqrt(d_h): saturates as
    they grow in training), ``weights`` (softmax weights: the literal reading) or ``denoised`` (cos(t~_w,
    v~_p) / tau of the denoised features, the space the InfoNCE trains with ``pair_features=denoised``)."""
    image_confidence: Literal["product", "coarse"] = "product"
    """``product``: rescaled phrase softmax g_p times the sigmoid of the region's largest fine attention read
    over its candidate tokens (the read ``confidence_source`` names: by default the head-averaged query-key
    cosine / tau, not a logit); ``coarse``: g_p alone."""
    detach_pair_inputs: bool = False
    """With ``pair_features=attention``: ``true`` feeds the InfoNCE's query / key projections detached denoised
    features, so L_conf trains only the attention's W_Q, W_K and leaves the content features to the ranking
    loss (the default until session 13); ``false`` lets ``pair_input_grad`` of L_conf's gradient reach them
    (the paper: "alignment parameters and aligned features are optimized")."""
    pair_input_grad: Annotated[float, UNIT] = 0.1
    """With ``detach_pair_inputs=false``: the share of L_conf's gradient that reaches the denoised features
    (and through them the projections and the denoisers); W_Q and W_K always get all of it. 1 is the plain
    gradient; a smaller share lets the contrast shape the features without outweighing the ranking loss. The
    default 0.1 was level with the detached reading on validation R@20 of four catalogues and makes the
    alignment weights matter beyond the seed spread (docs/model.md)."""
    image_fine: Literal["region", "token"] = "region"
    """The "region's fine attention" the image confidence combines: ``region`` (the regions' own attention
    over the tokens of their top-k_p phrases, region_to_text) or ``token`` (the region's column of the
    token-region attention, max_w Attn_wp over the tokens that have it as a candidate: the attention the
    InfoNCE trains with ``pair_features=attention``)."""
    pair_features: Literal["aligned", "denoised", "attention"] = "attention"
    """Features compared in the InfoNCE: ``aligned`` (t^_w vs v^_p), ``denoised`` (t~_w vs v~_p) or
    ``attention`` (the fine attention's query t~_w W_Q against the key v~_p W_K, head-averaged cosine: the
    space the default confidences read, so the loss teaches the attention which region matches a token)."""
    item_representation: Literal["sum", "content"] = "sum"
    """With ``content_propagation=none``: ``sum``: h_i = e_i + f_i (collaborative plus fused content);
    ``content``: h_i = f_i (the paper's literal reading). The propagating settings always sum."""
    content_scale: Literal["collaborative", "learned", "none"] = "collaborative"
    """``collaborative``: each item's fused content f_i is rescaled to the mean norm of the collaborative item
    embeddings (direction learned, scale tied), so content cannot swamp the collaborative signal by
    magnitude (unscaled, it grew to dwarf the collaborative signal: docs/model.md); ``learned``: the same, times one
    trained gain exp(gamma) (gamma starts at 0), so training can turn the content as a whole down or up
    against the collaborative signal; ``none``: f_i as computed."""
    content_propagation: Literal["none", "input", "view"] = "view"
    """How the fused content f_i reaches the users. ``none``: only the item side, h_i = e_i + f_i after the
    collaborative LightGCN (users never see content); ``input``: f_i is added to the layer-0 item embedding
    that LightGCN propagates, E_i^(0) + f_i, so each user aggregates the content of the items it
    interacted with; ``view``: a second LightGCN propagates (E_u, f) and is added to the collaborative one,
    u = U^0_u + U^f_u, i = I^0_i + I^f_i (a content view as CDGCL / MMGCN build; computed as one LightGCN of
    (2 E_u, E_i + f), the same by linearity). The paper's Eq. for the
    collaborative branch does not say. Chosen on validation, see docs/model.md. How ``input`` and ``view``
    get every item's content at a step: ``content_grad_items``."""
    content_grad_items: Annotated[int, NON_NEGATIVE] = 1024
    """Training cost that follows the batch (``content_propagation`` ``input`` / ``view``): at each step the
    content branch runs, with gradients, for at most this many of the batch's items (its positives first,
    then its negatives, drawn at random when there are more), and at most ``content_grad_positions`` token and
    region positions; every other item enters propagation with its content from a cache computed without
    gradients, chunked, every ``content_refresh`` epochs (taken from the validation pass just before when it
    has computed the same values), and refreshed row by row as steps recompute items. A step then costs a
    fixed content pass plus one LightGCN propagation, whatever the catalogue's size. 0: the exact path, every
    item's content with gradients at every step (the cost grows with the catalogue: about (steps per epoch)
    full passes an epoch)."""
    content_grad_positions: Annotated[int, NON_NEGATIVE] = 2048
    """The same budget counted in positions, since a step's content cost grows with the tokens and regions per
    item: at most ``content_grad_positions // (L + R)`` items per step, L and R the token and region slots of
    the feature stores (ML-100K's 64 + 64: 16 items; the bundled catalogue's 64 + 16: 25; item-level vectors'
    1 + 1: ``content_grad_items`` decides). 0: no limit by positions. 4096 until session 18; 2048 halves the
    training part of an ML-100K token epoch and was selected on validation there and level on test on the
    bundled catalogue (docs/model.md, docs/results/budget-s18/)."""
    staleness_items: Annotated[int, NON_NEGATIVE] = 256
    """Items on which each epoch measures how stale the content cache is (``cache_cos_mean``, ``cache_cos_p05``,
    ``cache_norm_ratio`` in log.csv: cached against freshly computed content at the epoch's end); 0 = off."""
    content_refresh: Annotated[int, AT_LEAST_ONE] = 1
    """Epochs between full recomputations of the content cache (``content_grad_items`` > 0)."""
    view_contrast: Annotated[float, NON_NEGATIVE] = 0.0
    """Extension, not in the paper (0 = off): weight of an in-batch InfoNCE between the collaborative view
    LightGCN(E_u, E_i) and the content view LightGCN(E_u, f) of the batch's users and of its positive items
    (as CDGCL / SGL contrast views); needs ``content_propagation=view``. Chosen on validation per dataset."""
    view_temperature: Annotated[float, POSITIVE] = 0.2
    """Temperature of the view contrast."""
    item_graph_embeddings: bool = False
    """Extension, not in the paper: also propagate the item ID embeddings over the modality kNN graphs
    (mean over modalities, ``modality_layers`` hops, no weights, as FREEDOM does) and add the result to
    h_i. Chosen on validation per dataset."""
    edge_dropout: Annotated[float, SHARE] = 0.0
    """Extension, not in the paper (0 = off): share of the user-item training edges pruned each epoch,
    degree-sensitively (FREEDOM's pruning, as LightGCN's option of the same name); the training loss
    propagates over the pruned graph, scoring over the full one. Chosen on validation per dataset."""
    aligned_residual: bool = True
    """Add each query's own denoised feature to its aggregated cross-modal feature (t^_w += t~_w), so an
    item keeps its content when the other modality is missing; false is the literal sum of weighted values."""
    renormalize_topk: bool = False
    """Renormalise the k_s kept attention weights to sum to one."""
    confidence_fusion: Literal["none", "soft", "screen"] = "soft"
    """Where the confidences act on the fused content (``fusion.py``): ``none``, plain means over tokens and
    regions (the confidences only select the InfoNCE's pairs); ``soft``, each token (region) weighs by its
    confidence in the pooling and its cross-modal term is scaled by it; ``screen``, the same with the positions
    the screen calls noisy (min(c^t, c^v) below theta_neg) left out."""
    confidence_gate: Literal["none", "item", "image"] = "image"
    """An item gate kappa_i = min(1, mean_w m_w / theta_pos), m_w = min(c^t_w, c^v_p*(w)) the pair confidence the
    screen tests (``fusion.item_gate``): ``image`` scales the image side's share of f_i by it (an item whose text
    and image disagree takes less from its image: b_t z^t + kappa_i b_v z^v); ``item`` scales the item's whole
    content (its text too); ``none``, no gate."""
    confidence_detach: bool = True
    """With ``confidence_fusion`` or ``confidence_gate``: the confidences enter the fusion as constants, so
    what they are is taught by L_conf alone, not bent by the ranking loss."""
    screen_margin: Annotated[float, UNIT] = 0.1
    """theta_neg is kept at most theta_pos - screen_margin, so the screen keeps three classes (positive, unused,
    noisy); 0 lets theta_neg climb to theta_pos, the paper's rule with the clamp."""
    conf_items: Annotated[int, AT_LEAST_ONE] = 256
    """Items (from the batch's positives) used for the contrastive loss per step."""
    conf_pairs: Annotated[int, AT_LEAST_ONE] = 1024
    """Anchor pairs per step at most (sampled)."""
    negative_regions: Literal["random", "best"] = "best"
    """The InfoNCE's negatives from other items ("non-corresponding regions"): ``random``, ``random_negatives``
    random regions of other batch items; ``best``, for every other item of the batch its region most similar to
    the anchor (``losses.best_regions_of_other_items``), the same max-selection as the anchor's own positive,
    so the loss can only be lowered by matching a token to its own item's image."""
    hard_negatives: Literal["noisy_pairs", "item_regions", "none"] = "noisy_pairs"
    """The InfoNCE's hard negatives ("cross-modal feature pairs with low confidence"): ``noisy_pairs``, the pairs
    of the anchor's item that the screen calls noisy, each (w', p*(w')) with its own similarity, so the loss
    pushes down the similarity of the pairs judged noise; ``item_regions``, the anchor's token against every
    region of its item with c^v_p below theta_neg (session 9-14's reading: on ML-100K the item's regions are
    near-copies of the positive, and L_conf stayed near its chance value, docs/model.md); ``none``. Variant B's
    plain InfoNCE (``contrastive=standard``) has no hard negatives."""
    random_negatives: Annotated[int, NON_NEGATIVE] = 16
    """Random negative regions (of other items in the batch) per anchor."""
    text_modality: str = "text"
    """Modality with tokens grouped into phrases."""
    region_modality: str = ""
    """Modality with regions; empty = the first other modality found (image, else audio, ...)."""
    alpha_init: float = 0.0
    """Initial alpha of the denoising residual a = sigmoid(alpha)."""
    unseen_item_ids: Literal["auto", "learned", "zero"] = "auto"
    """Items with no training interaction: ``learned`` keeps their ID embedding as it is (trained only as a
    sampled negative, or left at its random initialisation in an item cold-start split); ``zero`` drops it,
    so such an item is represented by its content alone; ``auto``: ``zero`` on an item cold-start split
    (``split_mode=cold_items``, where it won on validation on Last.fm and ML-100K), ``learned`` otherwise."""
    content_chunk: Annotated[int, NON_NEGATIVE] = 0
    """Items per chunk when computing every item's content without gradients (scoring, the cache refresh, the
    staleness sample); the content is the same at any size. ``0`` (auto): on the CPU ``64 · 4096 / (L·R)`` items,
    between 64 and 256, small enough that the alignment's per-head score tensors stay in cache (64 at 64 tokens and
    64 regions: one pass over ML-100K's 1,682 films took 0.95 s in chunks of 64 against 1.40 s in chunks of 512,
    ``bench_content_pass.py --chunks``; 256 at the bundled catalogue's 64 x 16 slots, whose pass is 1.15x faster
    than in chunks of 64, docs/results/session24-tried/chunk-sizes.txt); on a GPU,
    ``1024 · 4096 / (L·R)`` items (1,024 at 64 tokens and 64 regions), between 64 and 4,096, since there the pass
    is bound by kernel launches (on an H200 the Clothing-sized validation took 2.33 s in chunks of 64 against
    0.36 s in chunks of 1,024 and 0.25 s in chunks of 4,096; docs/benchmarks.md, session 20)."""
    scoring_pass: Literal["short", "full"] = "short"
    """How the pass over every item without gradients (validation, scoring, the cache refresh) computes f_i.
    ``short``: ``ContentBranch.fused_content``, which skips what only training and ``explain`` read (the mean
    logits, every aligned feature) and pools each side through its attention weights; the same content up to
    rounding. ``full``: the training forward with all its outputs (the only route before session 19). Settings
    the short route does not cover take the full one either way."""
    training_pass: Literal["short", "full"] = "short"
    """How a training step computes its items' content. ``short``: the route of ``scoring_pass=short`` with the
    step's gradients, which keeps every output L_conf reads (denoised positions, confidences, best regions) but
    forms no aligned feature t^_w, v^_p; f_i and its gradients are the same up to rounding (ML-100K: 1.08-1.14x faster
    forward + backward of a step's 16 films, docs/benchmarks.md, session 22). ``full``: the forward with all its
    outputs, the route before session 22. ``pair_features=aligned`` (L_conf on the aligned features) and the
    settings the short route does not cover take the full one either way."""

    def validate(self) -> None:
        if self.view_contrast > 0 and self.content_propagation != "view":
            raise ConfigError("view_contrast needs content_propagation=view (the two views it contrasts)")
