"""GRCN: the user-item graph refined by content, edges weighted by attention and learned confidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mdrchca.config import AT_LEAST_ONE, NON_NEGATIVE, ModelConfig, log_range
from mdrchca.data.dataset import RecDataset
from mdrchca.models.base import Batch, Recommender, bpr_on_embeddings, register


@dataclass
class GRCNConfig(ModelConfig):
    latent_dim: Annotated[int, AT_LEAST_ONE] = 64
    """Size of each modality's content representation (MMRec's ``latent_embedding``)."""
    n_routing: Annotated[int, AT_LEAST_ONE] = 3
    """Routing iterations that refine the users' content preferences (MMRec's ``n_layers``)."""
    reg_weight: Annotated[float, NON_NEGATIVE] = 0.1
    """Weight of the mean squared ID embeddings and content preferences of the batch."""


def segment_softmax(scores: torch.Tensor, segments: torch.Tensor, n_segments: int) -> torch.Tensor:
    r"""Softmax of ``scores`` within each segment: :math:`\alpha_e = e^{s_e} / \sum_{e' : g(e') = g(e)} e^{s_{e'}}`."""
    peak = torch.full((n_segments,), -torch.inf, device=scores.device, dtype=scores.dtype)
    peak = peak.scatter_reduce(0, segments, scores.detach(), reduce="amax", include_self=True)
    exp = (scores - peak[segments]).exp()
    total = torch.zeros(n_segments, device=scores.device, dtype=scores.dtype).index_add_(0, segments, exp)
    return exp / total[segments]


def scatter_messages(values: torch.Tensor, weights: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    r""":math:`y_t = \sum_{e: s \to t} w_e\, x_s` over the edge list ``(src, dst)``."""
    out = torch.zeros_like(values)
    return out.index_add_(0, dst, weights.unsqueeze(1) * values[src])


class Edges(NamedTuple):
    """The training graph: ``users[e]`` interacted with ``items[e]``; ``src -> dst`` are the same edges in both
    directions over the joint node index (users first, then items), user-to-item edges first."""

    users: torch.Tensor
    items: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor

    @classmethod
    def from_pairs(cls, users: torch.Tensor, items: torch.Tensor, n_users: int) -> Edges:
        nodes = items + n_users
        return cls(users, items, torch.cat([users, nodes]), torch.cat([nodes, users]))


class ContentGraph(nn.Module):
    r"""GRCN's graph refining layer for one modality (Yang et al. 2020, §3.2):

    .. math::
        f_i = \mathrm{norm}(\mathrm{LeakyReLU}(W x_i + b)), \qquad
        p_u \leftarrow \mathrm{norm}\Big(p_u + \sum_{i \in \mathcal N_u} \mathrm{softmax}_i(p_u^\top f_i)\, f_i\Big)
        \ (\text{routing, } R \text{ times})

        \alpha_{s \to t} = \mathrm{softmax}_{s \in \mathcal N_t}(z_t^\top z_s), \qquad
        c_t = z_t + \sum_{s \in \mathcal N_t} \alpha_{s \to t}\, z_s, \qquad z = [p; f]

    Returns the content representations ``c`` of users and items and the edge attention ``alpha``.
    """

    def __init__(self, n_users: int, feat_dim: int, dim: int) -> None:
        super().__init__()
        self.preference = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_users, dim)))
        self.mlp = nn.Linear(feat_dim, dim)
        nn.init.xavier_normal_(self.mlp.weight)

    def forward(self, features: torch.Tensor, edges: Edges, n_routing: int) -> tuple[torch.Tensor, torch.Tensor]:
        n_users = len(self.preference)
        users, items = edges.users, edges.items
        content = F.normalize(F.leaky_relu(self.mlp(features)), dim=1)
        preference = F.normalize(self.preference, dim=1)
        for _ in range(n_routing):
            alpha = segment_softmax((preference[users] * content[items]).sum(-1), users, n_users)
            gathered = torch.zeros_like(preference).index_add_(0, users, alpha.unsqueeze(1) * content[items])
            preference = F.normalize(preference + gathered, dim=1)
        z = torch.cat([preference, content], dim=0)
        alpha = segment_softmax((z[edges.src] * z[edges.dst]).sum(-1), edges.dst, len(z))
        return z + scatter_messages(z, alpha, edges.src, edges.dst), alpha


@register
class GRCN(Recommender):
    r"""GRCN (Yang et al., "Graph-Refined Convolutional Network for Multimedia Recommendation with Implicit
    Feedback", ACM MM 2020).

    .. math::
        w_{s \to t} = \mathrm{ReLU}\big(\max_m \alpha^m_{s \to t}\, \kappa_{s,m}\big), \qquad
        e = \mathrm{norm}(E_{id}), \quad e^{(l+1)}_t = \sum_{s \in \mathcal N_t} w_{s \to t}\, e^{(l)}_s

        r = \big[e + e^{(1)} + e^{(2)};\ c^1; \dots; c^M\big], \qquad \hat y_{ui} = r_u^\top r_i

    with :math:`\alpha^m`, :math:`c^m` from :class:`ContentGraph` and :math:`\kappa` a learned confidence
    per node and modality (ReLU prunes edges whose weight turns negative). Loss: BPR + ``reg_weight``
    times the mean squared ID embeddings and content preferences of the batch's users and items.

    Defaults: MMRec's ``GRCN.yaml`` and code (latent 64, three routings, reg 0.1, ``weight_mode: confid``,
    ``fusion_mode: concat``, no activation, normalised inputs, no edge dropout). The learning rate is the
    trainer's 1e-3 (MMRec's grid starts at 1, not tried here). Deviations: any number of modalities (MMRec
    uses image and text); the routing lets users gather from their items as in the paper (MMRec's message
    direction sends nothing to users, so its routing leaves the preferences unchanged).
    """

    name = "grcn"
    config_class = GRCNConfig
    search_space = {"reg_weight": log_range(1e-3, 1.0)}

    def __init__(self, dataset: RecDataset, config: GRCNConfig) -> None:
        super().__init__(dataset, config)
        self.require_features(dataset)
        n_nodes = self.n_users + self.n_items
        self.id_embedding = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_nodes, config.embedding_size)))
        train = dataset.matrix("train").tocoo()
        edges = Edges.from_pairs(
            torch.from_numpy(train.row.astype(np.int64)), torch.from_numpy(train.col.astype(np.int64)), self.n_users
        )
        for name, value in edges._asdict().items():
            self.register_buffer(f"edge_{name}", value, persistent=False)
        self.names = sorted(dataset.features)
        self.content = nn.ModuleDict()
        for m in self.names:
            feats = dataset.features[m]
            self.register_buffer(f"feat_{m}", feats.item_vectors.float(), persistent=False)
            self.content[m] = ContentGraph(self.n_users, feats.dim, config.latent_dim)
        self.confidence = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_nodes, len(self.names))))

    @property
    def edges(self) -> Edges:
        """The training edges (buffers, so they follow the model to its device)."""
        return Edges(self.edge_users, self.edge_items, self.edge_src, self.edge_dst)

    def representations(self) -> torch.Tensor:
        """:math:`r` for every user then every item."""
        edges = self.edges
        contents, alphas = [], []
        for m in self.names:
            c, alpha = self.content[m](getattr(self, f"feat_{m}"), edges, self.config.n_routing)
            contents.append(c)
            alphas.append(alpha)
        weight = torch.relu((torch.stack(alphas, dim=1) * self.confidence[edges.src]).amax(dim=1))
        e0 = F.normalize(self.id_embedding, dim=1)
        e1 = scatter_messages(e0, weight, edges.src, edges.dst)
        e2 = scatter_messages(e1, weight, edges.src, edges.dst)
        return torch.cat([e0 + e1 + e2, *contents], dim=1)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.representations()
        return r[: self.n_users], r[self.n_users :]

    def loss(self, batch: Batch) -> torch.Tensor:
        users, items = self.embeddings()
        u = users[batch.users]
        loss = bpr_on_embeddings(u, items[batch.pos_items], items[batch.neg_items])
        items_used = self.n_users + torch.cat([batch.pos_items, batch.neg_items])
        reg = self.id_embedding[batch.users].pow(2).mean() + self.id_embedding[items_used].pow(2).mean()
        reg = reg + sum(net.preference[batch.users].pow(2).mean() for net in self.content.values())
        return loss + self.config.reg_weight * reg
