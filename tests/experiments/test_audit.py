"""The audit finds the planted text/image mismatches of the generator: a measured AUC against chance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mdrchca.config import Config
from mdrchca.data import load_dataset
from mdrchca.data.synthetic import SyntheticSpec, generate
from mdrchca.experiments.audit import (
    audit_ground_truth,
    audit_items,
    corrupted_ground_truth,
    cross_fitted_agreement,
    mismatch_aucs,
    roc_auc,
)
from mdrchca.training import Trainer


def test_roc_auc_by_hand() -> None:
    # positives 0.9, 0.4; negatives 0.5, 0.1, 0.4 -> pairs won: 3 + 1.5 (tie counts half) of 6
    assert roc_auc(np.array([0.9, 0.4, 0.5, 0.1, 0.4]), np.array([1, 1, 0, 0, 0], bool)) == pytest.approx(4.5 / 6)


def test_cross_fitted_agreement_finds_swapped_rows() -> None:
    """Known answer: the text is a fixed linear map of the image plus small noise; 20 of 200 items get another
    item's image (rotated among them). Each of those has a low agreement, every clean one a high one."""
    rng = np.random.default_rng(0)
    image = rng.normal(size=(200, 12))
    text = image @ rng.normal(size=(12, 8)) + 0.05 * rng.normal(size=(200, 8))
    swapped = np.sort(rng.choice(200, 20, replace=False))
    image[swapped] = image[np.roll(swapped, -1)]
    score, alpha = cross_fitted_agreement(image, text)
    bad = np.isin(np.arange(200), swapped)
    assert alpha in (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
    assert roc_auc(-score, bad) > 0.99
    assert score[~bad].min() > score[bad].max()
    # the same inputs give the same scores; no item's own pair is in the map that scores it
    assert np.array_equal(score, cross_fitted_agreement(image, text)[0])


def test_corrupted_ground_truth_follows_the_run_noise() -> None:
    from mdrchca.config import DataConfig
    from mdrchca.data.noise import corrupted_items

    swap = DataConfig(feature_noise="swap", noise_level=0.1, noise_modality="image", noise_seed=4)
    assert np.array_equal(corrupted_ground_truth(swap, 50, ("text", "image")), corrupted_items(50, 0.1, 4))
    assert corrupted_ground_truth(swap, 50, ("text", "audio")) is None  # another modality was corrupted
    assert corrupted_ground_truth(DataConfig(), 50, ("text", "image")) is None


def test_the_audit_scores_against_the_run_noise_first_then_the_planted_file(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from mdrchca.config import DataConfig

    swap = DataConfig(feature_noise="swap", noise_level=0.1, noise_modality="image", noise_seed=4)
    dataset = SimpleNamespace(n_items=50, path=tmp_path)
    assert audit_ground_truth(DataConfig(), dataset, ("text", "image")) is None  # no noise, no file
    (tmp_path / "ground_truth.tsv").write_text("itemID\tmismatched\n0\t1\n")
    truth, what = audit_ground_truth(DataConfig(), dataset, ("text", "image"))
    assert truth == tmp_path / "ground_truth.tsv" and what == "planted mismatches"
    truth, what = audit_ground_truth(swap, dataset, ("text", "image"))
    assert len(truth) == 5 and "feature_noise corrupted" in what


@pytest.fixture(scope="module")
def trained_on_planted_mismatches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trainer, Path]:
    """300 items (30 with an image of another colour and shape than their text says), real packaged
    encoders (MiniLM tokens, EfficientNet-Lite0 regions), 30 epochs of MDR-CHCA as it trains by default (the
    step budget: 25 of the 300 items' content recomputed per step)."""
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
    frame = audit_items(trainer.model, trainer.dataset, "confidence")
    aucs = mismatch_aucs(frame, data_dir / "ground_truth.tsv")
    # chance is 0.5; with 30 mismatched items of 300 its standard deviation under chance is about 0.056
    assert aucs["confidence"] > 0.75, aucs
    assert aucs["agreement"] > 0.9, aucs  # the item-level addition: 1.0 measured
    truth = pd.read_csv(data_dir / "ground_truth.tsv", sep="\t")
    lowest = set(frame["itemID"].head(30)) & set(truth.loc[truth["mismatched"] == 1, "itemID"])
    assert len(lowest) >= 9, f"only {len(lowest)} planted mismatches among the 30 lowest"  # 3 by chance


def test_the_confidence_screen_screens(trained_on_planted_mismatches: tuple[Trainer, Path]) -> None:
    """The positive share stays inside (5%, 95%) once theta_pos has left its initial value (epoch 1 starts
    above every pair), and pairs of mismatched items are kept out of the positives clearly more often."""
    import torch

    from mdrchca.models.mdrchca.screen import candidate_pairs, positive_mask

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
