"""The audit finds the planted text/image mismatches of the generator: a measured AUC against chance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mdrchca.config import Config
from mdrchca.data import load_dataset
from mdrchca.data.synthetic import SyntheticSpec, generate
from mdrchca.experiments.audit import audit_items, mismatch_aucs, roc_auc
from mdrchca.training import Trainer


def test_roc_auc_by_hand() -> None:
    # positives 0.9, 0.4; negatives 0.5, 0.1, 0.4 -> pairs won: 3 + 1.5 (tie counts half) of 6
    assert roc_auc(np.array([0.9, 0.4, 0.5, 0.1, 0.4]), np.array([1, 1, 0, 0, 0], bool)) == pytest.approx(4.5 / 6)


@pytest.fixture(scope="module")
def trained_on_planted_mismatches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trainer, Path]:
    """300 items (30 with an image of another colour and shape than their text says), real packaged
    encoders (MiniLM tokens, EfficientNet-Lite0 regions), 30 epochs of MDR-CHCA."""
    from mdrchca.features import FeatureConfig, extract_features

    tmp_path = tmp_path_factory.mktemp("planted")
    raw = generate(tmp_path / "raw", SyntheticSpec(n_users=600, n_items=300, mismatch_rate=0.1, seed=5))
    data_dir = tmp_path / "catalogue"
    extract_features(raw, data_dir, FeatureConfig(image_size=128, pca_dim=64), progress=False)
    dataset = load_dataset(data_dir)
    config = Config.load("mdrchca", overrides=["epochs=30", "device=cpu"])
    trainer = Trainer(config, dataset, progress=False)
    trainer.fit()
    return trainer, data_dir


def test_planted_mismatches_get_lower_confidence(trained_on_planted_mismatches: tuple[Trainer, Path]) -> None:
    trainer, data_dir = trained_on_planted_mismatches
    frame = audit_items(trainer.model, trainer.dataset)
    aucs = mismatch_aucs(frame, data_dir / "ground_truth.tsv")
    # chance is 0.5; with 30 mismatched items of 300 its standard deviation under chance is about 0.056
    assert aucs["confidence"] > 0.75, aucs
    truth = pd.read_csv(data_dir / "ground_truth.tsv", sep="\t")
    lowest = set(frame["itemID"].head(30)) & set(truth.loc[truth["mismatched"] == 1, "itemID"])
    assert len(lowest) >= 9, f"only {len(lowest)} planted mismatches among the 30 lowest"  # 3 by chance


def test_the_confidence_screen_screens(trained_on_planted_mismatches: tuple[Trainer, Path]) -> None:
    """The positive share stays inside (5%, 95%) once theta_pos has left its initial value (epoch 1 starts
    above every pair), and pairs of mismatched items are kept out of the positives clearly more often."""
    import torch

    from mdrchca.models.components.contrastive import candidate_pairs, positive_mask

    trainer, data_dir = trained_on_planted_mismatches
    shares = [row["pos_share"] for row in trainer.history]
    assert all(0.05 < share < 0.95 for share in shares[1:]), shares
    model = trainer.model.eval()
    with torch.no_grad():
        out = model.content(torch.arange(model.n_items))
        pairs, c_t, c_v = candidate_pairs(out.token_mask, out.best_region, out.text_confidence, out.region_confidence)
        valid = out.region_mask[pairs.item, pairs.region]
        positive = positive_mask(c_t, c_v, model.thresholds.theta_pos) & valid
    truth = pd.read_csv(data_dir / "ground_truth.tsv", sep="\t").set_index("itemID")
    mismatched = torch.from_numpy(truth["mismatched"].to_numpy().astype(bool))[pairs.item]
    kept_out_clean = 1 - positive[valid & ~mismatched].float().mean().item()
    kept_out_mismatched = 1 - positive[valid & mismatched].float().mean().item()
    # about 300 pairs of mismatched items: a standard error near 0.03 on each rate
    assert kept_out_mismatched > kept_out_clean + 0.1, (kept_out_mismatched, kept_out_clean)
