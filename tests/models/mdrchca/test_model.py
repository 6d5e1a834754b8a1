"""MDR-CHCA at model level: variants, gradients, determinism, thresholds, cold items, item-level input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdrchca.config import Config
from mdrchca.data.dataset import RecDataset
from mdrchca.data.features import ModalityFeatures
from mdrchca.data.sampler import BPRSampler
from mdrchca.errors import DataError
from mdrchca.models.base import Batch
from mdrchca.models.mdrchca.content import ModalityInput, last_real_position, masked_mean
from mdrchca.models.mdrchca.model import chunk_size
from mdrchca.training import build_model


def _features(n_items: int, L: int, R: int, seed: int = 0, d_t: int = 12, d_v: int = 10) -> dict[str, ModalityFeatures]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, L + 1, (n_items,), generator=g)
    mask = torch.arange(L).unsqueeze(0) < lengths.unsqueeze(1)
    phrase = torch.where(mask, torch.arange(L).unsqueeze(0) // 3, -1)
    text = ModalityFeatures("text", torch.randn(n_items, L, d_t, generator=g) * mask.unsqueeze(-1), mask, phrase)
    region_mask = torch.ones(n_items, R, dtype=torch.bool)
    region_mask[0] = False  # item 0 has no image
    image = ModalityFeatures(
        "image", torch.randn(n_items, R, d_v, generator=g) * region_mask.unsqueeze(-1), region_mask
    )
    return {"text": text, "image": image}


def _dataset(n_users: int = 40, n_items: int = 30, L: int = 9, R: int = 6, item_level: bool = False) -> RecDataset:
    rng = np.random.default_rng(0)
    pairs = np.array(sorted({(u, int(i)) for u in range(n_users) for i in rng.choice(n_items - 2, 6, replace=False)}))
    labels = rng.permutation(np.resize([0, 0, 0, 0, 1, 2], len(pairs)))
    feats = _features(n_items, L, R)
    if item_level:
        feats = {k: ModalityFeatures.from_item_vectors(k, f.item_vectors) for k, f in feats.items()}
    return RecDataset("tiny", n_users, n_items, pairs[labels == 0], pairs[labels == 1], pairs[labels == 2], feats)


def _model(name: str = "mdrchca", dataset: RecDataset | None = None, seed: int = 0, **params):
    cfg = Config.load(
        name,
        overrides=[
            f"{k}={v}" for k, v in {"embedding_size": 8, "heads": 2, "k_r": 3, "k_s": 2, "knn_k": 3, **params}.items()
        ],
    )
    torch.manual_seed(seed)
    return build_model(cfg, dataset or _dataset())


def _batch(dataset: RecDataset, seed: int = 0) -> Batch:
    return Batch(*next(BPRSampler(dataset.train, dataset.n_items, seed).epoch(64)))


def test_variants_are_registered_with_their_options() -> None:
    data = _dataset()
    assert _model("mdrchca_a", data).config.alignment == "full"
    assert _model("mdrchca_b", data).config.contrastive == "standard"
    assert _model("mdrchca", data).config.alignment == "hierarchical"


def test_full_and_hierarchical_agree_when_every_region_and_phrase_is_kept() -> None:
    data = _dataset(R=6, L=9)
    opts = {"k_r": 6, "k_s": 9, "k_p": 3}  # k_r = n_p, k_s >= n_p and n_t, every phrase per region
    hier, full = _model("mdrchca", data, **opts), _model("mdrchca", data, alignment="full", **opts)
    full.load_state_dict(hier.state_dict())
    items = torch.arange(data.n_items)
    torch.testing.assert_close(hier.content(items).fused, full.content(items).fused, atol=1e-5, rtol=1e-4)


def test_loss_decreases_on_a_tiny_dataset() -> None:
    data = _dataset()
    model = _model(dataset=data, conf_weight=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    batch = _batch(data)
    losses = []
    for _ in range(30):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.after_step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


@pytest.mark.parametrize("variant", ["mdrchca", "mdrchca_b"])
def test_contrastive_gradient_reaches_the_alignment(variant: str) -> None:
    data = _dataset()
    # the InfoNCE compares the attention's queries and keys of the denoised features: detached, it trains
    # W_Q, W_K alone; by default a share of its gradient reaches the features, the denoiser and the projection
    for detach in (True, False):
        overrides = {"detach_pair_inputs": True} if detach else {}
        model = _model(variant, data, theta_pos=0.0, **overrides)
        out = model.content(torch.arange(data.n_items))
        loss = model.contrastive_loss(out)
        assert loss.item() > 0
        loss.backward()
        for layer in (model.content_branch.text_to_region.query, model.content_branch.text_to_region.key):
            assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0, layer
        assert model.content_branch.text_to_region.value.weight.grad is None  # values are not compared
        for layer in (model.content_branch.text_denoiser.query, model.content_branch.text.projection):
            if detach:
                assert layer.weight.grad is None, layer  # the content is left to the ranking loss
            else:
                assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0, layer

    model = _model(variant, data, theta_pos=0.0, pair_features="aligned")
    out = model.content(torch.arange(data.n_items))
    model.contrastive_loss(out).backward()
    for layer in (
        model.content_branch.text_to_region.query,
        model.content_branch.text_to_region.value,
        model.content_branch.region_to_text.value,
        model.content_branch.text_denoiser.query,
        model.content_branch.text.projection,
    ):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0, layer


def test_pair_input_grad_scales_what_reaches_the_features_and_nothing_else() -> None:
    """With ``detach_pair_inputs=false``, ``pair_input_grad`` keeps L_conf's value and W_Q, W_K's gradient and
    multiplies the gradient that reaches the denoised features (and so the denoiser and the projection)."""
    data = _dataset()
    grads, losses = {}, {}
    for share in (1.0, 0.25):
        model = _model("mdrchca", data, theta_pos=0.0, detach_pair_inputs=False, pair_input_grad=share)
        out = model.content(torch.arange(data.n_items))
        torch.manual_seed(3)  # the same anchors and negatives for both
        loss = model.contrastive_loss(out)
        loss.backward()
        losses[share] = loss.item()
        branch = model.content_branch
        grads[share] = {
            name: layer.weight.grad.clone()
            for name, layer in (
                ("W_Q", branch.text_to_region.query),
                ("W_K", branch.text_to_region.key),
                ("denoiser", branch.text_denoiser.query),
                ("projection", branch.text.projection),
            )
        }
    assert losses[0.25] == pytest.approx(losses[1.0], rel=1e-6)
    for name in ("W_Q", "W_K"):
        torch.testing.assert_close(grads[0.25][name], grads[1.0][name])
    for name in ("denoiser", "projection"):
        assert grads[1.0][name].abs().sum() > 0
        torch.testing.assert_close(grads[0.25][name], 0.25 * grads[1.0][name], rtol=1e-4, atol=1e-8)


def test_thresholds_update_after_steps_and_are_checkpointed() -> None:
    data = _dataset()
    model = _model(dataset=data, theta_pos=0.9, theta_neg=0.5, eta_1=0.5, eta_2=0.5)
    before = model.thresholds.theta_pos.item()
    model.loss(_batch(data)).backward()
    model.after_step()
    assert model.thresholds.theta_pos.item() != before
    state = model.state_dict()
    assert "thresholds.theta_pos" in state and "thresholds.theta_neg" in state
    fresh = _model(dataset=data)
    fresh.load_state_dict(state)
    assert fresh.thresholds.theta_pos.item() == model.thresholds.theta_pos.item()


def test_same_seed_same_scores_and_loss() -> None:
    data = _dataset()
    a, b = _model(dataset=data, seed=3), _model(dataset=data, seed=3)
    torch.manual_seed(9)
    la = a.loss(_batch(data))
    torch.manual_seed(9)
    lb = b.loss(_batch(data))
    assert la.item() == lb.item()
    a.eval(), b.eval()
    assert torch.equal(a.score_all(torch.arange(5)), b.score_all(torch.arange(5)))


def test_item_without_image_and_cold_items_still_get_content() -> None:
    data = _dataset()
    model = _model(dataset=data)
    out = model.content(torch.arange(data.n_items))
    assert torch.isfinite(out.fused).all()
    assert out.fused[0].abs().sum() > 0  # no image: the text side keeps its own (residual) content
    model.eval()
    users, items = model.scoring_embeddings()
    cold = [i for i in range(data.n_items) if i not in set(data.train[:, 1])]
    assert cold and (items[cold] != 0).any(dim=1).all()  # never seen in training, still scored by content


def test_item_level_features_only() -> None:
    data = _dataset(item_level=True)
    model = _model(dataset=data)
    loss = model.loss(_batch(data))
    assert torch.isfinite(loss)
    loss.backward()
    model.eval()
    assert model.score_all(torch.arange(3)).shape == (3, data.n_items)


def test_graph_scope_token_keeps_each_item_to_itself_and_item_scope_mixes_neighbours() -> None:
    # graph_scope=token convolves among an item's own tokens: another item's features cannot reach an item's
    # content. graph_scope=item convolves over the item kNN graph: item 0's summary reaches its neighbours.
    data = _dataset()
    items = torch.arange(data.n_items)
    for scope in ("token", "item"):
        torch.manual_seed(0)
        model = _model(dataset=data, graph_scope=scope).eval()
        assert torch.isfinite(model.train().loss(_batch(data)))
        model.eval()
        with torch.no_grad():
            before = model.content(items, model._graph_context()).fused
            branch = model.content_branch
            branch.text.values[0] += 3.0
            branch.text.summary[0] += 3.0
            after = model.content(items, model._graph_context()).fused
        changed = (after - before).abs().amax(dim=1) > 1e-6
        assert changed[0], scope
        if scope == "token":
            assert not changed[1:].any(), "a token-scope item's content moved with another item's features"
        else:
            assert changed[1:].any(), "item-scope content never reaches a neighbour"


def test_missing_modality_is_a_clear_error() -> None:
    data = _dataset()
    data.features.pop("image")
    with pytest.raises(DataError, match="needs a second modality"):
        _model(dataset=data)
    data.features.pop("text")
    with pytest.raises(DataError, match="needs the 'text' modality"):
        _model(dataset=data)


def test_bad_option_value() -> None:
    from mdrchca.errors import ConfigError

    with pytest.raises(ConfigError, match="'alignment' must be one of hierarchical, full"):
        _model(alignment="sparse")


def test_item_graph_embeddings_extension() -> None:
    data = _dataset()
    model = _model(dataset=data, item_graph_embeddings=True)
    loss = model.loss(_batch(data))
    loss.backward()
    assert model.item_embedding.grad is not None
    model.eval()
    plain = _model(dataset=data)
    plain.load_state_dict(model.state_dict())
    plain.eval()
    # the extension adds mean_m (S^m) E_item to every item representation
    difference = model.scoring_embeddings()[1] - plain.scoring_embeddings()[1]
    torch.testing.assert_close(difference, model._item_graph_term().detach(), atol=1e-5, rtol=1e-4)


def _content_embedding(model) -> torch.Tensor:
    with torch.no_grad():
        context = model._graph_context()
        return model._scaled(model.content(torch.arange(model.n_items), context).fused)


def test_unseen_item_ids_zero_scores_never_trained_items_by_content_alone() -> None:
    data = _dataset()
    cold = [i for i in range(data.n_items) if i not in set(data.train[:, 1])]
    model = _model(dataset=data, unseen_item_ids="zero").eval()
    users, items = model.scoring_embeddings()
    # an item with no training edge keeps only LightGCN's layer 0, averaged over n_layers + 1 layers
    expected = _content_embedding(model)[cold] / (model.config.n_layers + 1)
    torch.testing.assert_close(items[cold], expected, atol=1e-6, rtol=1e-5)
    with torch.no_grad():
        model.item_embedding[cold] += 5.0  # an unseen item's ID embedding no longer matters
    model.train().eval()
    torch.testing.assert_close(model.scoring_embeddings()[1], items)
    learned = _model(dataset=data).eval()  # auto, on a per-user split: learned
    assert not learned.zero_unseen_ids
    data.split_mode = "cold_items"
    assert _model(dataset=data).zero_unseen_ids and not _model(dataset=data, unseen_item_ids="learned").zero_unseen_ids
    before = learned.scoring_embeddings()[1][cold].clone()
    with torch.no_grad():
        learned.item_embedding[cold] += 5.0
    learned.train().eval()
    assert not torch.allclose(learned.scoring_embeddings()[1][cold], before)


def test_content_propagation_input_feeds_content_into_lightgcn() -> None:
    from mdrchca.models.components.propagation import collaborative_embeddings

    data = _dataset()
    model = _model(dataset=data, content_propagation="input").eval()
    users, items = model.scoring_embeddings()
    expected = collaborative_embeddings(
        model.adjacency, model.user_embedding, model.item_embedding + _content_embedding(model), model.config.n_layers
    )
    torch.testing.assert_close(users, expected[0].detach(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(items, expected[1].detach(), atol=1e-5, rtol=1e-4)
    # without propagation the users never see content: they are the plain LightGCN users
    plain = _model(dataset=data, content_propagation="none").eval()
    plain.load_state_dict(model.state_dict())
    plain_users = plain.scoring_embeddings()[0]
    lightgcn_users = collaborative_embeddings(
        model.adjacency, model.user_embedding, model.item_embedding, model.config.n_layers
    )[0]
    torch.testing.assert_close(plain_users, lightgcn_users.detach(), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(users, plain_users, atol=1e-4)


def test_content_propagation_view_adds_a_content_lightgcn() -> None:
    from mdrchca.models.components.propagation import collaborative_embeddings

    data = _dataset()
    model = _model(dataset=data, content_propagation="view").eval()
    users, items = model.scoring_embeddings()
    ids = collaborative_embeddings(model.adjacency, model.user_embedding, model.item_embedding, model.config.n_layers)
    content = collaborative_embeddings(
        model.adjacency, model.user_embedding, _content_embedding(model), model.config.n_layers
    )
    torch.testing.assert_close(users, (ids[0] + content[0]).detach(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(items, (ids[1] + content[1]).detach(), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("propagation", ["input", "view"])
def test_propagated_content_trains_the_text_projection_through_the_users(propagation: str) -> None:
    data = _dataset()
    model = _model(dataset=data, content_propagation=propagation, conf_weight=0.0)
    batch = _batch(data)
    model.loss(batch).backward()
    assert model.content_branch.text.projection.weight.grad is not None
    assert model.content_branch.text.projection.weight.grad.abs().sum() > 0
    # the training loss scores with the same representations as evaluation
    model.eval()
    users, items = model.scoring_embeddings()
    with torch.no_grad():
        model.train()
        out = model.content(torch.arange(model.n_items))
        train_users, train_items = model._propagate(out.fused)
    torch.testing.assert_close(train_users, users, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(train_items, items, atol=1e-5, rtol=1e-4)


def test_view_contrast_scores_like_view_and_adds_the_in_batch_infonce_of_the_two_views() -> None:
    from torch.nn import functional as F

    from mdrchca.models.components.contrastive import in_batch_infonce

    data = _dataset()
    batch = _batch(data)
    plain = _model(dataset=data, content_propagation="view", conf_weight=0.0)
    extended = _model(dataset=data, content_propagation="view", conf_weight=0.0, view_contrast=0.3)
    extended.load_state_dict(plain.state_dict())
    with torch.no_grad():
        fused = extended.content(torch.arange(data.n_items)).fused
        users_c, items_c, users_f, items_f = extended._views(fused)
        users, items = extended._propagate(fused)
    # the two views propagated apart add up to view's single propagation of (2 E_u, E_i + f)
    torch.testing.assert_close(users_c + users_f, users, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(items_c + items_f, items, atol=1e-5, rtol=1e-4)
    u, i = torch.unique(batch.users), torch.unique(batch.pos_items)
    views = in_batch_infonce(F.normalize(users_c[u], dim=1), F.normalize(users_f[u], dim=1), 0.2) + in_batch_infonce(
        F.normalize(items_c[i], dim=1), F.normalize(items_f[i], dim=1), 0.2
    )
    torch.manual_seed(0)
    base = plain.loss(batch)
    torch.manual_seed(0)
    total = extended.loss(batch)
    torch.testing.assert_close(total, base + 0.3 * views, atol=1e-5, rtol=1e-4)
    assert extended.last_loss_parts["views"] == pytest.approx(float(views), rel=1e-4)
    total.backward()  # the contrast trains the content branch too
    assert extended.content_branch.text.projection.weight.grad.abs().sum() > 0


def test_view_contrast_needs_the_view_propagation() -> None:
    from mdrchca.errors import ConfigError

    with pytest.raises(ConfigError, match="view_contrast needs content_propagation=view"):
        _model(content_propagation="input", view_contrast=0.1)


def test_attention_pair_features_are_the_head_averaged_query_key_cosine() -> None:
    from torch.nn import functional as F

    from mdrchca.models.mdrchca.alignment import head_units

    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    by_head = F.cosine_similarity(q.view(5, 4, 2), k.view(5, 4, 2), dim=-1).mean(-1)
    torch.testing.assert_close((head_units(q, 4) * head_units(k, 4)).sum(-1), by_head)
    # the InfoNCE's normalisation leaves them as they are
    torch.testing.assert_close(F.normalize(head_units(q, 4), dim=-1), head_units(q, 4))
    # and the attention's own units reproduce the cosine it reports for its candidates
    from mdrchca.models.mdrchca.alignment import CrossModalAttention

    attention = CrossModalAttention(8, heads=4)
    x, y = torch.randn(1, 3, 8, generator=g), torch.randn(1, 5, 8, generator=g)
    qu, ku = attention.query_key_units(x, y)
    reported = attention.dense(x, torch.ones(1, 3, dtype=torch.bool), y, torch.ones(1, 5, dtype=torch.bool)).cosine
    torch.testing.assert_close(qu @ ku.transpose(1, 2), reported)


def test_edge_dropout_prunes_the_training_graph_only() -> None:
    from mdrchca.models.components.propagation import collaborative_embeddings

    data = _dataset()
    model = _model(dataset=data, edge_dropout=0.5, conf_weight=0.0)
    model.eval()
    full_users, full_items = (t.clone() for t in model.scoring_embeddings())
    model.train()
    model.on_epoch_start(1)
    assert model.user_item_graph() is model.train_adjacency
    kept = model.train_adjacency.to_sparse_coo().coalesce().indices()
    assert (kept[0] < data.n_users).sum().item() == int(len(data.train) * 0.5)
    with torch.no_grad():  # the training forward propagates (2 E_u, E_i + f) over the pruned graph
        users, items = model._propagate(model.content(torch.arange(data.n_items)).fused)
        expected = collaborative_embeddings(
            model.train_adjacency, 2 * model.user_embedding, model.item_embedding + _content_embedding(model), 2
        )
    torch.testing.assert_close(users, expected[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(items, expected[1], atol=1e-5, rtol=1e-4)
    model.eval()  # scoring sees every training edge again
    users, items = model.scoring_embeddings()
    torch.testing.assert_close(users, full_users)
    torch.testing.assert_close(items, full_items)
    from mdrchca.errors import ConfigError

    with pytest.raises(ConfigError, match="'edge_dropout' must be in"):
        _model(dataset=data, edge_dropout=-0.1)


def test_learned_content_scale_is_the_collaborative_scale_times_a_trained_gain() -> None:
    data = _dataset()
    model = _model(dataset=data, content_scale="learned", conf_weight=0.0)
    fused = model.content(torch.arange(data.n_items)).fused  # unit directions: the branch normalises
    with torch.no_grad():
        model.content_log_gain.fill_(np.log(0.5))
    target = 0.5 * model.item_embedding.detach().norm(dim=1).mean()
    torch.testing.assert_close(model._scaled(fused).norm(dim=1), target.expand(data.n_items))
    model.loss(_batch(data)).backward()
    assert model.content_log_gain.grad is not None and model.content_log_gain.grad.abs() > 0
    assert not hasattr(_model(dataset=data), "content_log_gain")  # the default keeps the scale tied


def test_cached_content_path_equals_the_exact_path_when_every_item_is_recomputed() -> None:
    """With the cache fresh and every batch item recomputed, the cached path's loss and gradients are the exact
    path's (the contrastive term aside, whose rows are sampled differently)."""
    data = _dataset()
    exact = _model(dataset=data, content_grad_items=0, conf_weight=0.0)
    cached = _model(dataset=data, content_grad_items=1000, conf_weight=0.0)
    cached.load_state_dict(exact.state_dict())
    cached.train()
    exact.train()
    cached.refresh_content_cache()
    batch = _batch(data)
    loss_exact, loss_cached = exact.loss(batch), cached.loss(batch)
    torch.testing.assert_close(loss_cached, loss_exact)
    loss_exact.backward()
    loss_cached.backward()
    for (name, a), (_, b) in zip(exact.named_parameters(), cached.named_parameters(), strict=True):
        if a.grad is not None or b.grad is not None:
            torch.testing.assert_close(b.grad, a.grad, msg=name)


