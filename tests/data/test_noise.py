"""Feature corruption for robustness studies: which items change, and how."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mdrchca.config import DataConfig
from mdrchca.data.dataset import load_dataset
from mdrchca.data.features import ModalityFeatures
from mdrchca.data.noise import corrupt_features, corrupted_items
from mdrchca.errors import DataError
from tests.conftest import save_features, tiny_rows, write_inter


def _features(n: int = 10) -> ModalityFeatures:
    values = torch.arange(n * 3 * 2, dtype=torch.float32).reshape(n, 3, 2)
    mask = torch.ones(n, 3, dtype=torch.bool)
    mask[:, 2] = False
    phrases = torch.tensor([[0, 1, -1]] * n)
    return ModalityFeatures("image", values, mask, phrases)


def test_swap_rotates_the_chosen_items_and_leaves_the_rest() -> None:
    clean = _features()
    noisy = corrupt_features(clean, "swap", 0.4, seed=1)
    chosen = corrupted_items(10, 0.4, 1)
    assert len(chosen) == 4
    for position, item in enumerate(chosen):
        donor = chosen[(position + 1) % len(chosen)]
        assert torch.equal(noisy.values[item], clean.values[donor])
        assert torch.equal(noisy.item_vectors[item], clean.item_vectors[donor])
    untouched = np.setdiff1d(np.arange(10), chosen)
    assert torch.equal(noisy.values[untouched], clean.values[untouched])
    assert torch.equal(clean.values, _features().values), "the input must not change"


def test_gauss_adds_noise_on_real_tokens_only_and_drop_removes_the_modality() -> None:
    clean = _features()
    chosen = corrupted_items(10, 0.5, 2)
    noisy = corrupt_features(clean, "gauss", 0.5, seed=2)
    changed = (noisy.values != clean.values).any(-1)
    assert changed[chosen][:, :2].all() and not changed[chosen][:, 2].any()
    assert not changed[np.setdiff1d(np.arange(10), chosen)].any()
    dropped = corrupt_features(clean, "drop", 0.5, seed=2)
    assert not dropped.mask[chosen].any() and (dropped.item_vectors[chosen] == 0).all()
    assert (dropped.phrase_ids[chosen] == -1).all()


def test_the_same_seed_corrupts_the_same_way() -> None:
    a = corrupt_features(_features(), "gauss", 0.3, seed=5)
    b = corrupt_features(_features(), "gauss", 0.3, seed=5)
    c = corrupt_features(_features(), "gauss", 0.3, seed=6)
    assert torch.equal(a.values, b.values) and not torch.equal(a.values, c.values)


def test_load_dataset_applies_the_configured_noise(tmp_path: Path) -> None:
    folder = write_inter(tmp_path / "tiny", tiny_rows())
    vectors = np.arange(12, dtype=np.float32).reshape(6, 2)
    save_features(folder, "image", vectors)
    noisy = load_dataset(folder, DataConfig(feature_noise="swap", noise_level=0.5, noise_seed=0))
    clean = load_dataset(folder, DataConfig())
    chosen = corrupted_items(6, 0.5, 0)
    assert not torch.equal(noisy.features["image"].item_vectors[chosen], clean.features["image"].item_vectors[chosen])
    with pytest.raises(DataError, match="noise_modality 'text'"):
        load_dataset(folder, DataConfig(feature_noise="drop", noise_level=0.5, noise_modality="text"))
