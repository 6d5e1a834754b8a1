"""MICRO: LATTICE's latent graphs kept per modality, fused by attention, aligned by contrastive learning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn
from torch.nn import functional as F

from mdrchca.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, UNIT, ModelConfig, int_range, log_range
from mdrchca.data.dataset import RecDataset
from mdrchca.data.graph import mean_normalized_adjacency, to_torch_sparse
from mdrchca.models.base import Batch, Recommender, bpr_on_embeddings, embedding_l2, register
from mdrchca.models.components.contrastive import two_view_infonce
from mdrchca.models.components.knn_graph import neighbour_propagate, normalize_neighbour_weights
from mdrchca.models.components.latent_graph import LatentItemGraphs
from mdrchca.models.components.propagation import collaborative_embeddings


@dataclass
class MICROConfig(ModelConfig):
    knn_k: Annotated[int, AT_LEAST_ONE] = 10
    """Neighbours per item (the item itself included) in every item graph (MICRO's ``topk``)."""
    lambda_coeff: Annotated[float, UNIT] = 0.9
    """Weight of the frozen feature graph against the learned one in each modality's graph."""
    n_layers: Annotated[int, NON_NEGATIVE] = 1
    """Hops of item embeddings over each modality's item graph."""
    n_ui_layers: Annotated[int, NON_NEGATIVE] = 2
    """LightGCN layers over the user-item graph (``len(weight_size)``)."""
    reg_weight: Annotated[float, NON_NEGATIVE] = 1e-5
    """Weight of the L2 penalty on the batch's final embeddings (MICRO's ``regs[0]``)."""
    loss_ratio: Annotated[float, NON_NEGATIVE] = 0.03
    """Weight of the contrastive loss between each modality's item embeddings and the fused ones."""
    temperature: Annotated[float, POSITIVE] = 0.5
    """Temperature of that contrastive loss."""
    train_features: bool = True
    """Fine-tune the raw modality features (as MICRO does) or keep them frozen."""


@register
class MICRO(Recommender):
    r"""MICRO (Zhang et al., "Latent Structure Mining with Contrastive Modality Fusion for Multimedia
    Recommendation", IEEE TKDE 2022; code CRIPAC-DIG/MICRO).

    .. math::
        A^m = (1 - \lambda)\, \mathrm{norm}(A^m_{learned}) + \lambda \hat S^m, \qquad h^m = (A^m)^{L} E_{item}

        \beta_m = \mathrm{softmax}_m\big(q^\top \tanh(W h^m + b)\big), \qquad h = \sum_m \beta_m h^m

        \hat y_{ui} = u^\top (i + h_i / \lVert h_i \rVert), \qquad
        \mathcal L = \mathcal L_{BPR} + \lambda_{reg} \mathcal L_2 + \lambda_{cl} \sum_m \mathcal L_{NCE}(h^m, h)

    with the graphs of :class:`LatentItemGraphs`, (U, I) LightGCN over :math:`D^{-1}(A_{ui} + I)` and
    :func:`two_view_infonce` over all items. Learned graphs are rebuilt with gradients at the first step of
    each epoch, as in the reference code. Defaults: the reference code's arguments (lr 5e-4, batch 1024,
    regs 1e-5, loss_ratio 0.03, topk 10, λ 0.9, one item-graph layer, learning rate x0.96 every 50 epochs).
    Deviations: any number of modalities; graphs in neighbour-list form (same values).
    """

    name = "micro"
    batch_separable = False  # in-batch contrastive negatives
    config_class = MICROConfig
    search_space = {"reg_weight": log_range(1e-6, 1e-3), "loss_ratio": log_range(1e-3, 1e-1), "knn_k": int_range(5, 20)}
    train_defaults = {"learning_rate": 5e-4, "batch_size": 1024, "lr_decay": 0.96, "lr_decay_epochs": 50}

    def __init__(self, dataset: RecDataset, config: MICROConfig) -> None:
        super().__init__(dataset, config)
        self.require_features(dataset)
        d = config.embedding_size
        self.init_id_embeddings(d)
        features = {m: f.item_vectors for m, f in dataset.features.items()}
        self.graphs = LatentItemGraphs(features, d, config.knn_k, config.train_features)
        self.query = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1, bias=False))
        adjacency = mean_normalized_adjacency(dataset.matrix("train"))
        self.register_buffer("adjacency", to_torch_sparse(adjacency), persistent=False)

    def on_epoch_start(self, epoch: int) -> None:
        self.graphs.new_epoch()

    def item_graph(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Modality ``name``'s mixed graph :math:`A^m` in neighbour-list form."""
        lam = self.config.lambda_coeff
        learned_idx, learned_val = self.graphs.learned(name)
        original_idx, original_w = self.graphs.original(name)
        values = torch.cat([(1 - lam) * normalize_neighbour_weights(learned_idx, learned_val), lam * original_w], 1)
        return torch.cat([learned_idx, original_idx], dim=1), values

    def modality_embeddings(self, build: bool) -> dict[str, torch.Tensor]:
        """:math:`h^m` for every modality."""
        out = {}
        for m in self.graphs.names:
            indices, values = self.graphs.current(m, lambda m=m: self.item_graph(m), rebuild=build)
            h = self.item_embedding
            for _ in range(self.config.n_layers):
                h = neighbour_propagate(indices, values, h)
            out[m] = h
        return out

    def fuse(self, per_modality: dict[str, torch.Tensor]) -> torch.Tensor:
        """Attention fusion :math:`h = \\sum_m \\beta_m h^m`."""
        stacked = torch.stack([per_modality[m] for m in self.graphs.names], dim=1)  # [N, M, d]
        beta = torch.softmax(self.query(stacked), dim=1)
        return (beta * stacked).sum(1)

    def _forward(self, build: bool) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        per_modality = self.modality_embeddings(build)
        fused = self.fuse(per_modality)
        users, items = collaborative_embeddings(
            self.adjacency, self.user_embedding, self.item_embedding, self.config.n_ui_layers
        )
        return users, items + F.normalize(fused, dim=1), per_modality, fused

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items, _, _ = self._forward(build=True)
        return users, items

    def loss(self, batch: Batch) -> torch.Tensor:
        cfg = self.config
        users, items, per_modality, fused = self._forward(build=False)
        u, i, j = users[batch.users], items[batch.pos_items], items[batch.neg_items]
        loss = bpr_on_embeddings(u, i, j) + cfg.reg_weight * embedding_l2(u, i, j)
        contrastive = sum(two_view_infonce(h, fused, cfg.temperature) for h in per_modality.values())
        return loss + cfg.loss_ratio * contrastive
