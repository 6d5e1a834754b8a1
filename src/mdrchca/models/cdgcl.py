"""CDGCL: modality-aware item views aligned by contrastive learning, trained on a denoised user-item graph."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mdrchca.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, SHARE, ModelConfig, float_range, log_range
from mdrchca.data.dataset import RecDataset
from mdrchca.data.graph import (
    degree_sensitive_sample,
    pruned_adjacency,
    to_torch_sparse,
)
from mdrchca.models.base import Batch, Recommender, bpr_on_embeddings, embedding_l2, register
from mdrchca.models.components.contrastive import in_batch_infonce
from mdrchca.models.components.knn_graph import knn_adjacency
from mdrchca.models.components.propagation import collaborative_embeddings


@dataclass
class CDGCLConfig(ModelConfig):
    knn_k: Annotated[int, AT_LEAST_ONE] = 10
    """Neighbours per item in each modality's frozen item kNN graph."""
    n_mm_layers: Annotated[int, NON_NEGATIVE] = 1
    """Hops of each modality's item features over its item graph."""
    n_ui_layers: Annotated[int, NON_NEGATIVE] = 2
    """LightGCN layers over the (denoised) user-item graph."""
    cl_weight: Annotated[float, NON_NEGATIVE] = 0.005
    """Weight of the contrastive losses (inter-modal plus collaborative-modal). Chosen on Last.fm validation: a
    ten times larger weight let the five InfoNCE terms outweigh BPR (docs/baselines.md)."""
    temperature: Annotated[float, POSITIVE] = 0.2
    """Temperature of the in-batch InfoNCE terms."""
    reg_weight: Annotated[float, NON_NEGATIVE] = 1e-4
    """Weight of the L2 penalty on the batch's layer-0 ID embeddings."""
    degree_drop: Annotated[float, SHARE] = 0.1
    """Denoising policy 1: share of the remaining edges pruned at random each epoch, degree-sensitively."""
    score_drop: Annotated[float, SHARE] = 0.05
    """Denoising policy 2: share of each epoch's edges pruned because the current model finds them least
    consistent with the user's modality-aware preferences (lowest cosine score)."""