def test_the_step_budget_counts_token_and_region_positions() -> None:
    """L = 9 tokens and R = 6 regions per item: 15 positions an item."""
    data = _dataset(n_items=30, L=9, R=6)
    assert _model(dataset=data, content_grad_items=20, content_grad_positions=45).step_item_budget() == 3
    assert _model(dataset=data, content_grad_items=20, content_grad_positions=44).step_item_budget() == 2
    assert _model(dataset=data, content_grad_items=2, content_grad_positions=450).step_item_budget() == 2
    assert _model(dataset=data, content_grad_items=20, content_grad_positions=0).step_item_budget() == 20
    assert _model(dataset=data, content_grad_items=20, content_grad_positions=1).step_item_budget() == 1
    items, n_positive = _model(dataset=data, content_grad_items=20, content_grad_positions=45)._step_items(_batch(data))
    assert len(items) == 3 and n_positive == 3


def test_a_step_takes_the_batch_positives_first_then_negatives_that_are_not_positives() -> None:
    data = _dataset(n_items=30, L=9, R=6)
    model = _model(dataset=data, content_grad_items=12, content_grad_positions=0)
    batch = Batch(torch.tensor([0, 1, 2, 3]), torch.tensor([5, 5, 7, 9]), torch.tensor([7, 11, 13, 11]))
    items, n_positive = model._step_items(batch)
    assert n_positive == 3 and items[:3].tolist() == [5, 7, 9] and sorted(items[3:].tolist()) == [11, 13]
    model = _model(dataset=data, content_grad_items=2, content_grad_positions=0)  # the positives fill the budget
    items, n_positive = model._step_items(batch)
    assert n_positive == 2 and len(items) == 2 and set(items.tolist()) <= {5, 7, 9}


