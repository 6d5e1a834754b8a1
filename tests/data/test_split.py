import numpy as np
import pytest

from mdrchca.data.split import cold_item_split, random_split, split_counts, thin_training


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


def test_cold_item_split_holds_out_whole_items() -> None:
    rng = np.random.default_rng(0)
    items = rng.integers(0, 50, size=2000)
    labels = cold_item_split(items, (0.8, 0.1, 0.1), seed=7)
    assert np.array_equal(labels, cold_item_split(items, (0.8, 0.1, 0.1), seed=7))
    per_item = {int(i): set(labels[items == i].tolist()) for i in np.unique(items)}
    assert all(len(s) == 1 for s in per_item.values())  # every interaction of an item goes the same way
    counts = np.bincount([s.pop() for s in per_item.values()], minlength=3)
    assert counts.tolist() == [40, 5, 5]  # floor(50 * 0.1) items held out for valid and for test
    assert not np.array_equal(labels, cold_item_split(items, (0.8, 0.1, 0.1), seed=8))


def test_cold_item_split_keeps_one_item_per_share_and_checks_input() -> None:
    labels = cold_item_split(np.array([0, 1, 2, 2]), (0.9, 0.05, 0.05), seed=1)
    assert sorted(set(labels[[0, 1, 2]].tolist())) == [0, 1, 2]
    with pytest.raises(ValueError, match="at least 3 distinct items"):
        cold_item_split(np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="summing to 1"):
        cold_item_split(np.arange(10), (0.5, 0.1, 0.1))


def test_thin_training_keeps_a_share_of_each_user_with_a_floor() -> None:
    # user 0: 40 pairs -> 15% = 6; user 1: 10 pairs -> 1.5 rounds to 2, floor 3 -> 3; user 2: 2 pairs -> both
    train = np.array([(0, i) for i in range(40)] + [(1, i) for i in range(10)] + [(2, 0), (2, 1)])
    kept = thin_training(train, 0.15, minimum=3, seed=5)
    users, counts = np.unique(kept[:, 0], return_counts=True)
    assert users.tolist() == [0, 1, 2] and counts.tolist() == [6, 3, 2]
    assert {tuple(r) for r in kept} <= {tuple(r) for r in train}  # a subset, no duplicates made
    assert len({tuple(r) for r in kept}) == len(kept)
    assert np.array_equal(kept, thin_training(train, 0.15, minimum=3, seed=5))
    assert not np.array_equal(kept, thin_training(train, 0.15, minimum=3, seed=6))
    assert np.array_equal(thin_training(train, 1.0, seed=1), train)


def test_thinned_training_is_applied_at_load_and_kept_by_a_saved_split(tmp_path) -> None:
    from mdrchca.config import DataConfig
    from mdrchca.data.dataset import load_dataset

    rng = np.random.default_rng(0)
    rows = sorted({(u, int(i)) for u in range(30) for i in rng.choice(50, 20, replace=False)})
    dataset, elsewhere = tmp_path / "toy", tmp_path / "splits"  # the saved split outside the dataset's folder
    dataset.mkdir()
    elsewhere.mkdir()
    (dataset / "toy.inter").write_text("userID\titemID\n" + "".join(f"{u}\t{i}\n" for u, i in rows))
    full = load_dataset(dataset, DataConfig())
    sparse = load_dataset(dataset, DataConfig(train_keep=0.15, train_keep_seed=3))
    assert np.array_equal(sparse.valid, full.valid) and np.array_equal(sparse.test, full.test)
    assert np.all(np.unique(sparse.train[:, 0], return_counts=True)[1] == 3)  # 16 training pairs each -> 2, floor 3
    sparse.save_split(elsewhere / "thinned-split.inter")
    again = load_dataset(
        dataset,
        DataConfig(train_keep=0.15, train_keep_seed=3, split_file=str(elsewhere / "thinned-split.inter")),
    )
    assert np.array_equal(np.sort(again.train, axis=0), np.sort(sparse.train, axis=0))  # not thinned a second time
