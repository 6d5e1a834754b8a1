"""Full-ranking evaluation over all items, batched over users (MMRec's protocol).

For each evaluated user every item is scored; the user's *training* items are masked out (set to
``-inf``); when testing, validation items are *not* masked (MMRec). The top ``max(K)`` items are
compared with the user's items in the evaluated split. Users with no item in that split, or with no
training item, are left out of the average. With an item cold-start split (``split_mode=cold_items``) a
split is ranked among its own items only, which no model saw in training.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from mdrchca.data.dataset import RecDataset
from mdrchca.errors import MdrchcaError
from mdrchca.evaluation.metrics import per_user_metrics
from mdrchca.evaluation.ranking import topk_items


class NonFiniteScoresError(MdrchcaError):
    """A model scored some item NaN or infinite: its ranking means nothing."""


CPU_SCORE_BLOCK = 6_000_000
"""Scores (users x items, 24 MB of float32) ranked per batch on the CPU at most: a block that outgrows the cache
while it is masked and its top-k taken ranks slower. At Amazon Clothing's size (23,033 items) batches of 256
users instead of 4,096 made a validation 1.5x faster (``benchmarks/bench_evaluation.py --block``,
docs/benchmarks.md); ML-100K's and the bundled catalogue's batches stay about as they were. The ranking does
not depend on the batch."""


@torch.no_grad()
def rank_items(
    model: torch.nn.Module,
    users: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None,
    batch_size: int = 4096,
    with_scores: bool = True,
    candidates: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Top-k items (and, ``with_scores``, their scores) for ``users``, ``exclude``'s items set to ``-inf``;
    with ``candidates`` (a boolean item mask) every other item is set to ``-inf`` too.

    The model's item representations are computed once (eval mode caches them), then users are
    scored in batches of ``batch_size``; on the CPU, of at most :data:`CPU_SCORE_BLOCK` scores.
    """
    device = next(model.parameters()).device
    n_items = exclude.shape[1] if exclude is not None else getattr(model, "n_items", 0)
    if device.type == "cpu" and n_items > 0:
        batch_size = max(1, min(batch_size, CPU_SCORE_BLOCK // n_items))
    model.eval()
    others = None if candidates is None else torch.as_tensor(~np.asarray(candidates, dtype=bool), device=device)
    top, top_scores = [], []
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = model.score_all(torch.as_tensor(batch, device=device)).float()
        broken = ~torch.isfinite(scores).all(dim=1)
        if broken.any():
            raise NonFiniteScoresError(
                f"{int(broken.sum())} of {len(batch)} users (first: userID {int(batch[int(broken.nonzero()[0])])}) "
                "get scores that are NaN or infinite; the model has diverged: lower learning_rate, or check the "
                "features for extreme values"
            )
        if exclude is not None:
            sub = exclude[batch]
            rows = torch.as_tensor(np.repeat(np.arange(len(batch)), np.diff(sub.indptr)), device=device)
            scores[rows, torch.as_tensor(sub.indices, device=device, dtype=torch.long)] = -torch.inf
        if others is not None:
            scores[:, others] = -torch.inf
        items = topk_items(scores, k)
        top.append(items.cpu())
        if with_scores:
            top_scores.append(scores.gather(1, items).cpu())
    if not top:
        return torch.empty(0, k, dtype=torch.long), torch.empty(0, k)
    return torch.cat(top), torch.cat(top_scores) if with_scores else None


class Evaluator:
    """Computes Recall, NDCG, Precision and HitRate at each K for a model on one split."""

    def __init__(
        self, dataset: RecDataset, topk: list[int] | tuple[int, ...] = (10, 20, 50), batch_size: int = 4096
    ) -> None:
        self.dataset = dataset
        self.topk = sorted(set(int(k) for k in topk))
        self.batch_size = batch_size
        self._train = dataset.matrix("train")

    def _relevant_keys(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Sorted keys ``user * N + item`` of the split and each user's relevant count."""
        matrix = self.dataset.matrix(split)
        coo = matrix.tocoo()
        keys = np.sort(coo.row.astype(np.int64) * self.dataset.n_items + coo.col)
        return keys, np.diff(matrix.indptr)

    def rank(self, model: torch.nn.Module, users: np.ndarray, k: int, split: str = "valid") -> torch.Tensor:
        """Top-k item indices ``[len(users), k]`` for ``users``, training items masked (and, with an item
        cold-start split, every item outside ``split``)."""
        candidates = self.dataset.candidate_items(split)
        return rank_items(model, users, k, self._train, self.batch_size, with_scores=False, candidates=candidates)[0]

    @torch.no_grad()
    def evaluate(
        self,
        model: torch.nn.Module,
        split: str = "valid",
        per_user: bool = False,
        gather: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
        share: tuple[int, int] = (0, 1),
    ) -> dict:
        """Mean of each metric over the split's users; with ``per_user``, also the per-user arrays.

        On several processes, ``share = (rank, world_size)`` ranks the users ``rank, rank + world_size, ...``
        here and ``gather(rows, total)`` returns every process's rows ``[total, n_metrics]`` in user order
        (:func:`~mdrchca.training.distributed.gather_strided_rows`), so the means are the one-process numbers.
        """
        users = self.dataset.eval_users(split)
        rank, world_size = share
        values = self.per_user_values(model, users[rank::world_size], split)
        if gather is not None:
            names = list(values)
            rows = gather(torch.stack([values[name] for name in names], dim=1), len(users)).cpu()
            values = {name: rows[:, j] for j, name in enumerate(names)}
        result: dict = {name: float(v.mean()) for name, v in values.items()}
        if per_user:
            result["_users"] = users
            result["_per_user"] = {name: v.numpy() for name, v in values.items()}
        return result

    @torch.no_grad()
    def per_user_values(self, model: torch.nn.Module, users: np.ndarray, split: str = "valid") -> dict:
        """Each metric of each of ``users`` on ``split``: ``{name: [len(users)] float tensor}``."""
        keys, n_relevant = self._relevant_keys(split)
        top = self.rank(model, users, max(self.topk), split).numpy()
        flat = users[:, None].astype(np.int64) * self.dataset.n_items + top
        where = np.minimum(np.searchsorted(keys, flat), len(keys) - 1)
        hits = torch.from_numpy(keys[where] == flat)
        return per_user_metrics(hits, torch.from_numpy(n_relevant[users]), self.topk)