def test_on_several_processes_each_rank_takes_its_share_of_the_step_budget() -> None:
    """The budget is the global step's: 3 items over 2 ranks is 2 each (rounded up), 20 over 3 is 7."""
    data = _dataset(n_items=30, L=9, R=6)
    model = _model(dataset=data, content_grad_items=20, content_grad_positions=45)
    model.share_batch(1, 2)
    assert model.step_item_budget() == 2
    model = _model(dataset=data, content_grad_items=20, content_grad_positions=0)
    model.share_batch(0, 3)
    assert model.step_item_budget() == 7


def test_a_cached_step_computes_content_with_gradients_for_a_bounded_number_of_items() -> None:
    data = _dataset(n_items=30)
    model = _model(dataset=data, content_grad_items=5)
    model.train()
    model.on_epoch_start(1)  # the cache refresh, without gradients
    sizes: list[tuple[int, bool]] = []
    real_content = model.step_content

    def recording(items):
        sizes.append((len(items), torch.is_grad_enabled()))
        return real_content(items)

    model.step_content = recording  # type: ignore[method-assign]
    batch = _batch(data)
    assert len(torch.unique(torch.cat([batch.pos_items, batch.neg_items]))) > 5
    model.loss(batch).backward()
    assert sizes == [(5, True)]
    # the recomputed rows went into the cache
    before = model.content_cache.clone()
    model.step_content = real_content  # type: ignore[method-assign]
    with torch.no_grad():
        for p in model.content_branch.text.projection.parameters():
            p.add_(0.1)
    model.loss(_batch(data, seed=1))
    assert 0 < int((model.content_cache != before).any(1).sum()) <= 5


