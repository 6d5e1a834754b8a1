import torch

from mdrchca.config import Config
from mdrchca.training import build_model
from tests.models.mdrchca.test_model import _batch, _dataset


def test_fusion_is_a_convex_combination_and_contrastive_loss_reaches_the_query() -> None:
    data = _dataset(item_level=True)
    torch.manual_seed(0)
    model = build_model(Config.load("micro", overrides=["embedding_size=8", "knn_k=3"]), data)
    per_modality = model.modality_embeddings(build=True)
    fused = model.fuse(per_modality)
    stacked = torch.stack([per_modality[m] for m in model.graphs.names], 1)
    beta = torch.softmax(model.query(stacked), dim=1).squeeze(-1)
    torch.testing.assert_close(beta.sum(1), torch.ones(data.n_items))
    torch.testing.assert_close(fused, (beta.unsqueeze(-1) * stacked).sum(1))
    model.on_epoch_start(1)
    model.loss(_batch(data)).backward()
    assert model.query[0].weight.grad.abs().sum() > 0
    assert all(model.graphs.projections[m].weight.grad.abs().sum() > 0 for m in model.graphs.names)


def test_micro_defaults_are_the_reference_arguments() -> None:
    cfg = Config.load("micro")
    assert (cfg.train.learning_rate, cfg.train.batch_size, cfg.model_params.loss_ratio) == (5e-4, 1024, 0.03)
