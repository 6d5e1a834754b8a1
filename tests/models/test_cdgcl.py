import torch

from mdrchca.config import Config
from mdrchca.training import build_model
from tests.models.mdrchca.test_model import _batch, _dataset


def _cdgcl(**params):
    data = _dataset(item_level=True)
    torch.manual_seed(0)
    cfg = Config.load("cdgcl", overrides=[f"{k}={v}" for k, v in {"embedding_size": 8, "knn_k": 3, **params}.items()])
    return build_model(cfg, data), data


def test_policies_keep_the_expected_share_of_training_edges() -> None:
    model, data = _cdgcl(score_drop=0.2, degree_drop=0.5)
    kept = model.kept_edges()
    n = len(data.train)
    assert len(kept) == int((n - int(n * 0.2)) * 0.5)
    assert len(set(kept.tolist())) == len(kept)


def test_score_policy_drops_the_least_consistent_edges() -> None:
    model, data = _cdgcl(score_drop=0.25, degree_drop=0.0)
    with torch.no_grad():
        users, items, _ = model._forward(model.adjacency)
        u = torch.nn.functional.normalize(users, dim=1)[model.edges[0]]
        i = torch.nn.functional.normalize(items, dim=1)[model.edges[1]]
        scores = (u * i).sum(-1)
    kept = torch.from_numpy(model.kept_edges())
    dropped = torch.ones(len(scores), dtype=torch.bool)
    dropped[kept] = False
    assert dropped.sum() == int(len(scores) * 0.25)
    assert scores[dropped].max() <= scores[kept].min()


def test_training_graph_is_denoised_but_scoring_uses_the_full_graph() -> None:
    model, data = _cdgcl(score_drop=0.1, degree_drop=0.3)
    model.on_epoch_start(1)
    n_train_edges = model.train_adjacency.to_sparse_coo().coalesce().indices().shape[1] // 2
    assert n_train_edges == len(model.kept_edges())
    model.loss(_batch(data)).backward()
    assert all(model.projections[m].weight.grad.abs().sum() > 0 for m in model.names)
    model.eval()
    full_users, _ = model.embeddings()
    denoised_users, _, _ = model._forward(model.train_adjacency)
    assert not torch.allclose(full_users, denoised_users)
