"""A small catalogue with item-level text and image vectors, for grids that train several models quickly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def vector_catalogue(small_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small catalogue's interactions with random 8-dimensional text and image vectors per item."""
    folder = tmp_path_factory.mktemp("vectors") / "vectors"
    folder.mkdir()
    source = next(small_catalogue.glob("*.inter"))
    shutil.copy(source, folder / "vectors.inter")
    n_items = 120
    rng = np.random.default_rng(3)
    for name in ("text", "image"):
        np.save(folder / f"{name}_feat.npy", rng.normal(size=(n_items, 8)).astype(np.float32))
    return folder
