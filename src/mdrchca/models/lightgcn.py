"""LightGCN: linear propagation on the user-item graph, mean over layers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mdrchca.config import ModelConfig
from mdrchca.data.dataset import RecDataset
from mdrchca.data.graph import degree_sensitive_dropout_adjacency, symmetric_normalized_adjacency, to_torch_sparse
from mdrchca.errors import ConfigError
from mdrchca.models.base import Batch, Recommender, bpr_loss, embedding_l2, register


@dataclass
class LightGCNConfig(ModelConfig):
    n_layers: int = 2
    """Number of propagation layers L."""
    reg_weight: float = 1e-4
    """Weight of the L2 penalty on the batch's layer-0 embeddings."""
    edge_dropout: float = 0.0
    """Share of the training edges pruned each epoch, degree-sensitively (FREEDOM's pruning,
    :func:`~mdrchca.data.graph.degree_sensitive_dropout_adjacency`): the loss propagates over the pruned
    graph, scoring over the full one. 0 = off, LightGCN as published; an option so that models which add
    this regulariser can be compared with a LightGCN that has it too."""


def propagate(adjacency: torch.Tensor, embeddings: torch.Tensor, n_layers: int) -> torch.Tensor:
    r"""Mean of :math:`E^{(0)}, \dots, E^{(L)}` with :math:`E^{(l+1)} = \hat A E^{(l)}`."""
    layers = [embeddings]
    for _ in range(n_layers):
        layers.append(torch.sparse.mm(adjacency, layers[-1]))
    return torch.stack(layers, dim=0).mean(dim=0)


def collaborative_embeddings(
    adjacency: torch.Tensor, users: torch.Tensor, items: torch.Tensor, n_layers: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """LightGCN over :math:`E^{(0)} = [E_u; E_i]`, split back into users ``[M, d]`` and items ``[N, d]``."""
    out = propagate(adjacency, torch.cat([users, items], dim=0), n_layers)
    return out[: users.shape[0]], out[users.shape[0] :]


@register
class LightGCN(Recommender):
    r"""LightGCN (He et al., SIGIR 2020): no feature transform, no non-linearity.

    .. math::
        E^{(l+1)} = \hat A E^{(l)}, \quad \hat A = D^{-1/2} A D^{-1/2}, \quad
        E = \frac{1}{L+1} \sum_{l=0}^{L} E^{(l)}, \quad \hat y_{ui} = e_u^\top e_i

    with :math:`E^{(0)} = [E_u; E_i]` Xavier-initialised, trained with BPR plus an L2 penalty
    (``reg_weight``) on the layer-0 embeddings of the batch; with ``edge_dropout`` the training loss
    propagates over :math:`\hat A` of an edge-pruned graph redrawn each epoch.
    """

    name = "lightgcn"
    config_class = LightGCNConfig

    def __init__(self, dataset: RecDataset, config: LightGCNConfig) -> None:
        super().__init__(dataset, config)
        if not 0.0 <= config.edge_dropout < 1.0:
            raise ConfigError(f"edge_dropout must be in [0, 1), not {config.edge_dropout}")
        self.init_id_embeddings(config.embedding_size)
        train = dataset.matrix("train").tocoo()
        self.register_buffer("adjacency", to_torch_sparse(symmetric_normalized_adjacency(train)), persistent=False)
        self.edges = np.vstack([train.row, train.col]).astype(np.int64)
        self.train_adjacency: torch.Tensor | None = None

    def on_epoch_start(self, epoch: int) -> None:
        if self.config.edge_dropout > 0:
            self.train_adjacency = degree_sensitive_dropout_adjacency(
                self.edges, self.config.edge_dropout, self.n_users, self.n_items, self.item_embedding.device
            )

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return collaborative_embeddings(self.adjacency, self.user_embedding, self.item_embedding, self.config.n_layers)

    def loss(self, batch: Batch) -> torch.Tensor:
        adjacency = self.adjacency if self.train_adjacency is None else self.train_adjacency
        user_emb, item_emb = collaborative_embeddings(
            adjacency, self.user_embedding, self.item_embedding, self.config.n_layers
        )
        u, i, j = user_emb[batch.users], item_emb[batch.pos_items], item_emb[batch.neg_items]
        ranking = bpr_loss((u * i).sum(-1), (u * j).sum(-1))
        reg = embedding_l2(
            self.user_embedding[batch.users], self.item_embedding[batch.pos_items], self.item_embedding[batch.neg_items]
        )
        return ranking + self.config.reg_weight * reg
