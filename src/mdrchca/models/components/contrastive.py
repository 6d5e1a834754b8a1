"""Contrastive objectives the baselines share: in-batch InfoNCE and the two-view node-level InfoNCE."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def in_batch_infonce(anchors: torch.Tensor, positives: torch.Tensor, temperature: float) -> torch.Tensor:
    r""":math:`-\frac1B \sum_k \log \frac{e^{a_k^\top p_k/\tau}}{\sum_l e^{a_k^\top p_l/\tau}}` (the other rows of
    the batch are the negatives)."""
    logits = anchors @ positives.T / temperature
    return F.cross_entropy(logits, torch.arange(len(anchors), device=anchors.device))


def two_view_infonce(z1: torch.Tensor, z2: torch.Tensor, temperature: float, chunk: int = 4096) -> torch.Tensor:
    r"""Node-level contrastive loss of GRACE / MICRO over all rows, both views' other rows as negatives:

    .. math::
        \ell_i = -\log \frac{e^{s(z^1_i, z^2_i)/\tau}}
        {\sum_j e^{s(z^1_i, z^2_j)/\tau} + \sum_{j \ne i} e^{s(z^1_i, z^1_j)/\tau}}, \qquad
        \mathcal L = \tfrac{1}{N} \sum_i \ell_i

    with :math:`s` the cosine similarity. Computed in row chunks (memory ``chunk x N``).
    """
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    losses = []
    for start in range(0, len(a), chunk):
        rows = a[start : start + chunk]
        self_sim = rows @ a.T / temperature
        cross_sim = rows @ b.T / temperature
        idx = torch.arange(start, start + len(rows), device=a.device)
        local = torch.arange(len(rows), device=a.device)
        self_sim[local, idx] = -torch.inf  # the anchor itself is no negative
        denominator = torch.logsumexp(torch.cat([self_sim, cross_sim], dim=1), dim=1)
        losses.append(denominator - cross_sim[local, idx])
    return torch.cat(losses).mean()
