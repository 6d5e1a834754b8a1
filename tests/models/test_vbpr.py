import torch

from mdrchca.config import Config
from mdrchca.models.base import norm_penalty
from mdrchca.training import build_model
from tests.models.mdrchca.test_model import _batch, _dataset


def test_score_is_id_part_plus_content_part() -> None:
    data = _dataset()
    model = build_model(Config.load("vbpr", overrides=["embedding_size=4"]), data)
    users, items = model.embeddings()
    u, i = 3, 7
    content = model.content_map(model.content[i])
    expected = model.user_embedding[u, :4] @ model.item_embedding[i] + model.user_embedding[u, 4:] @ content
    torch.testing.assert_close(users[u] @ items[i], expected)
    # features of every modality are concatenated
    assert model.content.shape[1] == sum(f.dim for f in data.features.values())


def test_norm_penalty_by_hand_and_gradient() -> None:
    a = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert norm_penalty(a, a).item() == (5.0 + 5.0) / 2
    data = _dataset()
    model = build_model(Config.for_model("vbpr"), data)
    model.loss(_batch(data)).backward()
    assert model.content_map.weight.grad.abs().sum() > 0
