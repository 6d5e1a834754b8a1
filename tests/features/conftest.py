"""Tiny, randomly initialised encoders saved as local model folders (no hub access needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdrchca.data.synthetic import SyntheticSpec, generate


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
