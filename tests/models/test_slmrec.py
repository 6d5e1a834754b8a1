import torch

from mdrchca.config import Config
from mdrchca.training import build_model
from tests.models.mdrchca.test_model import _batch, _dataset


def test_views_fusion_and_fac_chain() -> None:
    data = _dataset(item_level=True)
    torch.manual_seed(0)
    model = build_model(Config.load("slmrec", overrides=["embedding_size=8"]), data)
    views = model.views()
    assert len(views) == 1 + len(model.names)
    for users, _ in views[1:]:
        assert users.shape == (data.n_users, 8)
    batch = _batch(data)
    model.fine_and_coarse(views, batch.pos_items).backward()
    assert all(layer.weight.grad.abs().sum() > 0 for layer in model.chain)
    assert all(model.dense[m].weight.grad.abs().sum() > 0 for m in model.names)


def test_slmrec_ignores_negatives() -> None:
    data = _dataset(item_level=True)
    torch.manual_seed(0)
    model = build_model(Config.load("slmrec", overrides=["embedding_size=8"]), data)
    batch = _batch(data)
    other = batch._replace(neg_items=torch.zeros_like(batch.neg_items))
    assert torch.equal(model.loss(batch), model.loss(other))
