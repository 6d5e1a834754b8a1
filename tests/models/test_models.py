"""Contract tests every registered model passes (RecBole's smoke test over the registry)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from mdrchca.config import Config
from mdrchca.data import load_dataset
from mdrchca.models import MODEL_REGISTRY, Batch
from mdrchca.models.components.propagation import propagate
from mdrchca.training import Trainer, build_model


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_every_model_trains_two_epochs(name: str, small_featured: Path) -> None:
    cfg = Config.load(name, overrides=["epochs=2", "batch_size=512", "learning_rate=0.01", "eval_batch_size=128"])
    cfg.train.device = "cpu"
    data = load_dataset(small_featured, cfg.data)
    result = Trainer(cfg, data, run_dir=None, progress=False).fit()
    assert all(np.isfinite(row["loss"]) for row in result.history)
    # the ranking loss where a model logs it apart: an auxiliary loss over a set of pairs that changes between
    # epochs (MDR-CHCA's screen admits more positives as its thresholds adapt) is not comparable across them
    key = "loss_bpr" if "loss_bpr" in result.history[0] else "loss"
    losses = [row[key] for row in result.history]
    assert losses[1] < losses[0], key
    for split in (result.valid, result.test):
        for key, value in split.items():
            assert 0.0 <= value <= 1.0, key
    assert result.test["recall@50"] > 0.0


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_score_all_matches_loss_scoring_and_shapes(name: str, small_featured: Path) -> None:
    cfg = Config.for_model(name)
    data = load_dataset(small_featured)
    torch.manual_seed(0)
    model = build_model(cfg, data)
    users = torch.tensor([0, 5, 7])
    model.eval()
    scores = model.score_all(users)
    assert scores.shape == (3, data.n_items)
    # cached item representations do not change the answer
    assert torch.equal(scores, model.score_all(users))
    model.train()
    loss = model.loss(Batch(users, torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6])))
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_lightgcn_propagation_matches_dense_math() -> None:
    A = torch.tensor([[0.0, 0.5, 0.0], [0.5, 0.0, 0.25], [0.0, 0.25, 0.0]])
    E = torch.randn(3, 4)
    out = propagate(A.to_sparse(), E, n_layers=2)
    expected = (E + A @ E + A @ A @ E) / 3
    torch.testing.assert_close(out, expected)


def test_lightgcn_zero_layers_is_matrix_factorisation(small_catalogue: Path) -> None:
    data = load_dataset(small_catalogue)
    cfg = Config.load("lightgcn", overrides=["n_layers=0"])
    model = build_model(cfg, data)
    users, items = model.embeddings()
    assert torch.equal(users, model.user_embedding) and torch.equal(items, model.item_embedding)


def test_bpr_loss_gradient_check() -> None:
    from mdrchca.models.base import bpr_loss, embedding_l2

    pos = torch.randn(5, dtype=torch.float64, requires_grad=True)
    neg = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(bpr_loss, (pos, neg))
    e = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: embedding_l2(x, x * 2), (e,))
    # value: -mean log sigmoid(diff) ; l2: sum of squares / (2 B)
    torch.testing.assert_close(
        bpr_loss(torch.tensor([0.0]), torch.tensor([0.0])), torch.tensor(np.log(2.0), dtype=torch.float32)
    )
    torch.testing.assert_close(embedding_l2(torch.ones(2, 3)), torch.tensor(1.5))


BASELINES = sorted(set(MODEL_REGISTRY) - {"bpr", "lightgcn", "mdrchca", "mdrchca_a", "mdrchca_b"})


@pytest.mark.parametrize("modalities", [("text",), ("audio", "image", "text")])
@pytest.mark.parametrize("name", BASELINES)
def test_baselines_take_any_number_of_modalities(name: str, modalities: tuple[str, ...]) -> None:
    from mdrchca.data.features import ModalityFeatures
    from tests.models.mdrchca.test_model import _batch, _dataset

    data = _dataset(item_level=True)
    rng = np.random.default_rng(1)
    data.features.clear()
    for dim, m in zip((5, 7, 3), modalities, strict=False):
        data.features[m] = ModalityFeatures.from_item_vectors(m, torch.from_numpy(rng.normal(size=(data.n_items, dim))))
    cfg = Config.load(name, overrides=["embedding_size=8"])
    torch.manual_seed(0)
    model = build_model(cfg, data)
    model.on_epoch_start(1)
    loss = model.loss(_batch(data))
    loss.backward()
    assert torch.isfinite(loss)
    model.eval()
    assert model.score_all(torch.tensor([0, 1])).shape == (2, data.n_items)


def test_lightgcn_edge_dropout_trains_on_the_pruned_graph_and_scores_on_the_full_one(small_catalogue: Path) -> None:
    from mdrchca.models.base import bpr_loss, embedding_l2
    from mdrchca.models.components.propagation import collaborative_embeddings

    data = load_dataset(small_catalogue)
    torch.manual_seed(0)
    model = build_model(Config.load("lightgcn", overrides=["edge_dropout=0.5"]), data)
    full = model.embeddings()
    model.on_epoch_start(1)
    n_kept = (model.train_adjacency.to_sparse_coo().coalesce().indices()[0] < data.n_users).sum().item()
    assert n_kept == int(len(data.train) * 0.5)
    batch = Batch(torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7, 8]))
    users, items = collaborative_embeddings(model.train_adjacency, model.user_embedding, model.item_embedding, 2)
    u = users[batch.users]
    expected = bpr_loss((u * items[batch.pos_items]).sum(-1), (u * items[batch.neg_items]).sum(-1))
    expected = expected + 1e-4 * embedding_l2(
        model.user_embedding[batch.users], model.item_embedding[batch.pos_items], model.item_embedding[batch.neg_items]
    )
    torch.testing.assert_close(model.loss(batch), expected)
    for before, after in zip(full, model.embeddings(), strict=True):
        assert torch.equal(before, after)  # scoring still sees every training edge
    plain = build_model(Config.load("lightgcn"), data)
    plain.on_epoch_start(1)
    assert plain.train_adjacency is None
    from mdrchca.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'edge_dropout' must be in \[0, 1\), got 1.0"):
        build_model(Config.load("lightgcn", overrides=["edge_dropout=1.0"]), data)
