import numpy as np
import pytest
import torch

from mdrchca.config import Config
from mdrchca.models.freedom import frozen_item_graph
from mdrchca.training import build_model
from tests.models.mdrchca.test_model import _batch, _dataset


def test_frozen_item_graph_by_hand() -> None:
    # items 0,1 are alike and 2,3 are alike in text; in image 0,2 and 1,3
    text = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    image = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    S = frozen_item_graph({"text": text, "image": image}, k=2, image_weight=0.25).toarray()
    # each modality: self + 1 neighbour, degree 2, so every kept entry is 1/2, then weighted
    expected = np.zeros((4, 4))
    for i, j in [(0, 1), (1, 0), (2, 3), (3, 2)]:
        expected[i, j] += 0.75 * 0.5
    for i, j in [(0, 2), (2, 0), (1, 3), (3, 1)]:
        expected[i, j] += 0.25 * 0.5
    expected[np.arange(4), np.arange(4)] = 0.5  # self loops from both graphs: 0.75/2 + 0.25/2
    np.testing.assert_allclose(S, expected, rtol=1e-6)


def test_weighted_modality_takes_the_image_weight() -> None:
    x = np.random.default_rng(0).normal(size=(6, 3))
    y = np.random.default_rng(1).normal(size=(6, 3))
    both = frozen_item_graph({"text": x, "audio": y}, k=2, image_weight=0.1, weighted="audio").toarray()
    text_only = frozen_item_graph({"text": x}, k=2, image_weight=0.1).toarray()
    audio_only = frozen_item_graph({"audio": y}, k=2, image_weight=0.1).toarray()
    np.testing.assert_allclose(both, 0.9 * text_only + 0.1 * audio_only, rtol=1e-6)


def test_edge_pruning_keeps_the_share_and_only_training_edges() -> None:
    data = _dataset()
    cfg = Config.load("freedom", overrides=["embedding_size=8", "dropout=0.5"])
    torch.manual_seed(0)
    model = build_model(cfg, data)
    model.on_epoch_start(1)
    kept = model.train_adjacency.to_sparse_coo().coalesce().indices()
    users, items = kept[0][kept[0] < data.n_users], kept[1][kept[0] < data.n_users] - data.n_users
    assert len(users) == int(len(data.train) * 0.5)
    train = set(map(tuple, data.train.tolist()))
    assert all((u, i) in train for u, i in zip(users.tolist(), items.tolist(), strict=True))
    loss = model.loss(_batch(data))
    loss.backward()
    assert torch.isfinite(loss) and model.item_embedding.grad.abs().sum() > 0


def test_scoring_adds_the_item_graph_term() -> None:
    data = _dataset()
    model = build_model(Config.load("freedom", overrides=["embedding_size=8"]), data)
    users, items = model.embeddings()
    from mdrchca.models.components.propagation import propagate

    ego = torch.cat([model.user_embedding, model.item_embedding])
    plain = propagate(model.adjacency, ego, 2)[data.n_users :]
    torch.testing.assert_close(items - plain, torch.sparse.mm(model.item_graph, model.item_embedding))


def test_needs_features() -> None:
    from mdrchca.errors import DataError

    data = _dataset()
    data.features.clear()
    with pytest.raises(DataError, match="FREEDOM needs item features"):
        build_model(Config.for_model("freedom"), data)
