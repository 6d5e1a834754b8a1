"""SLMRec: LightGCN per modality with shared users, fused, trained with in-batch InfoNCE and a fine-and-coarse
self-supervised task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn
from torch.nn import functional as F

from mdrchca.config import NON_NEGATIVE, POSITIVE, ModelConfig, float_range, log_range
from mdrchca.data.dataset import RecDataset
from mdrchca.models.base import Batch, Recommender, register
from mdrchca.models.components.contrastive import in_batch_infonce
from mdrchca.models.components.propagation import collaborative_embeddings


@dataclass
class SLMRecConfig(ModelConfig):
    n_layers: Annotated[int, NON_NEGATIVE] = 3
    """LightGCN layers of every view (MMRec's ``layer_num``)."""
    temperature: Annotated[float, POSITIVE] = 0.2
    """Temperature of the main in-batch user-item InfoNCE (MMRec's ``temp``)."""
    ssl_temp: Annotated[float, POSITIVE] = 0.1
    """Temperature of the self-supervised InfoNCE terms."""
    ssl_alpha: Annotated[float, NON_NEGATIVE] = 0.01
    """Weight of the self-supervised (FAC) loss."""


@register
class SLMRec(Recommender):
    r"""SLMRec (Tao et al., "Self-supervised Learning for Multimedia Recommendation", IEEE TMM 2022), with the
    fine-and-coarse (FAC) task MMRec's ``SLMRec.yaml`` selects.

    .. math::
        (U^0, I^0) = \mathrm{LightGCN}(E_u, E_i), \quad (U^m, I^m) = \mathrm{LightGCN}(E_u, W_m \bar x^m + b_m)

        u = F_u[u^0; u^1; \dots; u^M], \quad i = F_i[i^0; i^1; \dots; i^M], \qquad \hat y_{ui} = u^\top i

        \mathcal L = \mathrm{NCE}_\tau(\bar u, \bar i)
          + \alpha \sum_{m=1}^{M} \mathrm{NCE}_{\tau'}\big(g_m(i^0), G_m i^m\big), \quad g_m = P_m \circ \dots \circ P_1

    :math:`\bar x` are the L2-normalised features, :math:`\bar u, \bar i` the normalised fused embeddings of
    the batch's (user, positive) pairs, NCE the in-batch InfoNCE (:func:`in_batch_infonce`): the trainer's
    negatives are not used. The FAC chain aligns the ID view with the first modality, its projection with
    the next, and so on (coarse to fine). Defaults: MMRec's ``SLMRec.yaml`` first values (lr 1e-4,
    weight decay 1e-4, three layers, temp 0.2, ssl_temp 0.1, ssl_alpha 0.01, concat fusion).

    Deviations: any number of modalities, chained in name order (MMRec's code hard-wires image then text,
    its audio step computed but unused, and halves the size of the last projection; here every projection
    keeps d).
    """

    name = "slmrec"
    batch_separable = False  # in-batch contrastive negatives
    config_class = SLMRecConfig
    search_space = {"ssl_alpha": log_range(1e-3, 1e-1), "ssl_temp": float_range(0.05, 0.5)}
    train_defaults = {"learning_rate": 1e-4, "weight_decay": 1e-4}

    def __init__(self, dataset: RecDataset, config: SLMRecConfig) -> None:
        super().__init__(dataset, config)
        self.require_features(dataset)
        d = config.embedding_size
        self.init_id_embeddings(d)
        self.init_user_item_graph(dataset)
        self.names = sorted(dataset.features)
        self.dense = nn.ModuleDict()
        for m in self.names:
            feats = dataset.features[m]
            self.register_buffer(f"feat_{m}", F.normalize(feats.item_vectors.float(), dim=1), persistent=False)
            self.dense[m] = nn.Linear(feats.dim, d)
        width = d * (len(self.names) + 1)
        self.fuse_users = nn.Linear(width, d)
        self.fuse_items = nn.Linear(width, d)
        self.chain = nn.ModuleList(nn.Linear(d, d) for _ in self.names)  # P_m
        self.targets = nn.ModuleList(nn.Linear(d, d) for _ in self.names)  # G_m
        for layer in [*self.dense.values(), self.fuse_users, self.fuse_items, *self.chain, *self.targets]:
            nn.init.xavier_uniform_(layer.weight)

    def views(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The ID view then one view per modality, each (users, items) after LightGCN."""
        items = [self.item_embedding] + [self.dense[m](getattr(self, f"feat_{m}")) for m in self.names]
        return [
            collaborative_embeddings(self.adjacency, self.user_embedding, i, self.config.n_layers, symmetric=True)
            for i in items
        ]

    def _fused(self, views: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        users = self.fuse_users(torch.cat([u for u, _ in views], dim=1))
        items = self.fuse_items(torch.cat([i for _, i in views], dim=1))
        return users, items

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._fused(self.views())

    def fine_and_coarse(self, views: list[tuple[torch.Tensor, torch.Tensor]], items: torch.Tensor) -> torch.Tensor:
        """The FAC loss on the batch's items."""
        cfg = self.config
        x = views[0][1][items]
        loss = torch.zeros((), device=x.device)
        for (_, modality_items), chain, target in zip(views[1:], self.chain, self.targets, strict=True):
            x = chain(x)
            loss = loss + in_batch_infonce(x, target(modality_items[items]), cfg.ssl_temp)
        return loss

    def loss(self, batch: Batch) -> torch.Tensor:
        cfg = self.config
        views = self.views()
        users, items = self._fused(views)
        main = in_batch_infonce(
            F.normalize(users[batch.users], dim=1), F.normalize(items[batch.pos_items], dim=1), cfg.temperature
        )
        return main + cfg.ssl_alpha * self.fine_and_coarse(views, batch.pos_items)
