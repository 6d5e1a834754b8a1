import math

import numpy as np
import pytest
import torch
from torch import nn

from mdrchca.data.dataset import RecDataset
from mdrchca.evaluation import Evaluator, per_user_metrics

LOG3 = math.log2(3)


class FixedScores(nn.Module):
    """A 'model' whose scores are a given matrix (for hand-computed metric cases)."""

    def __init__(self, scores: np.ndarray) -> None:
        super().__init__()
        self.scores = torch.tensor(scores, dtype=torch.float32)
        self.dummy = nn.Parameter(torch.zeros(1))

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.scores[users].clone()


def _dataset() -> RecDataset:
    # user 0: train {0}, valid {4}, test {1, 2};  user 1: train {2}, valid {3}, test {5};
    # user 2: train {3}, valid {4}, no test item (left out of the test average).
    return RecDataset(
        name="hand",
        n_users=3,
        n_items=6,
        train=np.array([[0, 0], [1, 2], [2, 3]]),
        valid=np.array([[0, 4], [1, 3], [2, 4]]),
        test=np.array([[0, 1], [0, 2], [1, 5]]),
    )


SCORES = np.array(
    [
        [10, 5, 1, 5, 7, 0],  # item 0 masked (train); item 4 is a *valid* item and stays; 1 and 3 tie
        [0.1, 0, 3, 0, 0.9, 0.5],  # item 2 masked
        [0, 0, 0, 0, 0, 0],
    ]
)


def test_hand_computed_full_ranking() -> None:
    result = Evaluator(_dataset(), topk=[1, 2]).evaluate(FixedScores(SCORES), "test")
    # user 0 top-2 = [4, 1] (tie 1 vs 3 broken to the lower index) -> hits [0, 1], 2 relevant
    # user 1 top-2 = [4, 5] -> hits [0, 1], 1 relevant (fewer than K)
    ndcg_u0 = (1 / LOG3) / (1 + 1 / LOG3)
    ndcg_u1 = (1 / LOG3) / 1
    assert result["recall@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert result["precision@2"] == pytest.approx(0.5)
    assert result["ndcg@2"] == pytest.approx((ndcg_u0 + ndcg_u1) / 2)
    assert result["hit@2"] == pytest.approx(1.0)
    assert result["recall@1"] == result["ndcg@1"] == result["hit@1"] == 0.0


def test_validation_masks_only_training_items() -> None:
    result = Evaluator(_dataset(), topk=[1]).evaluate(FixedScores(SCORES), "valid", per_user=True)
    # all three users have a valid item; user 0's top-1 is item 4 (its valid item) -> hit
    assert list(result["_users"]) == [0, 1, 2]
    np.testing.assert_allclose(result["_per_user"]["recall@1"], [1.0, 0.0, 0.0])
    # user 1: item 2 masked, item 4 (0.9) first, not its valid item 3; user 2 all-zero scores:
    # ties everywhere, item 0 first by index (item 3 masked), its valid item 4 is not first.


def test_per_user_metrics_by_hand() -> None:
    hits = torch.tensor([[True, False, True], [False, False, False], [False, True, False]])
    n_rel = torch.tensor([2, 1, 4])
    m = per_user_metrics(hits, n_rel, [3])
    idcg_2 = 1 + 1 / LOG3
    idcg_3 = 1 + 1 / LOG3 + 0.5
    np.testing.assert_allclose(m["recall@3"].numpy(), [1.0, 0.0, 0.25])
    np.testing.assert_allclose(m["precision@3"].numpy(), [2 / 3, 0.0, 1 / 3])
    np.testing.assert_allclose(m["ndcg@3"].numpy(), [(1 + 0.5) / idcg_2, 0.0, (1 / LOG3) / idcg_3])
    np.testing.assert_allclose(m["hit@3"].numpy(), [1.0, 0.0, 1.0])


def test_perfect_ranking_scores_one() -> None:
    hits = torch.tensor([[True, True, False, False]])
    m = per_user_metrics(hits, torch.tensor([2]), [2, 4])
    assert m["ndcg@2"].item() == pytest.approx(1.0)
    assert m["ndcg@4"].item() == pytest.approx(1.0)
    assert m["recall@2"].item() == 1.0


def test_user_without_relevant_items_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one relevant"):
        per_user_metrics(torch.zeros(1, 3, dtype=torch.bool), torch.tensor([0]), [3])


def test_cold_item_split_ranks_each_split_among_its_own_items() -> None:
    data = RecDataset(
        name="cold",
        n_users=2,
        n_items=6,
        train=np.array([[0, 0], [0, 1], [1, 2]]),
        valid=np.array([[0, 3]]),
        test=np.array([[0, 4], [1, 5]]),
        split_mode="cold_items",
    )
    scores = np.array([[9, 8, 7, 6, 1, 2], [0, 0, 9, 5, 0.5, 1]])
    result = Evaluator(data, topk=[1, 2]).evaluate(FixedScores(scores), "test")
    # candidates are the test items {4, 5}: user 0 ranks [5, 4] (hit at 2), user 1 ranks [5, 4] (hit at 1)
    assert result["recall@1"] == pytest.approx(0.5)
    assert result["recall@2"] == pytest.approx(1.0)
    data.split_mode = "user"  # over all items, items 2 and 3 would take the top for user 0
    assert Evaluator(data, topk=[2]).evaluate(FixedScores(scores), "test")["recall@2"] == pytest.approx(0.5)


def test_non_finite_scores_stop_the_ranking_with_one_line() -> None:
    """A diverged model (some user's scores NaN) is refused, not ranked: a NaN would sort anywhere."""
    import numpy as np
    import pytest
    import torch

    from mdrchca.evaluation.evaluator import NonFiniteScoresError, rank_items

    class Diverged(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def score_all(self, users: torch.Tensor) -> torch.Tensor:
            scores = torch.ones(len(users), 5)
            scores[users == 2] = torch.nan
            return scores

    assert rank_items(Diverged(), np.array([0, 1]), 3, None)[0].shape == (2, 3)
    with pytest.raises(NonFiniteScoresError, match=r"1 of 3 users \(first: userID 2\).*NaN or infinite"):
        rank_items(Diverged(), np.array([0, 1, 2]), 3, None)
