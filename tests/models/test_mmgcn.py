import torch

from mdrchca.config import Config
from mdrchca.data.graph import mean_normalized_adjacency
from mdrchca.training import build_model
from tests.models.mdrchca.test_model import _batch, _dataset


def test_mean_adjacency_by_hand() -> None:
    import scipy.sparse as sp

    R = sp.csr_matrix([[1, 1, 0], [0, 1, 0]])
    plain = mean_normalized_adjacency(R, self_loops=False).toarray()
    # user 0 -> items 0,1 (1/2 each); user 1 -> item 1; item 1 <- users 0,1
    assert plain[0, 2] == plain[0, 3] == 0.5 and plain[1, 3] == 1.0
    assert plain[3, 0] == plain[3, 1] == 0.5 and plain[4].sum() == 0  # item 2 has no edge
    loops = mean_normalized_adjacency(R).toarray()
    assert abs(loops[0, 0] - 1 / 3) < 1e-7 and abs(loops[4, 4] - 1.0) < 1e-7


def test_every_modality_network_and_the_id_embeddings_are_trained() -> None:
    data = _dataset(item_level=True)
    torch.manual_seed(0)
    model = build_model(Config.load("mmgcn", overrides=["embedding_size=8", "reg_weight=0.01"]), data)
    model.loss(_batch(data)).backward()
    assert model.id_embedding.grad.abs().sum() > 0  # MMRec's are never updated
    for net in model.networks.values():
        assert net.preference.grad.abs().sum() > 0


def test_scores_average_the_modality_networks() -> None:
    data = _dataset(item_level=True)
    torch.manual_seed(0)
    model = build_model(Config.load("mmgcn", overrides=["embedding_size=8", "n_layers=2"]), data)
    users, items = model.embeddings()
    per = [model.networks[m](model.adjacency, getattr(model, f"feat_{m}"), model.id_embedding) for m in model.names]
    torch.testing.assert_close(torch.cat([users, items]), sum(per) / len(per))


def test_wide_features_are_reduced_first() -> None:
    data = _dataset(item_level=True)
    model = build_model(Config.load("mmgcn", overrides=["embedding_size=8", "latent_dim=4"]), data)
    assert all(net.reduce is not None and net.preference.shape[1] == 4 for net in model.networks.values())