def test_the_screen_reads_the_quantity_its_thresholds_track() -> None:
    """Positive iff min(c_t, c_v) > theta_pos; theta_pos moves toward the mean of that min; the shares are
    logged per epoch."""
    from mdrchca.models.mdrchca.screen import AdaptiveThresholds, candidate_pairs, noisy_mask, positive_mask

    c_t = torch.tensor([0.9, 0.7, 0.2, 0.8])
    c_v = torch.tensor([0.8, 0.3, 0.9, 0.75])
    assert positive_mask(c_t, c_v, torch.tensor(0.7)).tolist() == [True, False, False, True]
    assert noisy_mask(c_t, c_v, torch.tensor(0.25)).tolist() == [False, False, True, False]
    thresholds = AdaptiveThresholds(theta_pos=0.6, theta_neg=0.4, eta_1=0.5, eta_2=0.5)
    m = torch.minimum(c_t, c_v)  # 0.8, 0.3, 0.2, 0.75: mean 0.5125, two below 0.4
    thresholds.update(m)
    assert float(thresholds.theta_pos) == pytest.approx(0.6 + 0.5 * (0.5125 - 0.6))
    assert float(thresholds.theta_neg) == pytest.approx(0.4 - 0.5 * (0.5 - 0.4))
    pairs, _, _ = candidate_pairs(
        torch.ones(1, 2, dtype=torch.bool),
        torch.tensor([[0, 1]]),
        torch.tensor([[0.9, 0.4]]),
        torch.tensor([[0.5, 0.8]]),
    )
    assert pairs.screening.tolist() == pytest.approx([0.5, 0.4]) and pairs.confidence.tolist() == pytest.approx(
        [0.45, 0.32]
    )
    data = _dataset()
    model = _model(dataset=data)
    model.train()
    model.on_epoch_start(1)
    model.loss(_batch(data))
    log = model.epoch_log()
    assert log["pos_share"] + log["noisy_share"] + log["unused_share"] == pytest.approx(1.0)
    assert {"theta_pos", "theta_neg", "loss_conf", "loss_bpr"} <= set(log)


