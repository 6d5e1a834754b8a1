"""LightGCN's propagation over the user-item graph, which the collaborative branch of most models shares."""

from __future__ import annotations

import torch


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
