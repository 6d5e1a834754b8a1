"""Fixtures of the model tests: a catalogue with a planted answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

BLOCKS = 4
USERS_PER_BLOCK = 60
ITEMS_PER_BLOCK = 30
INTERACTIONS_PER_USER = 12


@pytest.fixture(scope="session")
def block_catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Users and items in 4 blocks; every user interacts only with items of its own block (12 of its 30), drawn
    uniformly, so item popularity carries no signal about a user's held-out items while the block does. Each item
    has a text and an image vector that name its block (a one-hot of the block plus noise) in 8 dimensions: a
    multimodal model can read the block from the content too. Split at load, 8:1:1 per user."""
    rng = np.random.default_rng(11)
    folder = tmp_path_factory.mktemp("blocks") / "blocks"
    folder.mkdir()
    rows = []
    for user in range(BLOCKS * USERS_PER_BLOCK):
        block = user // USERS_PER_BLOCK
        items = block * ITEMS_PER_BLOCK + rng.choice(ITEMS_PER_BLOCK, INTERACTIONS_PER_USER, replace=False)
        rows += [(user, int(item)) for item in sorted(items)]
    lines = ["userID\titemID"] + [f"{u}\t{i}" for u, i in rows]
    (folder / "blocks.inter").write_text("\n".join(lines) + "\n")
    n_items = BLOCKS * ITEMS_PER_BLOCK
    block_of_item = np.arange(n_items) // ITEMS_PER_BLOCK
    for modality in ("text", "image"):
        vectors = rng.normal(scale=0.3, size=(n_items, 8))
        vectors[np.arange(n_items), block_of_item] += 1.0
        np.save(folder / f"{modality}_feat.npy", vectors.astype(np.float32))
    return folder
