import torch

from mdrchca.config import Config
from mdrchca.models.grcn import scatter_messages, segment_softmax
from mdrchca.training import build_model
from tests.models.mdrchca.test_model import _batch, _dataset


def test_segment_softmax_by_hand() -> None:
    scores = torch.tensor([1.0, 2.0, 0.0, 5.0, 1000.0])
    segments = torch.tensor([0, 0, 1, 1, 2])
    alpha = segment_softmax(scores, segments, 4)
    e = torch.tensor([1.0, 2.0]).exp()
    torch.testing.assert_close(alpha[:2], e / e.sum())
    e = torch.tensor([0.0, 5.0]).exp()
    torch.testing.assert_close(alpha[2:4], e / e.sum())
    assert alpha[4] == 1.0  # large scores do not overflow


def test_scatter_messages_by_hand() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    out = scatter_messages(x, torch.tensor([0.5, 2.0, 1.0]), torch.tensor([0, 1, 2]), torch.tensor([2, 2, 0]))
    torch.testing.assert_close(out, torch.tensor([[2.0, 2.0], [0.0, 0.0], [0.5, 2.0]]))


def test_non_positive_confidence_prunes_every_edge() -> None:
    data = _dataset(item_level=True)
    torch.manual_seed(0)
    model = build_model(Config.load("grcn", overrides=["embedding_size=8", "latent_dim=4"]), data)
    with torch.no_grad():
        model.confidence.fill_(-1.0)
    r = model.representations()
    id_part = r[:, :8]
    torch.testing.assert_close(id_part, torch.nn.functional.normalize(model.id_embedding, dim=1))
    assert r.shape[1] == 8 + 4 * len(model.names)


def test_routing_moves_user_preferences_and_everything_trains() -> None:
    data = _dataset(item_level=True)
    torch.manual_seed(0)
    model = build_model(Config.load("grcn", overrides=["embedding_size=8", "latent_dim=4"]), data)
    net = model.content[model.names[0]]
    feats = getattr(model, f"feat_{model.names[0]}")
    no_routing, _ = net(feats, model.edges, 0)
    routed, _ = net(feats, model.edges, 3)
    assert not torch.allclose(no_routing[: data.n_users], routed[: data.n_users])
    model.loss(_batch(data)).backward()
    assert model.confidence.grad.abs().sum() > 0 and net.mlp.weight.grad.abs().sum() > 0