def test_caps_and_item_level_input_are_named_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        _model(dataset=_dataset(item_level=True))
    assert "hierarchical alignment is inactive" in caplog.text and "mdrchca features" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        _model(dataset=_dataset(R=6), k_r=15, k_p=9, k_s=8)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "k_r=15 > 6 regions: k_r=6 in effect" in lines[0] and "k_p=9 > 3 phrases: k_p=3 in effect" in lines[0]
    assert "k_s=8 > 6 candidate regions per token: k_s=6 in effect" in lines[0]
    caplog.clear()
    with caplog.at_level("WARNING"):
        _model(dataset=_dataset(R=6))
    assert not caplog.records


class _ShapeRecorder:
    """Every tensor an aten op creates in a forward and backward pass (TorchDispatchMode), by shape."""

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        shapes = self.shapes = []

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in out if isinstance(out, (tuple, list)) else (out,):
                    if isinstance(t, torch.Tensor):
                        shapes.append((str(func), tuple(t.shape)))
                return out

        self.mode = Mode()


@pytest.mark.parametrize(
    ("name", "image_side", "text_side"),
    [
        ("mdrchca", "gathered", "grouped"),
        ("mdrchca", "gathered", "auto"),
        ("mdrchca", "masked", "grouped"),
        ("mdrchca_a", "masked", "auto"),
    ],
)
def test_the_gathered_hierarchy_creates_no_token_by_region_tensor(name: str, image_side: str, text_side: str) -> None:
    """L = 24 tokens and R = 40 regions, sizes no other axis takes: with the image side gathered and the token
    side grouped, the hierarchical path creates no tensor with both a full token axis and a full region axis,
    on either side, forward or backward; a masked side (the default on either side at 40 regions) and variant A
    do."""
    L, R = 24, 40
    data = _dataset(n_items=30, L=L, R=R)
    model = _model(
        name,
        dataset=data,
        k_r=3,
        k_s=2,
        k_p=2,
        content_grad_items=7,
        conf_items=5,
        image_side=image_side,
        text_side=text_side,
    )
    model.train()
    model.on_epoch_start(1)
    recorder = _ShapeRecorder()
    with recorder.mode:
        model.loss(_batch(data)).backward()
    dense = [(op, shape) for op, shape in recorder.shapes if L in shape and R in shape]
    if (name, image_side, text_side) == ("mdrchca", "gathered", "grouped"):
        assert not dense, dense[:5]
        assert any(L in shape for _, shape in recorder.shapes) and any(R in shape for _, shape in recorder.shapes)
    else:
        assert dense  # the audit can see a dense token x region tensor when there is one


def test_checkpoints_from_before_the_content_branch_module_still_load() -> None:
    """Session 6 runs stored the content parameters at the model's top level (``text.projection.weight``);
    they load into the model with the content branch in its own module, and a run's content cache may be
    absent."""
    data = _dataset()
    source, target = _model(dataset=data, seed=1), _model(dataset=data, seed=2)
    old_layout = {k.replace("content_branch.", ""): v for k, v in source.state_dict().items() if k != "content_cache"}
    assert "text.projection.weight" in old_layout
    target.load_state_dict(old_layout)
    for key, value in source.state_dict().items():
        if key != "content_cache":
            torch.testing.assert_close(target.state_dict()[key], value, msg=key)
    out = target.content(torch.arange(4))
    assert out.fused.shape == (4, 8) and out.select(torch.tensor([1, 3])).tokens.shape[0] == 2


def test_the_content_cache_resumes_exactly(tmp_path) -> None:
    """Three epochs in one go and two epochs plus a resume give the same losses and metrics to the last digit:
    the cache (a buffer, in last.pt) continues as it was."""
    from mdrchca.training import Trainer

    data = _dataset()

    def config(epochs: int) -> Config:
        return Config.load(
            "mdrchca",
            overrides=[
                "embedding_size=8",
                "heads=2",
                "k_r=3",
                "k_s=2",
                "knn_k=3",
                "content_grad_items=5",
                "content_refresh=2",
                f"epochs={epochs}",
                "batch_size=32",
                "topk=[5,10]",
                "valid_metric=recall@10",
                "device=cpu",
                "num_threads=1",
            ],
        )

    whole = Trainer(config(3), data, tmp_path / "whole", progress=False).fit()
    Trainer(config(2), data, tmp_path / "split", progress=False).fit()
    resumed = Trainer(config(3), data, tmp_path / "split", progress=False)
    resumed.resume()
    second = resumed.fit()
    assert [r["loss"] for r in second.history] == [r["loss"] for r in whole.history]
    assert second.valid == whole.valid and second.test == whole.test


def test_the_epoch_start_refresh_reuses_the_evaluation_pass_before_it() -> None:
    """An evaluation right before an epoch (no step in between) computes every item's content at the current
    parameters; the epoch's refresh takes it instead of computing it again, with the same values."""
    data = _dataset()
    model = _model(dataset=data, content_grad_items=5)
    passes = []
    real = model._all_fused
    model._all_fused = lambda: passes.append(1) or real()  # type: ignore[method-assign]
    model.train()
    model.on_epoch_start(1)
    model.loss(_batch(data)).backward()
    model.after_step()
    model.eval()
    with torch.no_grad():
        model.embeddings()
    evaluated = model.content_cache.clone()
    model.train()
    model.on_epoch_start(2)
    assert len(passes) == 2  # epoch 1's refresh and the evaluation; epoch 2 reused the evaluation's
    model.after_step()
    model.on_epoch_start(3)  # a step moved the parameters: computed again
    assert len(passes) == 3
    torch.testing.assert_close(model.content_cache, evaluated)  # the parameters did not actually change here


