r"""Top-K ranking metrics from a hit matrix, following MMRec's conventions.

``hits[u, r]`` is True when the item ranked r-th (0-based) for user u is relevant; ``n_relevant[u]`` is
the number of relevant items of user u in the evaluated split (all of them, not only those in the top K).

* Recall@K    = hits in top K / n_relevant (averaged over users; MMRec's ``recall``)
* Precision@K = hits in top K / K
* HitRate@K   = 1 if any hit in top K else 0
* NDCG@K      = DCG / IDCG with binary gain, :math:`DCG = \sum_{r<K} hit_r / \log_2(r+2)` and the ideal DCG of
  :math:`\min(n_{relevant}, K)` hits at the top.

Users with no relevant item are not passed in (they are left out of the average, as MMRec does).
"""

from __future__ import annotations

import torch

METRICS = ("recall", "ndcg", "precision", "hit")


def discounts(k: int, device: torch.device | None = None) -> torch.Tensor:
    """:math:`1 / \\log_2(r + 2)` for ranks r = 0..k-1."""
    return 1.0 / torch.log2(torch.arange(k, device=device, dtype=torch.float64) + 2.0)


def per_user_metrics(
    hits: torch.Tensor, n_relevant: torch.Tensor, ks: list[int] | tuple[int, ...]
) -> dict[str, torch.Tensor]:
    """Every metric at every K for each user: ``{"recall@10": tensor[U], ...}`` (float64)."""
    if hits.shape[1] < max(ks):
        raise ValueError(f"hit matrix has {hits.shape[1]} columns, fewer than K = {max(ks)}")
    if (n_relevant <= 0).any():
        raise ValueError("every user passed in needs at least one relevant item")
    hits = hits.to(torch.float64)
    n_rel = n_relevant.to(torch.float64)
    disc = discounts(max(ks), hits.device)
    cum_hits = hits.cumsum(1)
    cum_dcg = (hits * disc).cumsum(1)
    ideal_cum = disc.cumsum(0)
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        h = cum_hits[:, k - 1]
        ideal = ideal_cum[(n_rel.clamp(max=k) - 1).long()]
        out[f"recall@{k}"] = h / n_rel
        out[f"ndcg@{k}"] = cum_dcg[:, k - 1] / ideal
        out[f"precision@{k}"] = h / k
        out[f"hit@{k}"] = (h > 0).to(torch.float64)
    return out


def metric_names(ks: list[int] | tuple[int, ...]) -> list[str]:
    return [f"{m}@{k}" for m in METRICS for k in ks]
