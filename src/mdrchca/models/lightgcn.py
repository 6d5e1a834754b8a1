"""LightGCN: linear propagation on the user-item graph, mean over layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch

from mdrchca.config import NON_NEGATIVE, SHARE, ModelConfig, int_range, log_range
from mdrchca.data.dataset import RecDataset
from mdrchca.models.base import Batch, Recommender, embedding_l2, register
from mdrchca.models.components.propagation import collaborative_embeddings


@dataclass
class LightGCNConfig(ModelConfig):
    n_layers: Annotated[int, NON_NEGATIVE] = 2
    """Number of propagation layers L."""
    reg_weight: Annotated[float, NON_NEGATIVE] = 1e-4
    """Weight of the L2 penalty on the batch's layer-0 embeddings."""
    edge_dropout: Annotated[float, SHARE] = 0.0
    """Share of the training edges pruned each epoch, degree-sensitively (FREEDOM's pruning,
    :meth:`~mdrchca.models.base.Recommender.draw_training_graph`): the loss propagates over the pruned
    graph, scoring over the full one. 0 = off, LightGCN as published; an option so that models which add
    this regulariser can be compared with a LightGCN that has it too."""


@register
class LightGCN(Recommender):
    r"""LightGCN (He et al., SIGIR 2020): no feature transform, no non-linearity.

    .. math::
        E^{(l+1)} = \hat A E^{(l)}, \quad \hat A = D^{-1/2} A D^{-1/2}, \quad
        E = \frac{1}{L+1} \sum_{l=0}^{L} E^{(l)}, \quad \hat y_{ui} = e_u^\top e_i

    with :math:`E^{(0)} = [E_u; E_i]` Xavier-initialised, trained with BPR plus an L2 penalty
    (``reg_weight``) on the layer-0 embeddings of the batch; with ``edge_dropout`` the training loss
    propagates over :math:`\hat A` of an edge-pruned graph redrawn each epoch. Each column of :math:`E` propagates
    alone, so a training on several processes can split the columns (``parallel=columns``).
    """

    name = "lightgcn"
    config_class = LightGCNConfig
    search_space = {"reg_weight": log_range(1e-6, 1e-2), "n_layers": int_range(1, 4)}
    column_parallel = ("user_embedding", "item_embedding")

    def __init__(self, dataset: RecDataset, config: LightGCNConfig) -> None:
        super().__init__(dataset, config)
        self.init_id_embeddings(config.embedding_size)
        self.init_user_item_graph(dataset, config.edge_dropout)

    def on_epoch_start(self, epoch: int) -> None:
        self.draw_training_graph()

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.whole_columns(
            *collaborative_embeddings(
                self.adjacency, self.user_embedding, self.item_embedding, self.config.n_layers, symmetric=True
            )
        )

    def loss(self, batch: Batch) -> torch.Tensor:
        user_emb, item_emb = collaborative_embeddings(
            self.user_item_graph(), self.user_embedding, self.item_embedding, self.config.n_layers, symmetric=True
        )
        u, i, j = user_emb[batch.users], item_emb[batch.pos_items], item_emb[batch.neg_items]
        ranking, (reg,) = self.bpr_and_terms(
            u,
            i,
            j,
            lambda: embedding_l2(
                self.user_embedding[batch.users],
                self.item_embedding[batch.pos_items],
                self.item_embedding[batch.neg_items],
            ).reshape(1),
        )
        return ranking + self.config.reg_weight * reg