def test_the_item_gate_scales_each_item_s_content_by_its_pair_confidence() -> None:
    """With ``confidence_gate`` the fused content is a unit direction times kappa_i = min(1, mean m / theta_pos):
    an item whose pairs pass the screen less well keeps less content. The item without an image keeps 1."""
    data = _dataset()
    model = _model(dataset=data, confidence_gate="item", theta_pos=0.9)
    out = model.content(torch.arange(data.n_items))
    pair = torch.minimum(out.text_confidence, out.region_confidence.gather(1, out.best_region))
    mean_pair = masked_mean(pair.unsqueeze(-1), out.token_mask).squeeze(-1)
    expected = (mean_pair / model.thresholds.theta_pos).clamp(max=1.0)
    expected[0] = 1.0  # item 0 has no image
    torch.testing.assert_close(out.gate, expected)
    torch.testing.assert_close(out.fused.norm(dim=1), expected)
    assert (out.gate[1:] < 1).any()  # at theta_pos 0.9 some items are gated
    plain = _model(dataset=data).content(torch.arange(data.n_items))
    torch.testing.assert_close(plain.fused.norm(dim=1), torch.ones(data.n_items))  # no gate: unit directions


@pytest.mark.parametrize("fusion", ["soft", "screen"])
def test_confidence_fusion_changes_the_content_and_uniform_confidence_gives_the_plain_mean(fusion: str) -> None:
    data = _dataset()
    plain = _model(dataset=data, confidence_fusion="none")
    fused = _model(dataset=data, confidence_fusion=fusion)
    fused.load_state_dict(plain.state_dict())
    items = torch.arange(data.n_items)
    a, b = plain.content(items).fused, fused.content(items).fused
    assert not torch.allclose(a, b)  # the confidences now act on what is fused
    torch.testing.assert_close(a[0], b[0])  # item 0 has no image: no confidence, the plain mean


