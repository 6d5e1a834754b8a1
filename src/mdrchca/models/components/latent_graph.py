"""Latent item graphs learned from projected modality features (LATTICE, MICRO)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mdrchca.models.components.knn_graph import cosine_topk, normalize_neighbour_weights


class LatentItemGraphs(nn.Module):
    r"""Per modality m, a frozen kNN graph of the raw features and a learnable one of their projection
    (LATTICE, Zhang et al. MM 2021, §3.1), both in neighbour-list form ``(indices [N, k], weights [N, k])``:

    .. math::
        \hat S^m = D^{-1/2}\,\mathrm{kNN}_k\big(\cos(x^m_i, x^m_j)\big)\,D^{-1/2}, \qquad
        A^m = \mathrm{kNN}_k\big(\cos(W_m x^m_i + b_m, W_m x^m_j + b_m)\big)

    The kNN keeps the similarity values of each item's k most similar items, itself included.
    :meth:`learned` is differentiable with respect to :math:`W_m`, :math:`b_m` and, with
    ``train_features``, the features themselves (LATTICE and MICRO fine-tune them).

    Both models rebuild their graphs with gradients at the first step of each epoch and reuse them,
    detached, for the other steps: :meth:`new_epoch` and :meth:`current` keep that cache.
    """

    def __init__(self, features: dict[str, torch.Tensor], dim: int, k: int, train_features: bool = True) -> None:
        super().__init__()
        self.names = sorted(features)
        self.k = k
        self.features = nn.ParameterDict(
            {m: nn.Parameter(features[m].float().clone(), requires_grad=train_features) for m in self.names}
        )
        self.projections = nn.ModuleDict({m: nn.Linear(features[m].shape[1], dim) for m in self.names})
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for m in self.names:
            indices, values = cosine_topk(features[m].float(), k)
            self.register_buffer(f"original_indices_{m}", indices, persistent=False)
            weights = normalize_neighbour_weights(indices, values)
            self.register_buffer(f"original_weights_{m}", weights, persistent=False)

    def original(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The frozen normalised graph :math:`\\hat S^m`."""
        return getattr(self, f"original_indices_{name}"), getattr(self, f"original_weights_{name}")

    def projected(self, name: str) -> torch.Tensor:
        """:math:`W_m x^m + b_m` for every item, ``[N, dim]``."""
        return self.projections[name](self.features[name])

    def learned(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The un-normalised learned graph :math:`A^m` (similarities carry gradients)."""
        return cosine_topk(self.projected(name), self.k)

    def new_epoch(self) -> None:
        """Forget the cached graphs: the next :meth:`current` call rebuilds them with gradients."""
        self._cache.clear()

    def current(
        self, key: str, build: Callable[[], tuple[torch.Tensor, torch.Tensor]], rebuild: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Graph ``key`` in neighbour-list form: ``build()`` (with gradients) when not cached since
        :meth:`new_epoch` or when ``rebuild``; otherwise the cached, detached copy."""
        if rebuild or key not in self._cache:
            indices, values = build()
            self._cache[key] = (indices, values.detach())
            return indices, values
        return self._cache[key]
