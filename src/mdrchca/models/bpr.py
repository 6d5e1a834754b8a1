"""BPR-MF: matrix factorisation trained with Bayesian personalised ranking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch

from mdrchca.config import NON_NEGATIVE, ModelConfig, log_range
from mdrchca.data.dataset import RecDataset
from mdrchca.models.base import Batch, Recommender, embedding_l2, register


@dataclass
class BPRConfig(ModelConfig):
    reg_weight: Annotated[float, NON_NEGATIVE] = 1e-5
    """Weight of the L2 penalty on the batch's embeddings."""


@register
class BPR(Recommender):
    r"""BPR-MF (Rendle et al., UAI 2009).

    .. math::
        \hat y_{ui} = e_u^\top e_i, \qquad
        \mathcal L = -\frac1B \sum_{(u,i,j)} \ln\sigma(\hat y_{ui} - \hat y_{uj})
                     + \lambda \frac{1}{2B}\big(\lVert e_u\rVert^2 + \lVert e_i\rVert^2 + \lVert e_j\rVert^2\big)

    Embeddings are Xavier-initialised. ``reg_weight`` is :math:`\lambda`.
    """

    name = "bpr"
    config_class = BPRConfig
    search_space = {"reg_weight": log_range(1e-6, 1e-2)}
    column_parallel = ("user_embedding", "item_embedding")

    def __init__(self, dataset: RecDataset, config: BPRConfig) -> None:
        super().__init__(dataset, config)
        self.init_id_embeddings(config.embedding_size)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.whole_columns(self.user_embedding, self.item_embedding)

    def loss(self, batch: Batch) -> torch.Tensor:
        u = self.user_embedding[batch.users]
        i = self.item_embedding[batch.pos_items]
        j = self.item_embedding[batch.neg_items]
        ranking, (reg,) = self.bpr_and_terms(u, i, j, lambda: embedding_l2(u, i, j).reshape(1))
        return ranking + self.config.reg_weight * reg
