"""LATTICE: item-item graphs learned from modality features, mixed with the frozen kNN graphs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn
from torch.nn import functional as F

from mdrchca.config import AT_LEAST_ONE, NON_NEGATIVE, UNIT, ModelConfig, choice, float_range, int_range
from mdrchca.data.dataset import RecDataset
from mdrchca.data.graph import mean_normalized_adjacency, to_torch_sparse
from mdrchca.models.base import Batch, Recommender, bpr_on_embeddings, embedding_l2, register
from mdrchca.models.components.knn_graph import neighbour_propagate, normalize_neighbour_weights
from mdrchca.models.components.latent_graph import LatentItemGraphs
from mdrchca.models.components.propagation import collaborative_embeddings


@dataclass
class LATTICEConfig(ModelConfig):
    feat_embed_dim: Annotated[int, AT_LEAST_ONE] = 64
    """Size of the projected modality features the latent graph is learned from."""
    knn_k: Annotated[int, AT_LEAST_ONE] = 10
    """Neighbours per item (the item itself included) in every item graph."""
    lambda_coeff: Annotated[float, UNIT] = 0.9
    """Weight of the frozen feature graph against the learned one (the skip connection λ)."""
    n_layers: Annotated[int, NON_NEGATIVE] = 1
    """Hops of item embeddings over the mixed item graph."""
    n_ui_layers: Annotated[int, NON_NEGATIVE] = 2
    """LightGCN layers over the user-item graph (MMRec's ``len(weight_size)``)."""
    reg_weight: Annotated[float, NON_NEGATIVE] = 0.0
    """Weight of the L2 penalty :math:`\\frac{1}{2B}\\lVert\\cdot\\rVert^2` on the batch's final embeddings."""
    train_features: bool = True
    """Fine-tune the raw modality features (as LATTICE does) or keep them frozen."""


@register
class LATTICE(Recommender):
    r"""LATTICE (Zhang et al., "Mining Latent Structures for Multimedia Recommendation", ACM MM 2021).

    .. math::
        w = \mathrm{softmax}(\alpha), \quad
        A = (1 - \lambda)\, \mathrm{norm}\Big(\sum_m w_m A^m\Big) + \lambda \sum_m w_m \hat S^m, \quad
        h = A^{L} E_{item}

        (U, I) = \mathrm{LightGCN}_{L_{ui}}\big(D^{-1}(A_{ui} + I)\big), \qquad
        \hat y_{ui} = u^\top \big(i + h_i / \lVert h_i \rVert\big)

    :math:`A^m`, :math:`\hat S^m`: :class:`LatentItemGraphs`; norm is :math:`D^{-1/2}\cdot D^{-1/2}` by row
    sums; :math:`\alpha` is learned (one weight per modality). As in the reference code the learned graph
    is rebuilt with gradients at the first step of each epoch and reused, detached, for the other steps,
    and rebuilt for evaluation. Loss: BPR + ``reg_weight`` times the L2 of the batch's final embeddings.

    Defaults: the first value of each hyperparameter in MMRec's ``LATTICE.yaml`` (lr 1e-4, reg 0,
    ``cf_model: lightgcn``, learning rate x0.96 every 50 epochs). Deviations: any number of modalities
    (MMRec's code is written for image and text); graphs in neighbour-list form rather than dense
    ``N x N`` matrices (same values); the NGCF and MF back-ends are not offered.
    """

    name = "lattice"
    config_class = LATTICEConfig
    search_space = {
        "reg_weight": choice(0.0, 1e-5, 1e-4, 1e-3),
        "knn_k": int_range(5, 20),
        "lambda_coeff": float_range(0.5, 0.95),
    }
    train_defaults = {"learning_rate": 1e-4, "lr_decay": 0.96, "lr_decay_epochs": 50}

    def __init__(self, dataset: RecDataset, config: LATTICEConfig) -> None:
        super().__init__(dataset, config)
        self.require_features(dataset)
        self.init_id_embeddings(config.embedding_size)
        features = {m: f.item_vectors for m, f in dataset.features.items()}
        self.graphs = LatentItemGraphs(features, config.feat_embed_dim, config.knn_k, config.train_features)
        self.modal_weight = nn.Parameter(torch.full((len(features),), 1.0 / len(features)))
        adjacency = mean_normalized_adjacency(dataset.matrix("train"))
        self.register_buffer("adjacency", to_torch_sparse(adjacency), persistent=False)

    def on_epoch_start(self, epoch: int) -> None:
        self.graphs.new_epoch()

    def item_graph(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixed item graph :math:`A` in neighbour-list form."""
        cfg = self.config
        weights = torch.softmax(self.modal_weight, dim=0)
        learned = [self.graphs.learned(m) for m in self.graphs.names]
        original = [self.graphs.original(m) for m in self.graphs.names]
        learned_idx = torch.cat([idx for idx, _ in learned], dim=1)
        learned_w = normalize_neighbour_weights(
            learned_idx, torch.cat([w * val for w, (_, val) in zip(weights, learned, strict=True)], dim=1)
        )
        original_idx = torch.cat([idx for idx, _ in original], dim=1)
        original_w = torch.cat([w * val for w, (_, val) in zip(weights, original, strict=True)], dim=1)
        indices = torch.cat([learned_idx, original_idx], dim=1)
        values = torch.cat([(1 - cfg.lambda_coeff) * learned_w, cfg.lambda_coeff * original_w], dim=1)
        return indices, values

    def _forward(self, build: bool) -> tuple[torch.Tensor, torch.Tensor]:
        indices, values = self.graphs.current("mixed", self.item_graph, rebuild=build)
        h = self.item_embedding
        for _ in range(self.config.n_layers):
            h = neighbour_propagate(indices, values, h)
        users, items = collaborative_embeddings(
            self.adjacency, self.user_embedding, self.item_embedding, self.config.n_ui_layers
        )
        return users, items + F.normalize(h, dim=1)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._forward(build=True)

    def loss(self, batch: Batch) -> torch.Tensor:
        users, items = self._forward(build=False)
        u, i, j = users[batch.users], items[batch.pos_items], items[batch.neg_items]
        return bpr_on_embeddings(u, i, j) + self.config.reg_weight * embedding_l2(u, i, j)
