"""Metrics by user activity and by item popularity: where does content help?"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mdrchca.data.dataset import RecDataset
from mdrchca.evaluation.evaluator import Evaluator, rank_items

USER_BUCKETS = ((1, 5), (6, 10), (11, 20), (21, 50), (51, 10**9))
ITEM_BUCKETS = ((0, 0), (1, 5), (6, 20), (21, 10**9))


def _label(low: int, high: int) -> str:
    return f"{low}+" if high >= 10**9 else (f"{low}" if low == high else f"{low}-{high}")


def by_user_activity(model: torch.nn.Module, dataset: RecDataset, split: str = "test", k: int = 20) -> pd.DataFrame:
    """Recall@k and NDCG@k averaged within buckets of users' training interaction counts."""
    result = Evaluator(dataset, (k,)).evaluate(model, split, per_user=True)
    users, per_user = result["_users"], result["_per_user"]
    activity = np.diff(dataset.matrix("train").indptr)[users]
    rows = []
    for low, high in USER_BUCKETS:
        inside = (activity >= low) & (activity <= high)
        if inside.any():
            rows.append(
                {
                    "train interactions": _label(low, high),
                    "users": int(inside.sum()),
                    f"recall@{k}": float(per_user[f"recall@{k}"][inside].mean()),
                    f"ndcg@{k}": float(per_user[f"ndcg@{k}"][inside].mean()),
                }
            )
    return pd.DataFrame(rows)


def by_item_popularity(model: torch.nn.Module, dataset: RecDataset, split: str = "test", k: int = 20) -> pd.DataFrame:
    """Share of the split's (user, item) pairs found in the user's top k, by the item's training count
    (0 = never seen in training: only content can place it)."""
    users = dataset.eval_users(split)
    top, _ = rank_items(
        model, users, k, dataset.matrix("train"), with_scores=False, candidates=dataset.candidate_items(split)
    )
    found = set(zip(np.repeat(users, k).tolist(), top.numpy().ravel().tolist(), strict=True))
    pairs = getattr(dataset, split)
    popularity = np.diff(dataset.matrix("train").tocsc().indptr)[pairs[:, 1]]
    hit = np.array([(u, i) in found for u, i in pairs.tolist()])
    keep = np.isin(pairs[:, 0], users)
    rows = []
    for low, high in ITEM_BUCKETS:
        inside = keep & (popularity >= low) & (popularity <= high)
        if inside.any():
            rows.append(
                {
                    "item train interactions": _label(low, high),
                    "pairs": int(inside.sum()),
                    f"hit@{k}": float(hit[inside].mean()),
                }
            )
    return pd.DataFrame(rows)