def test_detached_confidences_get_no_ranking_gradient_through_the_fusion() -> None:
    """``confidence_detach``: the fusion weighs by the confidences without bending them; without it a gradient
    of the content also reaches the fine attention's W_Q through the weights and the gate."""
    data = _dataset()
    grads = []
    for detach in (True, False):
        model = _model(dataset=data, confidence_fusion="soft", confidence_gate="item", confidence_detach=detach)
        model.content(torch.arange(data.n_items)).fused.pow(2).sum().backward()
        grads.append(model.content_branch.text_to_region.query.weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_the_screen_margin_keeps_three_classes() -> None:
    from mdrchca.models.mdrchca.screen import AdaptiveThresholds

    confident = torch.tensor([0.5, 0.55, 0.58, 0.59, 0.7])  # noise ratio 0 < theta_neg: theta_neg climbs
    thresholds = AdaptiveThresholds(0.6, 0.4, eta_1=0.0, eta_2=1.0, margin=0.15)
    thresholds.update(confident)
    assert thresholds.theta_neg.item() == pytest.approx(0.45)  # 0.4 + 1.0 * 0.4 = 0.8, kept at theta_pos - margin
    literal = AdaptiveThresholds(0.6, 0.4, eta_1=0.0, eta_2=1.0)
    literal.update(confident)
    assert literal.theta_neg.item() == pytest.approx(0.6)  # margin 0: tied with theta_pos


def test_cache_staleness_is_one_after_a_refresh_and_drops_when_the_content_moves() -> None:
    data = _dataset()
    model = _model(dataset=data, content_grad_items=4, staleness_items=20)
    model.refresh_content_cache()
    fresh = model.cache_staleness()
    assert fresh["cache_cos_mean"] == pytest.approx(1.0, abs=1e-6) and fresh["cache_norm_ratio"] == pytest.approx(1.0)
    with torch.no_grad():
        model.content_branch.text.projection.weight.add_(
            0.5 * torch.randn_like(model.content_branch.text.projection.weight)
        )
    moved = model.cache_staleness()
    assert moved["cache_cos_p05"] <= moved["cache_cos_mean"] < 0.999
    state = torch.random.get_rng_state()
    model.cache_staleness()
    assert torch.equal(state, torch.random.get_rng_state())  # measuring leaves training's random stream alone
    assert set(model.epoch_log()) >= {"cache_cos_mean", "cache_cos_p05", "theta_pos"}


def test_epoch_log_takes_the_staleness_from_the_validation_pass_until_the_next_step(monkeypatch) -> None:
    data = _dataset()
    model = _model(dataset=data, content_grad_items=4, staleness_items=20)
    model.refresh_content_cache()
    with torch.no_grad():  # the parameters move after the refresh, as the epoch's steps move them
        model.content_branch.text.projection.weight.add_(
            0.5 * torch.randn_like(model.content_branch.text.projection.weight)
        )
    expected = model.cache_staleness()
    assert expected["cache_cos_mean"] < 0.999
    with torch.no_grad():
        model.embeddings()  # validation: every item's content, which also refreshes the cache
    assert model.cache_staleness()["cache_cos_mean"] == pytest.approx(1.0, abs=1e-6)  # the cache is fresh now

    def no_second_pass(*args, **kwargs):
        raise AssertionError("epoch_log recomputed content that validation had computed")

    monkeypatch.setattr(model, "_fused_in_chunks", no_second_pass)
    logged = model.epoch_log()
    for key, value in expected.items():  # the cache as it was during the epoch, against the fresh content
        assert logged[key] == pytest.approx(value, abs=1e-5), key
    monkeypatch.undo()
    model.after_step()  # a step moves the parameters: the pass's numbers no longer hold
    assert model.epoch_log()["cache_cos_mean"] == pytest.approx(1.0, abs=1e-6)


def test_graph_context_fused_adds_the_neighbourhood_to_the_pooled_features_not_to_the_positions() -> None:
    data = _dataset()
    model = _model(dataset=data, graph_context="fused", content_scale="none", confidence_gate="none")
    branch, items = model.content_branch, torch.arange(data.n_items)
    context = branch.graph_context()
    zero = (torch.zeros_like(context[0]), torch.zeros_like(context[1]))
    with_context, without = branch(items, context), branch(items, zero)
    b = torch.softmax(branch.fusion_logits, 0)
    has_text, has_image = with_context.token_mask.any(1, keepdim=True), with_context.region_mask.any(1, keepdim=True)
    expected = b[0] * context[0] * has_text + b[1] * context[1] * has_image
    torch.testing.assert_close(with_context.fused - without.fused, expected)
    torch.testing.assert_close(with_context.tokens, without.tokens)  # the alignment reads the positions alone
    tokens_model = _model(dataset=data, graph_context="tokens", content_scale="none", confidence_gate="none")
    tokens_model.load_state_dict(model.state_dict())
    assert not torch.allclose(tokens_model.content_branch(items, context).tokens, with_context.tokens)


def test_the_image_gate_takes_less_of_the_image_of_an_item_whose_pairs_fail_the_screen() -> None:
    """``confidence_gate=image``: f_i = b_t z^t + kappa_i b_v z^v (before the collaborative scale), so with
    content_scale=none the difference to the ungated content is (kappa_i - 1) b_v z^v; kappa_i = 1 items, and
    the item without an image, are unchanged."""
    data = _dataset()
    gated = _model(dataset=data, confidence_gate="image", content_scale="none", theta_pos=0.9)
    plain = _model(dataset=data, content_scale="none", theta_pos=0.9, confidence_gate="none")
    plain.load_state_dict(gated.state_dict())
    items = torch.arange(data.n_items)
    out, reference = gated.content(items), plain.content(items)
    image_part = reference.fused - gated.content_branch.fusion_logits.softmax(0)[0] * _text_side(plain, items)
    expected = reference.fused + (out.gate - 1).unsqueeze(1) * image_part
    torch.testing.assert_close(out.fused, expected, atol=1e-6, rtol=1e-5)
    assert (out.gate < 1).any() and out.gate[0] == 1.0
    torch.testing.assert_close(out.fused[0], reference.fused[0])


def _text_side(model, items: torch.Tensor) -> torch.Tensor:
    """z^t of ``items`` with the image side's fusion weight set to zero (b_v = 0 makes f = z^t)."""
    branch = model.content_branch
    saved = branch.fusion_logits.data.clone()
    branch.fusion_logits.data = torch.tensor([0.0, -1e4])
    text_side = branch(items).fused
    branch.fusion_logits.data = saved
    return text_side


def test_hard_negatives_enter_l_conf_only_where_the_screen_finds_noise() -> None:
    data = _dataset()
    losses = {}
    for hard in ("noisy_pairs", "item_regions", "none"):
        for theta_neg in (0.0, 0.45):
            model = _model(dataset=data, hard_negatives=hard, theta_pos=0.5, theta_neg=theta_neg, screen_margin=0.0)
            out = model.content(torch.arange(data.n_items))
            losses[hard, theta_neg] = model.contrastive_loss(out).item()
    # no pair below theta_neg = 0: every reading is the plain confidence-weighted InfoNCE
    assert losses["noisy_pairs", 0.0] == pytest.approx(losses["none", 0.0], rel=1e-6)
    assert losses["item_regions", 0.0] == pytest.approx(losses["none", 0.0], rel=1e-6)
    # with noise each reading adds its own terms to the denominators: the loss rises, differently
    assert losses["noisy_pairs", 0.45] > losses["none", 0.45] * 1.01
    assert losses["item_regions", 0.45] > losses["none", 0.45] * 1.01
    assert losses["noisy_pairs", 0.45] != pytest.approx(losses["item_regions", 0.45], rel=1e-3)


def test_item_confidence_does_not_depend_on_how_many_items_are_computed_at_once() -> None:
    model = _model(content_chunk=4)
    default = model.item_confidence()  # content_chunk items at a time
    for batch_size in (1, 7, 30):
        other = model.item_confidence(batch_size)
        for name, values in default.columns().items():
            np.testing.assert_allclose(other.columns()[name], values, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert np.isfinite(default.confidence).any()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"confidence_fusion": "none"},
        {"confidence_fusion": "screen"},
        {"aligned_residual": "false"},
        {"alignment": "full"},
        {"confidence_gate": "item"},
        {"confidence_gate": "none", "graph_context": "tokens"},
        {"content_scale": "none"},
    ],
)
def test_the_short_scoring_pass_gives_the_forward_content(options: dict) -> None:
    """``ContentBranch.fused_content`` (validation, scoring and the cache refresh, ``scoring_pass=short``) is
    the forward's f_i up to rounding, for each pooling, gate and alignment it covers, item 0 without an image
    included; the model's every-item pass takes it without gradients and the forward with ``scoring_pass=full``."""
    model = _model(**options)
    with torch.no_grad():
        for parameter in model.parameters():  # away from the initial values (alpha = 0, a zero gate bias...)
            parameter.add_(0.1 * torch.randn_like(parameter))
    branch, items = model.content_branch, torch.arange(model.n_items)
    context = branch.graph_context()
    with torch.no_grad():
        forward = branch(items, context, model.thresholds).fused
        short = branch.fused_content(items, context, model.thresholds)
    torch.testing.assert_close(short, forward, atol=1e-6, rtol=1e-5)
    assert not torch.equal(forward[0], forward[1])
    full = _model(scoring_pass="full", **options)
    full.load_state_dict(model.state_dict())
    torch.testing.assert_close(model.all_fused_content(), full.all_fused_content(), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"confidence_fusion": "screen"},
        {"alignment": "full"},
        {"content_grad_items": "0"},
        {"pair_features": "denoised", "contrastive": "standard"},
    ],
)
def test_the_short_training_pass_gives_the_full_passs_loss_and_gradients(options: dict) -> None:
    """``training_pass=short`` (the step's content by ``ContentBranch.short_output``, no aligned feature formed)
    gives the loss and every parameter's gradient of ``training_pass=full`` up to rounding, the cached path,
    the exact path and L_conf included."""
    data = _dataset()
    start = _model(dataset=data, **options)
    with torch.no_grad():  # away from the initial values (alpha = 0, a zero gate bias...)
        for parameter in start.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    losses, grads = [], []
    for route in ("short", "full"):
        model = _model(dataset=data, training_pass=route, **options)
        model.load_state_dict(start.state_dict())
        model.train()
        model.on_epoch_start(1)
        torch.manual_seed(3)  # the same L_conf draws
        loss = model.loss(_batch(data))
        loss.backward()
        losses.append(loss.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    torch.testing.assert_close(losses[0], losses[1], atol=1e-6, rtol=1e-5)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-4, msg=name)


def test_the_short_output_forms_no_aligned_feature_and_keeps_what_l_conf_reads() -> None:
    model = _model()
    branch, items = model.content_branch, torch.arange(model.n_items)
    with torch.no_grad():
        short, full = branch.short_output(items, None, model.thresholds), branch(items, None, model.thresholds)
    assert short.text_aligned is None and short.region_aligned is None
    for name in ("tokens", "regions", "best_region", "text_confidence", "region_confidence", "similarity"):
        torch.testing.assert_close(getattr(short, name), getattr(full, name), atol=1e-6, rtol=1e-5, msg=name)
    placed = torch.zeros(*short.text_weights.shape[:2], short.regions.shape[1]).scatter_add(
        -1, short.text_candidates, short.text_weights
    )
    torch.testing.assert_close(
        placed, torch.zeros_like(placed).scatter_add(-1, full.text_candidates, full.text_weights)
    )
    assert short.select(torch.tensor([1, 0])).text_aligned is None


