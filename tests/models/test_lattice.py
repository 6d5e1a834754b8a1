import torch
from torch.nn import functional as F

from mdrchca.config import Config
from mdrchca.models.components.knn_graph import neighbour_propagate
from mdrchca.training import build_model
from tests.models.components.test_latent_graph import _dense
from tests.models.mdrchca.test_model import _batch, _dataset


def _lattice(**params):
    data = _dataset(item_level=True)
    cfg = Config.load("lattice", overrides=[f"{k}={v}" for k, v in {"embedding_size": 8, "knn_k": 3, **params}.items()])
    torch.manual_seed(0)
    return build_model(cfg, data), data


def test_reference_training_defaults_are_applied_and_overridable() -> None:
    cfg = Config.load("lattice")
    assert cfg.train.learning_rate == 1e-4 and cfg.train.lr_decay == 0.96
    assert Config.load("lattice", overrides=["learning_rate=0.01"]).train.learning_rate == 0.01
    assert Config.load("lightgcn").train.learning_rate == 1e-3


def test_item_graph_is_the_weighted_mix_of_learned_and_frozen_graphs() -> None:
    model, data = _lattice(lambda_coeff=0.3)
    n = data.n_items
    w = torch.softmax(model.modal_weight, 0)
    learned = sum(wm * _dense(*model.graphs.learned(m), n) for wm, m in zip(w, model.graphs.names, strict=True))
    d = learned.sum(1).rsqrt()
    learned = d[:, None] * learned * d[None, :]
    original = sum(wm * _dense(*model.graphs.original(m), n) for wm, m in zip(w, model.graphs.names, strict=True))
    expected = 0.7 * learned + 0.3 * original
    torch.testing.assert_close(_dense(*model.item_graph(), n), expected)


def test_items_add_the_normalised_graph_term() -> None:
    model, data = _lattice(n_layers=2)
    model.eval()
    users, items = model.embeddings()
    indices, values = model.item_graph()
    h = neighbour_propagate(indices, values, neighbour_propagate(indices, values, model.item_embedding))
    from mdrchca.models.components.propagation import collaborative_embeddings

    _, plain = collaborative_embeddings(model.adjacency, model.user_embedding, model.item_embedding, 2)
    torch.testing.assert_close(items - plain, F.normalize(h, dim=1))


def test_graph_gets_gradients_only_at_the_first_step_of_an_epoch() -> None:
    model, data = _lattice()
    model.train()
    model.on_epoch_start(1)
    model.loss(_batch(data)).backward()
    assert model.graphs.projections["text"].weight.grad.abs().sum() > 0
    assert model.modal_weight.grad.abs().sum() > 0
    model.zero_grad()
    model.loss(_batch(data, seed=1)).backward()
    assert (
        model.graphs.projections["text"].weight.grad is None
        or model.graphs.projections["text"].weight.grad.abs().sum() == 0
    )
    assert model.item_embedding.grad.abs().sum() > 0
