"""Deterministic top-K over score rows, ties broken in favour of the lower item index."""

from __future__ import annotations

import torch


def topk_items(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``[B, k]`` of the k highest scores of each row, best first.

    Equal scores are ordered by item index (lower first), so the result does not depend on the
    platform's ``torch.topk`` tie order. The cost stays that of one ``torch.topk(k + 1)``: only rows
    whose k-th and (k+1)-th scores tie take the slower exact path.
    """
    n = scores.shape[1]
    k = min(k, n)
    take = min(k + 1, n)
    values, indices = torch.topk(scores, take, dim=1)
    if take > k:
        boundary_tie = values[:, k - 1] == values[:, k]
        if boundary_tie.any():
            rows = torch.nonzero(boundary_tie).squeeze(1)
            values_fix, indices_fix = _exact_topk(scores[rows], k)
            values, indices = values[:, :k].clone(), indices[:, :k].clone()
            values[rows], indices[rows] = values_fix, indices_fix
        else:
            values, indices = values[:, :k], indices[:, :k]
    # Order inside the top k: by score descending, then by index ascending.
    by_index, order = indices.sort(dim=1)
    values = values.gather(1, order)
    _, rank = values.sort(dim=1, descending=True, stable=True)
    return by_index.gather(1, rank)


def _exact_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top k of each row where ties at the boundary are resolved by lower index (rows are few)."""
    kth = torch.topk(scores, k, dim=1).values[:, k - 1 : k]
    above = scores > kth
    equal = scores == kth
    need = k - above.sum(1, keepdim=True)
    chosen = above | (equal & (equal.cumsum(1) <= need))
    indices = torch.nonzero(chosen)[:, 1].view(scores.shape[0], k)
    return scores.gather(1, indices), indices
