"""MDR-CHCA: multimodal denoising recommendation with confidence and hierarchical cross-modal alignment."""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from mdrchca.config import float_range, int_range, log_range
from mdrchca.data.dataset import RecDataset
from mdrchca.data.features import ModalityFeatures
from mdrchca.errors import ConfigError, DataError
from mdrchca.models.base import (
    Batch,
    ColumnCollectives,
    Probe,
    Recommender,
    RowGather,
    bpr_on_embeddings,
    embedding_l2,
    register,
)
from mdrchca.models.components.contrastive import in_batch_infonce
from mdrchca.models.components.propagation import collaborative_embeddings
from mdrchca.models.mdrchca.config import MDRCHCAConfig
from mdrchca.models.mdrchca.content import ContentBranch, ContentOutput, ModalityInput, masked_mean
from mdrchca.models.mdrchca.diagnostics import probes_for
from mdrchca.models.mdrchca.losses import (
    Similarities,
    best_regions_of_other_items,
    confidence_weighted_infonce,
    sample_other_items,
)
from mdrchca.models.mdrchca.readout import ItemConfidence
from mdrchca.models.mdrchca.screen import (
    AdaptiveThresholds,
    ScreenLog,
    candidate_pairs,
    hard_negative_mask,
    noisy_mask,
    noisy_pair_negatives,
    positive_mask,
)

log = logging.getLogger(__name__)


def _pick_modalities(dataset: RecDataset, config: MDRCHCAConfig) -> tuple[str, str]:
    names = list(dataset.features)
    if config.text_modality not in names:
        raise DataError(
            f"{dataset.path}: MDR-CHCA needs the '{config.text_modality}' modality "
            f"(found: {', '.join(names) or 'none'}); "
            "extract features with mdrchca features or set text_modality"
        )
    region = config.region_modality or next(
        (m for m in ("image", *names) if m in names and m != config.text_modality), ""
    )
    if not region or region not in names:
        raise DataError(
            f"{dataset.path}: MDR-CHCA needs a second modality with regions (found: {', '.join(names)}); "
            "set region_modality"
        )
    return config.text_modality, region


def _warn_about_caps(
    config: MDRCHCAConfig, text: ModalityFeatures, regions: ModalityFeatures, max_phrases: int
) -> None:
    """One warning when the hierarchy cannot act as configured: item-level features (one token, one region),
    or k_r / k_p / k_s above what an item has (they are then capped to the values named)."""
    most_tokens = int(text.lengths().max()) if text.n_items else 0
    most_regions = int(regions.lengths().max()) if regions.n_items else 0
    if most_tokens <= 1 and most_regions <= 1:
        log.warning(
            "MDR-CHCA on item-level features (one token and one region per item): the hierarchical alignment is "
            "inactive; `mdrchca features` makes the token / region features the method needs"
        )
        return
    capped = []
    k_r = min(config.k_r, most_regions)
    if config.k_r > most_regions:
        capped.append(f"k_r={config.k_r} > {most_regions} regions: k_r={k_r} in effect")
    if config.k_p > max_phrases:
        capped.append(f"k_p={config.k_p} > {max_phrases} phrases: k_p={max_phrases} in effect")
    candidates = k_r if config.alignment == "hierarchical" else most_regions
    if config.k_s > candidates:
        capped.append(f"k_s={config.k_s} > {candidates} candidate regions per token: k_s={candidates} in effect")
    if capped:
        log.warning("MDR-CHCA options above what an item has (at most): %s", "; ".join(capped))


