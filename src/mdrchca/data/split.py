"""Train / valid / test splits: per-user random (MMRec's 8:1:1, vectorised over all users) and item
cold-start (held-out items never seen in training)."""

from __future__ import annotations

import numpy as np

TRAIN, VALID, TEST = 0, 1, 2


def split_counts(n: np.ndarray, ratios: tuple[float, float, float] | list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Number of valid and test interactions for users with ``n`` interactions each.

    Users with at least 10 interactions get ``floor(n * ratio)`` valid and test items (at least one each);
    users with 3 to 9 get one valid and one test item (``n-2/1/1``, as MMRec); users with 1 or 2 keep
    everything in training.
    """
    n = np.asarray(n, dtype=np.int64)
    _, r_valid, r_test = ratios
    n_valid = np.where(n >= 10, np.maximum(1, np.floor(n * r_valid + 1e-9)), np.where(n >= 3, 1, 0)).astype(np.int64)
    n_test = np.where(n >= 10, np.maximum(1, np.floor(n * r_test + 1e-9)), np.where(n >= 3, 1, 0)).astype(np.int64)
    return n_valid, n_test


def _shuffled_within_users(users: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The interactions grouped by user in a random order inside each group (drawn with ``seed``): the
    ``order`` that sorts them so, each group's size ``counts`` and each sorted interaction's ``position``
    (0, 1, ...) inside its group."""
    users = np.asarray(users, dtype=np.int64)
    keys = np.random.default_rng(seed).random(len(users))
    order = np.lexsort((keys, users))
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_users)) + 1]
    counts = np.diff(np.r_[starts, len(users)])
    return order, counts, np.arange(len(users)) - np.repeat(starts, counts)


def random_split(
    users: np.ndarray, ratios: tuple[float, float, float] | list[float] = (0.8, 0.1, 0.1), seed: int = 999
) -> np.ndarray:
    """Assign a label 0/1/2 (train/valid/test) to each interaction, shuffling within each user.

    Deterministic for a given ``seed`` and input order. Returns an int8 array aligned with ``users``.
    """
    if abs(sum(ratios) - 1.0) > 1e-6 or len(ratios) != 3 or min(ratios) < 0:
        raise ValueError(f"split ratios must be three non-negative shares summing to 1, got {ratios}")
    order, counts, position = _shuffled_within_users(users, seed)
    n_valid, n_test = split_counts(counts, ratios)
    n_each = np.repeat(counts, counts)
    test_from = n_each - np.repeat(n_test, counts)
    valid_from = test_from - np.repeat(n_valid, counts)
    labels_sorted = np.where(position >= test_from, TEST, np.where(position >= valid_from, VALID, TRAIN))
    labels = np.empty(len(users), dtype=np.int8)
    labels[order] = labels_sorted
    return labels


def cold_item_split(
    items: np.ndarray, ratios: tuple[float, float, float] | list[float] = (0.8, 0.1, 0.1), seed: int = 999
) -> np.ndarray:
    """Item cold-start split: the *items* are divided train / valid / test by ``ratios``, and every
    interaction goes where its item went, so no validation or test item is ever seen in training.

    Deterministic for a given ``seed`` and set of item ids; each held-out share gets at least one item.
    Returns an int8 label per interaction, aligned with ``items``.
    """
    if abs(sum(ratios) - 1.0) > 1e-6 or len(ratios) != 3 or min(ratios) < 0:
        raise ValueError(f"split ratios must be three non-negative shares summing to 1, got {ratios}")
    items = np.asarray(items, dtype=np.int64)
    unique = np.unique(items)
    if len(unique) < 3:
        raise ValueError(f"a cold-item split needs at least 3 distinct items, got {len(unique)}")
    order = np.random.default_rng(seed).permutation(unique)
    n_valid = max(1, int(np.floor(len(unique) * ratios[1] + 1e-9)))
    n_test = max(1, int(np.floor(len(unique) * ratios[2] + 1e-9)))
    item_label = np.full(int(unique.max()) + 1, TRAIN, dtype=np.int8)
    item_label[order[len(order) - n_test :]] = TEST
    item_label[order[len(order) - n_test - n_valid : len(order) - n_test]] = VALID
    return item_label[items]


def thin_training(train: np.ndarray, share: float, minimum: int = 3, seed: int = 0) -> np.ndarray:
    """A sparser training set: each user keeps a random ``share`` of their training pairs (rounded), at least
    ``minimum`` (all of them when they have fewer). ``train [n, 2]`` holds (user, item) rows; the kept rows
    are returned in their original order. Deterministic for a given ``seed`` and input."""
    order, counts, position = _shuffled_within_users(train[:, 0], seed)
    keep = np.minimum(counts, np.maximum(minimum, np.floor(counts * share + 0.5).astype(np.int64)))
    kept = np.sort(order[position < np.repeat(keep, counts)])
    return train[kept]
