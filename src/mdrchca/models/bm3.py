"""BM3: bootstrapped latent representations, self-supervised without negative sampling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn
from torch.nn import functional as F

from mdrchca.config import NON_NEGATIVE, SHARE, ModelConfig, float_range, int_range, log_range
from mdrchca.data.dataset import RecDataset
from mdrchca.models.base import Batch, Recommender, norm_penalty, register
from mdrchca.models.components.propagation import collaborative_embeddings


@dataclass
class BM3Config(ModelConfig):
    n_layers: Annotated[int, NON_NEGATIVE] = 1
    """LightGCN layers of the online encoder."""
    dropout: Annotated[float, SHARE] = 0.3
    """Dropout that turns the (detached) online embeddings into the target view."""
    reg_weight: Annotated[float, NON_NEGATIVE] = 0.1
    """Weight of MMRec's norm penalty on all online user and item embeddings."""
    cl_weight: Annotated[float, NON_NEGATIVE] = 2.0
    """Weight of the multimodal alignment losses."""
    train_features: bool = True
    """Fine-tune the raw modality features through the alignment losses (MMRec's BM3 does) or freeze them."""


def negative_cosine(online: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r""":math:`1 - \overline{\cos}(online, \mathrm{sg}(target))` over the batch (target gets no gradient)."""
    return 1 - F.cosine_similarity(online, target.detach(), dim=-1).mean()


@register
class BM3(Recommender):
    r"""BM3 (Zhou et al., "Bootstrap Latent Representations for Multi-modal Recommendation", WWW 2023),
    as in MMRec:

    .. math::
        (U, I) = \mathrm{LightGCN}(E) \text{ with } I \mathrel{+}= E_{item}, \quad
        \tilde u = \mathrm{Dropout}(\mathrm{sg}(u)), \ \tilde i = \mathrm{Dropout}(\mathrm{sg}(i))

        \mathcal L = [1 - \cos(P u, \tilde i)] + [1 - \cos(P i, \tilde u)]
          + \lambda_{cl} \sum_m \big([1 - \cos(P W_m x^m_i, \tilde i)]
          + [1 - \cos(P W_m x^m_i, \mathrm{Dropout}(W_m x^m_i))]\big)
          + \lambda_{reg} \tfrac{1}{N}(\lVert U \rVert_F + \lVert I \rVert_F)

    over the batch's (user, positive item) pairs: no negative is used (the trainer's negatives are
    ignored). :math:`P` is the shared predictor, :math:`W_m` the modality projections, sg stops the
    gradient. Scores: :math:`(P u)^\top (P i)`. The target view is a dropout of the detached online
    embeddings (MMRec's code; the paper's momentum encoder reduces to this). Defaults: the first value of
    each hyperparameter in MMRec's ``BM3.yaml``; the raw features are fine-tuned, as in MMRec
    (``train_features``). Deviation: any number of modalities.
    """

    name = "bm3"
    batch_separable = False  # a norm over the batch (MMRec's EmbLoss)
    config_class = BM3Config
    search_space = {"reg_weight": log_range(1e-3, 1.0), "dropout": float_range(0.1, 0.5), "n_layers": int_range(1, 2)}

    def __init__(self, dataset: RecDataset, config: BM3Config) -> None:
        super().__init__(dataset, config)
        self.require_features(dataset)
        d = config.embedding_size
        self.init_id_embeddings(d)
        self.init_user_item_graph(dataset)
        self.predictor = nn.Linear(d, d)
        nn.init.xavier_normal_(self.predictor.weight)
        self.projections = nn.ModuleDict()
        for name, feats in sorted(dataset.features.items()):
            vectors = feats.item_vectors.float().clone()
            if config.train_features:
                setattr(self, f"feat_{name}", nn.Parameter(vectors))
            else:
                self.register_buffer(f"feat_{name}", vectors, persistent=False)
            self.projections[name] = nn.Linear(feats.dim, d)
            nn.init.xavier_normal_(self.projections[name].weight)

    def _online(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = collaborative_embeddings(
            self.adjacency, self.user_embedding, self.item_embedding, self.config.n_layers, symmetric=True
        )
        return users, items + self.item_embedding

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = self._online()
        return self.predictor(users), self.predictor(items)

    def loss(self, batch: Batch) -> torch.Tensor:
        cfg = self.config
        users_all, items_all = self._online()
        u_target = F.dropout(users_all.detach(), cfg.dropout)[batch.users]
        i_target = F.dropout(items_all.detach(), cfg.dropout)[batch.pos_items]
        u_online = self.predictor(users_all[batch.users])
        i_online = self.predictor(items_all[batch.pos_items])
        loss = negative_cosine(u_online, i_target) + negative_cosine(i_online, u_target)
        alignment = torch.zeros((), device=loss.device)
        for name, projection in self.projections.items():
            feat = projection(getattr(self, f"feat_{name}")[batch.pos_items])
            feat_target = F.dropout(feat.detach(), cfg.dropout)
            feat_online = self.predictor(feat)
            alignment = alignment + negative_cosine(feat_online, i_target) + negative_cosine(feat_online, feat_target)
        return loss + cfg.reg_weight * norm_penalty(users_all, items_all) + cfg.cl_weight * alignment
