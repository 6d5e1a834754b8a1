"""``mdrchca probe``: each mechanism switched off in a copy of a trained model, and what changes (hand-made cases)."""

from __future__ import annotations

import pytest
import torch

from mdrchca.errors import MdrchcaError
from mdrchca.experiments.probe import content_cosine, probe_model, summarise_draws, topk_overlap
from mdrchca.models.base import Probe
from tests.models.mdrchca.test_model import _dataset, _model


def test_content_cosine_by_hand() -> None:
    reference = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    changed = torch.tensor([[2.0, 0.0], [0.0, -1.0], [0.0, 0.0]])
    # cos 1, cos -1, and a zero row counts 0: mean 0
    assert content_cosine(reference, changed) == pytest.approx(0.0)
    assert content_cosine(reference, reference) == pytest.approx(1.0)


def test_topk_overlap_by_hand() -> None:
    reference = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    changed = torch.tensor([[4, 3, 9, 10], [5, 6, 7, 8]])  # 2 of 4 kept (order ignored), 4 of 4 kept
    assert topk_overlap(reference, changed) == pytest.approx(0.75)


@pytest.fixture(scope="module")
def trained():
    """A tiny MDR-CHCA with the confidences in the fusion, a few Adam steps on its data."""
    from mdrchca.data.sampler import BPRSampler
    from mdrchca.models.base import Batch

    data = _dataset()
    model = _model(dataset=data, confidence_fusion="screen", confidence_gate="item")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for users, pos, neg in BPRSampler(data.train, data.n_items, 0).epoch(64):
        loss = model.loss(Batch(users, pos, neg))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.after_step()
    return model.eval(), data


def test_probe_rows_of_a_trained_model(trained) -> None:
    model, data = trained
    frame = probe_model(model, data, "valid", k=5, draws=2)
    first = frame.iloc[0]
    assert first["probe"] == "trained" and first["change"] == 0.0
    assert first["content_cosine"] == pytest.approx(1.0) and first["topk_overlap"] == 1.0
    names = list(frame["probe"])
    assert names.count("alignment W_Q, W_K re-randomised") == 2  # a random probe, two draws
    for name in (
        "dense alignment (variant A's path)",
        "screen out of the fusion (soft weights kept)",
        "item gate off",
        "every confidence out of the fusion",
        "all content off (f = 0)",
    ):
        assert name in names, names
    off = frame.set_index("probe").loc["all content off (f = 0)"]
    assert off["content_cosine"] == 0.0  # f = 0 for every item
    rerandomised = frame[frame["probe"] == "alignment W_Q, W_K re-randomised"]
    assert (rerandomised["content_cosine"] < 1).all()  # new weights, new confidences, new content
    assert rerandomised["content_cosine"].nunique() == 2  # two different draws
    # the probes worked on copies: the trained model measures as before
    again = probe_model(model, data, "valid", k=5, draws=1).iloc[0]
    assert again["recall"] == first["recall"]
    summary = summarise_draws(frame)
    assert list(summary["probe"]).count("alignment W_Q, W_K re-randomised") == 1


def test_a_probe_that_changes_nothing_measures_no_change(trained, monkeypatch: pytest.MonkeyPatch) -> None:
    model, data = trained
    monkeypatch.setattr(type(model), "probes", lambda self: [Probe("nothing", lambda m, draw: None)])
    row = probe_model(model, data, "valid", k=5).set_index("probe").loc["nothing"]
    assert row["change"] == 0.0 and row["content_cosine"] == pytest.approx(1.0) and row["topk_overlap"] == 1.0


def test_a_model_without_mechanisms_is_refused() -> None:
    from mdrchca.config import Config
    from mdrchca.training import build_model

    data = _dataset()
    lightgcn = build_model(Config.load("lightgcn", overrides=["embedding_size=8"]), data)
    with pytest.raises(MdrchcaError, match="no mechanisms to probe"):
        probe_model(lightgcn, data)