@register
class CDGCL(Recommender):
    r"""CDGCL, after Xu et al., "Collaborative denoised graph contrastive learning for multi-modal
    recommendation", Information Sciences 679 (2024) 121017.

    **No public code exists, and only the paper's abstract was available to us.** This is our
    reconstruction of its two named parts, not a reproduction; its numbers say nothing about the paper's.

    Modality-aware item representations (one view per modality, shared user embeddings):

    .. math::
        h^m = \hat S_m^{L_m} (W_m \bar x^m + b_m), \qquad
        (U^0, I^0) = \mathrm{LightGCN}(E_u, E_i;\ \tilde A), \quad
        (U^m, I^m) = \mathrm{LightGCN}(E_u, h^m;\ \tilde A)

        u = U^0_u + \tfrac1M \sum_m U^m_u, \qquad i = I^0_i + \tfrac1M \sum_m I^m_i, \qquad \hat y_{ui} = u^\top i

    Contrastive learning of modality-aware collaborative relations, in-batch InfoNCE on normalised
    vectors: inter-modal :math:`\sum_{m<m'} \mathrm{NCE}(I^m, I^{m'})` and collaborative-modal
    :math:`\sum_m [\mathrm{NCE}(I^0, I^m) + \mathrm{NCE}(U^0, U^m)]`, weighted by ``cl_weight``.

    Multi-policy denoising (MPD) of the training graph :math:`\tilde A`, redrawn each epoch: policy 2
    removes the ``score_drop`` share of training edges with the lowest cosine between the user and the item
    under the current model; policy 1 then prunes ``degree_drop`` of the rest at random, degree-sensitively
    (as FREEDOM). Scoring uses the full graph. Loss: BPR + contrastive + ``reg_weight`` L2.
    :math:`\hat S_m` is the frozen normalised kNN graph of :func:`knn_adjacency`, :math:`\bar x` the
    L2-normalised features. Defaults are ours (the paper's were not available): chosen once, not tuned on
    any test split.
    """

    name = "cdgcl"
    batch_separable = False  # in-batch contrastive negatives
    config_class = CDGCLConfig
    search_space = {
        "reg_weight": log_range(1e-6, 1e-2),
        "cl_weight": log_range(1e-4, 1e-1),
        "temperature": float_range(0.1, 0.5),
    }

    def __init__(self, dataset: RecDataset, config: CDGCLConfig) -> None:
        super().__init__(dataset, config)
        self.require_features(dataset)
        d = config.embedding_size
        self.init_id_embeddings(d)
        self.names = sorted(dataset.features)
        self.projections = nn.ModuleDict()
        for m in self.names:
            vectors = dataset.features[m].item_vectors.float()
            # unit rows, as SLMRec: raw feature norms (e.g. ~20 for pooled CNN features) would otherwise make
            # the content views swamp the ID view at initialisation
            self.register_buffer(f"feat_{m}", F.normalize(vectors, dim=1), persistent=False)
            self.register_buffer(
                f"graph_{m}", to_torch_sparse(knn_adjacency(vectors.numpy(), config.knn_k)), persistent=False
            )
            self.projections[m] = nn.Linear(vectors.shape[1], d)
            nn.init.xavier_uniform_(self.projections[m].weight)
        self.init_user_item_graph(dataset)  # pruned by the two policies below, not by edge_dropout

    # -- denoising ----------------------------------------------------------------------------------
    def kept_edges(self) -> np.ndarray:
        """Positions of the training edges that survive both denoising policies this epoch."""
        cfg = self.config
        edge_users, edge_items = self.edges
        n_edges = len(edge_users)
        positions = np.arange(n_edges)
        if cfg.score_drop > 0:
            with torch.no_grad():
                users, items, _ = self._forward(self.adjacency)
                u = F.normalize(users, dim=1)[torch.from_numpy(edge_users).to(users.device)]
                i = F.normalize(items, dim=1)[torch.from_numpy(edge_items).to(users.device)]
                scores = (u * i).sum(-1).cpu().numpy()
            n_drop = int(n_edges * cfg.score_drop)
            positions = np.sort(np.argsort(scores, kind="stable")[n_drop:])
        if cfg.degree_drop > 0:
            keep = int(len(positions) * (1 - cfg.degree_drop))
            chosen = degree_sensitive_sample(edge_users[positions], edge_items[positions], keep)
            positions = positions[np.sort(chosen)]
        return positions

    def on_epoch_start(self, epoch: int) -> None:
        users, items = self.edges[:, self.kept_edges()]
        self.train_adjacency = pruned_adjacency(users, items, self.n_users, self.n_items, self.adjacency.device)

    # -- model ----------------------------------------------------------------------------------------
    def modality_items(self) -> dict[str, torch.Tensor]:
        """:math:`h^m` for every modality."""
        out = {}
        for m in self.names:
            h = self.projections[m](getattr(self, f"feat_{m}"))
            for _ in range(self.config.n_mm_layers):
                h = torch.sparse.mm(getattr(self, f"graph_{m}"), h)
            out[m] = h
        return out

    def _forward(
        self, adjacency: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        n_layers = self.config.n_ui_layers
        views = [
            collaborative_embeddings(adjacency, self.user_embedding, self.item_embedding, n_layers, symmetric=True)
        ]
        for h in self.modality_items().values():
            views.append(collaborative_embeddings(adjacency, self.user_embedding, h, n_layers, symmetric=True))
        users = views[0][0] + torch.stack([u for u, _ in views[1:]]).mean(0)
        items = views[0][1] + torch.stack([i for _, i in views[1:]]).mean(0)
        return users, items, views

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items, _ = self._forward(self.adjacency)
        return users, items

    def loss(self, batch: Batch) -> torch.Tensor:
        cfg = self.config
        users, items, views = self._forward(self.user_item_graph())
        u = users[batch.users]
        loss = bpr_on_embeddings(u, items[batch.pos_items], items[batch.neg_items])

        def nce(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return in_batch_infonce(F.normalize(a, dim=1), F.normalize(b, dim=1), cfg.temperature)

        pos = batch.pos_items
        contrastive = sum(nce(a[1][pos], b[1][pos]) for a, b in itertools.combinations(views[1:], 2))
        for modality_users, modality_items in views[1:]:
            contrastive = contrastive + nce(views[0][1][pos], modality_items[pos])
            contrastive = contrastive + nce(views[0][0][batch.users], modality_users[batch.users])
        reg = embedding_l2(
            self.user_embedding[batch.users], self.item_embedding[batch.pos_items], self.item_embedding[batch.neg_items]
        )
        return loss + cfg.cl_weight * contrastive + cfg.reg_weight * reg
