"""VBPR: matrix factorisation whose item factors are extended by a linear map of the item's content."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from mdrchca.config import NON_NEGATIVE, ModelConfig, log_range
from mdrchca.data.dataset import RecDataset
from mdrchca.models.base import Batch, Recommender, bpr_on_embeddings, norm_penalty, register


@dataclass
class VBPRConfig(ModelConfig):
    reg_weight: Annotated[float, NON_NEGATIVE] = 2.0
    """Weight of MMRec's norm penalty (sum of Frobenius norms / B) on the batch's user and item vectors;
    2.0 is the first value of MMRec's VBPR.yaml."""


@register
class VBPR(Recommender):
    r"""VBPR (He & McAuley, "VBPR: Visual Bayesian Personalized Ranking from Implicit Feedback", AAAI 2016),
    in MMRec's version:

    .. math::
        \hat y_{ui} = [\theta_u; \theta'_u]^\top [\gamma_i; E f_i], \qquad
        f_i = [x^{(1)}_i; \dots; x^{(M)}_i]

    with :math:`\theta_u \in \mathbb R^{2d}` split over the ID factors :math:`\gamma_i \in \mathbb R^d` and
    the content factors :math:`E f_i` (a linear map of the concatenated item-level features of every
    modality). Loss: BPR + ``reg_weight`` times MMRec's norm penalty. As in MMRec, the original paper's
    bias terms are left out. Works with any number of modalities (their item vectors are concatenated).
    """

    name = "vbpr"
    batch_separable = False  # a norm over the batch (MMRec's EmbLoss)
    config_class = VBPRConfig
    search_space = {"reg_weight": log_range(1e-2, 10.0)}

    def __init__(self, dataset: RecDataset, config: VBPRConfig) -> None:
        super().__init__(dataset, config)
        self.require_features(dataset)
        d = config.embedding_size
        self.init_id_embeddings(2 * d, d)
        content = torch.cat([dataset.features[m].item_vectors.float() for m in sorted(dataset.features)], dim=1)
        self.register_buffer("content", content, persistent=False)
        self.content_map = nn.Linear(content.shape[1], d)
        nn.init.xavier_normal_(self.content_map.weight)
        nn.init.zeros_(self.content_map.bias)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_embedding, torch.cat([self.item_embedding, self.content_map(self.content)], dim=1)

    def loss(self, batch: Batch) -> torch.Tensor:
        users, items = self.embeddings()
        u, i, j = users[batch.users], items[batch.pos_items], items[batch.neg_items]
        return bpr_on_embeddings(u, i, j) + self.config.reg_weight * norm_penalty(u, i, j)