@register
class MDRCHCA(Recommender):
    r"""MDR-CHCA (the paper's *MDR-CHCA Model* section; docs/model.md says how each ambiguous point is read).

    1. Collaborative branch, LightGCN: :math:`E^{(l+1)} = \hat A E^{(l)}`, :math:`E = \mathrm{mean}_l E^{(l)}`.
    2. Per modality m: tokens projected to d, :math:`T W_m`; item kNN graph :math:`\hat S^m` (k = ``knn_k``)
       and :math:`H^{(l+1)} = \mathrm{ReLU}(\hat S^m H^{(l)} W^{(l)})` on the item summaries, added to every
       token (``graph_scope=item``) or run over each item's token graph (``graph_scope=token``).
    3. Denoising: :math:`\tilde T = a\,\mathrm{SA}(T) + (1-a) T`, same for regions :math:`\tilde V`.
    4. Phrases :math:`p_k = \mathrm{mean}_{w\in k} \tilde t_w`, :math:`s_{kp} = \cos(p_k, \tilde v_p)`,
       :math:`M^{t2v}` = top-:math:`k_r` regions per phrase, :math:`M^{v2t}` = top-:math:`k_p` phrases per region.
    5. Token-region masked multi-head attention over the gathered candidates, top-:math:`k_s` screening,
       :math:`\hat t_w = \sum_p A^s_{wp} \tilde v_p W_V` (and the mirror :math:`\hat v_p` for regions).
    6. Confidence :math:`c^t_w = \sigma(\max_{p \in C(w)} r_{wp})` with :math:`r` the attention read named by
       ``confidence_source`` (default the head-averaged query-key cosine / :math:`\tau`); :math:`c^v_p = g_p\,
       \sigma(\max_{w \in C(p)} r_{pw})`, :math:`g_p` the phrase softmax rescaled by its maximum.
    7. :math:`\mathcal L_{conf}`: confidence-weighted InfoNCE over positive / hard / random pairs, adaptive
       thresholds :math:`\theta_{pos}, \theta_{neg}`; by default s is the head-averaged cosine of the fine
       attention's query and key (``pair_features``) and c weights each pair's term (``confidence_weighting``).
    8. Fusion :math:`f_i = b_t \mathrm{mean}_w \hat t_w + b_v \mathrm{mean}_p \hat v_p`, :math:`(b_t, b_v) =`
       softmax of two learned scalars, rescaled to the collaborative norm (``content_scale``).
    9. Content to the users (``content_propagation``): ``view`` (default) adds a content LightGCN,
       :math:`(U^f, I^f) = \mathrm{LightGCN}(E_u, f)`, :math:`u = U^0_u + U^f_u`, :math:`h_i = I^0_i + I^f_i`;
       ``input`` propagates :math:`E_i + f` instead of :math:`E_i`; ``none`` is :math:`h_i = e_i + f_i`.
       :math:`\hat y_{ui} = u \cdot h_i`.

    Loss: :math:`\mathcal L_{BPR} + \lambda_c \mathcal L_{conf} + \lambda_{reg} \lVert E^{(0)}_{batch} \rVert^2`.
    Variants: ``alignment=full`` (A), ``contrastive=standard`` (B).
    """

    name = "mdrchca"
    batch_separable = False  # in-batch alignment negatives and thresholds updated from each batch
    rank_local_buffers = ("content_cache",)  # each rank writes the rows of the items its share recomputed
    column_parallel = ("user_embedding", "item_embedding")  # parallel=columns: _column_split_loss
    config_class = MDRCHCAConfig
    search_space = {
        "reg_weight": log_range(1e-6, 1e-2),
        "k_r": int_range(5, 20),
        "tau": float_range(0.1, 0.7),
        "conf_weight": log_range(1e-3, 1.0),
    }
    ablations = {
        "MDR-CHCA": (),
        "A: dense alignment": ("alignment=full",),
        "B: no confidence screen": ("contrastive=standard", "confidence_fusion=none", "confidence_gate=none"),
    }

    def __init__(self, dataset: RecDataset, config: MDRCHCAConfig) -> None:
        super().__init__(dataset, config)
        d = config.embedding_size
        text_name, region_name = _pick_modalities(dataset, config)
        self.modality_names = (text_name, region_name)
        text, regions = dataset.features[text_name], dataset.features[region_name]
        inputs = (ModalityInput(text, d, phrases=True), ModalityInput(regions, d, phrases=False))
        self.init_id_embeddings(d)
        seen = np.diff(dataset.matrix("train").tocsc().indptr) > 0
        self.register_buffer("seen_items", torch.from_numpy(seen).unsqueeze(1), persistent=False)
        self.zero_unseen_ids = config.unseen_item_ids == "zero" or (
            config.unseen_item_ids == "auto" and dataset.split_mode == "cold_items"
        )
        self.init_user_item_graph(dataset, config.edge_dropout)
        self.content_branch = ContentBranch(
            text,
            regions,
            config,
            item_graphs=config.graph_scope == "item" or config.item_graph_embeddings,
            inputs=inputs,
        )
        _warn_about_caps(config, text, regions, self.content_branch.max_phrases)
        if config.content_scale == "learned":
            self.content_log_gain = nn.Parameter(torch.zeros(()))
        self.thresholds = AdaptiveThresholds(
            config.theta_pos, config.theta_neg, config.eta_1, config.eta_2, config.screen_margin
        )
        self._pending_pair_confidence: torch.Tensor | None = None
        self.last_loss_parts: dict[str, float] = {}
        self.screen_log = ScreenLog()
        # persistent, so an interrupted run resumes with the cache it had (exact resume)
        self.register_buffer("content_cache", torch.zeros(self.n_items, d))
        self._cache_fresh = False  # the cache holds every item's content at the current parameters
        # the cache's staleness at the current parameters, measured by a pass over every item (embeddings())
        self._staleness_now: dict[str, float] | None = None
        self._world_size = 1  # processes sharing each batch (share_batch)
        self._rank = 0
        self._gather: RowGather | None = None  # splits the content passes without gradients across ranks
        self._epoch = 0

    # -- content branch ---------------------------------------------------------------------------------
    # -- content branch ---------------------------------------------------------------------------------
    def content(self, items: torch.Tensor, context: tuple | None = None) -> ContentOutput:
        """The content branch's output for ``items`` (:class:`ContentOutput`; ``fused`` is f_i ``[B, d]``)."""
        return self.content_branch(items, context, self.thresholds)

    def step_content(self, items: torch.Tensor) -> ContentOutput:
        """What a training step needs of ``items``' content: :meth:`content`, or with ``training_pass=short``
        (unless L_conf compares aligned features, ``pair_features=aligned``) the same by the short route, which
        forms no aligned feature (:meth:`ContentBranch.short_output`)."""
        cfg = self.config
        if cfg.training_pass == "short" and cfg.pair_features != "aligned":
            return self.content_branch.short_output(items, None, self.thresholds)
        return self.content(items)

    def _graph_context(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return self.content_branch.graph_context()

    # -- recommender contract --------------------------------------------------------------------------
    def _collaborative(self) -> tuple[torch.Tensor, torch.Tensor]:
        return collaborative_embeddings(
            self.user_item_graph(), self.user_embedding, self._item_ids(), self.config.n_layers, symmetric=True
        )

    def on_epoch_start(self, epoch: int) -> None:
        self.draw_training_graph()
        self.screen_log = ScreenLog()
        self._epoch = epoch
        # the evaluation after the last step may have computed exactly this refresh already (embeddings())
        if self._uses_content_cache() and self._refresh_due(epoch) and not self._cache_fresh:
            self.refresh_content_cache()

    def _refresh_due(self, epoch: int) -> bool:
        return (epoch - 1) % self.config.content_refresh == 0

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # type: ignore[override]
        # checkpoints written before the content cache existed load with the cache as it is (refreshed anyway
        # at the next epoch start and unused in evaluation)
        state_dict.setdefault(prefix + "content_cache", self.content_cache)
        # checkpoints written before the content branch moved into its own module (session 7)
        moved = ("text.", "region.", "text_graph.", "region_graph.", "text_denoiser.", "region_denoiser.")
        moved += ("text_to_region.", "region_to_text.", "fusion_logits")
        for key in [k for k in state_dict if k.startswith(prefix) and k[len(prefix) :].startswith(moved)]:
            state_dict[prefix + "content_branch." + key[len(prefix) :]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _uses_content_cache(self) -> bool:
        return self.config.content_grad_items > 0 and self.config.content_propagation != "none"

    def probes(self) -> list[Probe]:
        return probes_for(self)

    @torch.no_grad()
    def all_fused_content(self) -> torch.Tensor:
        """Every item's fused content f_i ``[N, d]`` as scoring uses it (unit direction times the item gate
        unless ``content_scale=none``), without gradients."""
        return self._all_fused()

    @torch.no_grad()
    def refresh_content_cache(self) -> None:
        """Every item's fused content f_i, chunked and without gradients, into ``content_cache``."""
        self.content_cache.copy_(self._all_fused())
        self._cache_fresh = True

    def _all_fused(self) -> torch.Tensor:
        """Every item's f_i in chunks of ``content_chunk``. On several processes, when no gradient is needed
        (scoring, the cache refresh), each rank computes the items ``rank, rank + N, ...`` and the rows are
        gathered: every rank calls this at the same points (evaluation, epoch start)."""
        context = self._graph_context()
        items = torch.arange(self.n_items, device=self.item_embedding.device)
        split = self._gather is not None and not torch.is_grad_enabled()  # given only on several processes
        if split:
            items = items[self._rank :: self._world_size]
        fused = self._fused_in_chunks(items, context)
        return self._gather(fused, self.n_items) if split else fused

    def _fused_in_chunks(self, items: torch.Tensor, context: tuple | None = None) -> torch.Tensor:
        """f_i of ``items`` computed ``content_chunk`` items at a time (whose score tensors stay in cache); without
        gradients by the branch's short route unless ``scoring_pass=full``. The chunks take the items in order of
        their slots (:meth:`ContentBranch.slot_order`), so that each spans as few slots as its items fill; the
        rows come back in the order of ``items``."""
        order = self.content_branch.slot_order(items)
        chunks = items[order].split(self.content_chunk())
        if self.config.scoring_pass == "short" and not torch.is_grad_enabled():
            branch = self.content_branch
            fused = torch.cat([branch.fused_content(chunk, context, self.thresholds) for chunk in chunks])
        else:
            fused = torch.cat([self.content(chunk, context).fused for chunk in chunks])
        return fused[torch.argsort(order)]

    def content_chunk(self) -> int:
        """Items per chunk of a pass without gradients: ``content_chunk``, or with ``0`` the device's choice (64
        on the CPU; on a GPU 1024 · 4096 / (L·R) items, between 64 and 4,096)."""
        return chunk_size(self.config.content_chunk, self.item_embedding.device.type, self.content_branch.position_grid)

    def step_item_budget(self) -> int:
        """Items whose content a step recomputes with gradients: ``content_grad_items``, lowered to
        ``content_grad_positions // (L + R)`` (at least one item); on several processes each rank's share of
        it (the budget is the global step's)."""
        cfg = self.config
        positions = self.content_branch.positions_per_item
        budget = cfg.content_grad_items
        if cfg.content_grad_positions > 0:
            budget = max(1, min(budget, cfg.content_grad_positions // positions))
        if self.column_share is not None:  # parallel=columns: the global step's items, divided after the choice
            return budget
        return max(1, -(-budget // self._world_size)) if budget else 0

    def share_batch(self, rank: int, world_size: int, gather: RowGather | None = None) -> None:
        self._rank, self._world_size, self._gather = rank, world_size, gather

    def share_columns(self, rank: int, world_size: int, columns: ColumnCollectives) -> None:
        """``parallel=columns``: each rank holds its columns of E_u and E_i and propagates them with the same
        columns of the content; the step's items are divided among the ranks (``rank, rank + N, ...``), whose
        fresh content rows are gathered (their gradient summed and sent back), so every rank scores the whole
        batch and keeps the same content cache. L_conf is each rank's on its own items, weighted 1/N, and the
        thresholds follow rank 0's, as with ``parallel=batch``. The default content path only."""
        cfg = self.config
        refused = [
            text
            for text, bad in (
                ("content_propagation=none", cfg.content_propagation == "none"),
                ("view_contrast > 0", cfg.view_contrast > 0),
                ("item_graph_embeddings", cfg.item_graph_embeddings),
                ("the exact path (content_grad_items=0)", not self._uses_content_cache()),
            )
            if bad
        ]
        if refused:
            raise ConfigError(
                f"parallel=columns: MDR-CHCA splits its columns on the default content path only, not with "
                f"{', '.join(refused)}; use parallel=batch (--set parallel=batch)"
            )
        super().share_columns(rank, world_size, columns)
        self._rank, self._world_size = rank, world_size
        self._gather = columns.gather_rows

    def _step_items(self, batch: Batch) -> tuple[torch.Tensor, int]:
        """The items whose content is recomputed with gradients this step: the batch's positives, then its
        negatives, at most :meth:`step_item_budget` (drawn at random within each group when there are more);
        and how many of them lead as positives. The negatives are listed only when the positives leave room
        (with a step budget they seldom do)."""
        limit = self.step_item_budget()
        positives = torch.unique(batch.pos_items)
        if len(positives) > limit:
            positives = positives[torch.randperm(len(positives), device=positives.device)[:limit]]
        if len(positives) == limit:
            return positives, limit
        negatives = torch.unique(batch.neg_items)
        negatives = negatives[~torch.isin(negatives, positives)]
        room = limit - len(positives)
        if len(negatives) > room:
            negatives = negatives[torch.randperm(len(negatives), device=negatives.device)[:room]]
        return torch.cat([positives, negatives]), len(positives)

    def epoch_log(self) -> dict[str, float]:
        """The epoch's confidence screen (shares of positive, noisy and unused pairs), the thresholds after it,
        and the mean loss terms; written to log.csv by the trainer."""
        row = {
            **self.screen_log.summary(),
            "theta_pos": float(self.thresholds.theta_pos),
            "theta_neg": float(self.thresholds.theta_neg),
        }
        if self._uses_content_cache() and self.config.staleness_items > 0:
            # the validation pass after the epoch's last step has computed the sample's fresh content already
            row.update(self._staleness_now if self._staleness_now is not None else self.cache_staleness())
        return row

    def _staleness_sample(self) -> torch.Tensor:
        """The fixed ``staleness_items`` items the staleness is measured on (drawn without the global RNG)."""
        generator = torch.Generator().manual_seed(0)
        count = min(self.n_items, self.config.staleness_items)
        return torch.randperm(self.n_items, generator=generator)[:count].to(self.content_cache.device)

    @torch.no_grad()
    def cache_staleness(self) -> dict[str, float]:
        """How far the content cache has drifted from what the content branch computes now, on a fixed sample of
        ``staleness_items`` items: the mean and the 5th percentile of cos(cached f_i, fresh f_i), and the mean
        ratio of their norms (the item gate's drift). Uses no random state, so it leaves training unchanged."""
        sample = self._staleness_sample()
        return staleness(self.content_cache[sample], self._fused_in_chunks(sample))

    def _item_ids(self) -> torch.Tensor:
        """The item ID embeddings E_i, with those of items never seen in training zeroed when
        ``unseen_item_ids`` drops them (``zero``, or ``auto`` on an item cold-start split)."""
        if self.zero_unseen_ids:
            return self.item_embedding * self.seen_items
        return self.item_embedding

    def _item_graph_term(self) -> torch.Tensor:
        """mean_m (S^m)^L E_item: item ID embeddings smoothed over each modality's kNN graph."""
        terms = []
        for adjacency in (self.content_branch.text_knn, self.content_branch.region_knn):
            h = self._item_ids()
            for _ in range(max(1, self.config.modality_layers)):
                h = torch.sparse.mm(adjacency, h)
            terms.append(h)
        return torch.stack(terms).mean(0)

    def _scaled(self, fused: torch.Tensor) -> torch.Tensor:
        """The content at the collaborative scale: ``fused`` holds unit directions (times the item gate) unless
        ``content_scale=none``, and every item gets the mean norm of the collaborative item embeddings."""
        if self.config.content_scale == "none":
            return fused
        ids = self.item_embedding.detach()
        if self.zero_unseen_ids:
            ids = ids[self.seen_items.squeeze(1)]
        if self.column_share is None:
            target = ids.norm(dim=1).mean()
        else:  # this rank's columns: the rows' squared norms summed over the ranks
            target = self.column_share.collectives.sum_over_ranks(ids.pow(2).sum(1)).sqrt().mean()
        if self.config.content_scale == "learned":
            target = target * self.content_log_gain.exp()
        return fused * target

    def _item_representation(
        self, collaborative: torch.Tensor, fused: torch.Tensor, items: torch.Tensor | None = None
    ) -> torch.Tensor:
        """h_i for ``content_propagation=none``: collaborative item embedding plus (scaled) content."""
        fused = self._scaled(fused)
        h = collaborative + fused if self.config.item_representation == "sum" else fused
        if self.config.item_graph_embeddings:
            graph = self._item_graph_term()
            h = h + (graph if items is None else graph[items])
        return h

    def _propagate(self, fused: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every user and item representation, given every item's fused content ``[N, d]``."""
        cfg = self.config
        if cfg.content_propagation == "none":
            users, items = self._collaborative()
            return users, self._item_representation(items, fused)
        # LightGCN is linear, so view's LightGCN(E_u, E_i) + LightGCN(E_u, f) is one propagation of
        # (2 E_u, E_i + f); input is LightGCN(E_u, E_i + f). The two differ only in the users' layer 0.
        user_weight = 2.0 if cfg.content_propagation == "view" else 1.0
        if self.column_share is not None:  # this rank's columns of the content, beside its columns of E_i
            fused = self.column_share.own_columns(fused)
        layer0_items = self._item_ids() + self._scaled(fused)
        users, items = collaborative_embeddings(
            self.user_item_graph(), user_weight * self.user_embedding, layer0_items, cfg.n_layers, symmetric=True
        )
        return users, self._with_item_graph(items)

    def _with_item_graph(self, items: torch.Tensor) -> torch.Tensor:
        """Every item's representation plus the ``item_graph_embeddings`` term when that extension is on."""
        return items + self._item_graph_term() if self.config.item_graph_embeddings else items

    def _views(self, fused: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The collaborative and the content view of ``content_propagation=view``, propagated apart:
        (U^0, I^0) = LightGCN(E_u, E_i) and (U^f, I^f) = LightGCN(E_u, f)."""
        users_c, items_c = self._collaborative()
        users_f, items_f = collaborative_embeddings(
            self.user_item_graph(), self.user_embedding, self._scaled(fused), self.config.n_layers, symmetric=True
        )
        return users_c, items_c, users_f, items_f

    def _views_with_contrast(
        self, fused: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``view``'s users and items (the two views summed) and the ``view_contrast`` InfoNCE between the
        views of the batch's users plus that of its positive items."""
        users_c, items_c, users_f, items_f = self._views(fused)
        contrast = torch.zeros((), device=fused.device)
        for rows, collaborative, content in (
            (torch.unique(batch.users), users_c, users_f),
            (torch.unique(batch.pos_items), items_c, items_f),
        ):
            contrast = contrast + in_batch_infonce(
                nn.functional.normalize(collaborative[rows], dim=1),
                nn.functional.normalize(content[rows], dim=1),
                self.config.view_temperature,
            )
        return users_c + users_f, self._with_item_graph(items_c + items_f), contrast

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        fused = self._all_fused()
        if self._uses_content_cache():
            if self.config.staleness_items > 0:  # what epoch_log would recompute, before the refresh below
                sample = self._staleness_sample()
                self._staleness_now = staleness(self.content_cache[sample], fused[sample].detach())
            if self._refresh_due(self._epoch + 1):
                # the next epoch's refresh would recompute these very values (no step in between): keep them
                self.content_cache.copy_(fused.detach())
                self._cache_fresh = True
        return self.whole_columns(*self._propagate(fused))

    def loss(self, batch: Batch) -> torch.Tensor:
        if self.column_share is not None:
            return self._column_split_loss(batch)
        cfg = self.config
        n = len(batch.users)
        views = torch.zeros(())
        if cfg.content_propagation == "none":  # only the batch's items need their content
            users_all, items_all = self._collaborative()
            items, inverse = torch.unique(torch.cat([batch.pos_items, batch.neg_items]), return_inverse=True)
            out = self.step_content(items)
            h = self._item_representation(items_all[items], out.fused, items)
            pos, neg, positive_rows = h[inverse[:n]], h[inverse[n:]], inverse[:n]
        else:
            if self._uses_content_cache():
                items, n_positive = self._step_items(batch)
                out = self.step_content(items)
                fused_all = self._with_fresh_rows(items, out.fused)
                positive_rows = torch.arange(n_positive, device=items.device)  # the positives lead
            else:
                out = self.step_content(torch.arange(self.n_items, device=self.item_embedding.device))
                fused_all, positive_rows = out.fused, batch.pos_items
            if cfg.view_contrast > 0:
                users_all, items_all, views = self._views_with_contrast(fused_all, batch)
            else:
                users_all, items_all = self._propagate(fused_all)
            pos, neg = items_all[batch.pos_items], items_all[batch.neg_items]
        u = users_all[batch.users]
        ranking = bpr_on_embeddings(u, pos, neg)
        reg = embedding_l2(
            self.user_embedding[batch.users], self.item_embedding[batch.pos_items], self.item_embedding[batch.neg_items]
        )
        total = ranking + cfg.reg_weight * reg
        if cfg.view_contrast > 0:
            total = total + cfg.view_contrast * views
        contrast = torch.zeros((), device=pos.device)
        if cfg.conf_weight > 0:
            rows = torch.unique(positive_rows)
            if len(rows) > cfg.conf_items:
                rows = rows[torch.randperm(len(rows), device=rows.device)[: cfg.conf_items]]
            contrast = self.contrastive_loss(out.select(rows))
            total = total + cfg.conf_weight * contrast
        self.last_loss_parts = {"bpr": ranking.item(), "contrast": contrast.item(), "views": float(views.detach())}
        self.screen_log.add_losses(self.last_loss_parts["bpr"], self.last_loss_parts["contrast"])
        return total

    def _with_fresh_rows(self, items: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
        """Every item's f_i: the cache's rows with this step's fresh, differentiable rows of ``items`` put in
        place; the cache keeps the fresh values. With ``parallel=columns`` only this rank's columns of it (the
        only ones its propagation reads, so no whole-width copy of the catalogue's content is made or
        back-propagated)."""
        cache, rows = self.content_cache, fresh
        if self.column_share is not None:
            cache, rows = self.column_share.own_columns(cache), self.column_share.own_columns(fresh)
        fused_all = cache.index_put((items,), rows)
        with torch.no_grad():
            self.content_cache[items] = fresh.detach()
        return fused_all

    def _column_split_loss(self, batch: Batch) -> torch.Tensor:
        """:meth:`loss` with ``parallel=columns`` (:meth:`share_columns`): this rank's items' content, every
        rank's fresh rows gathered into the cache's rows, this rank's columns propagated, and the partial scores,
        penalty and L_conf / N summed over the ranks into the one loss every rank computes."""
        cfg = self.config
        items, n_positive = self._step_items(batch)
        mine = items[self._rank :: self._world_size]
        out = self.step_content(mine)
        fused_all = self._with_fresh_rows(items, self._gather(out.fused, len(items)))
        users_all, items_all = self._propagate(fused_all)
        u, pos, neg = users_all[batch.users], items_all[batch.pos_items], items_all[batch.neg_items]
        reg_share = embedding_l2(
            self.user_embedding[batch.users], self.item_embedding[batch.pos_items], self.item_embedding[batch.neg_items]
        )
        contrast_share = torch.zeros((), device=pos.device)
        if cfg.conf_weight > 0:
            # the positives lead ``items``, so they lead this rank's share of it too
            rows = torch.arange(len(range(self._rank, n_positive, self._world_size)), device=mine.device)
            cap = max(1, -(-cfg.conf_items // self._world_size))
            if len(rows) > cap:
                rows = rows[torch.randperm(len(rows), device=rows.device)[:cap]]
            contrast_share = self.contrastive_loss(out.select(rows))
        ranking, (reg, contrast) = self.bpr_and_terms(
            u, pos, neg, lambda: torch.stack([reg_share, contrast_share / self._world_size])
        )
        self.last_loss_parts = {"bpr": ranking.item(), "contrast": float(contrast.detach()), "views": 0.0}
        self.screen_log.add_losses(self.last_loss_parts["bpr"], self.last_loss_parts["contrast"])
        return ranking + cfg.reg_weight * reg + cfg.conf_weight * contrast

    def contrastive_loss(self, out: ContentOutput) -> torch.Tensor:
        """L_conf (or variant B's plain InfoNCE) over a batch of items' pairs."""
        cfg = self.config
        pairs, c_t, c_v = candidate_pairs(out.token_mask, out.best_region, out.text_confidence, out.region_confidence)
        pairs_ok = out.region_mask[pairs.item, pairs.region]
        positive = positive_mask(c_t, c_v, self.thresholds.theta_pos) & pairs_ok
        noisy = noisy_mask(c_t, c_v, self.thresholds.theta_neg) & pairs_ok
        if self.training:
            self.screen_log.add(int(pairs_ok.sum()), int(positive.sum()), int(noisy.sum()))
        if cfg.contrastive == "confidence":
            self._pending_pair_confidence = pairs.screening[pairs_ok].detach()
            keep = positive
        else:
            keep = pairs_ok
        anchors = torch.nonzero(keep).squeeze(1)
        if len(anchors) > cfg.conf_pairs:
            anchors = anchors[torch.randperm(len(anchors), device=anchors.device)[: cfg.conf_pairs]]
        item, token, region = pairs.item[anchors], pairs.token[anchors], pairs.region[anchors]
        if cfg.pair_features == "aligned":
            text_side, region_side = out.text_aligned, out.region_aligned
        elif cfg.pair_features == "denoised":
            text_side, region_side = out.tokens, out.regions
        else:  # the fine attention's query / key space, which the default confidences read
            tokens, regions = out.tokens, out.regions
            if cfg.detach_pair_inputs:
                tokens, regions = tokens.detach(), regions.detach()
            elif cfg.pair_input_grad < 1:  # the same values, a share of the gradient
                share = cfg.pair_input_grad
                tokens = tokens.detach() + share * (tokens - tokens.detach())
                regions = regions.detach() + share * (regions - regions.detach())
            text_side, region_side = self.content_branch.text_to_region.query_key_units(tokens, regions)
        all_tokens = nn.functional.normalize(text_side, dim=-1)  # [B, L, d]
        all_regions = nn.functional.normalize(region_side, dim=-1)  # [B, R, d]
        anchor = all_tokens[item, token]
        s_pos = (anchor * all_regions[item, region]).sum(-1)
        B, R = out.region_mask.shape
        if cfg.negative_regions == "best":
            s_rand, rand_ok = best_regions_of_other_items(anchor, all_regions, out.region_mask, item)
        else:
            others, others_ok = sample_other_items(item, B, cfg.random_negatives)
            rand_region = torch.randint(0, R, others.shape, device=others.device)
            s_rand = (anchor.unsqueeze(1) * all_regions[others, rand_region]).sum(-1)
            rand_ok = others_ok & out.region_mask[others, rand_region]
        if cfg.contrastive == "confidence":
            c_anchor = (c_t * c_v)[anchors].detach()
            hard = None
            if cfg.hard_negatives == "noisy_pairs":
                s_hard, c_hard, hard_ok = noisy_pair_negatives(pairs, noisy, all_tokens, all_regions, item)
                hard = Similarities(s_hard, c_hard.detach(), hard_ok)
            elif cfg.hard_negatives == "item_regions":
                hard_ok = hard_negative_mask(
                    out.region_confidence, out.region_mask, item, region, self.thresholds.theta_neg
                )
                s_hard = torch.einsum("nd,nrd->nr", anchor, all_regions[item])
                c_hard = (c_t[anchors].unsqueeze(1) * out.region_confidence[item]).detach()
                hard = Similarities(s_hard, c_hard, hard_ok)
            return confidence_weighted_infonce(
                Similarities(s_pos, c_anchor),
                Similarities(s_rand, mask=rand_ok),
                cfg.tau,
                hard=hard,
                weighting=cfg.confidence_weighting,
            )
        return confidence_weighted_infonce(Similarities(s_pos), Similarities(s_rand, mask=rand_ok), cfg.tau)

    def after_step(self) -> None:
        self._cache_fresh = False  # the parameters have moved
        self._staleness_now = None
        if self._pending_pair_confidence is not None:
            self.thresholds.update(self._pending_pair_confidence)
            self._pending_pair_confidence = None

    # -- explain / audit ----------------------------------------------------------------------------------
    @torch.no_grad()
    def item_confidence(self, batch_size: int | None = None) -> ItemConfidence:
        """Per item (NaN without both modalities): ``confidence``, the mean text confidence c^t_w over its
        tokens (how well its words find a matching region); ``pair_confidence``, the mean c^t_w c^v_{p*(w)};
        ``image_confidence``, the mean c^v_p; ``alignment_similarity``, the mean cosine of each denoised token
        to its best region. The image confidence is relative inside an item (its best region has g_p = 1),
        so it cannot say that a whole image disagrees with the text; the text confidence can. Computed
        ``batch_size`` items at a time, ``content_chunk`` unless given (the same numbers either way)."""
        self.eval()
        context = self._graph_context()
        parts: dict[str, list[np.ndarray]] = {
            k: [] for k in ("confidence", "pair_confidence", "image_confidence", "alignment_similarity")
        }
        items = torch.arange(self.n_items, device=self.item_embedding.device)
        for chunk in items.split(batch_size or self.content_chunk()):
            out = self.content(chunk, context)
            tm, rm = out.token_mask, out.region_mask
            best = out.best_region
            c_pair = out.text_confidence * out.region_confidence.gather(1, best)
            both = tm.any(1) & rm.any(1)
            token_vec = nn.functional.normalize(out.tokens, dim=-1)
            region_vec = nn.functional.normalize(out.regions, dim=-1)
            best_vec = region_vec.gather(1, best.unsqueeze(-1).expand_as(token_vec))
            per_position = {
                "confidence": (out.text_confidence, tm),
                "pair_confidence": (c_pair, tm),
                "image_confidence": (out.region_confidence, rm),
                "alignment_similarity": ((token_vec * best_vec).sum(-1), tm),
            }
            for name, (values, mask) in per_position.items():
                mean = masked_mean(values.unsqueeze(-1), mask).squeeze(-1)
                parts[name].append(torch.where(both, mean, torch.nan).cpu().numpy())
        return ItemConfidence(**{k: np.concatenate(v) for k, v in parts.items()})

    @torch.no_grad()
    def explain_item(self, item: int) -> ContentOutput:
        """Phrase-to-region selections, attention and confidences of one item (CPU tensors)."""
        self.eval()
        # every slot, so that the regions keep the grid the picture is drawn on
        items = torch.tensor([item], device=self.item_embedding.device)
        out = self.content_branch(items, None, self.thresholds, trim=False)
        return out.one_item(0)


def chunk_size(configured: int, device_type: str, position_grid: int) -> int:
    """``configured`` items, or with ``0`` the device's choice: on the CPU 64 · 4096 / ``position_grid`` (L·R)
    items between 64 and 256, else 1024 · 4096 / ``position_grid`` items between 64 and 4,096."""
    if configured:
        return configured
    if device_type == "cpu":
        return max(64, min(256, 64 * 4096 // max(1, position_grid)))
    return max(64, min(4096, 1024 * 4096 // max(1, position_grid)))


def staleness(cached: torch.Tensor, fresh: torch.Tensor) -> dict[str, float]:
    """Mean and 5th percentile of cos(cached f_i, fresh f_i) over the rows where both are non-zero, and the mean
    ratio of their norms; empty when no row has both."""
    norms = fresh.norm(dim=1) * cached.norm(dim=1)
    both = norms > 0
    if not both.any():
        return {}
    cosine = ((fresh * cached).sum(1)[both] / norms[both]).float()
    ratio = (cached.norm(dim=1)[both] / fresh.norm(dim=1)[both]).float()
    return {
        "cache_cos_mean": float(cosine.mean()),
        "cache_cos_p05": float(torch.quantile(cosine, 0.05)),
        "cache_norm_ratio": float(ratio.mean()),
    }