def test_settings_the_short_pass_does_not_cover_take_the_forward() -> None:
    """A side that gathers its candidates, or confidences read from the logits, make ``fused_content`` run the
    forward itself: the same content bitwise."""
    for options in ({"image_side": "gathered"}, {"confidence_source": "logits"}, {"image_fine": "token"}):
        model = _model(**options)
        branch, items = model.content_branch, torch.arange(model.n_items)
        with torch.no_grad():
            assert torch.equal(
                branch.fused_content(items, None, model.thresholds), branch(items, None, model.thresholds).fused
            )


def test_content_chunk_auto_scales_with_the_grid_between_64_and_256_on_the_cpu_and_up_to_4096_on_a_gpu():
    model = _model(content_chunk=0)  # a grid of 9 x 6 slots
    assert model.content_chunk() == 256
    assert _model(content_chunk=5).content_chunk() == 5
    assert chunk_size(5, "cuda", 64 * 64) == 5
    assert chunk_size(0, "cpu", 64 * 64) == 64  # ML-100K's grid
    assert chunk_size(0, "cpu", 64 * 16) == 256  # the bundled catalogue's
    assert chunk_size(0, "cpu", 64 * 32) == 128
    assert chunk_size(0, "cpu", 128 * 128) == 64
    assert chunk_size(0, "cuda", 64 * 64) == 1024
    assert chunk_size(0, "cuda", 64 * 16) == 4096
    assert chunk_size(0, "cuda", 128 * 128) == 256
    assert chunk_size(0, "cuda", 512 * 512) == 64


def test_the_content_pass_is_the_same_at_any_chunk_size():
    model = _model().eval()
    whole = model.all_fused_content()  # the automatic size: every item of the tiny catalogue in one chunk
    for size in (1, 7):
        model.config.content_chunk = size
        torch.testing.assert_close(model.all_fused_content(), whole, rtol=0, atol=1e-6)


def test_last_real_position_counts_to_each_rows_last_real_slot() -> None:
    mask = torch.tensor([[1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0]], dtype=torch.bool)
    assert last_real_position(mask).tolist() == [2, 4, 0, 3]
    assert last_real_position(torch.zeros(3, 0, dtype=torch.bool)).tolist() == [0, 0, 0]


def test_a_batch_spans_the_slots_its_items_fill_and_gets_the_untrimmed_content_and_gradients(monkeypatch) -> None:
    """Positions past the batch's last real one are padding in every item of it, which every later step masks:
    computing without them (the default) gives the content, confidences and gradients of every slot."""
    data = _dataset(L=12)
    model = _model(dataset=data)
    branch = model.content_branch
    reach = branch.text.reach
    short_texts = torch.nonzero(reach < 8).squeeze(1)[:4]
    assert len(short_texts) == 4 and int(reach[short_texts].max()) < 12
    with torch.no_grad():
        trimmed = branch(short_texts, None, model.thresholds)
        full = branch(short_texts, None, model.thresholds, trim=False)
    L = int(reach[short_texts].max())
    assert trimmed.tokens.shape[1] == L and full.tokens.shape[1] == 12
    assert not full.token_mask[:, L:].any()
    torch.testing.assert_close(trimmed.fused, full.fused, atol=1e-6, rtol=1e-5)
    for name in ("tokens", "text_confidence", "best_region", "phrase_ids"):
        torch.testing.assert_close(getattr(trimmed, name), getattr(full, name)[:, :L], atol=1e-6, rtol=1e-5, msg=name)
    torch.testing.assert_close(trimmed.region_confidence, full.region_confidence, atol=1e-6, rtol=1e-5)

    def step_gradients() -> dict[str, torch.Tensor]:
        model.zero_grad()
        out = branch.short_output(short_texts, None, model.thresholds)  # a training step's route
        (out.fused.square().sum() + model.contrastive_loss(out)).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    trimmed_grads = step_gradients()
    monkeypatch.setattr(ModalityInput, "slots", lambda self, items: self.mask.shape[1])  # every slot
    full_grads = step_gradients()
    assert trimmed_grads.keys() == full_grads.keys() and len(full_grads) > 10
    for name in full_grads:
        torch.testing.assert_close(trimmed_grads[name], full_grads[name], atol=1e-6, rtol=1e-4, msg=name)


def test_the_input_projection_is_the_linear_map_of_the_scaled_features() -> None:
    """The modality scale is applied to the projection's weight, not to the positions: the same map, gradients
    included, as projecting the features divided by their mean norm; padding slots stay zero."""
    data = _dataset()
    model = _model(dataset=data)
    text = model.content_branch.text
    items = torch.tensor([0, 3, 5])
    tokens, mask = text.tokens(items, trim=False)
    expected = text.projection(text.values[items].float() * text.scale) * mask.unsqueeze(-1)
    torch.testing.assert_close(tokens, expected, rtol=1e-5, atol=1e-6)
    assert text.scale != 1.0 and not tokens[~mask].any()
    upstream = torch.randn_like(tokens)
    folded = torch.autograd.grad((tokens * upstream).sum(), [text.projection.weight, text.projection.bias])
    plain = torch.autograd.grad((expected * upstream).sum(), [text.projection.weight, text.projection.bias])
    for got, want in zip(folded, plain, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_the_pass_batches_items_in_slot_order_and_returns_them_in_item_order() -> None:
    model = _model(dataset=_dataset(L=12)).eval()
    branch = model.content_branch
    items = torch.arange(model.n_items)
    order = branch.slot_order(items)
    assert (branch.text.reach[order].diff() >= 0).all()
    with torch.no_grad():
        one_by_one = torch.cat([branch.fused_content(i.view(1), None, model.thresholds) for i in items])
    model.config.content_chunk = 4
    torch.testing.assert_close(model.all_fused_content(), one_by_one, rtol=0, atol=1e-6)


def test_explain_keeps_every_slot_so_the_regions_form_their_grid() -> None:
    model = _model()
    out = model.explain_item(0)  # item 0 has no image: no real region, its grid kept
    assert out.region_mask.shape == (6,) and not out.region_mask.any()
    assert out.token_mask.shape == (9,)
