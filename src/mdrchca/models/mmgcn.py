"""MMGCN: one graph convolution network per modality on the user-item graph, averaged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn
from torch.nn import functional as F

from mdrchca.config import AT_LEAST_ONE, NON_NEGATIVE, ModelConfig, choice
from mdrchca.data.dataset import RecDataset
from mdrchca.data.graph import mean_normalized_adjacency, to_torch_sparse
from mdrchca.models.base import Batch, Recommender, bpr_on_embeddings, register


@dataclass
class MMGCNConfig(ModelConfig):
    n_layers: Annotated[int, NON_NEGATIVE] = 3
    """Graph convolution layers per modality (MMRec's yaml says 2, but its code always runs three)."""
    latent_dim: Annotated[int, AT_LEAST_ONE] = 256
    """Features wider than this are first mapped to it by a linear layer (MMRec does so for images)."""
    reg_weight: Annotated[float, NON_NEGATIVE] = 0.0
    """Weight of the mean squared ID embeddings and user preferences of the batch."""


class ModalityGCN(nn.Module):
    r"""MMGCN's graph network of one modality m (Wei et al. 2019, Eq. 1–5), layer l:

    .. math::
        h^{(l)} = \mathrm{LeakyReLU}\big(\bar A\, x^{(l)} W^{(l)}\big), \quad
        \hat x^{(l)} = \mathrm{LeakyReLU}\big(W_1^{(l)} x^{(l)} + b_1^{(l)}\big) + e_{id}, \quad
        x^{(l+1)} = \mathrm{LeakyReLU}\big(W_2^{(l)} h^{(l)} + b_2^{(l)} + \hat x^{(l)}\big)

    :math:`\bar A` is the mean aggregation over graph neighbours, :math:`x^{(0)}` the row-normalised
    concatenation of the users' learned preference vectors and the items' features.
    """

    def __init__(self, n_users: int, feat_dim: int, dim: int, n_layers: int, latent_dim: int) -> None:
        super().__init__()
        self.reduce = nn.Linear(feat_dim, latent_dim) if feat_dim > latent_dim else None
        in_dim = latent_dim if self.reduce is not None else feat_dim
        self.preference = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_users, in_dim)))
        dims = [in_dim] + [dim] * n_layers
        self.conv = nn.ParameterList()
        self.linear = nn.ModuleList()
        self.gate = nn.ModuleList()
        for layer in range(n_layers):
            bound = 1.0 / dims[layer] ** 0.5  # PyG's uniform init of the conv weight, as MMGCN
            self.conv.append(nn.Parameter(torch.empty(dims[layer], dims[layer]).uniform_(-bound, bound)))
            self.linear.append(nn.Linear(dims[layer], dim))
            self.gate.append(nn.Linear(dims[layer], dim))
            nn.init.xavier_normal_(self.linear[-1].weight)
            nn.init.xavier_normal_(self.gate[-1].weight)

    def forward(self, adjacency: torch.Tensor, features: torch.Tensor, id_embedding: torch.Tensor) -> torch.Tensor:
        items = self.reduce(features) if self.reduce is not None else features
        x = F.normalize(torch.cat([self.preference, items], dim=0), dim=1)
        for conv, linear, gate in zip(self.conv, self.linear, self.gate, strict=True):
            h = F.leaky_relu(torch.sparse.mm(adjacency, x @ conv))
            x_hat = F.leaky_relu(linear(x)) + id_embedding
            x = F.leaky_relu(gate(h) + x_hat)
        return x


@register
class MMGCN(Recommender):
    r"""MMGCN (Wei et al., "MMGCN: Multi-modal Graph Convolution Network for Personalized Recommendation of
    Micro-video", ACM MM 2019).

    .. math:: [U; I] = \frac{1}{M} \sum_m \mathrm{GCN}_m\big(x^m, E_{id}\big), \qquad \hat y_{ui} = u^\top i

    with :class:`ModalityGCN` per modality, sharing the ID embeddings :math:`E_{id}` of users and items.
    Loss: BPR + ``reg_weight`` times the mean squared ID embeddings of the batch and the mean squared
    user preferences. Defaults: MMRec's ``MMGCN.yaml`` first values (lr 1e-4, reg 0) and code (three
    layers, mean aggregation, no concatenation, ID embeddings added).

    Deviations: any number of modalities, each wider than ``latent_dim`` reduced by a linear layer (MMRec
    reduces only the image features). The ID embeddings and user preferences are trained: in MMRec's code
    they are plain tensors, not registered parameters, so its optimiser never updates them.
    """

    name = "mmgcn"
    config_class = MMGCNConfig
    search_space = {"reg_weight": choice(0.0, 1e-5, 1e-4, 1e-3)}
    train_defaults = {"learning_rate": 1e-4}

    def __init__(self, dataset: RecDataset, config: MMGCNConfig) -> None:
        super().__init__(dataset, config)
        self.require_features(dataset)
        d = config.embedding_size
        self.id_embedding = nn.Parameter(nn.init.xavier_normal_(torch.empty(self.n_users + self.n_items, d)))
        adjacency = mean_normalized_adjacency(dataset.matrix("train"), self_loops=False)
        self.register_buffer("adjacency", to_torch_sparse(adjacency), persistent=False)
        self.names = sorted(dataset.features)
        self.networks = nn.ModuleDict()
        for m in self.names:
            feats = dataset.features[m]
            self.register_buffer(f"feat_{m}", feats.item_vectors.float(), persistent=False)
            self.networks[m] = ModalityGCN(self.n_users, feats.dim, d, config.n_layers, config.latent_dim)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        out = sum(
            self.networks[m](self.adjacency, getattr(self, f"feat_{m}"), self.id_embedding) for m in self.names
        ) / len(self.names)
        return out[: self.n_users], out[self.n_users :]

    def loss(self, batch: Batch) -> torch.Tensor:
        users, items = self.embeddings()
        u = users[batch.users]
        loss = bpr_on_embeddings(u, items[batch.pos_items], items[batch.neg_items])
        if self.config.reg_weight > 0:
            ids = self.id_embedding
            items_used = self.n_users + torch.cat([batch.pos_items, batch.neg_items])
            reg = ids[batch.users].pow(2).mean() + ids[items_used].pow(2).mean()
            reg = reg + sum(net.preference.pow(2).mean() for net in self.networks.values())
            loss = loss + self.config.reg_weight * reg
        return loss
