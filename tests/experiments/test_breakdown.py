import numpy as np
import pytest

from mdrchca.experiments.audit import roc_auc
from mdrchca.experiments.breakdown import by_item_popularity, by_user_activity
from tests.evaluation.test_metrics import SCORES, FixedScores, _dataset


def test_item_popularity_breakdown_by_hand() -> None:
    # top-2: user 0 -> [4, 1], user 1 -> [4, 5]; test pairs (0,1) hit, (0,2) miss, (1,5) hit
    # training counts: item 1 -> 0, item 2 -> 1, item 5 -> 0
    frame = by_item_popularity(FixedScores(SCORES), _dataset(), k=2)
    assert frame.to_dict("records") == [
        {"item train interactions": "0", "pairs": 2, "hit@2": 1.0},
        {"item train interactions": "1-5", "pairs": 1, "hit@2": 0.0},
    ]


def test_user_activity_breakdown_by_hand() -> None:
    frame = by_user_activity(FixedScores(SCORES), _dataset(), k=2)
    # both test users have one training item: one bucket with the mean of (0.5, 1.0)
    assert frame["users"].tolist() == [2]
    assert frame["recall@2"].iloc[0] == pytest.approx(0.75)


def test_roc_auc_by_hand() -> None:
    assert roc_auc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([True, True, False, False])) == 1.0
    assert roc_auc(np.array([0.1, 0.8, 0.9, 0.2]), np.array([True, True, False, False])) == 0.25
    assert roc_auc(np.array([0.5, 0.5]), np.array([True, False])) == 0.5
