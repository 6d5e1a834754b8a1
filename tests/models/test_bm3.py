import torch

from mdrchca.config import Config
from mdrchca.models.bm3 import negative_cosine
from mdrchca.training import build_model
from tests.models.mdrchca.test_model import _batch, _dataset


def test_negative_cosine_by_hand_and_stop_gradient() -> None:
    online = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    target = torch.tensor([[1.0, 1.0], [0.0, -3.0]], requires_grad=True)
    loss = negative_cosine(online, target)
    assert abs(loss.item() - (1 - (2**-0.5 - 1) / 2)) < 1e-6
    loss.backward()
    assert online.grad is not None and target.grad is None


def test_scores_use_the_predictor_and_negatives_are_ignored() -> None:
    data = _dataset()
    model = build_model(Config.load("bm3", overrides=["embedding_size=8", "dropout=0.0"]), data)
    users, items = model.embeddings()
    online_u, online_i = model._online()
    torch.testing.assert_close(users, model.predictor(online_u))
    batch = _batch(data)
    torch.manual_seed(0)
    a = model.loss(batch)
    torch.manual_seed(0)
    b = model.loss(batch._replace(neg_items=torch.zeros_like(batch.neg_items)))
    assert a.item() == b.item()
    a.backward()
    for projection in model.projections.values():
        assert projection.weight.grad.abs().sum() > 0


def test_features_are_fine_tuned_unless_frozen() -> None:
    data = _dataset(item_level=True)
    for train_features in (True, False):
        model = build_model(
            Config.load("bm3", overrides=["embedding_size=8", f"train_features={train_features}"]), data
        )
        model.loss(_batch(data)).backward()
        grads = [getattr(model, f"feat_{m}").grad for m in data.features]
        if train_features:
            assert all(g is not None and g.abs().sum() > 0 for g in grads)
        else:
            assert all(g is None for g in grads)
