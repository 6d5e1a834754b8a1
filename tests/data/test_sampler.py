import numpy as np
import pytest

from mdrchca.data.sampler import BPRSampler
from mdrchca.errors import DataError


def _pairs() -> np.ndarray:
    rng = np.random.default_rng(0)
    pairs = {(int(u), int(i)) for u, i in zip(rng.integers(0, 30, 400), rng.integers(0, 25, 400), strict=True)}
    return np.array(sorted(pairs))


def test_each_pair_once_and_negatives_are_never_positives() -> None:
    pairs = _pairs()
    sampler = BPRSampler(pairs, n_items=25, seed=1)
    batches = [(u.numpy(), p.numpy(), n.numpy()) for u, p, n in sampler.epoch(64)]
    users, pos, neg = (np.concatenate(x) for x in zip(*batches, strict=True))
    assert sorted(zip(users, pos, strict=True)) == sorted(map(tuple, pairs))
    positives = set(map(tuple, pairs))
    assert not any((u, n) in positives for u, n in zip(users, neg, strict=True))
    assert neg.min() >= 0 and neg.max() < 25


def test_negatives_cover_the_non_interacted_items() -> None:
    pairs = np.array([[0, 0], [0, 1]])
    sampler = BPRSampler(pairs, n_items=4, seed=0)
    drawn = sampler.sample_negatives(np.zeros(2000, dtype=np.int64))
    counts = np.bincount(drawn, minlength=4)
    assert counts[0] == counts[1] == 0
    assert abs(counts[2] - counts[3]) < 200  # uniform over {2, 3}


def test_sampler_is_deterministic_and_resumable() -> None:
    pairs = _pairs()
    a = BPRSampler(pairs, 25, seed=4)
    b = BPRSampler(pairs, 25, seed=4)
    first_a = [t.numpy().copy() for batch in a.epoch(50) for t in batch]
    state = b.state_dict()
    first_b = [t.numpy().copy() for batch in b.epoch(50) for t in batch]
    assert all(np.array_equal(x, y) for x, y in zip(first_a, first_b, strict=True))
    b.load_state_dict(state)
    again = [t.numpy().copy() for batch in b.epoch(50) for t in batch]
    assert all(np.array_equal(x, y) for x, y in zip(first_a, again, strict=True))


def test_user_with_every_item() -> None:
    with pytest.raises(DataError, match="every item"):
        BPRSampler(np.array([[0, 0], [0, 1]]), n_items=2)


def test_negatives_stay_in_the_pool() -> None:
    pairs = np.array([[u, i] for u in range(5) for i in (u, u + 1)])
    pool = np.array([0, 1, 2, 3, 4, 5])  # items 6..19 are held out (e.g. a cold-start split's new items)
    sampler = BPRSampler(pairs, n_items=20, seed=2, negative_pool=pool)
    negatives = sampler.sample_negatives(np.repeat(np.arange(5), 200))
    assert set(negatives.tolist()) <= set(pool.tolist())
    assert not sampler.is_positive(np.repeat(np.arange(5), 200), negatives).any()
    assert len(set(negatives.tolist())) == 6  # every pool item is drawn for someone
