import numpy as np

from mdrchca.data.split import random_split, split_counts


def test_split_counts_follow_mmrec() -> None:
    n_valid, n_test = split_counts(np.array([1, 2, 3, 5, 9, 10, 25, 100]), (0.8, 0.1, 0.1))
    assert list(n_valid) == [0, 0, 1, 1, 1, 1, 2, 10]
    assert list(n_test) == [0, 0, 1, 1, 1, 1, 2, 10]


def test_random_split_per_user_counts_and_determinism() -> None:
    users = np.repeat(np.arange(4), [3, 10, 20, 2])
    labels = random_split(users, seed=3)
    assert np.array_equal(labels, random_split(users, seed=3))
    for user, (train, valid, test) in enumerate([(1, 1, 1), (8, 1, 1), (16, 2, 2), (2, 0, 0)]):
        mine = labels[users == user]
        assert (np.sum(mine == 0), np.sum(mine == 1), np.sum(mine == 2)) == (train, valid, test)


def test_random_split_shuffles_within_users() -> None:
    users = np.zeros(100, dtype=np.int64)
    seen = {tuple(np.flatnonzero(random_split(users, seed=s) == 2)) for s in range(5)}
    assert len(seen) == 5
