"""Contract tests over every registered model (as implicit's and RecBole's suites): a saved run loads to the
same scores, the same seed gives the same losses and metrics, a recommendation never holds a seen item, and on
a catalogue with a planted answer every model beats item popularity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import mdrchca
from mdrchca.config import Config
from mdrchca.data import load_dataset
from mdrchca.evaluation.evaluator import Evaluator
from mdrchca.models import MODEL_REGISTRY

EPOCHS = 25
OPTIONS = [
    f"epochs={EPOCHS}",
    "patience=100",
    "batch_size=256",
    "learning_rate=0.01",
    "embedding_size=32",
    "eval_batch_size=256",
    "num_threads=1",
    "topk=[10]",
    "valid_metric=recall@10",
]


@dataclass
class TrainedTwice:
    """One model trained twice with the same seed: once into a run folder, once in memory."""

    saved: mdrchca.Run
    in_memory: mdrchca.Run


@pytest.fixture(scope="module", params=sorted(MODEL_REGISTRY))
def trained(request: pytest.FixtureRequest, block_catalogue: Path, tmp_path_factory: pytest.TempPathFactory):
    config = Config.load(request.param, overrides=OPTIONS)
    config.data.data_path = str(block_catalogue)
    config.train.device = "cpu"
    out = tmp_path_factory.mktemp(f"contract-{request.param}") / "run"
    saved = mdrchca.train(config, out=out)
    again = Config.load(request.param, overrides=OPTIONS)
    again.data.data_path = str(block_catalogue)
    again.train.device = "cpu"
    return TrainedTwice(saved, mdrchca.train(again))


def test_the_same_seed_gives_the_same_losses_and_metrics(trained: TrainedTwice) -> None:
    first, second = trained.saved, trained.in_memory
    assert [row["loss"] for row in first.history] == [row["loss"] for row in second.history]
    assert first.metrics["valid"] == second.metrics["valid"] and first.metrics["test"] == second.metrics["test"]


def test_a_saved_run_loads_to_the_same_scores(trained: TrainedTwice) -> None:
    assert trained.saved.path is not None
    loaded = mdrchca.load_run(trained.saved.path)
    users = torch.arange(loaded.dataset.n_users)
    with torch.no_grad():
        assert torch.equal(trained.saved.model.eval().score_all(users), loaded.model.eval().score_all(users))
    assert loaded.evaluate()["test"] == trained.saved.metrics["test"]


def test_a_recommendation_never_holds_a_seen_item(trained: TrainedTwice) -> None:
    run = trained.saved
    frame = run.recommend(k=20)
    dataset = run.dataset
    seen = (dataset.matrix("train") + dataset.matrix("valid") + dataset.matrix("test")).tocsr()
    assert len(frame) == 20 * len(np.flatnonzero(np.diff(dataset.matrix("train").indptr)))
    assert not np.asarray(seen[frame.userID.to_numpy(), frame.itemID.to_numpy()]).any()


class Popularity(torch.nn.Module):
    """Scores every item by its training interactions, the same for every user."""

    def __init__(self, counts: np.ndarray) -> None:
        super().__init__()
        self.counts = torch.nn.Parameter(torch.as_tensor(counts, dtype=torch.float32), requires_grad=False)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.counts.expand(len(users), -1).clone()


def test_every_model_beats_popularity_where_the_answer_is_planted(trained: TrainedTwice, block_catalogue: Path) -> None:
    dataset = load_dataset(block_catalogue)
    counts = np.asarray(dataset.matrix("train").sum(axis=0)).ravel()
    popularity = Evaluator(dataset, [10]).evaluate(Popularity(counts), "test")["recall@10"]
    model = trained.saved.metrics["test"]["recall@10"]
    # measured (session 10): popularity 0.108; the 14 models from 0.425 (FREEDOM) to 0.512 (MDR-CHCA). A model
    # that learnt the blocks ranks its user's 18 or so unseen block items first: R@10 up to about 10/18
    assert popularity < 0.15
    assert model > 2 * popularity + 0.1, f"{trained.saved.config.model}: R@10 {model:.3f}, popularity {popularity:.3f}"
