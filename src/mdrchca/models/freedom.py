"""FREEDOM: a frozen item-item graph from modality features and a denoised (edge-pruned) user-item graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from mdrchca.config import AT_LEAST_ONE, NON_NEGATIVE, SHARE, UNIT, ModelConfig, choice, float_range, int_range
from mdrchca.data.dataset import RecDataset
from mdrchca.data.graph import (
    to_torch_sparse,
)
from mdrchca.models.base import Batch, Recommender, bpr_on_embeddings, register
from mdrchca.models.components.knn_graph import knn_indices
from mdrchca.models.components.propagation import collaborative_embeddings


@dataclass
class FREEDOMConfig(ModelConfig):
    knn_k: Annotated[int, AT_LEAST_ONE] = 10
    """Neighbours per item in each modality's kNN graph (the item itself included, as FREEDOM)."""
    image_weight: Annotated[float, UNIT] = 0.1
    """Weight of the ``weighted_modality`` graph in the frozen item graph; the rest is shared equally by
    the other modalities (MMRec's ``mm_image_weight``). Without that modality all weigh the same."""
    weighted_modality: str = "image"
    """The modality that takes ``image_weight`` (MMRec's ``v_feat`` slot; e.g. ``audio`` for a dataset whose
    second modality is audio)."""
    n_mm_layers: Annotated[int, NON_NEGATIVE] = 1
    """Hops over the frozen item-item graph."""
    n_ui_layers: Annotated[int, NON_NEGATIVE] = 2
    """LightGCN layers over the user-item graph."""
    dropout: Annotated[float, SHARE] = 0.8
    """Share of user-item edges pruned each epoch, drawn with probability proportional to
    1 / sqrt(d_u d_i) (degree-sensitive pruning)."""
    reg_weight: Annotated[float, NON_NEGATIVE] = 0.0
    """Weight of the auxiliary BPR losses that score each modality's projected features."""


def frozen_item_graph(
    features: dict[str, np.ndarray], k: int, image_weight: float, weighted: str = "image"
) -> sp.csr_matrix:
    r""":math:`S = \sum_m w_m D_m^{-1/2} A_m D_m^{-1/2}`, :math:`A_m` the binary kNN graph (self included)."""
    names = sorted(features)
    if weighted in names and len(names) > 1:
        weights = {m: image_weight if m == weighted else (1 - image_weight) / (len(names) - 1) for m in names}
    else:
        weights = {m: 1.0 / len(names) for m in names}
    total = None
    for name in names:
        vectors = features[name]
        n = len(vectors)
        neighbours = knn_indices(vectors, max(k - 1, 1))
        rows = np.repeat(np.arange(n), neighbours.shape[1] + 1)
        cols = np.concatenate([np.arange(n)[:, None], neighbours], axis=1).ravel()
        keep = cols >= 0
        A = sp.csr_matrix((np.ones(keep.sum(), dtype=np.float32), (rows[keep], cols[keep])), shape=(n, n))
        degree = np.asarray(A.sum(1)).ravel()
        inv = np.where(degree > 0, degree, 1.0) ** -0.5
        normalized = sp.diags(inv) @ A @ sp.diags(inv) * weights[name]
        total = normalized if total is None else total + normalized
    return total.tocsr().astype(np.float32)


@register
class FREEDOM(Recommender):
    r"""FREEDOM (Zhou & Shen, "A Tale of Two Graphs: Freezing and Denoising Graph Structures for Multimodal
    Recommendation", ACM MM 2023).

    .. math::
        H = S^{L_m} E_{item}, \qquad (U, I) = \mathrm{LightGCN}_{L_{ui}}(\tilde A), \qquad
        \hat y_{ui} = u \cdot (i + h_i)

    :math:`S` is the frozen item-item graph (:func:`frozen_item_graph`), built once from the item-level
    features; :math:`\tilde A` is the user-item graph with a share ``dropout`` of its edges pruned each
    epoch (degree-sensitive), renormalised; scoring uses the full graph. Loss: BPR, plus ``reg_weight``
    times a BPR that scores each modality's linearly projected features against the user.

    Defaults are the first value of each hyperparameter in MMRec's ``FREEDOM.yaml``. Deviations from
    MMRec's code: any number of modalities (weights as described in ``image_weight``); the modality
    features are frozen (MMRec fine-tunes them, but they only enter the auxiliary loss, which is off at
    ``reg_weight = 0``); the kNN search excludes duplicates of the item itself.
    """

    name = "freedom"
    config_class = FREEDOMConfig
    search_space = {
        "reg_weight": choice(0.0, 1e-5, 1e-4, 1e-3),
        "dropout": float_range(0.5, 0.9),
        "knn_k": int_range(5, 20),
    }

    def __init__(self, dataset: RecDataset, config: FREEDOMConfig) -> None:
        super().__init__(dataset, config)
        self.require_features(dataset)
        d = config.embedding_size
        self.init_id_embeddings(d)
        vectors = {name: f.item_vectors.numpy() for name, f in dataset.features.items()}
        self.register_buffer(
            "item_graph",
            to_torch_sparse(frozen_item_graph(vectors, config.knn_k, config.image_weight, config.weighted_modality)),
            persistent=False,
        )
        self.init_user_item_graph(dataset, config.dropout)
        self.projections = nn.ModuleDict()
        for name, feats in dataset.features.items():
            self.register_buffer(f"feat_{name}", feats.item_vectors.float(), persistent=False)
            self.projections[name] = nn.Linear(feats.dim, d)

    def on_epoch_start(self, epoch: int) -> None:
        """Degree-sensitive edge pruning: keep (1 - dropout) of the edges, drawn without replacement."""
        self.draw_training_graph()

    def _forward(self, adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.item_embedding
        for _ in range(self.config.n_mm_layers):
            h = torch.sparse.mm(self.item_graph, h)
        users, items = collaborative_embeddings(
            adjacency, self.user_embedding, self.item_embedding, self.config.n_ui_layers, symmetric=True
        )
        return users, items + h

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._forward(self.adjacency)

    def loss(self, batch: Batch) -> torch.Tensor:
        users, items = self._forward(self.user_item_graph())
        u = users[batch.users]
        loss = bpr_on_embeddings(u, items[batch.pos_items], items[batch.neg_items])
        if self.config.reg_weight > 0:
            for name, projection in self.projections.items():
                projected = projection(getattr(self, f"feat_{name}"))
                aux = bpr_on_embeddings(u, projected[batch.pos_items], projected[batch.neg_items])
                loss = loss + self.config.reg_weight * aux
        return loss
