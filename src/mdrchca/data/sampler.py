"""Vectorised BPR triple sampler: every training pair once per epoch, with a uniform negative item."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from mdrchca.errors import DataError


class BPRSampler:
    """Yields shuffled batches of (user, positive item, negative item).

    Each epoch visits every training pair once in a random order. Negatives are drawn uniformly from the
    items the user has *not* interacted with in training (within ``negative_pool`` when given, e.g. the
    training items of an item cold-start split): draws that hit a training item are redrawn, all at once,
    until none is left (membership is a binary search in the sorted pair keys ``user * n_items + item``,
    so no Python loop over users).
    """

    def __init__(
        self, train_pairs: np.ndarray, n_items: int, seed: int = 0, negative_pool: np.ndarray | None = None
    ) -> None:
        self.pairs = np.asarray(train_pairs, dtype=np.int64)
        self.n_items = int(n_items)
        self.pool = None if negative_pool is None else np.asarray(negative_pool, dtype=np.int64)
        self.keys = np.unique(self.pairs[:, 0] * self.n_items + self.pairs[:, 1])
        counts = np.bincount(self.pairs[:, 0])
        if counts.size and counts.max() >= (self.n_items if self.pool is None else len(self.pool)):
            user = int(np.argmax(counts))
            raise DataError(f"user {user} has interacted with every item in training; no negative item can be sampled")
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.pairs)

    def n_batches(self, batch_size: int) -> int:
        return -(-len(self.pairs) // batch_size)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Whether each (user, item) is a training interaction."""
        keys = users * self.n_items + items
        where = np.searchsorted(self.keys, keys)
        where = np.minimum(where, len(self.keys) - 1)
        return self.keys[where] == keys

    def _draw(self, size: int) -> np.ndarray:
        if self.pool is None:
            return self.rng.integers(0, self.n_items, size=size)
        return self.pool[self.rng.integers(0, len(self.pool), size=size)]

    def sample_negatives(self, users: np.ndarray) -> np.ndarray:
        negatives = self._draw(len(users))
        redo = np.flatnonzero(self.is_positive(users, negatives))
        while redo.size:
            negatives[redo] = self._draw(redo.size)
            redo = redo[self.is_positive(users[redo], negatives[redo])]
        return negatives

    def epoch(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """One shuffled pass over the training pairs."""
        order = self.rng.permutation(len(self.pairs))
        users_all = self.pairs[order, 0]
        items_all = self.pairs[order, 1]
        negatives_all = self.sample_negatives(users_all)
        for start in range(0, len(order), batch_size):
            stop = start + batch_size
            yield (
                torch.from_numpy(users_all[start:stop]),
                torch.from_numpy(items_all[start:stop]),
                torch.from_numpy(negatives_all[start:stop]),
            )

    def state_dict(self) -> dict:
        return {"bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["bit_generator"]
